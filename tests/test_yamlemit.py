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
    for doc in ({}, [1], {"a": [[1, 2]]}, {1: "x"}, {"k": "é"}, {"k": "x" * 2000}):
        with pytest.raises(yamlemit.Fallback):
            yamlemit.emit(doc, yamlio._YAML12_NOT_STR)
        assert yamlio.dump(doc) == yamlio.pyyaml_dump(doc)
