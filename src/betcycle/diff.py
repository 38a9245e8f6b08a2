"""Semantic diff of rendered resources: what Argo CD would sync differently, per environment and app.

Pure functions: the git side hands over base and head Resources, `compute` returns a DiffReport and
diff_formats.py writes it. Secrets are masked (on copies) before anything is compared, so field changes,
hunks and every output format only ever see digests.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from betcycle.findings import json_path
from betcycle.resources import Resource
from betcycle.yamlio import dump

Doc = dict[str, Any] | None

#: (env, app, group, kind, namespace, name); app is "" for the Argo CD objects
Key = tuple[str, str, str, str, str, str]

STATUSES = ("added", "removed", "changed")

#: names of env vars, helm parameters and ConfigMap keys whose values are masked
SENSITIVE = re.compile(r"(?i)(pass(word)?|secret|token|api[_-]?key|private[_-]?key|credential)")


def key_of(res: Resource) -> Key:
    return (res.env or "", res.app or "", res.group, res.kind, res.namespace, res.name)


@dataclass
class EnvInfo:
    name: str
    is_prod: bool = False
    #: {currency, cpuPerCoreMonth, memoryPerGiBMonth} from environment.yaml, or None
    pricing: dict[str, Any] | None = None


def env_info(name: str, data: Mapping[str, Any]) -> EnvInfo:
    """EnvInfo from an environment.yaml mapping; production is `prod*`, as render's `env.isProd`."""
    pricing = data.get("pricing")
    return EnvInfo(name, name.startswith("prod"), dict(pricing) if isinstance(pricing, dict) else None)


# --- masking ---------------------------------------------------------------------------------------------


def redact(value: Any) -> str:
    raw = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return f"<redacted sha256:{hashlib.sha256(raw.encode('utf-8')).hexdigest()[:12]}>"


def mask(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of `doc` with secret values replaced by digests (so a change still shows, the value never)."""
    out = copy.deepcopy(doc)
    kind = out.get("kind")
    if kind == "Secret":
        for section in ("data", "stringData"):
            _mask_section(out, section, everything=True)
    elif kind == "ConfigMap":
        for section in ("data", "binaryData"):
            _mask_section(out, section, everything=False)
    _mask_named_values(out)
    return out


def _mask_section(doc: dict[str, Any], section: str, *, everything: bool) -> None:
    values = doc.get(section)
    if isinstance(values, dict):
        for k, v in values.items():
            if everything or SENSITIVE.search(str(k)):
                values[k] = redact(v)
    elif values is not None and everything:
        doc[section] = redact(values)


def _mask_named_values(node: Any) -> None:
    """`{name: DB_PASSWORD, value: ...}` anywhere: container env, Argo CD helm parameters, ..."""
    if isinstance(node, dict):
        for v in node.values():
            _mask_named_values(v)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict) and "value" in item and SENSITIVE.search(str(item.get("name", ""))):
                item["value"] = redact(item["value"])
            _mask_named_values(item)


# --- structural diff -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    #: index path into the head object (the base object for removed items): spec.template.spec.containers[0]
    path: str
    old: Any
    new: Any
    #: "changed", "added" (old is None), "removed" (new is None), "reordered" (old/new are the item names)
    op: str = "changed"
    #: names of the by-name matched list items on the path, e.g. "hello › LOG_LEVEL"
    where: str = ""


def _canon(value: Any) -> str:
    """Order-insensitive for maps, order-sensitive for lists, and `true` is not `1`."""
    try:
        return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    except TypeError:  # mixed key types (1 and "a") cannot be sorted: compare them as strings
        return _canon(json.loads(json.dumps(value, default=str)))


def _named(items: list[Any]) -> bool:
    names = [i.get("name") if isinstance(i, dict) else None for i in items]
    return all(isinstance(n, str) for n in names) and len(set(names)) == len(names)


_START = object()


def _merged_order(old: Mapping[Any, Any], new: Mapping[Any, Any]) -> list[Any]:
    """Keys in head order; keys only in base stay right after the key that preceded them in base."""
    anchored: dict[Any, list[Any]] = {}
    anchor: Any = _START
    for k in old:
        if k in new:
            anchor = k
        else:
            anchored.setdefault(anchor, []).append(k)
    out = list(anchored.get(_START, []))
    for k in new:
        out.append(k)
        out += anchored.get(k, []) if k in old else []
    return out


def _diff(
    old: Any, new: Any, path: tuple[str | int, ...], where: tuple[str, ...], out: list[FieldChange]
) -> None:
    def report(p: tuple[str | int, ...], o: Any, n: Any, op: str, w: tuple[str, ...]) -> None:
        out.append(FieldChange(json_path(p), o, n, op, " › ".join(w)))

    if isinstance(old, dict) and isinstance(new, dict):
        for k in _merged_order(old, new):
            p = (*path, k if isinstance(k, str) else str(k))
            if k not in new:
                report(p, old[k], None, "removed", where)
            elif k not in old:
                report(p, None, new[k], "added", where)
            else:
                _diff(old[k], new[k], p, where, out)
    elif isinstance(old, list) and isinstance(new, list) and _named(old) and _named(new):
        old_by = {item["name"]: (i, item) for i, item in enumerate(old)}
        new_by = {item["name"]: (i, item) for i, item in enumerate(new)}
        common_old = [n for n in old_by if n in new_by]
        common_new = [n for n in new_by if n in old_by]
        if common_old != common_new:
            report(path, common_old, common_new, "reordered", where)
        for name in _merged_order(old_by, new_by):
            if name not in new_by:
                report((*path, old_by[name][0]), old_by[name][1], None, "removed", (*where, name))
            elif name not in old_by:
                report((*path, new_by[name][0]), None, new_by[name][1], "added", (*where, name))
            else:
                _diff(old_by[name][1], new_by[name][1], (*path, new_by[name][0]), (*where, name), out)
    elif isinstance(old, list) and isinstance(new, list):
        matcher = difflib.SequenceMatcher(None, [_canon(x) for x in old], [_canon(x) for x in new], False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            pairs = min(i2 - i1, j2 - j1) if tag == "replace" else 0
            for k in range(pairs):
                _diff(old[i1 + k], new[j1 + k], (*path, j1 + k), where, out)
            for k in range(i1 + pairs, i2):
                report((*path, k), old[k], None, "removed", where)
            for k in range(j1 + pairs, j2):
                report((*path, k), None, new[k], "added", where)
    elif _canon(old) != _canon(new):
        report(path, old, new, "changed", where)


def field_changes(old: dict[str, Any], new: dict[str, Any]) -> list[FieldChange]:
    out: list[FieldChange] = []
    _diff(old, new, (), (), out)
    return out


def _align(old: Any, new: Any) -> Any:
    """`old` with its maps in `new`'s key order, so hunks do not show reordering that is no change."""
    if isinstance(old, dict) and isinstance(new, dict):
        return {k: _align(old[k], new.get(k)) for k in _merged_order(old, new) if k in old}
    if isinstance(old, list) and isinstance(new, list):
        if _named(old) and _named(new):
            by_name = {i["name"]: i for i in new}
            return [_align(i, by_name.get(i["name"])) for i in old]
        return [_align(o, n) for o, n in zip(old, new, strict=False)] + old[len(new) :]
    return old


def _hunk(old: Doc, new: Doc, label: str) -> str:
    a = dump(_align(old, new)).splitlines() if old is not None else []
    b = dump(new).splitlines() if new is not None else []
    return "\n".join(difflib.unified_diff(a, b, f"a/{label}", f"b/{label}", n=2, lineterm=""))


# --- report types ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectChange:
    #: "added", "removed" or "changed"
    status: str
    key: Key
    fields: tuple[FieldChange, ...] = ()
    #: unified diff of the masked YAML (changed objects; the whole object for added/removed)
    hunk: str = ""
    #: the rendered manifest file (head's; base's for removed objects)
    manifest: str | None = None

    @property
    def kind(self) -> str:
        return self.key[3]

    def to_dict(self) -> dict[str, Any]:
        ids = dict(zip(("group", "kind", "namespace", "name"), self.key[2:], strict=True))
        fields = [_jsonable(f.__dict__) for f in self.fields]
        return {"status": self.status, **ids, "manifest": self.manifest, "fields": fields, "hunk": self.hunk}

    @property
    def ident(self) -> str:
        """Kind/namespace/name (namespace omitted when empty)."""
        return "/".join(p for p in (self.key[3] or "?", self.key[4], self.key[5] or "?") if p)


@dataclass(frozen=True)
class AppDiff:
    env: str
    #: "" for the Argo CD objects
    app: str
    objects: tuple[ObjectChange, ...]

    @property
    def label(self) -> str:
        return self.app or "Argo CD"

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.objects)


@dataclass(frozen=True)
class EnvDiff:
    info: EnvInfo
    #: "added" (not in base), "removed" (not in head) or "changed"
    status: str
    apps: tuple[AppDiff, ...]
    #: requested CPU (cores) and memory (GiB), summed over workloads × replicas
    cpu_base: Decimal
    cpu_head: Decimal
    mem_base: Decimal
    mem_head: Decimal
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def cpu_delta(self) -> Decimal:
        return self.cpu_head - self.cpu_base

    @property
    def mem_delta(self) -> Decimal:
        return self.mem_head - self.mem_base

    @property
    def currency(self) -> str:
        return str((self.info.pricing or {}).get("currency") or "USD")

    def cost(self, cpu: Decimal, mem: Decimal) -> Decimal | None:
        """Monthly price of `cpu` cores and `mem` GiB; None without a price table."""
        p = self.info.pricing or {}
        if p.get("cpuPerCoreMonth") is None and p.get("memoryPerGiBMonth") is None:
            return None
        price = [Decimal(str(p.get(k) or 0)) for k in ("cpuPerCoreMonth", "memoryPerGiBMonth")]
        return cpu * price[0] + mem * price[1]

    @property
    def cost_delta(self) -> Decimal | None:
        return self.cost(self.cpu_delta, self.mem_delta)

    def count(self, status: str) -> int:
        return sum(a.count(status) for a in self.apps)


@dataclass(frozen=True)
class DiffReport:
    envs: tuple[EnvDiff, ...] = ()
    risks: tuple[Risk, ...] = ()

    @property
    def has_changes(self) -> bool:
        return bool(self.envs)

    @property
    def envs_changed(self) -> list[str]:
        return [e.name for e in self.envs]

    @property
    def counts(self) -> dict[str, int]:
        """Objects added, removed and changed over all environments."""
        return {s: sum(e.count(s) for e in self.envs) for s in STATUSES}

    def to_dict(self) -> dict[str, Any]:
        return {
            "has_changes": self.has_changes,
            "summary": {
                "environments": self.envs_changed,
                "prod": [e.name for e in self.envs if e.info.is_prod],
                **self.counts,
            },
            "risks": [r.to_dict() for r in self.risks],
            "environments": [_env_dict(e) for e in self.envs],
        }


def _num(d: Decimal, places: int = 4) -> float:
    return float(d.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP))


def _env_dict(e: EnvDiff) -> dict[str, Any]:
    costs = [e.cost(e.cpu_base, e.mem_base), e.cost(e.cpu_head, e.mem_head), e.cost_delta]
    return {
        "name": e.name,
        "prod": e.info.is_prod,
        "status": e.status,
        "counts": {s: e.count(s) for s in STATUSES},
        "requests": {
            "cpu_cores": {"base": _num(e.cpu_base), "head": _num(e.cpu_head), "delta": _num(e.cpu_delta)},
            "memory_gib": {"base": _num(e.mem_base), "head": _num(e.mem_head), "delta": _num(e.mem_delta)},
        },
        "monthly_cost": None
        if costs[2] is None
        else {
            "currency": e.currency,
            **{k: _num(c or Decimal(0), 2) for k, c in zip(("base", "head", "delta"), costs, strict=True)},
        },
        "notes": list(e.notes),
        "apps": [{"name": a.app, "objects": [o.to_dict() for o in a.objects]} for a in e.apps],
    }


def _jsonable(value: Any) -> Any:
    result: Any = json.loads(json.dumps(value, default=str))
    return result


# --- quantities and requested resources ------------------------------------------------------------------

_QUANTITY = re.compile(
    r"([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))(?:[eE]([+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?"
)
_SUFFIXES = {
    **{s: Decimal(10) ** (3 * i) for i, s in enumerate(("", "k", "M", "G", "T", "P", "E"))},
    **{s: Decimal(10) ** (-3 * i) for i, s in enumerate(("m", "u", "n"), 1)},
    **{s: Decimal(2) ** (10 * i) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"), 1)},
}
_GIB = Decimal(2) ** 30


def parse_quantity(value: Any) -> Decimal:
    """A Kubernetes quantity ("250m", "1.5Gi", "1e3", 2) as a number; ValueError when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"not a quantity: {value!r}")
    m = _QUANTITY.fullmatch(value.strip() if isinstance(value, str) else repr(value))
    if not m:
        raise ValueError(f"not a quantity: {value!r}")
    try:
        number = Decimal(m[1])
        result = number.scaleb(int(m[2])) if m[2] else number * _SUFFIXES[m[3] or ""]
    except ArithmeticError:  # decimal's Overflow, InvalidOperation: an absurd exponent
        raise ValueError(f"not a quantity: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"not a quantity: {value!r}")
    return result


WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "ReplicaSet", "DaemonSet", "Job", "Pod"})


def _get(node: Any, *path: str) -> Any:
    for p in path:
        node = node.get(p) if isinstance(node, dict) else None
    return node


_POD_SPEC = {"Pod": ("spec",), "CronJob": ("spec", "jobTemplate", "spec", "template", "spec")}


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec = _get(doc, *_POD_SPEC.get(str(doc.get("kind")), ("spec", "template", "spec")))
    return spec if isinstance(spec, dict) else {}


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def _replicas(r: Resource, hpa_min: dict[tuple[str, str | None, str], int]) -> int:
    if r.kind in ("DaemonSet", "Pod"):
        return 1
    if r.kind == "Job":
        return _int(_get(r.doc, "spec", "parallelism"), 1)
    hpa = hpa_min.get((r.namespace, r.kind, r.name), hpa_min.get((r.namespace, None, r.name)))
    return hpa if hpa is not None else _int(_get(r.doc, "spec", "replicas"), 1)


def requested(resources: Iterable[Resource]) -> tuple[Decimal, Decimal, list[str]]:
    """(CPU cores, memory GiB, notes) requested by the workloads of one environment.

    Per pod: the containers' requests (a limit stands in for a missing request, as Kubernetes does) plus
    native sidecars (init containers with restartPolicy Always); other init containers are not counted.
    Replicas: an HPA's minReplicas when one targets the workload, else spec.replicas (default 1).
    """
    items = list(resources)
    hpa_min: dict[tuple[str, str | None, str], int] = {}
    for r in items:
        target = _get(r.doc, "spec", "scaleTargetRef")
        if r.kind == "HorizontalPodAutoscaler" and isinstance(_get(target, "name"), str):
            hpa_min[(r.namespace, target.get("kind"), target["name"])] = _int(
                _get(r.doc, "spec", "minReplicas"), 1
            )
    cpu = mem = Decimal(0)
    notes: list[str] = []
    daemonsets = 0
    for r in items:
        if r.kind not in WORKLOAD_KINDS or r.group not in ("", "apps", "batch"):
            continue
        daemonsets += r.kind == "DaemonSet"
        replicas = _replicas(r, hpa_min)
        pod = _pod_spec(r.doc)
        sidecars = [c for c in pod.get("initContainers") or [] if _get(c, "restartPolicy") == "Always"]
        for c in [*(pod.get("containers") or []), *sidecars]:
            for name in ("cpu", "memory"):
                raw = _get(c, "resources", "requests", name)
                raw = _get(c, "resources", "limits", name) if raw is None else raw
                if raw is None:
                    continue
                try:
                    q = parse_quantity(raw) * replicas
                except ValueError:
                    notes.append(f"{r.ident}: {name} {raw!r} is not a Kubernetes quantity (counted as 0)")
                    continue
                if name == "cpu":
                    cpu += q
                else:
                    mem += q / _GIB
    if daemonsets:
        notes.append(f"{daemonsets} DaemonSet(s) counted as 1 replica: their requests apply per node")
    return cpu, mem, notes


def format_number(value: Decimal, places: int = 3, *, signed: bool = False) -> str:
    text = format(value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", "+0"):
        text = "0"
    return f"+{text}" if signed and not text.startswith("-") and text != "0" else text


def format_money(amount: Decimal, currency: str, *, signed: bool = True) -> str:
    q = amount.quantize(Decimal("0.01"), ROUND_HALF_UP)
    text = format(q, "f") if q else "0.00"
    return f"{'+' if signed and q > 0 else ''}{text} {currency}"


# --- compute ---------------------------------------------------------------------------------------------


def _index(resources: Iterable[Resource]) -> dict[Key, Resource]:
    return {key_of(r): r for r in resources}


def _by_kind(o: ObjectChange) -> tuple[str, ...]:
    return (o.key[3], o.key[4], o.key[5], o.key[2])


def _label(key: Key) -> str:
    return "/".join(p for p in (key[0], key[1], key[3], key[4], key[5]) if p)


def compute(base: list[Resource], head: list[Resource], envs: dict[str, EnvInfo]) -> DiffReport:
    """What changes from base to head, per environment and app; identical objects are left out.

    `envs` should name every environment of base and head; one missing is taken as production when its
    name starts with "prod" (render's rule) and has no price table.
    """
    old_by, new_by = _index(base), _index(head)
    by_env: dict[str, dict[str, list[ObjectChange]]] = {}
    masked: list[tuple[ObjectChange, Doc, Doc]] = []
    for key in sorted(old_by.keys() | new_by.keys()):
        old_res, new_res = old_by.get(key), new_by.get(key)
        old = mask(old_res.doc) if old_res else None
        new = mask(new_res.doc) if new_res else None
        if old is not None and new is not None and _canon(old) == _canon(new):
            continue
        status = "changed" if old is not None and new is not None else "added" if old is None else "removed"
        fields = tuple(field_changes(old, new)) if old is not None and new is not None else ()
        manifest = new_res.output if new_res else old_res.output if old_res else None
        change = ObjectChange(status, key, fields, _hunk(old, new, _label(key)), manifest)
        by_env.setdefault(key[0], {}).setdefault(key[1], []).append(change)
        masked.append((change, old, new))
    env_diffs = []
    for name, apps in sorted(by_env.items()):
        in_base = [r for k, r in old_by.items() if k[0] == name]
        in_head = [r for k, r in new_by.items() if k[0] == name]
        (cpu_b, mem_b, notes_b), (cpu_h, mem_h, notes_h) = requested(in_base), requested(in_head)
        status = "added" if not in_base else "removed" if not in_head else "changed"
        env_diffs.append(
            EnvDiff(
                envs.get(name) or EnvInfo(name, name.startswith("prod")),
                status,
                tuple(
                    AppDiff(name, app, tuple(sorted(objs, key=_by_kind)))
                    for app, objs in sorted(apps.items())
                ),
                cpu_b,
                cpu_h,
                mem_b,
                mem_h,
                tuple(dict.fromkeys(notes_h + notes_b)),
            )
        )
    return DiffReport(tuple(env_diffs), tuple(_risks(env_diffs, masked)))


# --- risks -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Risk:
    """One line of the risk summary a reviewer reads first."""

    #: environments, prod, environment, deletion, argocd, rbac, network-policy, service, image, replicas,
    #: resources (the order they are listed in)
    category: str
    message: str
    env: str = ""
    app: str = ""
    resource: str = ""
    prod: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


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


def _risks(envs: list[EnvDiff], changes: list[tuple[ObjectChange, Doc, Doc]]) -> list[Risk]:
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
