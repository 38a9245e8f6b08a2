"""Checks across the resources of one environment: what a schema can't see because it spans objects.

Two modes. An environment of this repository is *complete*: everything it needs is rendered in it or
declared under `external` in environment.yaml, so a reference to anything else is an error. Any other set
of files (`betcycle validate deploy.yaml`) is not: a reference to an object outside the files may well exist
in the cluster, so it is a warning unless declared (`--external`). Duplicates and selectors that match
nothing although the files hold the namespace's pods are errors in both modes.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from betcycle.errors import UserError
from betcycle.model.findings import Finding, for_resource
from betcycle.model.repo import close_matches, did_you_mean
from betcycle.model.resources import Resource
from betcycle.model.yamlio import load_with_lines, read_text

#: every kind that owns a pod template (Pod: the pod itself), for selector and reference checks
WORKLOAD_KINDS = {
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
    "Pod",
}
#: environment.yaml's `external` keys and the kinds they declare
ENV_EXTERNAL_KINDS = {
    "secrets": "Secret",
    "configMaps": "ConfigMap",
    "serviceAccounts": "ServiceAccount",
    "persistentVolumeClaims": "PersistentVolumeClaim",
}
#: kinds the checks look up by name (HPA targets may also be custom kinds such as Argo Rollouts)
REFERENCED_KINDS = (
    *ENV_EXTERNAL_KINDS.values(),
    "Service",
    "AppProject",
    "Deployment",
    "StatefulSet",
    "ReplicaSet",
    "ReplicationController",
)
_KIND_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*")


@dataclass(frozen=True)
class ExternalRef:
    """An object declared to exist outside the validated files (`--external KIND/[NAMESPACE/]NAME`)."""

    kind: str
    name: str
    #: None: the name in any namespace
    namespace: str | None = None


def _canonical_kind(kind: str, where: str, line: int | None) -> str:
    """`serviceaccount` -> ServiceAccount; a near miss of a referenced kind (`ServiceAcount`) is an error."""
    for known in REFERENCED_KINDS:
        if kind.lower() == known.lower():
            return known
    close = difflib.get_close_matches(kind, REFERENCED_KINDS, n=5, cutoff=0.8)
    if close or not _KIND_RE.fullmatch(kind):
        raise UserError(
            f"unknown kind {kind!r} in an external declaration",
            path=where,
            line=line,
            hint=did_you_mean(close) if close else "write KIND/NAME or KIND/NAMESPACE/NAME",
        )
    return kind


def parse_external(spec: str, *, where: str = "--external", line: int | None = None) -> ExternalRef:
    """`KIND/NAME` or `KIND/NAMESPACE/NAME`."""
    parts = spec.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UserError(
            f"external object {spec!r} is not KIND/NAME or KIND/NAMESPACE/NAME",
            path=where,
            line=line,
            hint="e.g. --external ServiceAccount/web or --external Secret/shop/db-password",
        )
    kind = _canonical_kind(parts[0], where, line)
    if len(parts) == 2:
        return ExternalRef(kind, parts[1])
    return ExternalRef(kind, parts[2], parts[1])


def load_external_file(path: Path, display: str) -> list[ExternalRef]:
    """A YAML list of `KIND/[NAMESPACE/]NAME` strings or `{kind, name, namespace}` mappings.

    `kubectl get sa,cm,secret -A -o yaml` output (a List of objects with metadata) works as well.
    """
    data, lines = load_with_lines(read_text(path, display), display)
    key: tuple[str | int, ...] = ()
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data, key = data["items"], ("items",)
    if data is None:
        return []
    if not isinstance(data, list):
        raise UserError(
            "expected a list of external objects",
            path=display,
            line=1,
            hint="one entry per line: `- ServiceAccount/web` or `- {kind: Secret, namespace: shop, name: db}`",
        )
    out = []
    for i, item in enumerate(data):
        line = lines.get((*key, i))
        if isinstance(item, str):
            out.append(parse_external(item, where=display, line=line))
            continue
        meta = item.get("metadata") if isinstance(item, dict) else None
        src = meta if isinstance(meta, dict) else item
        kind = item.get("kind") if isinstance(item, dict) else None
        name = src.get("name") if isinstance(src, dict) else None
        ns = src.get("namespace") if isinstance(src, dict) else None
        if not isinstance(kind, str) or not isinstance(name, str) or not (ns is None or isinstance(ns, str)):
            raise UserError(
                "an external object needs a kind and a name (strings), and optionally a namespace",
                path=display,
                line=line,
                hint="write `- Kind/name`, `- Kind/namespace/name` or `- {kind: Kind, name: name}`",
            )
        out.append(ExternalRef(_canonical_kind(kind, display, line), name, ns or None))
    return out


def env_externals(external: Mapping[str, Any] | None) -> list[ExternalRef]:
    """environment.yaml's `external` (`secrets: [name, namespace/name]`, ...) as ExternalRefs."""
    out = []
    for key, kind in ENV_EXTERNAL_KINDS.items():
        for entry in (external or {}).get(key) or []:
            if isinstance(entry, str):
                ns, _, name = entry.rpartition("/")
                out.append(ExternalRef(kind, name, ns or None))
    return out


def _dict_or_empty(value: Any) -> dict[str, Any]:
    """`value` when it is a mapping, else a fresh empty dict (YAML may hold anything where a map belongs)."""
    return value if isinstance(value, dict) else {}


def _list_or_empty(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def pod_template(res: Resource) -> tuple[dict[str, Any], dict[str, Any], str] | None:
    """(pod labels, pod spec, JSON path of the pod spec) of a workload, or None."""
    doc = res.doc
    if res.kind not in WORKLOAD_KINDS:
        return None
    spec = _dict_or_empty(doc.get("spec"))
    if res.kind == "Pod":
        return res.labels, spec, "spec"
    if res.kind == "CronJob":
        job = spec.get("jobTemplate", {}).get("spec", {}) if isinstance(spec.get("jobTemplate"), dict) else {}
        tmpl = job.get("template", {}) if isinstance(job, dict) else {}
        prefix = "spec.jobTemplate.spec.template"
    else:
        tmpl = spec.get("template", {})
        prefix = "spec.template"
    if not isinstance(tmpl, dict):
        return None
    meta = _dict_or_empty(tmpl.get("metadata"))
    labels = _dict_or_empty(meta.get("labels"))
    pod_spec = _dict_or_empty(tmpl.get("spec"))
    return labels, pod_spec, f"{prefix}.spec"


def selector_matches(selector: Any, labels: dict[str, Any]) -> bool:
    """Kubernetes label-selector semantics: a plain map (Service) or matchLabels + matchExpressions."""
    if not isinstance(selector, dict):
        return False
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        # {} selects every pod (policy/v1 PDB, NetworkPolicy); Services without selector are skipped earlier
        return all(labels.get(k) == v for k, v in selector.items())
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        if not isinstance(expr, dict):
            return False
        key: Any = expr.get("key")  # whatever the YAML holds, not necessarily a str
        op, vals = expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and key in labels and labels[key] in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


@dataclass
class _Pod:
    res: Resource
    labels: dict[str, Any]
    spec: dict[str, Any]
    path: str


class _PodIndex:
    """The pod templates of one namespace, indexed by (label key, string value).

    A namespace with thousands of workloads and Services would otherwise compare every Service with every
    pod template. The index only narrows the candidates (in their original order); `selector_matches`
    still decides each one, so findings, their order and the exceptions a malformed selector raises stay
    those of the full comparison.
    """

    def __init__(self, pods: list[_Pod]) -> None:
        self.pods = pods
        self._by_label: dict[tuple[Any, str], list[int]] = defaultdict(list)
        for i, pod in enumerate(pods):
            for key, value in pod.labels.items():
                if type(value) is str:
                    self._by_label[(key, value)].append(i)

    def candidates(self, selector: Any) -> list[_Pod]:
        """The pods `selector` may match: each carries every required string label (all pods when the
        selector requires none, or its shape is not one the index understands)."""
        if not isinstance(selector, dict):
            return []  # selector_matches is False for every pod
        if "matchLabels" in selector or "matchExpressions" in selector:
            required = selector.get("matchLabels") or {}
        else:
            required = selector
        if not isinstance(required, dict) or not required:
            return self.pods
        if any(type(v) is not str for v in required.values()):
            return self.pods  # None matches a missing label, 1 == True...: let selector_matches decide
        lists = sorted((self._by_label.get(pair, []) for pair in required.items()), key=len)
        if not lists[0]:
            return []
        common = set(lists[0]).intersection(*lists[1:])
        return [self.pods[i] for i in sorted(common)]


def _containers(spec: dict[str, Any]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    for field in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(field) or []):
            if isinstance(c, dict):
                yield field, i, c


def _refs(pod: _Pod) -> Iterator[tuple[str, str, str, bool]]:
    """(kind, name, JSON path, optional) for every ConfigMap/Secret/ServiceAccount a pod spec uses."""
    spec, p = pod.spec, pod.path
    sa = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if isinstance(sa, str) and sa != "default":
        yield "ServiceAccount", sa, f"{p}.serviceAccountName", False
    for i, s in enumerate(spec.get("imagePullSecrets") or []):
        if isinstance(s, dict) and s.get("name"):
            yield "Secret", s["name"], f"{p}.imagePullSecrets[{i}]", False
    for field, i, c in _containers(spec):
        cp = f"{p}.{field}[{i}]"
        for j, ef in enumerate(c.get("envFrom") or []):
            for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                ref = ef.get(key) if isinstance(ef, dict) else None
                if isinstance(ref, dict) and ref.get("name"):
                    yield kind, ref["name"], f"{cp}.envFrom[{j}].{key}.name", bool(ref.get("optional"))
        for j, e in enumerate(c.get("env") or []):
            vf = e.get("valueFrom") if isinstance(e, dict) else None
            if not isinstance(vf, dict):
                continue
            for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                ref = vf.get(key)
                if isinstance(ref, dict) and ref.get("name"):
                    yield kind, ref["name"], f"{cp}.env[{j}].valueFrom.{key}.name", bool(ref.get("optional"))
    for i, vol in enumerate(spec.get("volumes") or []):
        if not isinstance(vol, dict):
            continue
        vp = f"{p}.volumes[{i}]"
        if isinstance(vol.get("configMap"), dict) and vol["configMap"].get("name"):
            yield (
                "ConfigMap",
                vol["configMap"]["name"],
                f"{vp}.configMap.name",
                bool(vol["configMap"].get("optional")),
            )
        if isinstance(vol.get("secret"), dict) and vol["secret"].get("secretName"):
            s = vol["secret"]
            yield "Secret", s["secretName"], f"{vp}.secret.secretName", bool(s.get("optional"))
        claim = vol.get("persistentVolumeClaim")
        if isinstance(claim, dict) and isinstance(claim.get("claimName"), str) and claim["claimName"]:
            yield "PersistentVolumeClaim", claim["claimName"], f"{vp}.persistentVolumeClaim.claimName", False
        for j, src in enumerate((vol.get("projected") or {}).get("sources") or []):
            for key, kind in (("configMap", "ConfigMap"), ("secret", "Secret")):
                ref = src.get(key) if isinstance(src, dict) else None
                if isinstance(ref, dict) and ref.get("name"):
                    yield (
                        kind,
                        ref["name"],
                        f"{vp}.projected.sources[{j}].{key}.name",
                        bool(ref.get("optional")),
                    )


def _glob_match(value: str, pattern: str) -> bool:
    """fnmatchcase, without compiling a pattern that has no wildcard (every app's own namespace in an
    AppProject's destinations: a regex each cost ~15 ms an environment)."""
    if "*" in pattern or "?" in pattern or "[" in pattern:
        return fnmatch.fnmatchcase(value, pattern)
    return value == pattern


def _glob_allows(patterns: list[Any], value: str, normalize: Callable[[str], str] = str) -> bool:
    """Argo CD's allow/deny lists: some pattern matches `value` and no `!pattern` does (globs, `*` = any)."""
    allowed = False
    for pattern in patterns:
        if not isinstance(pattern, str):
            continue
        if pattern.startswith("!"):
            if _glob_match(normalize(value), normalize(pattern[1:])):
                return False
        elif _glob_match(normalize(value), normalize(pattern)):
            allowed = True
    return allowed


def _repo_key(url: str) -> str:
    """Repository URLs as Argo CD compares them: case-insensitive, without a trailing `/` or `.git`."""
    return url.strip().lower().removesuffix("/").removesuffix(".git")


def _destination_allowed(items: list[Any], dest: dict[str, Any]) -> bool:
    """Whether an AppProject's `spec.destinations` admit an Application's `spec.destination`.

    Argo CD matches the server URL or the cluster name, and the namespace, as globs; `!` entries deny. A
    destination given by cluster name against entries that list only servers (or the other way round) needs
    Argo CD's cluster list to resolve, so it is not reported here.
    """
    ns = str(dest.get("namespace") or "")
    comparable = False
    allowed = False
    for item in items:
        if not isinstance(item, dict):
            continue
        for key in ("server", "name"):
            pattern, value = item.get(key), dest.get(key)
            if not isinstance(pattern, str) or not isinstance(value, str) or not value:
                continue
            comparable = True
            ns_pattern = str(item.get("namespace") or "")
            deny = pattern.startswith("!") or ns_pattern.startswith("!")
            hit = _glob_match(value, pattern.removeprefix("!")) and _glob_match(
                ns, ns_pattern.removeprefix("!")
            )
            if hit and deny:
                return False
            allowed = allowed or hit
    return allowed or not comparable


def _argocd_findings(
    resources: list[Resource], add: Callable[..., None], missing: Callable[..., None]
) -> None:
    """Each Application names an AppProject of this set, and that project admits its sources and destination.

    Skipped when the set holds no AppProject at all (e.g. `validate one-application.yaml`): the projects are
    then managed elsewhere. `default` exists in every Argo CD and admits everything (BC014 keeps prod out).
    """
    projects = {
        (r.namespace, r.name): r for r in resources if r.group == "argoproj.io" and r.kind == "AppProject"
    }
    if not projects:
        return
    for res in resources:
        if res.group != "argoproj.io" or res.kind != "Application":
            continue
        spec = _dict_or_empty(res.doc.get("spec"))
        name = spec.get("project")
        if not isinstance(name, str) or not name or name == "default":
            continue  # missing or default: the schema and BC014 report it
        project = projects.get((res.namespace, name))
        if project is None:
            known = sorted(n for ns, n in projects if ns == res.namespace)
            close = close_matches(name, known)
            missing(
                res,
                "argocd-project",
                "AppProject",
                name,
                f"spec.project {name!r} names no AppProject in namespace {res.namespace or '(none)'}",
                f"{did_you_mean(close)} Or render the AppProject" if close else "render the AppProject",
                "spec.project",
            )
            continue
        pspec = _dict_or_empty(project.doc.get("spec"))
        repos = _list_or_empty(pspec.get("sourceRepos"))
        sources = [("spec.source", spec.get("source"))] + [
            (f"spec.sources[{i}]", s) for i, s in enumerate(_list_or_empty(spec.get("sources")))
        ]
        for path, source in sources:
            url = source.get("repoURL") if isinstance(source, dict) else None
            if isinstance(url, str) and not _glob_allows(repos, url, _repo_key):
                add(
                    res,
                    "argocd-source",
                    f"repoURL {url} is not in the sourceRepos of AppProject {name!r}",
                    "sync from a repository the project allows, or add it to the project's sourceRepos",
                    f"{path}.repoURL",
                )
        dest = spec.get("destination")
        items = _list_or_empty(pspec.get("destinations"))
        if isinstance(dest, dict) and not _destination_allowed(items, dest):
            where = dest.get("server") or dest.get("name")
            add(
                res,
                "argocd-destination",
                f"destination {where} namespace {dest.get('namespace') or '(none)'} is not allowed by "
                f"AppProject {name!r}",
                "add it to the project's spec.destinations, or fix the Application's spec.destination",
                "spec.destination",
            )


def check_environment(
    resources: list[Resource],
    external: Mapping[str, Any] | None = None,
    *,
    declared: Iterable[ExternalRef] = (),
    complete: bool = True,
) -> list[Finding]:
    """All cross-resource findings for `resources`.

    `external`: environment.yaml's `external` mapping; `declared`: more objects that exist elsewhere.
    `complete`: the resources are a whole environment of this repository, so a reference to an object that is
    neither among them nor declared is an error; otherwise (any files) it is a warning.
    """
    findings: list[Finding] = []
    elsewhere: dict[str, set[tuple[str | None, str]]] = defaultdict(set)
    for ref in (*env_externals(external), *declared):
        elsewhere[ref.kind].add((ref.namespace, ref.name))

    def add(
        res: Resource, rule: str, message: str, hint: str, path: str | None = None, severity: str = "error"
    ) -> None:
        findings.append(
            for_resource(
                res, severity=severity, rule=f"crossref/{rule}", message=message, hint=hint, path=path
            )
        )

    def missing(res: Resource, rule: str, kind: str, name: str, message: str, hint: str, path: str) -> None:
        """A reference to an object these resources don't hold: an error only when they are complete."""
        declared_here = elsewhere.get(kind, set())
        if (None, name) in declared_here or (res.namespace, name) in declared_here:
            return
        if complete:
            add(res, rule, message, hint, path)
            return
        add(
            res,
            rule,
            re.sub(r"is not rendered in namespace (.+)$", r"is not in these files (namespace \1)", message),
            f"if it exists in the cluster, declare it: --external {kind}/{res.namespace + '/' if res.namespace else ''}"
            f"{name} (or in an --external-file); otherwise add its manifest to the files",
            path,
            severity="warning",
        )

    # duplicates: the same object twice would make two Applications fight over it. Objects named by the API
    # server (metadata.generateName) are new objects each time, never duplicates.
    seen: dict[tuple[str, str, str, str], Resource] = {}
    for res in resources:
        if not res.name:
            continue
        key = (res.group, res.kind, res.namespace, res.name)
        if key in seen:
            other = seen[key]
            add(
                res,
                "duplicate",
                f"{res.ident} is also defined in {_where(other)}",
                "each object may be defined once per environment; rename or remove one",
            )
        else:
            seen[key] = res

    by_ns_kind: dict[tuple[str, str], dict[str, Resource]] = defaultdict(dict)
    pods: dict[str, list[_Pod]] = defaultdict(list)
    for res in resources:
        if res.name:
            by_ns_kind[(res.namespace, res.kind)][res.name] = res
        tmpl = pod_template(res)
        if tmpl is not None:
            pods[res.namespace].append(_Pod(res, *tmpl))
    indexes: dict[str, _PodIndex] = {}

    def pod_index(ns: str) -> _PodIndex:
        if ns not in indexes:
            indexes[ns] = _PodIndex(pods.get(ns, []))
        return indexes[ns]

    # an ExternalSecret creates the Secret named by spec.target.name (default: its own name)
    for res in resources:
        if res.kind == "ExternalSecret":
            target = _dict_or_empty(_dict_or_empty(res.doc.get("spec")).get("target"))
            name = target.get("name")
            by_ns_kind[(res.namespace, "Secret")].setdefault(
                name if isinstance(name, str) and name else res.name, res
            )

    def selects_nothing(res: Resource, rule: str, message: str, hint: str) -> None:
        """A selector matching no pod template: an error when the files hold pods of that namespace (or are a
        whole environment); otherwise the pods are elsewhere, which is only worth a warning."""
        if complete or pods.get(res.namespace):
            add(res, rule, message, hint, "spec.selector")
        else:
            add(
                res,
                rule,
                message,
                "these files hold no pod template in that namespace; nothing to fix if the workload is "
                "deployed from elsewhere",
                "spec.selector",
                severity="warning",
            )

    def one(res: Resource) -> None:
        ns = res.namespace
        spec = _dict_or_empty(res.doc.get("spec"))
        if res.kind == "Service" and res.group == "":
            selector = spec.get("selector")
            if not selector:
                return  # a Service without selector is managed by hand (EndpointSlices): nothing to match
            matched = [p for p in pod_index(ns).candidates(selector) if selector_matches(selector, p.labels)]
            if not matched:
                selects_nothing(
                    res,
                    "service-selector",
                    f"selector {selector} matches no pod template in namespace {ns or '(none)'}",
                    "make the selector equal the workload's pod template labels",
                )
                return
            container_ports = [
                port
                for p in matched
                for _, _, c in _containers(p.spec)
                for port in c.get("ports") or []
                if isinstance(port, dict)
            ]
            port_names = {port.get("name") for port in container_ports}
            port_numbers = {port.get("containerPort") for port in container_ports}
            for i, port in enumerate(spec.get("ports") or []):
                target = port.get("targetPort") if isinstance(port, dict) else None
                if isinstance(target, str) and target not in port_names:
                    declared_names = sorted(map(str, port_names - {None}))
                    add(
                        res,
                        "target-port",
                        f"targetPort {target!r} is not a named port of the selected containers",
                        f"name a container port {target!r}, or use one of: {', '.join(declared_names) or 'none'}",
                        f"spec.ports[{i}].targetPort",
                    )
                elif isinstance(target, int) and port_numbers and target not in port_numbers:
                    add(
                        res,
                        "target-port",
                        f"targetPort {target} is not a declared containerPort of the selected pods",
                        "declare the port on the container, or fix the number",
                        f"spec.ports[{i}].targetPort",
                        severity="warning",
                    )
        elif res.kind == "HorizontalPodAutoscaler":
            ref = spec.get("scaleTargetRef") or {}
            if isinstance(ref, dict) and str(ref.get("name")) not in by_ns_kind.get(
                (ns, str(ref.get("kind"))), {}
            ):
                missing(
                    res,
                    "hpa-target",
                    str(ref.get("kind")),
                    str(ref.get("name")),
                    f"scaleTargetRef {ref.get('kind')}/{ref.get('name')} is not rendered in namespace {ns or '(none)'}",
                    "point scaleTargetRef at a workload of this environment",
                    "spec.scaleTargetRef",
                )
        elif res.kind == "PodDisruptionBudget":
            selector = spec.get("selector")
            if not any(selector_matches(selector, p.labels) for p in pod_index(ns).candidates(selector)):
                selects_nothing(
                    res,
                    "pdb-selector",
                    f"selector matches no pod template in namespace {ns}",
                    "make spec.selector.matchLabels equal the workload's pod labels",
                )
        elif res.kind == "Ingress":
            for i, rule in enumerate(spec.get("rules") or []):
                paths = ((rule or {}).get("http") or {}).get("paths") or []
                for j, path in enumerate(paths):
                    svc = ((path or {}).get("backend") or {}).get("service") or {}
                    name = svc.get("name")
                    if name and name not in by_ns_kind.get((ns, "Service"), {}):
                        missing(
                            res,
                            "ingress-backend",
                            "Service",
                            str(name),
                            f"backend Service {name!r} is not rendered in namespace {ns or '(none)'}",
                            "point the backend at a Service of this app",
                            f"spec.rules[{i}].http.paths[{j}].backend.service.name",
                        )
                    port_name = (svc.get("port") or {}).get("name")
                    target = by_ns_kind.get((ns, "Service"), {}).get(name or "")
                    if port_name and target is not None:
                        names = {p.get("name") for p in (target.doc.get("spec") or {}).get("ports") or []}
                        if port_name not in names:
                            add(
                                res,
                                "ingress-backend",
                                f"Service {name!r} has no port named {port_name!r}",
                                "use one of the Service's port names",
                                f"spec.rules[{i}].http.paths[{j}].backend.service.port.name",
                            )

    for res in resources:
        try:
            one(res)
        except (AttributeError, TypeError):
            continue  # a malformed shape (e.g. `rules: [foo]`): the schema check reports it with its path

    _argocd_findings(resources, add, missing)

    for ns_pods in pods.values():
        for pod in ns_pods:
            try:
                refs = list(_refs(pod))
                containers = list(_containers(pod.spec))
            except (AttributeError, TypeError):
                continue  # malformed pod spec: reported by the schema check
            for kind, name, path, optional in refs:
                if not optional and name not in by_ns_kind.get((pod.res.namespace, kind), {}):
                    env_key = next(k for k, v in ENV_EXTERNAL_KINDS.items() if v == kind)
                    missing(
                        pod.res,
                        "missing-reference",
                        kind,
                        name,
                        f"{kind} {name!r} is not rendered in namespace {pod.res.namespace or '(none)'}",
                        f"render it, or declare it under external.{env_key} in environment.yaml if it is created "
                        "outside this repository",
                        path,
                    )
            for field, i, c in containers:
                seen_env: set[str] = set()
                for j, e in enumerate(c.get("env") or []):
                    name = e.get("name") if isinstance(e, dict) else None
                    if isinstance(name, str) and name in seen_env:
                        add(
                            pod.res,
                            "duplicate-env",
                            f"environment variable {name!r} is set twice in container {c.get('name')!r}",
                            "set each variable once (the API server rejects duplicates under server-side apply)",
                            f"{pod.path}.{field}[{i}].env[{j}]",
                        )
                    elif isinstance(name, str):
                        seen_env.add(name)
    return findings


def _where(res: Resource) -> str:
    """Where an object was defined, with its line when it was read from a file of its own."""
    where = res.output or res.source or "?"
    return f"{where}:{res.line}" if res.line and where == res.source else where
