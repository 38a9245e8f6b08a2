"""Policies as code: evaluate the YAML policies in `policies/` against rendered resources.

Loading and schema-checking the files lives in `load.py`; this module indexes the policies by kind,
evaluates them (schema per subject, cross-resource `requires` rules), applies waivers and backs the
`betcycle policy list` / `betcycle policy test` verbs. The file format is documented in docs/policies.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, TextIO

from betcycle.errors import UserError
from betcycle.iac.records import TfResource, records_from_text
from betcycle.model.findings import Finding, for_resource, json_path, sort_findings
from betcycle.model.resources import Resource
from betcycle.model.yamlio import line_of
from betcycle.policy.load import Example, Policy, Requirement, Waiver, describe, load_files, to_json

__all__ = [
    "POD_SPEC_PATHS",
    "WAIVED_PREFIX",
    "WAIVER_EXPIRED_RULE",
    "PolicySet",
    "count_waived",
    "find_origin",
    "load_policies",
    "pod_spec_path",
    "run_list",
    "run_test",
    "selector_matches",
]

WAIVER_EXPIRED_RULE = "policy/waiver-expired"
#: waived findings are kept as severity "info" with this message prefix
WAIVED_PREFIX = "waived: "

#: where each workload kind keeps its pod spec
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_CONTAINER_FIELDS = ("containers", "initContainers")


def pod_spec_path(kind: str) -> tuple[str, ...] | None:
    return POD_SPEC_PATHS.get(kind)


def _get(doc: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def selector_matches(selector: Any, labels: Mapping[str, Any]) -> bool:
    """Kubernetes label-selector semantics; an empty selector matches everything, a missing one nothing."""
    if not isinstance(selector, dict):
        return False
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, dict):
        return False
    for key, value in match_labels.items():
        if key not in labels or str(labels[key]) != str(value):
            return False
    for expr in selector.get("matchExpressions") or []:
        if not isinstance(expr, dict):
            return False
        key, op = str(expr.get("key")), expr.get("operator")
        values = [str(v) for v in expr.get("values") or []]
        present = key in labels
        if op == "In":
            ok = present and str(labels[key]) in values
        elif op == "NotIn":
            ok = not present or str(labels[key]) not in values
        elif op == "Exists":
            ok = present
        elif op == "DoesNotExist":
            ok = not present
        else:
            ok = False
        if not ok:
            return False
    return True


def _layer_rank(file: str) -> int:
    if file.startswith("environments/"):
        return 3 if "/apps/" in file else 2
    return 1 if file.startswith("apps/") else 0


def find_origin(origins: Mapping[str, tuple[str, int, Any]], value: Any) -> tuple[str, int] | None:
    """The values line that set `value`: equal, or (strings of 3+ characters) contained in it.

    An exact match wins; otherwise the most specific values layer (environment app file > environment
    defaults > app > chart) and then the longest string: `repo:latest` points at the environment's
    `image.tag: latest`, not at the repository set in app.yaml. Among equals the last inserted wins.
    """
    if value is None or isinstance(value, dict | list) or not origins:
        return None
    best: tuple[str, int] | None = None
    best_score = -1
    for file, line, candidate in origins.values():
        if isinstance(value, str):
            if not isinstance(candidate, str):
                continue
            if candidate != value and not (len(candidate) >= 3 and candidate in value):
                continue
            score = 10**6 if candidate == value else _layer_rank(file) * 10**4 + len(candidate)
        else:
            if isinstance(candidate, bool) != isinstance(value, bool) or isinstance(
                candidate, str | dict | list
            ):
                continue
            if candidate != value:
                continue
            score = 0
        if score >= best_score:
            best, best_score = (file, line), score
    return best


def _valid(validator: Any, instance: Any) -> tuple[bool, Any]:
    """(is valid, the instance as jsonschema_rs accepted it): odd YAML types are converted on demand."""
    try:
        return validator.is_valid(instance), instance
    except ValueError:
        instance = to_json(instance)
        return validator.is_valid(instance), instance


class _Index:
    """Resources by (env, namespace, kind), built on first use by a `requires` rule."""

    def __init__(self, resources: Sequence[Resource]) -> None:
        self._resources = resources
        self._by: dict[tuple[str | None, str, str], list[Resource]] | None = None

    def get(self, env: str | None, namespace: str, kind: str) -> list[Resource]:
        if self._by is None:
            self._by = {}
            for res in self._resources:
                self._by.setdefault((res.env, res.namespace, res.kind), []).append(res)
        return self._by.get((env, namespace, kind), [])


class PolicySet:
    """Loaded policies indexed by kind, plus the waivers that apply to their findings."""

    def __init__(
        self,
        policies: Iterable[Policy],
        waivers: Iterable[Waiver] = (),
        waivers_source: str = "policies/waivers.yaml",
    ) -> None:
        self.policies = sorted(policies, key=lambda p: p.id)
        self.waivers = list(waivers)
        self.waivers_source = waivers_source
        self._by_kind: dict[str, list[Policy]] = {}
        self._any_kind = [p for p in self.policies if "*" in p.kinds]
        self._by_type: dict[str, list[Policy]] = {}
        for p in self.policies:
            for kind in p.kinds - {"*"}:
                self._by_kind.setdefault(kind, []).append(p)
            for tf_type in p.terraform or ():
                self._by_type.setdefault(tf_type, []).append(p)
        self._cache: dict[str, tuple[Policy, ...]] = {}

    def __len__(self) -> int:
        return len(self.policies)

    def get(self, policy_id: str) -> Policy | None:
        return next((p for p in self.policies if p.id == policy_id), None)

    def for_kind(self, kind: str) -> tuple[Policy, ...]:
        hit = self._cache.get(kind)
        if hit is None:
            merged = {p.id: p for p in (*self._by_kind.get(kind, ()), *self._any_kind)}
            hit = self._cache[kind] = tuple(sorted(merged.values(), key=lambda p: p.id))
        return hit

    # --- evaluation ------------------------------------------------------------------------------------

    def check(
        self, resources: Sequence[Resource], context: Sequence[Resource] | None = None
    ) -> Iterator[tuple[Policy, Resource, Finding]]:
        """Raw findings (no waivers applied), each with the policy and resource that produced it;
        `requires` rules look in `context` (default: `resources`), so a part can be checked against the
        whole environment."""
        index = _Index(resources if context is None else context)
        for res in resources:
            for policy in self.for_kind(res.kind):
                if _applies(policy, res):
                    for finding in _check(policy, res, index):
                        yield policy, res, finding

    def check_terraform(self, records: Sequence[TfResource]) -> Iterator[tuple[Policy, TfResource, Finding]]:
        """Raw findings of the Terraform policies (no waivers applied), with the policy and record."""
        for rec in records:
            for policy in self._by_type.get(rec.type, ()):
                if policy.environments is not None and rec.root not in policy.environments:
                    continue
                if policy.when is not None and not _valid(policy.when, rec.doc)[0]:
                    continue
                yield from ((policy, rec, f) for f in _check_terraform(policy, rec))

    def evaluate(
        self,
        resources: Sequence[Resource],
        *,
        today: dt.date | None = None,
        terraform: Sequence[TfResource] = (),
        context: Sequence[Resource] | None = None,
        expired: bool = True,
    ) -> list[Finding]:
        """Findings for `resources` and Terraform `terraform` records (sorted), waived ones downgraded to
        info, plus expired waivers (`expired=False`: a caller checking in parts reports them once)."""
        today = today or dt.date.today()
        active = [w for w in self.waivers if w.expires >= today]
        out: list[Finding] = []
        for policy, res, finding in self.check(resources, context):
            waiver = next((w for w in active if _waives(w, policy, res)), None)
            out.append(finding if waiver is None else self._waived(finding, waiver))
        for policy, rec, finding in self.check_terraform(terraform):
            waiver = next((w for w in active if _waives_terraform(w, policy, rec)), None)
            out.append(finding if waiver is None else self._waived(finding, waiver))
        for w in self.waivers if expired else ():
            if w.expires < today:
                on = w.expires.isoformat()
                out.append(
                    Finding(
                        severity="error",
                        rule=WAIVER_EXPIRED_RULE,
                        message=f"waiver for {w.policy} ({w.scope_text()}) expired on {on}",
                        hint="fix the findings and delete the waiver, or renew it with a new expires date "
                        "and an updated reason",
                        source=w.source,
                        line=w.line,
                    )
                )
        return sort_findings(out)

    def _waived(self, finding: Finding, w: Waiver) -> Finding:
        note = f" [waiver {w.source}:{w.line}, owner {w.owner}, expires {w.expires.isoformat()}: {w.reason}]"
        return dataclasses.replace(finding, severity="info", message=WAIVED_PREFIX + finding.message + note)

    def rules_meta(self) -> dict[str, dict[str, str]]:
        """SARIF rule metadata keyed by rule id (`policy/<id>`, as in `Finding.rule`)."""
        meta = {
            p.rule: {"title": p.title, "rationale": p.rationale, "severity": p.severity}
            for p in self.policies
        }
        meta[WAIVER_EXPIRED_RULE] = {
            "title": "Policy waivers are renewed or removed before they expire",
            "rationale": "A waiver is a dated exception; once expired it no longer hides findings and must "
            "be resolved.",
            "severity": "error",
        }
        return meta


def count_waived(findings: Iterable[Finding]) -> int:
    return sum(1 for f in findings if f.severity == "info" and f.message.startswith(WAIVED_PREFIX))


def _applies(policy: Policy, res: Resource) -> bool:
    if policy.environments is not None and res.env not in policy.environments:
        return False
    if policy.selector is not None and not selector_matches(policy.selector, res.labels):
        return False
    return policy.when is None or _valid(policy.when, res.doc)[0]


def _subjects(subject: str, res: Resource) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    if subject == "resource":
        yield (), res.doc
        return
    path = POD_SPEC_PATHS.get(res.kind)
    spec = _get(res.doc, path) if path else None
    if not isinstance(spec, dict):
        return
    if subject == "podSpec":
        yield path or (), spec
        return
    for field in _CONTAINER_FIELDS:
        items = spec.get(field)
        if isinstance(items, list):
            for i, item in enumerate(items):
                yield (*(path or ()), field, i), item


def _check(policy: Policy, res: Resource, index: _Index) -> Iterator[Finding]:
    if policy.validator is not None:
        for base, instance in _subjects(policy.subject, res):
            ok, instance = _valid(policy.validator, instance)
            if ok:
                continue
            for err in policy.validator.iter_errors(instance):
                ipath = tuple(err.instance_path)
                origin = None
                if err.kind.name == "required":
                    ipath = (*ipath, err.kind.property)
                else:
                    origin = find_origin(res.origins, err.instance)
                yield for_resource(
                    res,
                    severity=policy.severity,
                    rule=policy.rule,
                    message=f"{policy.title}: {describe(err, policy.schema)}",
                    hint=policy.hint,
                    path=json_path((*base, *ipath)),
                    origin=origin,
                )
    for req in policy.requires:
        finding = _check_requirement(policy, req, res, index)
        if finding is not None:
            yield finding


def _check_requirement(policy: Policy, req: Requirement, res: Resource, index: _Index) -> Finding | None:
    # selects == "podTemplate" is the only mode so far (policy.schema.json enforces it)
    spec_path = POD_SPEC_PATHS.get(res.kind)
    if spec_path is None:
        return None
    labels_path = (*spec_path[:-1], "metadata", "labels")
    labels = _get(res.doc, labels_path)
    labels = labels if isinstance(labels, dict) else {}
    for other in index.get(res.env, res.namespace, req.kind):
        if selector_matches(_get(other.doc, ("spec", "selector")), labels):
            return None
    where = f"namespace {res.namespace}" if res.namespace else "the same namespace"
    shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "no labels"
    return for_resource(
        res,
        severity=policy.severity,
        rule=policy.rule,
        message=f"{policy.title}: no {req.kind} in {where} selects the pod template labels ({shown})",
        hint=policy.hint,
        path=json_path(labels_path),
    )


def _check_terraform(policy: Policy, rec: TfResource) -> Iterator[Finding]:
    """A Terraform record against the policy's schema: each error at the line of the attribute or nested
    block it is about (the resource block's first line when the attribute is missing or comes from
    default_tags); paths are shown inside `attributes` (ingress[0].cidr_blocks)."""
    if policy.validator is None:
        return
    ok, instance = _valid(policy.validator, rec.doc)
    if ok:
        return
    for err in policy.validator.iter_errors(instance):
        ipath = tuple(err.instance_path)
        at = ipath
        if err.kind.name == "required":
            ipath = (*ipath, err.kind.property)
        shown = ipath[1:] if ipath[:1] == ("attributes",) else ipath
        yield Finding(
            severity=policy.severity,
            rule=policy.rule,
            message=f"{policy.title}: {describe(err, policy.schema)}",
            hint=policy.hint,
            env=rec.root,
            source=rec.file,
            line=line_of(rec.lines, at) or rec.line,
            resource=rec.address,
            path=json_path(shown) or None,
        )


def _waives_terraform(w: Waiver, policy: Policy, rec: TfResource) -> bool:
    """env matches the root configuration, resource TYPE/NAME (or TYPE/ADDRESS); app never matches."""
    if w.policy != policy.id or w.app is not None:
        return False
    if w.env is not None and not fnmatchcase(rec.root or "", w.env):
        return False
    if w.resource is not None:
        target = rec.ident if w.resource.count("/") == 1 else f"{rec.type}/{rec.address}/{rec.name}"
        if not fnmatchcase(target, w.resource):
            return False
    return True


def _owning_app(res: Resource) -> str:
    """The app a resource belongs to: its folder's, or for an app's own Argo CD Application and AppProject
    (rendered into the environment's argocd/ folder) the app they deploy, so a waiver scoped to the app
    covers the Application that puts it in place too."""
    if res.app:
        return res.app
    labels = res.metadata.get("labels")
    if (
        res.kind in ("Application", "AppProject")
        and isinstance(labels, dict)
        and labels.get("app.kubernetes.io/managed-by") == "betcycle"
    ):
        part_of = labels.get("app.kubernetes.io/part-of")
        return part_of if isinstance(part_of, str) else ""
    return ""


def _waives(w: Waiver, policy: Policy, res: Resource) -> bool:
    if w.policy != policy.id:
        return False
    if w.env is not None and not fnmatchcase(res.env or "", w.env):
        return False
    if w.app is not None and not fnmatchcase(_owning_app(res), w.app):
        return False
    if w.resource is not None:
        target = (
            f"{res.kind}/{res.name}"
            if w.resource.count("/") == 1
            else f"{res.kind}/{res.namespace}/{res.name}"
        )
        if not fnmatchcase(target, w.resource):
            return False
    return True


# --- entry points --------------------------------------------------------------------------------------


def load_policies(root: Path, policies_dir: str = "policies") -> PolicySet:
    """Every policy in `root/policies_dir` plus its waivers; raises UserErrors listing every bad file."""
    policies, waivers, waivers_source = load_files(root, policies_dir)
    return PolicySet(policies, waivers, waivers_source)


def _catalogue(ps: PolicySet) -> list[dict[str, Any]]:
    return [
        {
            "id": p.id,
            "rule": p.rule,
            "name": p.name,
            "title": p.title,
            "severity": p.severity,
            "subject": p.subject,
            "target": p.target,
            "kinds": sorted(p.kinds),
            "terraform": sorted(p.terraform) if p.terraform is not None else None,
            "environments": sorted(p.environments) if p.environments is not None else None,
            "requires": [dataclasses.asdict(r) for r in p.requires],
            "rationale": p.rationale,
            "hint": p.hint,
            "source": p.source,
        }
        for p in ps.policies
    ]


def _kinds_cell(kinds: list[str], width: int = 40) -> str:
    text = ",".join(kinds)
    if len(text) <= width:
        return text
    shown: list[str] = []
    for kind in kinds:
        rest = len(kinds) - len(shown) - 1
        if len(",".join([*shown, kind])) + len(f",+{rest} more") > width:
            break
        shown.append(kind)
    return ",".join(shown) + f",+{len(kinds) - len(shown)} more"


def run_list(root: Path, out: TextIO, fmt: str = "text") -> int:
    """`betcycle policy list`: the catalogue as a table or JSON. Exit code 0."""
    ps = load_policies(root)
    rows = _catalogue(ps)
    if fmt == "json":
        json.dump(rows, out, indent=2)
        out.write("\n")
        return 0
    if fmt != "text":
        raise UserError(f"unknown format {fmt!r}", hint="use --format text or --format json")
    table = [("ID", "SEVERITY", "SUBJECT", "KINDS", "ENVS", "TITLE")]
    for r in rows:
        envs = ",".join(r["environments"]) if r["environments"] is not None else "all"
        subject, kinds = (
            ("terraform", _kinds_cell(r["terraform"]))
            if r["terraform"]
            else (r["subject"], _kinds_cell(r["kinds"]))
        )
        table.append((r["id"], r["severity"], subject, kinds, envs, r["title"]))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False)]
        out.write("  ".join([*cells, row[-1]]) + "\n")
    out.write(f"\n{len(rows)} policies\n")
    return 0


def _example_findings(policy: Policy, ex: Example) -> list[Finding]:
    if ex.hcl is not None:
        try:
            records = records_from_text(ex.hcl, policy.source, ex.env or "example")
        except UserError as exc:  # at the policy file's line: the example's text starts after `hcl:`
            raise UserError(
                f"example: {exc.message}",
                path=policy.source,
                line=ex.hcl_line + exc.line if ex.hcl_line and exc.line else ex.line,
                hint=exc.hint,
            ) from None
        return [f for _, _, f in PolicySet([policy]).check_terraform(records)]
    main = Resource(doc=ex.resource, env=ex.env, app=ex.app, source=policy.source, line=ex.line)
    others = [Resource(doc=d, env=ex.env, app=ex.app, source=policy.source, line=ex.line) for d in ex.context]
    single = PolicySet([policy])
    return [f for _, res, f in single.check([main, *others]) if res is main]


def _example_problems(policy: Policy) -> list[str]:
    problems = []
    if not policy.pass_examples:
        problems.append("no pass examples")
    if not policy.fail_examples:
        problems.append("no fail examples")
    for i, ex in enumerate(policy.pass_examples, 1):
        found = _example_findings(policy, ex)
        if found:
            f = found[0]
            problems.append(
                f"pass example {i} ({policy.source}:{ex.line}) produced {len(found)} finding(s), "
                f"first: {f.path or '(resource)'}: {f.message}"
            )
    for i, ex in enumerate(policy.fail_examples, 1):
        if not _example_findings(policy, ex):
            env = f" in env {ex.env}" if ex.env else " (no env given)"
            problems.append(f"fail example {i} ({policy.source}:{ex.line}) produced no finding{env}")
    return problems


def run_test(root: Path, out: TextIO) -> int:
    """`betcycle policy test`: every pass example yields no finding, every fail example at least one."""
    ps = load_policies(root)
    failed = 0
    for p in ps.policies:
        problems = _example_problems(p)
        if problems:
            failed += 1
            out.write(f"FAIL {p.id} {p.name}: {'; '.join(problems)}\n")
        else:
            out.write(f"ok {p.id} {p.name} ({len(p.pass_examples)} pass, {len(p.fail_examples)} fail)\n")
    out.write(f"{len(ps)} policies, {failed} failed\n")
    return 1 if failed else 0
