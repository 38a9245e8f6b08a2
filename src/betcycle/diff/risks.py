"""The risk summary of a diff: the lines a reviewer reads first (production, deletions, RBAC, images, ...).

Works on the masked objects diff.compute hands over, so secrets never reach a risk message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from betcycle.diff.cost import WORKLOAD_KINDS, _get, _pod_spec
from betcycle.diff.report import STATUSES, Doc, EnvDiff, FieldChange, ObjectChange, Risk, _canon

_RISK_ORDER = (
    "environments prod environment deletion argocd rbac network-policy service image replicas resources"
)
_RBAC = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ServiceAccount"}
_ARGO_FINALIZER = "resources-finalizer.argocd.argoproj.io"
_AMBIGUOUS = re.compile(r"[-+.0-9eE]+|true|false|null|yes|no|on|off|~", re.IGNORECASE)


def show_value(value: Any, limit: int = 120) -> str:
    """One line for a value: plain strings bare, strings that read as something else quoted, maps as JSON."""
    if value is None:
        return "(none)"
    if isinstance(value, str) and value and value == value.strip() and "\n" not in value:
        text = json.dumps(value, ensure_ascii=False) if _AMBIGUOUS.fullmatch(value) else value
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _brief(fields: Iterable[FieldChange], limit: int = 3) -> str:
    items = list(fields)
    text = "; ".join(f"{f.path}: {show_value(f.old, 40)} → {show_value(f.new, 40)}" for f in items[:limit])
    return text + (f"; +{len(items) - limit} more" if len(items) > limit else "")


def _containers(doc: Doc) -> dict[str, dict[str, Any]]:
    pod = _pod_spec(doc or {})
    items = [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
    return {c["name"]: c for c in items if isinstance(c, dict) and isinstance(c.get("name"), str)}


def short_tag(image: str) -> str:
    """registry/repo:1.4.0 -> 1.4.0; repo@sha256:abc… -> @sha256:abc (12 hex); no tag -> latest."""
    if "@" in image:
        return "@" + image.rpartition("@")[2][:19]
    last = image.rpartition("/")[2]
    return last.rpartition(":")[2] if ":" in last else "latest"


def _object_risks(c: ObjectChange, old: Doc, new: Doc) -> list[tuple[str, str]]:
    group, kind, ident = c.key[2], c.kind, c.ident
    what = f"changed: {_brief(c.fields)}" if c.status == "changed" else c.status
    out: list[tuple[str, str]] = []
    # a release relabels every object (app.kubernetes.io/version): metadata-only changes carry no risk
    substantive = c.status != "changed" or any(not f.path.startswith("metadata.") for f in c.fields)
    if not substantive:
        return out
    if kind in _RBAC and group in ("", "rbac.authorization.k8s.io"):
        out.append(("rbac", f"RBAC {ident} {what}"))
    if kind == "NetworkPolicy" and group == "networking.k8s.io":
        extra = " (traffic it restricted may be allowed again)" if c.status == "removed" else ""
        out.append(("network-policy", f"{ident} {what}{extra}"))
    if group == "argoproj.io" and kind in ("Application", "ApplicationSet", "AppProject"):
        out.append(("argocd", f"Argo CD {ident} {_argocd(c, old, new)}"))
    if kind == "Service" and group == "" and new is not None:
        old_type = str(_get(old, "spec", "type") or "ClusterIP") if old else None
        new_type = str(_get(new, "spec", "type") or "ClusterIP")
        if new_type in ("LoadBalancer", "NodePort") and old_type != new_type:
            how = f"type {old_type} → {new_type}" if old_type else f"added with type {new_type}"
            out.append(("service", f"{ident} {how}: reachable from outside the cluster"))
    return out + (_workload_risks(c, old, new) if c.status == "changed" else [])


def _workload_risks(c: ObjectChange, old: Doc, new: Doc) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    old_c, new_c = _containers(old), _containers(new)
    for name, container in new_c.items():
        before, image = old_c.get(name), str(container.get("image", ""))
        if before is None:
            out.append(("image", f"image {name}: container added to {c.ident} with {image}"))
            continue
        old_image = str(before.get("image", ""))
        if old_image != image:
            out.append(
                (
                    "image",
                    f"image {name}: {old_image} → {image} ({short_tag(old_image)} → {short_tag(image)})",
                )
            )
        changed = []
        for k in ("requests", "limits"):
            was, now = _get(before, "resources", k), _get(container, "resources", k)
            for r in sorted(
                {*(was if isinstance(was, dict) else {}), *(now if isinstance(now, dict) else {})}
            ):
                if _canon(_get(was, r)) != _canon(_get(now, r)):
                    changed.append(f"{k}.{r} {_quantity(_get(was, r))} → {_quantity(_get(now, r))}")
        if changed:
            out.append(("resources", f"resources {name} ({c.ident}): {', '.join(changed)}"))
    out += [
        ("image", f"image {name}: container removed from {c.ident}") for name in old_c if name not in new_c
    ]
    default = "1 (default)" if c.kind in WORKLOAD_KINDS else "(none)"
    scaling = []
    for f in c.fields:
        if f.path == "spec.replicas":
            old_r, new_r = (default if v is None else show_value(v) for v in (f.old, f.new))
            out.append(("replicas", f"replicas {c.ident}: {old_r} → {new_r}"))
        elif c.kind == "HorizontalPodAutoscaler" and f.path in ("spec.minReplicas", "spec.maxReplicas"):
            scaling.append(f"{f.path[5:]} {show_value(f.old)} → {show_value(f.new)}")
    if scaling:
        out.append(("replicas", f"autoscaling {c.ident}: {', '.join(scaling)}"))
    return out


def _quantity(value: Any) -> str:
    return "(none)" if value is None else str(value)


def _argocd(c: ObjectChange, old: Doc, new: Doc) -> str:
    if c.status == "removed":
        finalizers = [str(f) for f in _get(old, "metadata", "finalizers") or []]
        if c.kind == "Application" and any(f.startswith(_ARGO_FINALIZER) for f in finalizers):
            return "removed: its resources finalizer makes Argo CD delete everything the app deployed"
        return "removed: Argo CD stops managing what it deployed (left running, unmanaged)"
    if c.status == "added":
        sources = _get(new, "spec", "sources")
        src = _get(new, "spec", "source") or (sources[0] if isinstance(sources, list) and sources else {})
        if c.kind != "Application" or not isinstance(src, dict):
            return "added"
        dest = _get(new, "spec", "destination") or {}
        where = f"{src.get('path') or src.get('chart') or '?'}@{src.get('targetRevision', 'HEAD')}"
        target = f"{dest.get('server') or dest.get('name') or '?'} namespace {dest.get('namespace') or '?'}"
        return f"added: syncs {where} to {target}"
    # what and where it syncs first: source, destination, sync policy, project
    key = re.compile(r"spec\.(sources?|destination|syncPolicy|project)\b")
    return "changed: " + _brief(sorted(c.fields, key=lambda f: not key.match(f.path)), 4)


def risks(envs: list[EnvDiff], changes: list[tuple[ObjectChange, Doc, Doc]]) -> list[Risk]:
    """The risk summary of a diff: environments first, then what each changed object puts at risk."""
    if not envs:
        return []
    prod = {e.name: e.info.is_prod for e in envs}
    names = ", ".join(e.name + (" (production)" if e.info.is_prod else "") for e in envs)
    out = [Risk("environments", f"{len(envs)} environment(s) change: {names}")]
    for e in envs:
        p = e.info.is_prod
        counts = ", ".join(f"{e.count(s)} {s}" for s in STATUSES if e.count(s))
        if p:
            apps = ", ".join(a.label for a in e.apps)
            out.append(Risk("prod", f"production: {counts} in {len(e.apps)} app(s): {apps}", e.name, prod=p))
        if e.status == "removed":
            n = e.count("removed")
            out.append(Risk("environment", f"environment removed: all {n} object(s) deleted", e.name, prod=p))
        elif e.status == "added":
            n = e.count("added")
            out.append(Risk("environment", f"new environment: {n} object(s) created", e.name, prod=p))
        gone = [o for a in e.apps for o in a.objects if o.status == "removed"]
        if gone and e.status != "removed":
            listed = ", ".join(o.ident for o in gone[:8]) + (
                f", +{len(gone) - 8} more" if len(gone) > 8 else ""
            )
            if any(o.kind == "Namespace" for o in gone):
                listed += " (deleting a Namespace deletes everything in it)"
            out.append(Risk("deletion", f"deletes {len(gone)} object(s): {listed}", e.name, prod=p))
    for c, old, new in changes:
        for category, message in _object_risks(c, old, new):
            out.append(Risk(category, message, c.key[0], c.key[1], c.ident, prod[c.key[0]]))
    order = _RISK_ORDER.split()
    return sorted(
        dict.fromkeys(out), key=lambda r: (order.index(r.category), r.env, r.app, r.resource, r.message)
    )
