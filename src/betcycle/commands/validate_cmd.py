"""`betcycle validate`: schemas, cross-resource checks and policies over rendered environments or any files."""

from __future__ import annotations

import datetime
import functools
from pathlib import Path
from typing import Any, TextIO

from betcycle import formats
from betcycle.errors import UserError, UserErrors
from betcycle.iac.records import ROOT_TYPE, TfResource, load_tree
from betcycle.model.findings import Finding, has_errors, sort_findings
from betcycle.model.repo import Environment, Repo, close_matches, did_you_mean, load_repo
from betcycle.model.resources import LazyOrigins, Resource
from betcycle.model.schemas import supported_versions
from betcycle.model.yamlio import load_with_lines, read_text
from betcycle.validate import crosscheck, manifests
from betcycle.validate.crd import CrdSchemaStore, SchemaDir, default_cache_dir
from betcycle.validate.crd_vendor import REFRESH_HINT, vendored_dir
from betcycle.validate.engine import SchemaReport, validate_schemas

#: the stages `--checks` chooses from, in the order they run
CHECKS = ("schema", "crossref", "policy")


def parse_checks(value: str | None, *, policies: bool = True) -> set[str]:
    """`--checks schema,crossref` -> {"schema", "crossref"}; None -> all of them (`--no-policies` drops one)."""
    chosen = set(CHECKS) if value is None else {c.strip() for c in value.split(",") if c.strip()}
    unknown = sorted(chosen - set(CHECKS))
    if unknown:
        close = close_matches(unknown[0], CHECKS)
        raise UserError(
            f"unknown check {unknown[0]!r} in --checks",
            hint=(did_you_mean(close) + " " if close else "") + f"The checks are: {', '.join(CHECKS)}",
        )
    if not chosen:
        raise UserError("--checks names no check", hint=f"use a comma-separated list of {', '.join(CHECKS)}")
    return chosen if policies else chosen - {"policy"}


def _environment_of(root: Path, paths: list[str], cwd: Path) -> str | None:
    """The environment whose manifests/ folder holds every PATH, or None (other files, stdin, no repository)."""
    envs: set[str] = set()
    base = (root / "environments").resolve()
    for raw in paths:
        if raw == "-":
            return None
        p = Path(raw) if Path(raw).is_absolute() else cwd / raw
        try:
            parts = p.resolve().relative_to(base).parts
        except ValueError:
            return None
        if len(parts) < 2 or parts[1] != "manifests" or not (base / parts[0] / "environment.yaml").is_file():
            return None
        envs.add(parts[0])
    return envs.pop() if len(envs) == 1 else None


def _env_external(root: Path, env: str) -> dict[str, Any]:
    """environment.yaml's `external`, read directly (validating files must not need the whole repository)."""
    rel = f"environments/{env}/environment.yaml"
    data, _ = load_with_lines(read_text(root / rel, rel), rel)
    external = data.get("external") if isinstance(data, dict) else None
    return external if isinstance(external, dict) else {}


def _origins(repo: Repo, env: Environment, app: str) -> dict[str, tuple[str, int, Any]]:
    from betcycle.render import (
        engine as render,  # imports Jinja2: only needed when a finding wants its values line
    )

    try:
        vals, origins, _ = render.merged_values(repo, env, app)
    except (UserError, UserErrors):
        return {}
    return render.origin_map_of(vals, origins)


#: the folder `validate` reads Terraform configurations from in a repository run
TERRAFORM_DIR = "terraform"


def _is_terraform(raw: str) -> bool:
    return raw != "-" and raw.endswith(".tf")


def _terraform_files(root: Path, paths: list[str], cwd: Path) -> list[TfResource]:
    """The records of the `.tf` PATHs: each read with the configuration around it (its folder's other files,
    and for a file under the repository's terraform/ the whole tree, so modules get their callers'
    variables and default_tags); only findings in the named files, plus the root_config record of a named
    file's root configuration, are kept."""
    wanted: set[Path] = set()
    trees: dict[Path, Path] = {}  # tree folder -> display base
    tf_root = (root / TERRAFORM_DIR).resolve()
    for raw in paths:
        p = (Path(raw) if Path(raw).is_absolute() else cwd / raw).resolve()
        if not p.is_file():
            raise UserError("no such file", path=raw)
        wanted.add(p)
        if p.is_relative_to(tf_root):
            trees[tf_root] = root
        else:
            trees.setdefault(p.parent, cwd)
    out: list[TfResource] = []
    for tree, base in sorted(trees.items()):
        for rec in load_tree(tree, base):
            where = (base / rec.file).resolve()
            if where in wanted or (rec.type == ROOT_TYPE and where.parent in {w.parent for w in wanted}):
                out.append(rec)
    return out


def _policies(root: Path, enabled: bool) -> Any:
    if not enabled or not (root / "policies").is_dir():
        return None
    from betcycle.policy.engine import load_policies

    return load_policies(root)


def run(
    root: Path,
    paths: list[str],
    *,
    envs: list[str],
    apps: list[str],
    fmt: str,
    strict: bool,
    kubernetes_version: str | None,
    schema_cache: Path | None,
    use_policies: bool,
    out: TextIO,
    cwd: Path,
    today: datetime.date | None = None,
    checks: str | None = None,
    external: list[str] | None = None,
    external_files: list[Path] | None = None,
) -> int:
    """Validate; `checks` chooses stages (`schema,crossref,policy`), `external`/`external_files` declare
    objects that exist outside the files (`KIND/[NAMESPACE/]NAME`)."""
    stages = parse_checks(checks, policies=use_policies)
    declared = [crosscheck.parse_external(e) for e in external or []]
    for f in external_files or []:
        declared += crosscheck.load_external_file(f if f.is_absolute() else cwd / f, str(f))
    # The repository's vendored schemas first, so what CI checks against is what a local run checks against;
    # the user's cache can only add kinds the repository doesn't vendor.
    crds = CrdSchemaStore(
        SchemaDir(vendored_dir(root), f"generated by betcycle: {REFRESH_HINT}"),
        SchemaDir(schema_cache or default_cache_dir()),
    )
    resources: list[Resource] = []
    findings: list[Finding] = []
    # Terraform is read only when policies run: its findings are policy findings (`--checks policy`)
    terraform: list[TfResource] | None = None
    versions: dict[str | None, str] = {None: kubernetes_version or supported_versions()[-1]}
    if kubernetes_version and kubernetes_version not in supported_versions():
        raise UserError(
            f"unsupported --kubernetes-version {kubernetes_version}",
            hint=f"use one of {', '.join(supported_versions())}",
        )
    if paths:
        if envs or apps:
            raise UserError("--env/--app select rendered environments; they cannot be combined with PATHs")
        tf_paths = [p for p in paths if _is_terraform(p)]
        paths = [p for p in paths if not _is_terraform(p)]
        if tf_paths and "policy" in stages:
            terraform = _terraform_files(root, tf_paths, cwd)
        resources = manifests.load_paths(paths, cwd=cwd) if paths else []
        # files of one environment of this repository are held to its rules: whatever they use must be in
        # them or declared in environment.yaml; any other files may use what exists elsewhere (warnings)
        env_name = _environment_of(root, paths, cwd)
        if "crossref" in stages:
            findings += crosscheck.check_environment(
                resources,
                _env_external(root, env_name) if env_name else None,
                declared=declared,
                complete=env_name is not None,
            )
        policy_root = root
    else:
        repo = load_repo(root)
        selected = repo.select_envs(envs or None)
        repo.check_apps(apps or None)
        for env in selected:
            versions[env.name] = env.kubernetes_version
            if not (repo.root / env.manifests_dir).is_dir():
                findings.append(
                    Finding(
                        severity="error",
                        rule="render/missing",
                        message="environment has no rendered manifests",
                        hint="run `nox -s render` and commit environments/*/manifests",
                        env=env.name,
                        source=env.manifests_dir,
                    )
                )
                continue
            env_resources = manifests.load_env_manifests(repo.root, env.name, env.manifests_dir)
            # values provenance, so findings can name the values line that set an offending value
            origins = {
                app: LazyOrigins(functools.partial(_origins, repo, env, app))
                for app in repo.env_apps[env.name]
            }
            for res in env_resources:
                res.origins = origins.get(res.app or "", {})
            if "crossref" in stages:
                findings += crosscheck.check_environment(
                    env_resources, env.data.get("external"), declared=declared
                )
            if apps:
                env_resources = [r for r in env_resources if r.app in apps]
                findings = [f for f in findings if f.env != env.name or f.app in apps]
            resources += env_resources
        policy_root = repo.root
        if "policy" in stages and not apps and (repo.root / TERRAFORM_DIR).is_dir():
            terraform = load_tree(repo.root / TERRAFORM_DIR, repo.root)
            if envs:  # --env staging: the root configurations of that name (and the modules they call)
                terraform = [r for r in terraform if r.root in envs]
    report = (
        validate_schemas(resources, versions, crds, strict=strict) if "schema" in stages else SchemaReport()
    )
    findings += report.findings
    policies = _policies(policy_root, "policy" in stages)
    if policies is not None:
        findings += policies.evaluate(resources, today=today, terraform=terraform or ())
    extra: dict[str, Any] = {}
    if terraform is not None:  # the JSON summary counts the Terraform resources read
        extra["terraform"] = sum(1 for r in terraform if r.type != ROOT_TYPE)
    findings = sort_findings(findings)
    formats.write(
        fmt,
        findings,
        out,
        checked=len(resources),
        checks=",".join(c for c in CHECKS if c in stages),
        skipped=report.skipped,
        skipped_kinds=", ".join(f"{k} ({n})" for k, n in sorted(report.skipped_kinds.items())),
        rules=policies.rules_meta() if policies is not None else {},
        **extra,
    )
    return 1 if has_errors(findings) else 0
