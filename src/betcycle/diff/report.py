"""The types a semantic diff produces (DiffReport and what it holds) and their JSON shape.

Shared by engine.py (which builds them), risks.py and formats.py; it imports none of them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

Doc = dict[str, Any] | None

#: (env, app, group, kind, namespace, name); app is "" for the Argo CD objects
Key = tuple[str, str, str, str, str, str]

STATUSES = ("added", "removed", "changed")


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


# --- field changes ---------------------------------------------------------------------------------------


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
