"""The merge rules: chart defaults < app base values < environment defaults < environment app values.

Maps merge key by key, lists (and every other value) replace, and `null` removes a key. Every value in the
result remembers which layer set it (file and line), so errors can point at the line to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from betcycle.model.yamlio import LineMap, PathKey, line_of


@dataclass(frozen=True)
class Layer:
    """One source of values: the file, the values map, and the line map of that map (paths relative to it)."""

    file: str
    values: Mapping[str, Any]
    lines: LineMap


Origins = dict[PathKey, tuple[str, int | None]]


def _record(value: Any, key: PathKey, layer: Layer, origins: Origins) -> None:
    origins[key] = (layer.file, line_of(layer.lines, key))
    if isinstance(value, dict):
        for k, v in value.items():
            _record(v, (*key, k), layer, origins)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _record(v, (*key, i), layer, origins)


def _forget(value: Any, key: PathKey, origins: Origins) -> None:
    """Drop the origins of `value` (the value at `key`) and of everything inside it.

    Origins only ever hold paths of values in the result, so walking the value finds them all: the cost is
    the size of what is dropped, and each path is dropped at most once, which keeps the merge linear. (It
    used to scan every origin for each replaced key: a 4 MB values file took minutes.)
    """
    origins.pop(key, None)
    if isinstance(value, dict):
        for k, v in value.items():
            _forget(v, (*key, k), origins)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _forget(v, (*key, i), origins)


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    return value


def _merge_into(
    target: dict[str, Any], incoming: Mapping[str, Any], key: PathKey, layer: Layer, origins: Origins
) -> None:
    for k, v in incoming.items():
        sub = (*key, k)
        if v is None:
            if k in target:
                _forget(target.pop(k), sub, origins)
            continue
        current = target.get(k)
        if isinstance(v, dict) and isinstance(current, dict):
            _merge_into(current, v, sub, layer, origins)
            origins.setdefault(sub, (layer.file, line_of(layer.lines, sub)))
        else:
            if k in target:
                _forget(current, sub, origins)
            target[k] = _copy(_strip_nulls(v))
            _record(target[k], sub, layer, origins)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def merge(layers: list[Layer]) -> tuple[dict[str, Any], Origins]:
    """Merge layers in order (later wins) and return the values with the origin of every path.

    Layers are read, never changed. The first one (a chart's defaults, the same for every app of the chart)
    is merged once and copied after that."""
    if not layers:
        return {}, {}
    first = _first_layer(layers[0])
    result: dict[str, Any] = _copy(first[0])
    origins: Origins = dict(first[1])
    for layer in layers[1:]:
        _merge_into(result, layer.values, (), layer, origins)
    return result, origins


#: the first layers merged so far: (file, id of values, id of lines) -> (values, lines, result, origins); the
#: layer's own objects are kept (and compared by identity), so an id can't be reused by another object
_FIRST: dict[tuple[str, int, int], tuple[Mapping[str, Any], LineMap, dict[str, Any], Origins]] = {}


def _first_layer(layer: Layer) -> tuple[dict[str, Any], Origins]:
    key = (layer.file, id(layer.values), id(layer.lines))
    hit = _FIRST.get(key)
    if hit is None or hit[0] is not layer.values or hit[1] is not layer.lines:
        result: dict[str, Any] = {}
        origins: Origins = {}
        _merge_into(result, layer.values, (), layer, origins)
        if len(_FIRST) >= 64:  # a few charts per repository: only a long-lived process gets here
            _FIRST.clear()
        hit = _FIRST[key] = (layer.values, layer.lines, result, origins)
    return hit[2], hit[3]


def locate(origins: Origins, key: PathKey, fallback: str) -> tuple[str, int | None]:
    """Where the value at `key` (or its nearest parent) was set."""
    probe = key
    while probe:
        if probe in origins:
            return origins[probe]
        probe = probe[:-1]
    return fallback, None
