from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from betcycle.errors import UserError
from betcycle.model.yamlio import atomic_write, dump, load_all, load_all_with_lines, load_with_lines


def test_yaml_1_1_scalars_are_read_the_kubernetes_way() -> None:
    # Kubernetes (go-yaml v2) reads these as YAML 1.1: booleans and an octal integer
    data = load_all("a: on\nb: yes\nc: 0755\nd: off\ne: '0755'\n", "x.yaml")[0]
    assert data == {"a": True, "b": True, "c": 493, "d": False, "e": "0755"}


def test_dump_quotes_what_yaml_1_1_would_misread() -> None:
    text = dump({"a": "on", "b": "yes", "c": "0755", "d": "1.10", "e": "plain"})
    assert load_all(text, "x")[0] == {"a": "on", "b": "yes", "c": "0755", "d": "1.10", "e": "plain"}
    assert "e: plain\n" in text


def test_dump_keeps_order_and_uses_literal_blocks() -> None:
    text = dump({"z": 1, "a": "line1\nline2\n"})
    assert text == "z: 1\na: |\n  line1\n  line2\n"


def test_lines_of_every_value() -> None:
    data, lines = load_with_lines("a: 1\nb:\n  c:\n    - x\n    - y\n", "f.yaml")
    assert data == {"a": 1, "b": {"c": ["x", "y"]}}
    assert lines[("a",)] == 1
    assert lines[("b", "c")] == 3
    assert lines[("b", "c", 1)] == 5


def test_duplicate_key_is_an_error_with_both_lines() -> None:
    with pytest.raises(UserError) as e:
        load_with_lines("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert str(e.value).startswith("f.yaml:3: duplicate key 'a' (first defined on line 1)")


def test_indentation_error_names_file_and_line() -> None:
    with pytest.raises(UserError) as e:
        load_with_lines("image:\n  tag: 1\n   repo: x\n", "env.yaml")
    assert e.value.path == "env.yaml"
    assert e.value.line == 3
    assert "invalid YAML" in e.value.message


def test_multi_document_lines() -> None:
    docs = load_all_with_lines("---\na: 1\n---\n# only a comment\n---\nb: 2\n", "x")
    assert docs == [({"a": 1}, 2), ({"b": 2}, 6)]


def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.yaml"
    atomic_write(target, "one\n")
    atomic_write(target, "two\n")
    assert target.read_text() == "two\n"
    assert [p.name for p in target.parent.iterdir()] == ["f.yaml"]


# --- differential tests for the fast (Rust, YAML 1.2) path used on rendered manifests -----------------

YAML11_SCALARS = [
    "on",
    "On",
    "ON",
    "off",
    "yes",
    "Yes",
    "no",
    "NO",
    "y",
    "Y",
    "n",
    "N",
    "true",
    "False",
    "null",
    "~",
    "0755",
    "0o17",
    "0x1F",
    "0b101",
    "1_000",
    "1:30",
    "190:20:30",
    "1e3",
    "1.0e+3",
    ".5",
    "1.10",
    "+12",
    "-0",
    ".inf",
    "-.Inf",
    ".nan",
    "2024-01-01",
    "2001-12-14t21:59:43.10-05:00",
    "=",
    "<<",
    "8080",
    "1.4.0",
    "25%",
    "*",
    "&",
    "!tag",
    "a: b",
    "- x",
    "#",
    "",
    " lead",
    "trail ",
    "multi\nline\n",
]


def _both(text: str) -> tuple[object, object]:
    from betcycle.model import yamlio

    slow = yaml.load(text, Loader=yamlio.FastLoader)
    fast = yamlio.load_all_with_lines(text, "x", generated=True)
    return slow, fast[0][0] if fast else None


@pytest.mark.parametrize("value", YAML11_SCALARS)
def test_dumped_strings_read_back_identically_by_both_parsers(value: str) -> None:
    slow, fast = _both(dump({"k": value, "list": [value], value or "empty": 1}))
    assert slow == fast == {"k": value, "list": [value], value or "empty": 1}


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.one_of(
            st.text(max_size=12),
            st.integers(),
            st.booleans(),
            st.none(),
            st.floats(allow_nan=False, allow_infinity=False),
            st.lists(st.text(max_size=6), max_size=3),
        ),
        max_size=6,
    )
)
def test_fast_path_agrees_with_pyyaml_on_anything_we_dump(doc: dict[str, object]) -> None:
    slow, fast = _both(dump({"apiVersion": "v1", "kind": "ConfigMap", "data": doc}))
    assert slow == fast


def test_fast_path_agrees_on_every_rendered_manifest(example: Path) -> None:
    files = sorted(example.glob("environments/*/manifests/**/*.yaml"))
    assert files
    for f in files:
        slow, fast = _both(f.read_text())
        assert slow == fast, f


def test_hand_written_files_always_use_yaml_1_1() -> None:
    from betcycle.model import yamlio

    assert yamlio.load_all_with_lines("a: on\nb: 0755\n", "x")[0][0] == {"a": True, "b": 493}
