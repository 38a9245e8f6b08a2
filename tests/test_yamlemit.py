"""Differential tests: the fast emitter writes exactly what PyYAML writes, or hands over to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from betcycle.model import yamlemit, yamlio
from tests.test_yamlio import YAML11_SCALARS

TRICKY = [
    *YAML11_SCALARS,
    "-",
    "-x",
    "- x",
    "?",
    "?x",
    ":",
    "a:",
    "a:b",
    "a: b",
    "a #b",
    "a#b",
    "#a",
    "'q'",
    '"q"',
    "it's",
    "x,y",
    "[a]",
    "{a}",
    "a[0]",
    "%x",
    "@x",
    "`x",
    "!x",
    "&x",
    "*x",
    "|x",
    ">x",
    "https://example.com:443/p",
    "CreateNamespace=true",
    "25%",
    "a  b",
    "é",
    "tab\there",
    "a\nb",
    "a\n\nb\n",
    " a\nb\n",
    "a \nb\n",
    "x" * 200,
    "key " * 40,
    "---",  # document markers: found by hypothesis, PyYAML quotes them at the start of a scalar
    "...",
    "--- x",
    "...x",
]
text = st.one_of(st.sampled_from(TRICKY), st.text(alphabet=" -~\n\té'\"#:", max_size=12))
scalars = st.one_of(
    text, st.integers(), st.booleans(), st.none(), st.floats(allow_nan=True, allow_infinity=True)
)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(text, children, max_size=3)),
    max_leaves=15,
)


@given(st.dictionaries(text, trees, min_size=1, max_size=5))
def test_dump_is_byte_identical_to_pyyaml(doc: dict[str, Any]) -> None:
    assert yamlio.dump(doc) == yamlio.pyyaml_dump(doc)


@given(st.lists(trees, min_size=1, max_size=5))
def test_a_list_is_byte_identical_to_pyyaml(doc: list[Any]) -> None:
    assert yamlio.dump(doc) == yamlio.pyyaml_dump(doc)


#: strings of over 1,000 characters whose lines end just below, at and just past PyYAML's line width
LONG = [
    *(("w " * 6000)[:size] for size in (1001, 4000, 9_700, 9_990, 9_998, 10_001, 11_000)),
    *("x" * size + " y" for size in (1001, 9_980, 9_995, 9_997, 9_998, 9_999, 10_000, 12_000)),
    '{"a": "' + "x, " * 1500 + '"}',
    "it's " * 300,
    "- " + "a " * 800,
    "é " * 600,
]


@pytest.mark.parametrize("value", LONG, ids=lambda v: f"{len(v)}-{v[:4]!r}")
def test_long_strings_at_any_depth(value: str) -> None:
    doc: dict[str, Any] = {"k": value, "list": [value, {"in": value}], "deep": {"a": {"b": [{"c": value}]}}}
    doc["k" * 128] = value
    doc["'" * 128] = {"x": value}
    assert yamlio.dump(doc) == yamlio.pyyaml_dump(doc)
    assert yamlio.dump([value, doc]) == yamlio.pyyaml_dump([value, doc])


def test_embedded_json_under_the_width_takes_the_fast_path() -> None:
    doc = {"data": {"dashboard.json": '{"panels": [' + ", ".join(['{"a": 1}'] * 500) + "]}"}}
    assert yamlemit.emit(doc, yamlio._YAML12_NOT_STR) == yamlio.pyyaml_dump(doc)
    groups = [{"name": "x.rules", "rules": [{"alert": "A", "expr": "up == 0", "labels": {"a": "1"}}]}]
    assert yamlemit.emit(groups, yamlio._YAML12_NOT_STR) == yamlio.pyyaml_dump(groups)


@pytest.mark.parametrize("value", TRICKY)
def test_each_tricky_string(value: str) -> None:
    doc = {"k": value, "list": [value, {"in": value}], value or "e": {"x": [value]}}
    assert yamlio.dump(doc) == yamlio.pyyaml_dump(doc)


def test_every_rendered_manifest_takes_the_fast_path_and_matches(example: Path) -> None:
    files = sorted(example.glob("environments/*/manifests/**/*.yaml"))
    assert files
    for f in files:
        doc = yaml.load(f.read_text(), Loader=yamlio.FastLoader)
        assert yamlemit.emit(doc, yamlio._YAML12_NOT_STR) == yamlio.pyyaml_dump(doc), f


def test_unusual_documents_fall_back() -> None:
    for doc in ({}, [], [[1]], "x", {"a": [[1, 2]]}, {1: "x"}, {"k": "é"}, {"k": "x " * 6000}, ["y " * 6000]):
        with pytest.raises(yamlemit.Fallback):
            yamlemit.emit(doc, yamlio._YAML12_NOT_STR)
        assert yamlio.dump(doc) == yamlio.pyyaml_dump(doc)


def test_the_string_caches_stay_bounded_and_never_change_a_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlemit, "_TEXTS_MAX", 8)
    monkeypatch.setattr(yamlemit, "_TEXTS", {})
    docs = [{f"k{i}": f"v{i}", "on": ["yes", f"x{i}", {"0755": "a: b"}]} for i in range(40)]
    for doc in [*docs, *docs]:  # the second pass reads what the first left in the (emptied) caches
        assert yamlemit.emit(doc, yamlio._YAML12_NOT_STR) == yamlio.pyyaml_dump(doc)
    texts = yamlemit._TEXTS[yamlio._YAML12_NOT_STR]
    assert 0 < len(texts.keys) <= 8 and 0 < len(texts.values) <= 8
