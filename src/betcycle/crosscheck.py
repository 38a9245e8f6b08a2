"""Checks across the resources of one environment: what a schema can't see because it spans objects."""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from betcycle.findings import Finding, for_resource
from betcycle.resources import Resource

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}


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


def _glob_allows(patterns: list[Any], value: str, normalize: Callable[[str], str] = str) -> bool:
    """Argo CD's allow/deny lists: some pattern matches `value` and no `!pattern` does (globs, `*` = any)."""
    allowed = False
    for pattern in patterns:
        if not isinstance(pattern, str):
            continue
        if pattern.startswith("!"):
            if fnmatch.fnmatchcase(normalize(value), normalize(pattern[1:])):
                return False
        elif fnmatch.fnmatchcase(normalize(value), normalize(pattern)):
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
            hit = fnmatch.fnmatchcase(value, pattern.removeprefix("!")) and fnmatch.fnmatchcase(
                ns, ns_pattern.removeprefix("!")
            )
            if hit and deny:
                return False
            allowed = allowed or hit
    return allowed or not comparable


def _argocd_findings(resources: list[Resource], add: Callable[..., None]) -> None:
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
            add(
                res,
                "argocd-project",
                f"spec.project {name!r} names no AppProject in namespace {res.namespace or '(none)'}",
                "render the AppProject, or use one of: " + (", ".join(known) or "none"),
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
    resources: list[Resource], external: dict[str, list[str]] | None = None
) -> list[Finding]:
    """All cross-resource findings for the resources of one environment."""
    external = external or {}
    findings: list[Finding] = []

    def add(res: Resource, rule: str, message: str, hint: str, path: str | None = None) -> None:
        findings.append(
            for_resource(
                res, severity="error", rule=f"crossref/{rule}", message=message, hint=hint, path=path
            )
        )

    # duplicates: the same object twice would make two Applications fight over it
    seen: dict[tuple[str, str, str, str], Resource] = {}
    for res in resources:
        key = (res.group, res.kind, res.namespace, res.name)
        if key in seen:
            other = seen[key]
            add(
                res,
                "duplicate",
                f"{res.ident} is also defined in {other.output or other.source}",
                "each object may be rendered once per environment; rename or remove one",
            )
        else:
            seen[key] = res

    by_ns_kind: dict[tuple[str, str], dict[str, Resource]] = defaultdict(dict)
    pods: dict[str, list[_Pod]] = defaultdict(list)
    for res in resources:
        by_ns_kind[(res.namespace, res.kind)][res.name] = res
        tmpl = pod_template(res)
        if tmpl is not None:
            pods[res.namespace].append(_Pod(res, *tmpl))
    # an ExternalSecret creates the Secret named by spec.target.name (default: its own name)
    for res in resources:
        if res.kind == "ExternalSecret":
            target = (res.doc.get("spec") or {}).get("target") or {}
            name = target.get("name") if isinstance(target, dict) else None
            by_ns_kind[(res.namespace, "Secret")].setdefault(name or res.name, res)

    def exists(kind: str, ns: str, name: str) -> bool:
        if name in by_ns_kind.get((ns, kind), {}):
            return True
        ext_key = {"Secret": "secrets", "ConfigMap": "configMaps", "ServiceAccount": "serviceAccounts"}.get(
            kind
        )
        declared = external.get(ext_key or "", [])
        return name in declared or f"{ns}/{name}" in declared

    def one(res: Resource) -> None:
        ns = res.namespace
        spec = _dict_or_empty(res.doc.get("spec"))
        if res.kind == "Service" and res.group == "":
            selector = spec.get("selector")
            if not selector:
                return  # a Service without selector is managed by hand (EndpointSlices): nothing to match
            matched = [p for p in pods[ns] if selector_matches(selector, p.labels)]
            if not matched:
                add(
                    res,
                    "service-selector",
                    f"selector {selector} matches no pod template in namespace {ns or '(none)'}",
                    "make the selector equal the workload's pod template labels",
                    "spec.selector",
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
                    add(
                        res,
                        "target-port",
                        f"targetPort {target!r} is not a named port of the selected containers",
                        f"name a container port {target!r}, or use one of: {', '.join(sorted(map(str, port_names - {None}))) or 'none'}",
                        f"spec.ports[{i}].targetPort",
                    )
                elif isinstance(target, int) and port_numbers and target not in port_numbers:
                    findings.append(
                        for_resource(
                            res,
                            severity="warning",
                            rule="crossref/target-port",
                            message=f"targetPort {target} is not a declared containerPort of the selected pods",
                            hint="declare the port on the container, or fix the number",
                            path=f"spec.ports[{i}].targetPort",
                        )
                    )
        elif res.kind == "HorizontalPodAutoscaler":
            ref = spec.get("scaleTargetRef") or {}
            if isinstance(ref, dict) and not exists(str(ref.get("kind")), ns, str(ref.get("name"))):
                add(
                    res,
                    "hpa-target",
                    f"scaleTargetRef {ref.get('kind')}/{ref.get('name')} is not rendered in namespace {ns}",
                    "point scaleTargetRef at a workload of this environment",
                    "spec.scaleTargetRef",
                )
        elif res.kind == "PodDisruptionBudget":
            selector = spec.get("selector")
            if not any(selector_matches(selector, p.labels) for p in pods[ns]):
                add(
                    res,
                    "pdb-selector",
                    f"selector matches no pod template in namespace {ns}",
                    "make spec.selector.matchLabels equal the workload's pod labels",
                    "spec.selector",
                )
        elif res.kind == "Ingress":
            for i, rule in enumerate(spec.get("rules") or []):
                paths = ((rule or {}).get("http") or {}).get("paths") or []
                for j, path in enumerate(paths):
                    svc = ((path or {}).get("backend") or {}).get("service") or {}
                    name = svc.get("name")
                    if name and name not in by_ns_kind.get((ns, "Service"), {}):
                        add(
                            res,
                            "ingress-backend",
                            f"backend Service {name!r} is not rendered in namespace {ns}",
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

    _argocd_findings(resources, add)

    for ns_pods in pods.values():
        for pod in ns_pods:
            try:
                refs = list(_refs(pod))
                containers = list(_containers(pod.spec))
            except (AttributeError, TypeError):
                continue  # malformed pod spec: reported by the schema check
            for kind, name, path, optional in refs:
                if not optional and not exists(kind, pod.res.namespace, name):
                    add(
                        pod.res,
                        "missing-reference",
                        f"{kind} {name!r} is not rendered in namespace {pod.res.namespace or '(none)'}",
                        f"render it, or declare it under external.{kind[0].lower() + kind[1:]}s in "
                        "environment.yaml if it is created outside this repository",
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
