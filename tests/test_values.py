from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from betcycle.model.values import Layer, locate, merge


def layer(file: str, values: dict[str, Any], lines: dict[Any, int] | None = None) -> Layer:
    return Layer(file, values, lines or {})


def test_maps_merge_lists_replace_null_removes() -> None:
    merged, _ = merge(
        [
            layer("chart", {"a": {"x": 1, "y": 2}, "l": [1, 2, 3], "gone": {"deep": 1}, "keep": True}),
            layer("app", {"a": {"y": 20, "z": 30}, "l": [9]}),
            layer("env", {"gone": None, "a": {"x": None}}),
        ]
    )
    assert merged == {"a": {"y": 20, "z": 30}, "l": [9], "keep": True}


def test_later_scalar_replaces_map_and_map_replaces_scalar() -> None:
    merged, _ = merge([layer("a", {"k": {"x": 1}, "s": 1}), layer("b", {"k": 5, "s": {"y": 2}})])
    assert merged == {"k": 5, "s": {"y": 2}}


def test_nulls_inside_new_maps_are_dropped() -> None:
    merged, _ = merge([layer("a", {}), layer("b", {"m": {"x": None, "y": 1}})])
    assert merged == {"m": {"y": 1}}


def test_origins_point_at_the_layer_that_set_each_value() -> None:
    _, origins = merge(
        [
            layer(
                "chart.yaml", {"image": {"tag": "", "repo": "r"}}, {("image", "tag"): 3, ("image", "repo"): 4}
            ),
            layer("env.yaml", {"image": {"tag": "1.0"}}, {("image",): 1, ("image", "tag"): 2}),
        ]
    )
    assert origins[("image", "tag")] == ("env.yaml", 2)
    assert origins[("image", "repo")] == ("chart.yaml", 4)
    assert locate(origins, ("image", "tag", "nope"), "x") == ("env.yaml", 2)
    assert locate(origins, ("missing",), "fallback") == ("fallback", None)


def test_inputs_are_not_mutated() -> None:
    base = {"a": {"b": [1]}}
    merged, _ = merge([layer("x", base), layer("y", {"a": {"c": 1}})])
    merged["a"]["b"].append(2)
    assert base == {"a": {"b": [1]}}


scalars = st.one_of(st.integers(), st.text(max_size=5), st.booleans())
keys = st.sampled_from(["a", "b", "c", "d"])
values_tree = st.recursive(
    st.one_of(scalars, st.lists(scalars, max_size=3)),
    lambda children: st.dictionaries(keys, st.one_of(children, st.none()), max_size=4),
    max_leaves=12,
)
maps = st.dictionaries(keys, st.one_of(values_tree, st.none()), max_size=4)


def _no_nulls(v: Any) -> bool:
    if isinstance(v, dict):
        return all(x is not None and _no_nulls(x) for x in v.values())
    return True


@given(maps, maps, maps)
def test_merge_properties(a: dict[str, Any], b: dict[str, Any], c: dict[str, Any]) -> None:
    merged, origins = merge([layer("a", a), layer("b", b), layer("c", c)])
    assert _no_nulls(merged)
    # the last layer's non-map, non-null values always win
    for k, v in c.items():
        if v is not None and not isinstance(v, dict):
            assert merged[k] == v
        if v is None:
            assert k not in merged
    # merging is associative in the sense that matters: (a+b)+c == a+(b+c) for maps of maps
    ab, _ = merge([layer("a", a), layer("b", b)])
    assert merge([layer("ab", ab), layer("c", c)])[0] == merged
    # every top-level key has an origin
    assert all((k,) in origins for k in merged)


def _reference_merge(layers: list[Layer]) -> tuple[dict[str, Any], dict[Any, Any]]:
    """The merge as first written, forgetting origins by scanning them all (quadratic): the oracle."""
    from betcycle.model.values import _copy, _record, _strip_nulls
    from betcycle.model.yamlio import line_of

    def forget(key: tuple[Any, ...], origins: dict[Any, Any]) -> None:
        for k in [k for k in origins if k[: len(key)] == key]:
            del origins[k]

    def merge_into(
        target: dict[str, Any], incoming: Any, key: tuple[Any, ...], lay: Layer, origins: Any
    ) -> None:
        for k, v in incoming.items():
            sub = (*key, k)
            if v is None:
                if k in target:
                    del target[k]
                    forget(sub, origins)
                continue
            current = target.get(k)
            if isinstance(v, dict) and isinstance(current, dict):
                merge_into(current, v, sub, lay, origins)
                origins.setdefault(sub, (lay.file, line_of(lay.lines, sub)))
            else:
                forget(sub, origins)
                target[k] = _copy(_strip_nulls(v))
                _record(target[k], sub, lay, origins)

    result: dict[str, Any] = {}
    origins: dict[Any, Any] = {}
    for lay in layers:
        merge_into(result, lay.values, (), lay, origins)
    return result, origins


@given(maps, maps, maps)
def test_linear_merge_keeps_the_origins_of_the_original(
    a: dict[str, Any], b: dict[str, Any], c: dict[str, Any]
) -> None:
    layers = [layer("a", a), layer("b", b), layer("c", c)]
    assert merge(layers) == _reference_merge(layers)


class _CountedKey(str):
    """A key that counts how often it is compared: scanning every origin per key compares keys n² times."""

    comparisons = 0

    def __eq__(self, other: object) -> bool:
        _CountedKey.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_merge_is_linear_in_the_size_of_the_values() -> None:
    # no timing: count key comparisons, which the old quadratic forget did for every (replaced key, origin)
    def comparisons(n: int) -> int:
        def big(tag: str) -> dict[str, Any]:
            return {_CountedKey("config"): {_CountedKey(f"K{i}"): f"{tag}{i}" for i in range(n)}}

        _CountedKey.comparisons = 0
        merged, origins = merge([layer("chart", big("a")), layer("app", big("b")), layer("env", big("c"))])
        assert merged["config"]["K7"] == "c7" and origins[("config", "K7")] == ("env", None)
        return _CountedKey.comparisons

    small, large = comparisons(500), comparisons(2000)
    assert large <= 4 * small + 100  # 4x the keys, at most ~4x the work (quadratic would be 16x)
    assert large <= 20 * 2000  # a dozen comparisons per key (dict and tuple lookups), not one per origin


def test_a_first_layer_merged_again_gives_a_fresh_copy_with_the_same_origins() -> None:
    """The first layer (a chart's defaults) is merged once per process: later merges copy it, so what one
    caller does with its result never reaches another's, and the origins are those of a merge from scratch."""
    chart = layer("chart", {"a": {"x": 1, "l": [1, {"y": 2}]}, "gone": None}, {("a",): 3, ("a", "x"): 4})
    first, first_origins = merge([chart, layer("app", {"a": {"x": 5}})])
    first["a"]["l"][1]["y"] = "changed by the first caller"
    first["a"]["l"].append("more")
    second, second_origins = merge([chart, layer("env", {"b": 1})])
    assert second == {"a": {"x": 1, "l": [1, {"y": 2}]}, "b": 1}
    assert chart.values == {"a": {"x": 1, "l": [1, {"y": 2}]}, "gone": None}
    assert second_origins[("a", "x")] == ("chart", 4) and first_origins[("a", "x")] == ("app", None)
    # a new layer object with other values under the same file name is merged afresh
    other = layer("chart", {"a": {"x": 9}})
    assert merge([other])[0] == {"a": {"x": 9}}
