"""Kubernetes quantities, and the CPU and memory an environment's workloads request (what a diff prices)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from betcycle.model.resources import Resource

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
