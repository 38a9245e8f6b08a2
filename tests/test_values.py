from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from betcycle.values import Layer, locate, merge


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
