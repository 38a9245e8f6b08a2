"""Semantic diff of rendered resources: what Argo CD would sync differently, per environment and app.

Pure functions: the git side hands over base and head Resources, `compute` returns a DiffReport and
formats.py writes it. Secrets are masked (on copies, by secrets.Masker, under one random key per
`compute`) before anything is compared, so field changes, hunks, risks and every output format only ever
see keyed digests.

Risk analysis lives in risks.py, quantities and requested resources in cost.py and the report
types in report.py; this module re-exports their public names.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from betcycle.diff.cost import WORKLOAD_KINDS, format_money, format_number, parse_quantity, requested
from betcycle.diff.report import (
    STATUSES,
    AppDiff,
    DiffReport,
    Doc,
    EnvDiff,
    EnvInfo,
    FieldChange,
    Key,
    ObjectChange,
    Risk,
    _canon,
    env_info,
)
from betcycle.diff.risks import risks, short_tag, show_value
from betcycle.diff.secrets import Masker
from betcycle.model.findings import json_path
from betcycle.model.resources import Resource
from betcycle.model.yamlio import dump

__all__ = [
    "STATUSES",
    "WORKLOAD_KINDS",
    "AppDiff",
    "DiffReport",
    "Doc",
    "EnvDiff",
    "EnvInfo",
    "FieldChange",
    "Key",
    "Masker",
    "ObjectChange",
    "Risk",
    "compute",
    "env_info",
    "field_changes",
    "format_money",
    "format_number",
    "key_of",
    "parse_quantity",
    "requested",
    "short_tag",
    "show_value",
]


def key_of(res: Resource) -> Key:
    return (res.env or "", res.app or "", res.group, res.kind, res.namespace, res.name)


# --- structural diff -------------------------------------------------------------------------------------


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


# --- compute ---------------------------------------------------------------------------------------------


def _items(resources: Iterable[Resource]) -> list[Resource]:
    """`kind: List` (and FooList) objects as their items, as manifests.parse reads committed files.

    A fresh render keeps a List whole while the base side reads its items, so without this one object
    would show as removed Secrets plus an added List; the items keep the List's file.
    """
    out = []
    for r in resources:
        items = r.doc.get("items")
        if r.kind.endswith("List") and isinstance(items, list):
            out += [
                Resource(
                    i, env=r.env, app=r.app, source=r.source, line=r.line, output=r.output, origins=r.origins
                )
                for i in items
                if isinstance(i, dict)
            ]
        else:
            out.append(r)
    return out


def _index(resources: Iterable[Resource]) -> dict[Key, Resource]:
    return {key_of(r): r for r in _items(resources)}


def _by_kind(o: ObjectChange) -> tuple[str, ...]:
    return (o.key[3], o.key[4], o.key[5], o.key[2])


def _label(key: Key) -> str:
    return "/".join(p for p in (key[0], key[1], key[3], key[4], key[5]) if p)


def compute(
    base: list[Resource],
    head: list[Resource],
    envs: dict[str, EnvInfo],
    context: Sequence[Resource] = (),
    masker: Masker | None = None,
) -> DiffReport:
    """What changes from base to head, per environment and app; identical objects are left out.

    `envs` should name every environment of base and head; one missing is taken as production when its
    name starts with "prod" (render's rule) and has no price table. `context`: unchanged objects outside
    the compared set (a selective diff) that still count toward each environment's requested totals.
    `masker`: masks secrets on both sides; by default a new one, so digests are keyed for this report only.
    """
    masker = masker or Masker()
    old_by, new_by = _index(base), _index(head)
    by_env: dict[str, dict[str, list[ObjectChange]]] = {}
    masked: list[tuple[ObjectChange, Doc, Doc]] = []
    for key in sorted(old_by.keys() | new_by.keys()):
        old_res, new_res = old_by.get(key), new_by.get(key)
        if old_res is not None and new_res is not None and old_res.doc == new_res.doc:
            continue  # the same object: masked the same too (most of a selective diff's Argo CD objects)
        old = masker.mask(old_res.doc) if old_res else None
        new = masker.mask(new_res.doc) if new_res else None
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
        around = [r for r in _items(context) if r.env == name]
        in_base = [r for k, r in old_by.items() if k[0] == name] + around
        in_head = [r for k, r in new_by.items() if k[0] == name] + around
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
    return DiffReport(tuple(env_diffs), tuple(risks(env_diffs, masked)))
