"""`betcycle validate`: schemas, cross-resource checks and policies over rendered environments or any files."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from betcycle import formats
from betcycle.errors import UserError, UserErrors
from betcycle.iac.records import ROOT_TYPE, TfResource, load_tree
from betcycle.model.findings import Finding, has_errors, sort_findings
from betcycle.model.repo import SETTINGS_FILE, Environment, Repo, close_matches, did_you_mean, load_repo
from betcycle.model.resources import LazyOrigins, Resource
from betcycle.model.schemas import supported_versions
from betcycle.model.yamlio import load_with_lines, no_gc, read_text
from betcycle.render import parallel
from betcycle.render.cache import Store, code_fingerprint, default_dir, hash_tree
from betcycle.render.shard import Shard, Split
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


@no_gc()  # a run builds hundreds of thousands of containers and no cycles worth collecting
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
    jobs: str | int = 1,
    shard: str | None = None,
    cache: bool = True,
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
    schema_parts: list[SchemaReport | UserError | UserErrors] = []
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
        if shard:
            raise UserError(
                "--shard splits a repository's environments and apps; it cannot be combined with PATHs"
            )
        tf_paths = [p for p in paths if _is_terraform(p)]
        paths = [p for p in paths if not _is_terraform(p)]
        if tf_paths and "policy" in stages:
            terraform = _terraform_files(root, tf_paths, cwd)
        # schema validation needs nothing but each resource: it runs where each file is parsed (in the pool)
        schema_check = (
            functools.partial(_schema_part, versions, crds, strict, {}) if "schema" in stages else None
        )
        # the policies are loaded while the workers parse, but an error in them is raised where it always
        # was: after any parse, cross-reference or schema error
        loaded: list[Any] = []

        def load_policies() -> None:
            try:
                loaded.append(_policies(root, "policy" in stages))
            except (UserError, UserErrors) as exc:
                loaded.append(exc)

        resources, schema_parts = (
            manifests.load_paths_checked(
                paths, cwd=cwd, jobs=parallel.parse_jobs(jobs), check=schema_check, meanwhile=load_policies
            )
            if paths
            else ([], [])
        )
        # files of one environment of this repository are held to its rules: whatever they use must be in
        # them or declared in environment.yaml; any other files may use what exists elsewhere (warnings)
        env_name = _environment_of(root, paths, cwd)
        external_objects = _env_external(root, env_name) if env_name and "crossref" in stages else None
        if not loaded:  # no files to parse
            load_policies()
        policy_error = loaded[0] if isinstance(loaded[0], UserError | UserErrors) else None
        path_policies = None if policy_error is not None else loaded[0]
        checks_job = _PathChecks(
            resources, external_objects, declared, env_name is not None, path_policies, today, terraform or []
        )
        # the cross-reference checks and the policies need all the resources, not each other
        items = [
            c for c in ("crossref", "policy") if c in stages and (c != "policy" or path_policies is not None)
        ]
        checked_by = dict(
            zip(
                items,
                # in this process: at 7,200 resources two forked workers (their copy-on-write faults
                # over every resource) cost what running both at once saved, and more CPU
                parallel.map_ordered(_path_check, items, state=checks_job, jobs=1),
                strict=True,
            )
        )
        # findings and errors in the order of one process: cross-references, schemas, policies
        crossref = checked_by.get("crossref", [])
        if isinstance(crossref, UserError | UserErrors):
            raise crossref
        findings += crossref
        report = SchemaReport()
        for part in schema_parts:  # in the files' order: as one validate_schemas over all of them
            if isinstance(part, UserError | UserErrors):
                raise part
            _add_report(report, part)
        findings += report.findings
        if policy_error is not None:
            raise policy_error
        policy = checked_by.get("policy", [])
        if isinstance(policy, UserError | UserErrors):
            raise policy
        findings += policy
        return _write(fmt, findings, out, len(resources), stages, report, path_policies, terraform, None)
    else:
        repo = load_repo(root)
        selected = repo.select_envs(envs or None)
        repo.check_apps(apps or None)
        split = Split(repo, Shard.parse(shard) if shard else None)
        policies = _policies(repo.root, "policy" in stages)
        store = Store(default_dir("validate"), enabled=cache)
        job = _EnvJob(repo, stages, declared, apps, strict, crds, policies, today, split, store)
        if store.enabled:
            job.fixed = _fixed_key(job, schema_dirs=[vendored_dir(root), schema_cache or default_cache_dir()])
        # environments are big, uneven units: up to two per CPU, so 3 environments on 2 CPUs take 1.5
        # environments' time instead of 2
        workers = parallel.parse_jobs(jobs)
        done = parallel.map_ordered(
            _validate_env,
            [e.name for e in selected],
            state=job,
            jobs=min(len(selected), 2 * workers) if workers > 1 else 1,
            min_items=2,
        )
        report = SchemaReport()
        checked = 0
        for got in done:
            if isinstance(got, UserError | UserErrors):
                raise got
            findings += got.findings
            checked += got.checked
            _add_report(report, dataclasses.replace(got.schema, findings=[]))
        if "policy" in stages and not apps and (repo.root / TERRAFORM_DIR).is_dir() and split.owns(None):
            terraform = load_tree(repo.root / TERRAFORM_DIR, repo.root)
            if envs:  # --env staging: the root configurations of that name (and the modules they call)
                terraform = [r for r in terraform if r.root in envs]
        if policies is not None and split.owns(None):  # Terraform, and waivers that expired: once
            findings += policies.evaluate([], today=today, terraform=terraform or ())
        store.prune()
        return _write(fmt, findings, out, checked, stages, report, policies, terraform, split.shard)


@dataclass
class _PathChecks:
    """What the whole-set checks of `validate PATH…` need (shared with the worker processes)."""

    resources: list[Resource]
    external: dict[str, Any] | None
    declared: list[Any]
    complete: bool
    policies: Any
    today: datetime.date | None
    terraform: list[TfResource]


def _path_check(job: _PathChecks, stage: str) -> list[Finding]:
    if stage == "crossref":
        return crosscheck.check_environment(
            job.resources, job.external, declared=job.declared, complete=job.complete
        )
    findings: list[Finding] = job.policies.evaluate(job.resources, today=job.today, terraform=job.terraform)
    return findings


def _schema_part(
    versions: dict[str | None, str],
    crds: CrdSchemaStore,
    strict: bool,
    compiled: dict[tuple[str, str, str], Any],
    resources: list[Resource],
) -> SchemaReport:
    """One file's resources (`compiled`: the custom resource schemas compiled so far in this process)."""
    return validate_schemas(resources, versions, crds, strict=strict, crd_validators=compiled)


def _add_report(report: SchemaReport, part: SchemaReport) -> None:
    """`part` added to `report`, as if one validate_schemas had checked both."""
    report.findings += part.findings
    report.checked += part.checked
    report.skipped += part.skipped
    for kind, n in part.skipped_kinds.items():
        report.skipped_kinds[kind] = report.skipped_kinds.get(kind, 0) + n


def _write(
    fmt: str,
    findings: list[Finding],
    out: TextIO,
    checked: int,
    stages: set[str],
    report: SchemaReport,
    policies: Any,
    terraform: list[TfResource] | None,
    shard: Shard | None,
) -> int:
    extra: dict[str, Any] = {}
    if terraform is not None:  # the JSON summary counts the Terraform resources read
        extra["terraform"] = sum(1 for r in terraform if r.type != ROOT_TYPE)
    if shard:  # `betcycle findings merge` checks that every shard's report is there, once
        extra["shard"] = str(shard)
    findings = sort_findings(findings)
    formats.write(
        fmt,
        findings,
        out,
        checked=checked,
        checks=",".join(c for c in CHECKS if c in stages),
        skipped=report.skipped,
        skipped_kinds=", ".join(f"{k} ({n})" for k, n in sorted(report.skipped_kinds.items())),
        rules=policies.rules_meta() if policies is not None else {},
        **extra,
    )
    return 1 if has_errors(findings) else 0


@dataclass
class _EnvJob:
    """What validating one environment needs (shared with the worker processes)."""

    repo: Repo
    stages: set[str]
    declared: list[Any]
    apps: list[str]
    strict: bool
    crds: CrdSchemaStore
    policies: Any
    today: datetime.date | None
    split: Split
    cache: Store
    #: digest of everything but the environment's own files (options, policies, schemas, code)
    fixed: str = ""


@dataclass
class _EnvResult:
    findings: list[Finding]
    checked: int
    schema: SchemaReport

    def to_json(self) -> dict[str, Any]:
        return {
            "findings": [dataclasses.asdict(f) for f in self.findings],
            "checked": self.checked,
            "schema": [self.schema.checked, self.schema.skipped, self.schema.skipped_kinds],
        }

    @classmethod
    def from_json(cls, data: Any) -> _EnvResult:
        checked, skipped, kinds = data["schema"]
        report = SchemaReport(checked=int(checked), skipped=int(skipped), skipped_kinds=dict(kinds))
        return cls([Finding(**f) for f in data["findings"]], int(data["checked"]), report)


def _fixed_key(job: _EnvJob, *, schema_dirs: list[Path]) -> str:
    """What every environment's validation depends on besides its own files."""
    root = job.repo.root
    parts = [
        code_fingerprint(),
        ",".join(sorted(job.stages)),
        f"strict={job.strict}",
        "apps=" + ",".join(sorted(job.apps)),
        f"shard={job.split.shard}",
        "declared=" + repr(sorted(map(repr, job.declared))),
        # waivers expire: a run on another day is another run
        f"today={job.today or datetime.date.today()}",
        job.repo.digests.get(SETTINGS_FILE, "-"),
        hash_tree(root, "policies") if (root / "policies").is_dir() else "-",
        *(hash_tree(d, ".") if d.is_dir() else "-" for d in schema_dirs),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _env_key(job: _EnvJob, env: Environment, texts: list[tuple[str, str | None, str]]) -> str:
    """The environment's files (its manifests, and the values files findings point into) on top."""
    repo = job.repo
    h = hashlib.sha256(f"{job.fixed}\0{env.name}\0".encode())
    values = {env.file}
    for app, ea in repo.env_apps[env.name].items():
        values |= {ea.file, repo.apps[app].file} if app in repo.apps else {ea.file}
        if app in repo.apps and repo.apps[app].chart in repo.charts:
            chart = repo.charts[repo.apps[app].chart]
            values |= {chart.values_file, chart.schema_file}
    for rel in sorted(values):
        h.update(f"{rel}\0{repo.digests.get(rel, '-')}\0".encode())
    for rel, _, text in texts:
        h.update(rel.encode() + b"\0" + hashlib.sha256(text.encode()).digest())
    return h.hexdigest()


def _validate_env(job: _EnvJob, env_name: str) -> _EnvResult:
    """One environment: its manifests read, cross-checked, schema-checked and held to the policies.

    With a shard, the whole environment is read (cross-resource checks and `requires` rules look at all
    of it) but only the shard's own pairs are checked and reported.
    """
    repo, env = job.repo, job.repo.envs[env_name]
    if not (repo.root / env.manifests_dir).is_dir():
        missing = Finding(
            severity="error",
            rule="render/missing",
            message="environment has no rendered manifests",
            hint="run `nox -s render` and commit environments/*/manifests",
            env=env.name,
            source=env.manifests_dir,
        )
        return _EnvResult([missing] if job.split.owns(env.name) else [], 0, SchemaReport())
    texts = manifests.env_manifest_texts(repo.root, env.manifests_dir)
    key = _env_key(job, env, texts) if job.cache.enabled else ""
    cached: _EnvResult | None = job.cache.get_json(key, _EnvResult.from_json) if key else None
    if cached is not None:
        return cached
    result = _check_env(job, env, manifests.load_env_manifests(repo.root, env.name, env.manifests_dir, texts))
    if key:
        job.cache.put_json(key, result.to_json())
    return result


def _check_env(job: _EnvJob, env: Environment, everything: list[Resource]) -> _EnvResult:
    repo, apps = job.repo, job.apps
    # values provenance, so findings can name the values line that set an offending value
    origins = {
        app: LazyOrigins(functools.partial(_origins, repo, env, app)) for app in repo.env_apps[env.name]
    }
    for res in everything:
        res.origins = origins.get(res.app or "", {})
    findings: list[Finding] = []
    if "crossref" in job.stages:
        findings += crosscheck.check_environment(everything, env.data.get("external"), declared=job.declared)
    mine = [r for r in everything if (not apps or r.app in apps) and job.split.owns(env.name, r.app)]
    findings = [f for f in findings if (not apps or f.app in apps) and job.split.owns(f.env, f.app)]
    versions: dict[str | None, str] = {None: env.kubernetes_version, env.name: env.kubernetes_version}
    report = (
        validate_schemas(mine, versions, job.crds, strict=job.strict)
        if "schema" in job.stages
        else SchemaReport()
    )
    findings += report.findings
    if job.policies is not None:
        findings += job.policies.evaluate(mine, today=job.today, context=everything, expired=False)
    return _EnvResult(findings, len(mine), report)
