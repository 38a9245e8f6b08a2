"""Load the declarative files of a BetCycle repository into a typed model, checking each against its schema.

Every problem in every file is collected and raised at once (UserErrors), each with its file and line.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from betcycle.errors import UserError, UserErrors
from betcycle.model import schemacheck
from betcycle.model.schemas import supported_versions
from betcycle.model.yamlio import LineMap, load_with_lines, read_text

SETTINGS_FILE = "betcycle.yaml"
#: names an app may not have, and why: they collide with what BetCycle renders for the environment itself
RESERVED_APP_NAMES = {
    "argocd": "manifests/argocd/ holds the environment's Argo CD objects",
    "root": "its Application <env>-root would be the environment's root app-of-apps",
}


@dataclass
class Environment:
    name: str
    file: str  # environments/<env>/environment.yaml
    data: dict[str, Any]
    lines: LineMap

    @property
    def dir(self) -> str:
        return f"environments/{self.name}"

    @property
    def manifests_dir(self) -> str:
        return f"{self.dir}/manifests"

    @property
    def kubernetes_version(self) -> str:
        return str(self.data["kubernetesVersion"])

    @property
    def argocd(self) -> dict[str, Any]:
        value: dict[str, Any] = self.data["argocd"]
        return value

    @property
    def project(self) -> str:
        return str(self.argocd["project"])

    @property
    def target_revision(self) -> str:
        return str(self.argocd.get("targetRevision", "main"))

    @property
    def auto_sync(self) -> bool:
        return bool(self.argocd.get("autoSync", True))

    def destination(self, app: str) -> dict[str, str]:
        dest = self.argocd["destination"]
        out = {"server": dest["server"]} if "server" in dest else {"name": dest["name"]}
        out["namespace"] = self.namespace_for(app)
        return out

    def namespace_for(self, app: str) -> str:
        rule = str(self.argocd["destination"].get("namespace", "{app}"))
        return rule.replace("{app}", app).replace("{env}", self.name)

    @property
    def promotion_from(self) -> str | None:
        value = self.data.get("promotion", {}).get("from")
        return str(value) if value else None

    @property
    def defaults(self) -> dict[str, Any]:
        value: dict[str, Any] = self.data.get("defaults", {}) or {}
        return value

    def external(self, kind: str) -> list[str]:
        value: list[str] = self.data.get("external", {}).get(kind, [])
        return value

    def line(self, *key: str | int) -> int | None:
        return self.lines.get(tuple(key))


@dataclass
class App:
    name: str
    file: str  # apps/<app>/app.yaml
    data: dict[str, Any]
    lines: LineMap

    @property
    def owner(self) -> str:
        return str(self.data["owner"])

    @property
    def chart(self) -> str:
        return str(self.data["chart"])

    @property
    def description(self) -> str:
        return str(self.data.get("description", ""))

    @property
    def values(self) -> dict[str, Any]:
        value: dict[str, Any] = self.data.get("values", {}) or {}
        return value


@dataclass
class EnvApp:
    """environments/<env>/apps/<app>.yaml: the app's values in one environment (its presence deploys it)."""

    env: str
    app: str
    file: str
    values: dict[str, Any]
    lines: LineMap


@dataclass
class Chart:
    name: str
    dir: str  # charts/<chart>
    data: dict[str, Any]
    defaults: dict[str, Any]
    defaults_lines: LineMap
    schema: dict[str, Any] | None
    templates: list[str]  # repository-relative paths, sorted

    @property
    def version(self) -> str:
        return str(self.data["version"])

    @property
    def values_file(self) -> str:
        return f"{self.dir}/values.yaml"

    @property
    def schema_file(self) -> str:
        return f"{self.dir}/values.schema.json"

    @cached_property
    def validator(self) -> Any:
        if self.schema is None:
            return None
        return schemacheck.compile_schema(self.schema, path=self.schema_file)


@dataclass
class Repo:
    root: Path
    repo_url: str
    argocd_namespace: str
    envs: dict[str, Environment]
    apps: dict[str, App]
    env_apps: dict[str, dict[str, EnvApp]]
    charts: dict[str, Chart] = field(default_factory=dict)
    digests: Digests = field(default_factory=dict, repr=False)

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def select_envs(self, names: list[str] | None) -> list[Environment]:
        if not names:
            return [self.envs[n] for n in sorted(self.envs)]
        for n in names:
            if n not in self.envs:
                raise unknown_name("environment", n, sorted(self.envs))
        return [self.envs[n] for n in sorted(set(names))]

    def check_apps(self, names: list[str] | None) -> None:
        for n in names or []:
            if n not in self.apps:
                raise unknown_name("app", n, sorted(self.apps))


#: how to list the known names, for a hint that has no close match to offer (a repository may hold hundreds)
LIST_HINTS = {
    "app": "`ls apps/` lists the apps (each folder with an app.yaml)",
    "environment": "`ls environments/` lists the environments",
    "chart": "`ls charts/` lists the charts",
    "policy": "`betcycle policy list` lists the policies",
}


def close_matches(name: str, known: Iterable[str]) -> list[str]:
    """At most five of `known` that look like `name`, the closest first (ties in name order, where difflib's
    own get_close_matches would prefer the names that sort last)."""
    matcher = difflib.SequenceMatcher(b=name)
    scored = []
    for candidate in set(known):
        matcher.set_seq1(candidate)
        if matcher.real_quick_ratio() >= 0.6 and matcher.quick_ratio() >= 0.6 and matcher.ratio() >= 0.6:
            scored.append((-matcher.ratio(), candidate))
    return [candidate for _, candidate in sorted(scored)[:5]]


def did_you_mean(names: list[str]) -> str:
    """did you mean 'a', 'b' or 'c'?"""
    quoted = [repr(n) for n in names]
    listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    return f"did you mean {listed}?"


def suggest(what: str, name: str, known: Iterable[str], listing: str | None = None) -> str:
    """A short hint for an unknown `name`: the closest known names, else how to list them (never all)."""
    known = list(known)
    close = close_matches(name, known)
    if close:
        return did_you_mean(close)
    listing = listing or LIST_HINTS.get(what, "")
    if not known:
        plural = "policies" if what == "policy" else f"{what}s"
        return f"there are no {plural} yet" + (f" ({listing})" if listing else "")
    return listing or f"check the {what}'s spelling"


def unknown_name(what: str, name: str, known: list[str], listing: str | None = None) -> UserError:
    return UserError(f"unknown {what} {name!r}", hint=suggest(what, name, known, listing))


#: SHA-256 of the text of every file `load_repo` read, by repository-relative path: the render cache keys
#: on exactly the bytes the model was built from (a file edited after loading can't poison an entry)
Digests = dict[str, str]


def _load_mapping(
    root: Path, rel: str, errors: list[UserError], digests: Digests | None = None
) -> tuple[dict[str, Any], LineMap] | None:
    try:
        text = read_text(root / rel, rel)
        if digests is not None:
            digests[rel] = hashlib.sha256(text.encode()).hexdigest()
        data, lines = load_with_lines(text, rel)
    except UserError as exc:
        errors.append(exc)
        return None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        errors.append(UserError("expected a mapping (key: value) at the top of the file", path=rel, line=1))
        return None
    return data, lines


def sub_lines(lines: LineMap, *prefix: str | int) -> LineMap:
    """The line map of the value at `prefix`, with paths relative to it."""
    n = len(prefix)
    return {k[n:]: v for k, v in lines.items() if k[:n] == prefix}


def _raw_value(path: Path, line: int | None) -> str | None:
    """The value as written on `line` of a `key: value` line (for hints that quote what the user typed)."""
    try:
        text = path.read_text(encoding="utf-8").splitlines()[(line or 0) - 1]
    except (OSError, IndexError, UnicodeDecodeError):
        return None
    value = text.partition(":")[2].split("#")[0].strip()
    return value or None


def _check_name(
    data: dict[str, Any], expected: str, rel: str, lines: LineMap, errors: list[UserError]
) -> None:
    if data.get("name") != expected:
        errors.append(
            UserError(
                f"name {data.get('name')!r} does not match its folder {expected!r}",
                path=rel,
                line=lines.get(("name",)),
                hint=f"set name: {expected} (or rename the folder)",
            )
        )


def load_repo(root: Path) -> Repo:
    """Read betcycle.yaml, every environment, app, environment-app file and the charts they use."""
    root = root.resolve()
    errors: list[UserError] = []
    digests: Digests = {}
    repo_url, argocd_ns = "", "argocd"
    if not (root / SETTINGS_FILE).exists() and (root / "environments").is_dir():
        errors.append(
            UserError(
                "no betcycle.yaml at the repository root",
                path=SETTINGS_FILE,
                hint="create it with `repoURL: <the git URL Argo CD clones>` (see docs/configuration.md)",
            )
        )
    if (root / SETTINGS_FILE).exists():
        loaded = _load_mapping(root, SETTINGS_FILE, errors, digests)
        if loaded:
            data, lines = loaded
            problems = schemacheck.check_builtin(data, "repository", path=SETTINGS_FILE, lines=lines)
            errors += problems
            if not problems:
                repo_url = data["repoURL"]
                argocd_ns = data.get("argocd", {}).get("namespace", "argocd")

    envs: dict[str, Environment] = {}
    env_apps: dict[str, dict[str, EnvApp]] = {}
    env_root = root / "environments"
    if not env_root.is_dir():
        raise UserError(
            "no environments/ folder here",
            path=str(root),
            hint="run betcycle from the repository root, or pass --root",
        )
    for env_dir in sorted(p for p in env_root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        rel = f"environments/{env_dir.name}/environment.yaml"
        if not (root / rel).exists():
            errors.append(
                UserError(
                    "environment folder has no environment.yaml",
                    path=f"environments/{env_dir.name}",
                    hint="add environment.yaml (see docs/configuration.md) or remove the folder",
                )
            )
            continue
        loaded = _load_mapping(root, rel, errors, digests)
        if not loaded:
            continue
        data, lines = loaded
        kv = data.get("kubernetesVersion")
        kv_line = lines.get(("kubernetesVersion",))
        if isinstance(kv, int | float) and not isinstance(kv, bool):
            written = _raw_value(root / rel, kv_line) or str(kv)
            errors.append(
                UserError(
                    f"kubernetesVersion must be a quoted string, got the number {kv}",
                    path=rel,
                    line=kv_line,
                    hint=f'write kubernetesVersion: "{written}" (unquoted, YAML reads 1.30 as the number 1.3)',
                )
            )
            continue
        if isinstance(kv, str) and kv not in supported_versions() and re.fullmatch(r"1\.[0-9]{2}", kv):
            errors.append(
                UserError(
                    f"Kubernetes {kv} is not supported (schemas for "
                    f"{supported_versions()[0]}–{supported_versions()[-1]})",
                    path=rel,
                    line=kv_line,
                    hint="set a supported version, or upgrade kubernetes-validate for newer schemas",
                )
            )
            continue
        problems = schemacheck.check_builtin(data, "environment", path=rel, lines=lines)
        errors += problems
        if problems:
            continue
        _check_name(data, env_dir.name, rel, lines, errors)
        envs[env_dir.name] = Environment(env_dir.name, rel, data, lines)
        env_apps[env_dir.name] = {}
        apps_dir = env_dir / "apps"
        if apps_dir.is_dir():
            for f in sorted(apps_dir.iterdir()):
                if f.suffix not in (".yaml", ".yml") or f.name.startswith("."):
                    continue
                frel = f"environments/{env_dir.name}/apps/{f.name}"
                loaded_app = _load_mapping(root, frel, errors, digests)
                if loaded_app is not None:
                    env_apps[env_dir.name][f.stem] = EnvApp(env_dir.name, f.stem, frel, *loaded_app)

    apps: dict[str, App] = {}
    apps_root = root / "apps"
    if apps_root.is_dir():
        for app_dir in sorted(p for p in apps_root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            rel = f"apps/{app_dir.name}/app.yaml"
            if not (root / rel).exists():
                continue  # a folder without app.yaml is not a deployable app (e.g. a library)
            loaded = _load_mapping(root, rel, errors, digests)
            if not loaded:
                continue
            data, lines = loaded
            problems = schemacheck.check_builtin(data, "app", path=rel, lines=lines)
            errors += problems
            if problems:
                continue
            _check_name(data, app_dir.name, rel, lines, errors)
            if app_dir.name in RESERVED_APP_NAMES:
                errors.append(
                    UserError(
                        f"app name {app_dir.name!r} is reserved",
                        path=rel,
                        line=lines.get(("name",)),
                        hint=f"{RESERVED_APP_NAMES[app_dir.name]}; rename the app",
                    )
                )
                continue
            apps[app_dir.name] = App(app_dir.name, rel, data, lines)

    present_apps = (
        {p.name for p in apps_root.iterdir() if (p / "app.yaml").exists()} if apps_root.is_dir() else set()
    )
    present_envs = {p.name for p in env_root.iterdir() if (p / "environment.yaml").exists()}
    for deployed in env_apps.values():
        for name, ea in deployed.items():
            if name not in apps and name not in present_apps:  # a broken app.yaml is reported once, above
                errors.append(unknown_name("app", name, sorted(apps)))
                errors[-1].path = ea.file
                errors[-1].message = f"deploys unknown app {name!r} (no apps/{name}/app.yaml)"
    repo = Repo(root, repo_url, argocd_ns, envs, apps, env_apps, digests=digests)

    for env in envs.values():
        src = env.promotion_from
        if src and src not in envs and src not in present_envs:
            err = unknown_name("environment", src, sorted(envs))
            err.path, err.line = env.file, env.line("promotion", "from")
            err.message = f"promotion.from names unknown environment {src!r}"
            errors.append(err)
        if src == env.name:
            errors.append(
                UserError(
                    "an environment cannot promote from itself", path=env.file, line=env.line("promotion")
                )
            )

    used_charts = sorted({a.chart for a in apps.values()})
    for chart_name in used_charts:
        try:
            repo.charts[chart_name] = load_chart(root, chart_name, digests)
        except UserErrors as exc:
            errors += exc.errors
        except UserError as exc:
            if exc.path is None or exc.path.startswith("charts/"):
                for a in apps.values():
                    if a.chart == chart_name and exc.path is None:
                        exc.path, exc.line = a.file, a.lines.get(("chart",))
                        break
            errors.append(exc)
    if errors:
        raise UserErrors(sorted(errors, key=lambda e: (e.path or "", e.line or 0)))
    return repo


def load_chart(root: Path, name: str, digests: Digests | None = None) -> Chart:
    cdir = root / "charts" / name
    rel_dir = f"charts/{name}"
    if not (cdir / "chart.yaml").exists():
        known = (
            sorted(p.name for p in (root / "charts").iterdir() if p.is_dir())
            if (root / "charts").is_dir()
            else []
        )
        raise unknown_name("chart", name, known)
    errors: list[UserError] = []
    meta = _load_mapping(root, f"{rel_dir}/chart.yaml", errors, digests)
    if meta:
        errors += schemacheck.check_builtin(meta[0], "chart", path=f"{rel_dir}/chart.yaml", lines=meta[1])
        if not errors:
            _check_name(meta[0], name, f"{rel_dir}/chart.yaml", meta[1], errors)
    defaults: tuple[dict[str, Any], LineMap] | None = ({}, {})
    if (cdir / "values.yaml").exists():
        defaults = _load_mapping(root, f"{rel_dir}/values.yaml", errors, digests)
    schema = None
    schema_rel = f"{rel_dir}/values.schema.json"
    if (cdir / "values.schema.json").exists():
        text = read_text(cdir / "values.schema.json", schema_rel)
        if digests is not None:
            digests[schema_rel] = hashlib.sha256(text.encode()).hexdigest()
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as exc:
            errors.append(UserError(f"invalid JSON: {exc.msg}", path=schema_rel, line=exc.lineno))
    tdir = cdir / "templates"
    templates = (
        sorted(f"{rel_dir}/templates/{p.relative_to(tdir).as_posix()}" for p in tdir.rglob("*.yaml.j2"))
        if tdir.is_dir()
        else []
    )
    if not templates:
        errors.append(
            UserError(
                "chart has no templates", path=f"{rel_dir}/templates", hint="add templates/*.yaml.j2 files"
            )
        )
    if errors or meta is None or defaults is None:
        raise UserErrors(errors)
    chart = Chart(name, rel_dir, meta[0], defaults[0], defaults[1], schema, templates)
    if schema is not None:
        chart.validator  # noqa: B018 - compile now so a broken schema is reported with the other input errors
    return chart
