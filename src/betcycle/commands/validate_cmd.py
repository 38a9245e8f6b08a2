"""`betcycle validate`: schemas, cross-resource checks and policies over rendered environments or any files."""

from __future__ import annotations

import datetime
import functools
from pathlib import Path
from typing import Any, TextIO

from betcycle import crosscheck, formats, manifests
from betcycle.crd import CrdSchemaStore, default_cache_dir
from betcycle.errors import UserError, UserErrors
from betcycle.findings import Finding, has_errors, sort_findings
from betcycle.repo import Environment, Repo, load_repo
from betcycle.resources import LazyOrigins, Resource
from betcycle.schemas import supported_versions
from betcycle.validate import validate_schemas


def _origins(repo: Repo, env: Environment, app: str) -> dict[str, tuple[str, int, Any]]:
    from betcycle import render  # imports Jinja2: only needed when a finding wants its values line

    try:
        vals, origins, _ = render.merged_values(repo, env, app)
    except (UserError, UserErrors):
        return {}
    return render.origin_map_of(vals, origins)


def _policies(root: Path, enabled: bool) -> Any:
    if not enabled or not (root / "policies").is_dir():
        return None
    from betcycle.policy import load_policies

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
) -> int:
    crds = CrdSchemaStore(schema_cache or default_cache_dir())
    resources: list[Resource] = []
    findings: list[Finding] = []
    versions: dict[str | None, str] = {None: kubernetes_version or supported_versions()[-1]}
    if kubernetes_version and kubernetes_version not in supported_versions():
        raise UserError(
            f"unsupported --kubernetes-version {kubernetes_version}",
            hint=f"use one of {', '.join(supported_versions())}",
        )
    if paths:
        if envs or apps:
            raise UserError("--env/--app select rendered environments; they cannot be combined with PATHs")
        resources = manifests.load_paths(paths, cwd=cwd)
        findings += crosscheck.check_environment(resources)
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
            external = {k: env.external(k) for k in ("secrets", "configMaps", "serviceAccounts")}
            findings += crosscheck.check_environment(env_resources, external)
            if apps:
                env_resources = [r for r in env_resources if r.app in apps]
                findings = [f for f in findings if f.env != env.name or f.app in apps]
            resources += env_resources
        policy_root = repo.root
    report = validate_schemas(resources, versions, crds, strict=strict)
    findings += report.findings
    policies = _policies(policy_root, use_policies)
    if policies is not None:
        findings += policies.evaluate(resources, today=today)
    findings = sort_findings(findings)
    formats.write(
        fmt,
        findings,
        out,
        checked=len(resources),
        skipped=report.skipped,
        skipped_kinds=", ".join(f"{k} ({n})" for k, n in sorted(report.skipped_kinds.items())),
        rules=policies.rules_meta() if policies is not None else {},
    )
    return 1 if has_errors(findings) else 0
