"""What `diff` compares: the manifests Argo CD syncs at a base revision, and a fresh render of the head.

Only (environment, app) pairs whose inputs changed are rendered and read (unless --full): a one-app change in
a repository of hundreds of apps costs one app's render. A change to a chart, to betcycle.yaml or to the
toolkit itself widens the set accordingly.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from betcycle.diff import gitrepo
from betcycle.diff.engine import EnvInfo
from betcycle.diff.engine import env_info as diff_env_info
from betcycle.errors import UserError, UserErrors
from betcycle.model.repo import Repo, load_repo, suggest
from betcycle.model.resources import Resource
from betcycle.model.yamlio import load_all
from betcycle.render import argocd, platform
from betcycle.render import engine as render
from betcycle.render.cache import RenderCache
from betcycle.validate import manifests

INPUT_PATHS = ["betcycle.yaml", "apps", "charts", "environments"]
ARGO = argocd.ARGOCD_DIR


@dataclass
class Scope:
    """Which (env, app) pairs to compare; `everything` short-circuits the rest. app ARGO = Argo CD objects."""

    everything: bool = False
    pairs: set[tuple[str, str]] = field(default_factory=set)
    envs: set[str] = field(default_factory=set)  # every app and the Argo CD objects of these environments

    def covers(self, env: str, app: str) -> bool:
        return self.everything or env in self.envs or (env, app) in self.pairs


def scope_of(paths: list[str], base_charts: dict[str, str], head: Repo | None) -> Scope:
    """The pairs a set of changed paths can affect. `base_charts` (and head's apps) map apps to charts."""
    scope = Scope()
    chart_of = dict(base_charts)
    if head is not None:
        chart_of.update({name: app.chart for name, app in head.apps.items()})
    for p in paths:
        parts = p.split("/")
        if p == "betcycle.yaml" or p.startswith("src/betcycle/") or p == "pyproject.toml":
            scope.everything = True  # repository settings or the renderer itself changed
        elif parts[0] == "charts" and len(parts) > 1:
            for app, chart in chart_of.items():
                if chart == parts[1]:
                    scope.pairs |= {("*", app)}
        elif parts[0] == "apps" and len(parts) > 2 and parts[2] == "app.yaml":
            scope.pairs.add(("*", parts[1]))
        elif parts[0] == "environments" and len(parts) > 2:
            env = parts[1]
            if parts[2] == "environment.yaml":
                scope.envs.add(env)
            elif parts[2] == platform.PLATFORM_FILE or (parts[2] == platform.VALUES_DIR and len(parts) > 3):
                scope.pairs.add((env, ARGO))  # the platform Applications live with the Argo CD objects
            elif parts[2] == "apps" and len(parts) == 4:
                scope.pairs |= {(env, parts[3].rsplit(".", 1)[0]), (env, ARGO)}
            elif parts[2] == "manifests" and len(parts) > 4:
                scope.pairs.add((env, parts[3]))
            elif parts[2] == "manifests" and len(parts) == 4:
                scope.envs.add(env)
    return scope


def _expand(scope: Scope, envs: set[str]) -> Scope:
    """Turn ("*", app) wildcards into one pair per environment (Argo CD objects of those envs included)."""
    out = Scope(scope.everything, set(), set(scope.envs))
    for env, app in scope.pairs:
        if env == "*":
            out.pairs |= {(e, app) for e in envs} | {(e, ARGO) for e in envs}
        else:
            out.pairs.add((env, app))
    return out


def base_manifest_files(env_files: list[str]) -> list[str]:
    """The manifest files among the paths under environments/ (environments/<env>/manifests/<app>/...)."""
    return [
        f
        for f in env_files
        if f.count("/") >= 4 and f.split("/")[2] == "manifests" and f.endswith((".yaml", ".yml", ".json"))
    ]


def base_resources(root: Path, rev: str, scope: Scope, files: list[str]) -> list[Resource]:
    """Committed manifests at `rev` within scope."""
    wanted = [f for f in files if _covered(scope, f)]
    out: list[Resource] = []
    for path, text in sorted(gitrepo.read_files(root, rev, wanted).items()):
        parts = path.split("/")
        app = parts[3] if parts[3] != ARGO else None
        try:
            out += manifests.parse(text, path, env=parts[1], app=app)
        except UserError as exc:
            exc.message += f" (at {rev[:12]})"
            raise
    return out


def head_resources(
    repo: Repo, scope: Scope, *, jobs: int = 1, cache: RenderCache | None = None
) -> list[Resource]:
    """A fresh in-memory render of the pairs in scope (nothing is written)."""
    if scope.everything:
        return render.render(repo, jobs=jobs, cache=cache).resources
    out: list[Resource] = []
    errors: list[UserError] = []
    for env in repo.select_envs(None):
        deployed = sorted(repo.env_apps.get(env.name, {}))
        apps = None if env.name in scope.envs else [a for a in deployed if scope.covers(env.name, a)]
        if apps == [] and not scope.covers(env.name, ARGO):
            continue
        try:
            result = render.render(repo, [env.name], apps, jobs=jobs, cache=cache)
        except UserErrors as exc:
            errors += exc.errors
            continue
        out += [r for r in result.resources if scope.covers(env.name, r.app or ARGO)]
    if errors:  # a chart or app shared by several environments fails once, not once per environment
        raise UserErrors(list({str(e): e for e in errors}.values()))
    return out


@dataclass
class Comparison:
    base_rev: str
    head_label: str
    base: list[Resource]
    head: list[Resource]
    envs: dict[str, EnvInfo]
    #: unchanged workloads and HPAs outside the compared set (selective diffs), for the cost totals
    context: list[Resource] = field(default_factory=list)


def env_info(repo: Repo | None, names: set[str]) -> dict[str, EnvInfo]:
    """EnvInfo for every environment name; one only in base (removed) has no price table."""
    envs = repo.envs if repo else {}
    return {name: diff_env_info(name, envs[name].data if name in envs else {}) for name in sorted(names)}


def compare(
    root: Path,
    *,
    base: str | None,
    head: str | None,
    envs: list[str] | None = None,
    apps: list[str] | None = None,
    full: bool = False,
    jobs: int = 1,
    cache: RenderCache | None = None,
) -> Comparison:
    """Base manifests (committed, at the merge base by default) against a fresh render of head."""
    base_rev = gitrepo.resolve(root, base) if base else gitrepo.resolve(root, gitrepo.default_base(root))
    if base_rev is None:
        raise UserError(f"unknown revision {base!r}", hint="name a branch, tag or commit that exists here")
    head_rev = None
    if head:
        head_rev = gitrepo.resolve(root, head)
        if head_rev is None:
            raise UserError(
                f"unknown revision {head!r}", hint="name a branch, tag or commit that exists here"
            )
    with tempfile.TemporaryDirectory(prefix="betcycle-head-") as tmp:
        head_root = root
        if head_rev:
            gitrepo.export_tree(root, head_rev, Path(tmp), INPUT_PATHS)
            head_root = Path(tmp)
        try:
            head_repo = load_repo(head_root) if (head_root / "environments").is_dir() else None
        except (UserError, UserErrors) as exc:
            for err in exc.errors if isinstance(exc, UserErrors) else [exc]:
                err.message += f" (at {head_rev[:12]})" if head_rev else ""  # the file is from history
            raise
        all_envs = set(head_repo.envs) if head_repo else set()
        env_files = gitrepo.list_files(root, base_rev, "environments")
        base_envs = {p.split("/")[1] for p in env_files if p.count("/") >= 2}
        if full:
            scope = Scope(everything=True)
        else:
            changed = gitrepo.changed_paths(root, base_rev, head_rev)
            base_apps = (
                _base_app_charts(root, base_rev) if any(p.startswith("charts/") for p in changed) else {}
            )
            scope = _expand(scope_of(changed, base_apps, head_repo), all_envs | base_envs)
        files = base_manifest_files(env_files)
        if not scope.everything:
            # pairs rendered on one side only (a first render, a removed app) are always compared
            base_pairs = {(f.split("/")[1], f.split("/")[3]) for f in files}
            head_pairs = {
                (e, a) for e, deployed in (head_repo.env_apps if head_repo else {}).items() for a in deployed
            }
            head_pairs |= {(e, ARGO) for e in all_envs}
            scope.pairs |= base_pairs ^ head_pairs
        base_list = base_resources(root, base_rev, scope, files)
        # the rest of each environment's workloads still count toward its requested totals
        context = (
            []
            if scope.everything
            else _workloads(root, base_rev, [f for f in files if not _covered(scope, f)])
        )
        head_list = head_resources(head_repo, scope, jobs=jobs, cache=cache) if head_repo else []
    selected = set(envs or []) or (all_envs | base_envs)
    unknown = set(envs or []) - (all_envs | base_envs)
    if unknown:
        raise UserError(
            f"unknown environment {sorted(unknown)[0]!r}",
            hint=suggest("environment", sorted(unknown)[0], all_envs | base_envs),
        )

    def keep(r: Resource) -> bool:
        return (r.env in selected) and (not apps or r.app in apps)

    return Comparison(
        context=[r for r in context if keep(r)],
        base_rev=base_rev,
        head_label=head_rev[:12] if head_rev else "working tree",
        base=[r for r in base_list if keep(r)],
        head=[r for r in head_list if keep(r)],
        envs=env_info(head_repo, all_envs | base_envs),
    )


_WORKLOAD_FILES = tuple(
    f"{k}-"
    for k in ("deployment", "statefulset", "daemonset", "replicaset", "job", "pod", "horizontalpodautoscaler")
)


def _covered(scope: Scope, path: str) -> bool:
    parts = path.split("/")
    return scope.covers(parts[1], parts[3])


def _workloads(root: Path, rev: str, files: list[str]) -> list[Resource]:
    """Workloads and HPAs among `files` at `rev` (found by betcycle's <kind>-<name>.yaml file names)."""
    wanted = [f for f in files if f.rsplit("/", 1)[1].startswith(_WORKLOAD_FILES)]
    return base_resources(root, rev, Scope(everything=True), wanted)


def _base_app_charts(root: Path, rev: str) -> dict[str, str]:
    files = [
        p for p in gitrepo.list_files(root, rev, "apps") if p.count("/") == 2 and p.endswith("/app.yaml")
    ]
    out = {}
    for path, text in gitrepo.read_files(root, rev, files).items():
        try:
            data = load_all(text, path)
        except UserError:
            continue
        if data and isinstance(data[0], dict) and isinstance(data[0].get("chart"), str):
            out[path.split("/")[1]] = data[0]["chart"]
    return out
