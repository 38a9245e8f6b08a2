from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from betcycle.errors import UserError
from betcycle.model import yamlio
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


# --- the fast path for anyone's YAML (`generated=False`): PyYAML's result, or PyYAML itself ---------------
#
# `yamlio.fast_load` reads a text with the Rust parser (YAML 1.2) unless a scan finds anything YAML 1.1 might
# read differently. The set of disagreeing scalars was found by comparing both readers on the corpus below;
# these tests keep that comparison: for every text, either the fast path fell back (None) or it returned
# exactly what PyYAML's StrictLoader returns (documents, types and first lines).


def _same(a: object, b: object) -> bool:
    """Equal and of the same types all the way down (1 == 1.0 == True would hide a wrong reading)."""
    import math

    if type(a) is not type(b):
        return False
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(type(k) is str and _same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _fast_or_fell_back(text: str, *, generated: bool = False) -> bool:
    """Whether the fast path read every document of `text` itself. Either way load_all_with_lines must
    return exactly what PyYAML's StrictLoader returns (documents, types, first lines), or raise its error."""
    from betcycle.model import yamlio

    try:
        slow = yamlio._load_checked(yamlio.StrictLoader, text, "x")
    except UserError as exc:
        assert yamlio.fast_load(text, generated=generated) is None, text
        with pytest.raises(UserError) as got:
            yamlio.load_all_with_lines(text, "x", generated=generated)
        assert (got.value.message, got.value.line) == (exc.message, exc.line), text
        return False
    got_docs = yamlio.load_all_with_lines(text, "x", generated=generated)
    assert len(got_docs) == len(slow), (text, got_docs, slow)
    for (doc, line), (slow_doc, slow_line) in zip(got_docs, slow, strict=True):
        assert line == slow_line, (text, got_docs, slow)
        assert _same(doc, slow_doc), (text, got_docs, slow)
    fast = yamlio.fast_load(text, generated=generated)
    assert fast is None or fast == got_docs
    return fast is not None


_SIGNS = ["", "+", "-"]
#: one word per scalar, as in a YAML file
_BODIES_TEXT = """0 00 1 01 07 08 10 0755 0o17 0O17 0x1F 0X1F 0xg 0b101 0B101 0x_1F 0x_ _1 1_ 1_000 1__0 1,000 1e3 1E3 1e+3
1e-3 1.0e3 1.0e+3 1. .5 .5e3 1.5 1.10 1.4.0 1.4.0-rc1 10.0.0.0/8 1:30 190:20:30 1:30.5 01:30 0e0 1e400 .inf .Inf .inF inf
.nan .NaN .nAn nan Infinity 99999999999999999999 123456789012345678 25% 2024-01-01 2024-1-1 2024-01-01T00:00:00Z
2024-01-01t00:00:00 2024-13-45 20240101 100m 128Mi 1Gi 1e3Mi 1h 30s 44136fa355b3 1d 1f 0755x"""
_BODIES = _BODIES_TEXT.split()
_WORDS = [
    *(c for w in ("yes", "no", "on", "off", "y", "n", "true", "null") for c in (w, w.upper(), w.title(), w[0] + w[1:].upper())),
    "~", "=", "<<", "<", ">", "|", "-", "--x", "-c", "a:b", "a#b", "#", "*", "&", "!", "@", "%", "?", "", "é", "a b",
]  # fmt: skip
_CONTEXTS = [
    "k: {W}\n", "{W}: v\n", "- {W}\n", "[{W}]\n", "{{k: {W}}}\n", "[{W}, x]\n", "{{{W}: x}}\n", "k: {W} # c\n",
    "? {W}\n", "k:\n  - {W}\n", "k: '{W}'\n", 'k: "{W}"\n', '{{"k":{W}}}\n', "k: {W}\n  x\n", "k: x\n  {W}\n",
    "k: |\n  {W}\n", "k: {W}\r\n", "- - {W}\n", "a: 1\n---\nk: {W}\n", "k: {W} x\n", "{W} x: 1\n", "k: {W} : x\n",
    "{W} : 1\n", "k: x\n  {W} y\n", "k: [{W} x]\n", "- {W}  # c\n",
]  # fmt: skip


@pytest.mark.parametrize("word", sorted({s + b for s in _SIGNS for b in _BODIES} | set(_WORDS)))
def test_fast_path_reads_every_candidate_scalar_as_pyyaml_or_falls_back(word: str) -> None:
    for context in _CONTEXTS:
        with contextlib.suppress(UserError):  # PyYAML refuses it, and the fast path left it to PyYAML
            _fast_or_fell_back(context.format(W=word))


@pytest.mark.parametrize("value", YAML11_SCALARS)
def test_yaml_1_1_scalars_written_plain_take_pyyaml(value: str) -> None:
    # the scalars YAML 1.1 reads as something else never reach the fast path unquoted
    if value in ("on", "yes", "no", "0755", "1:30", "2024-01-01", "=", "<<", "0b101", "1_000", "1e3", "0o17"):
        assert not _fast_or_fell_back(f"k: {value}\n")
    _fast_or_fell_back(f"k: {value}\n")
    _fast_or_fell_back(f"{value}: 1\n")
    _fast_or_fell_back(f"- {value}\n")


_ADVERSARIAL = [
    # yaml-rs reads an empty block scalar at the very end as "\n", and keeps a final line break that is not there
    "k: |\n", "k: >\n  \n", "k: |+\n", "- - |\n", "a:\n  b: |\n", "k: |\n  a", "k: >\n  a", "k: |+\n  a\n\n  ",
    # a quote inside a block scalar, a comment or a quoted key must not hide the lines after it from the scan
    "k: |\n  it's: 'a\nx: on\ny: 'b'\n", "\"a: 'b\": on #'\n", "k: \"x\n  y: 'z\"\nw: on #'\n",
    "k: |\n  a: \"b\nx: on\ny: \"c\"\n", "k: >\n  [a,\nx: on\n", "k: 'a\n  ---\n  b'\nx: on\n",
    "k: 1 # 'x\nj: on #'\n", "k: ['a''b', on]\n", 'k: ["a]", on]\n',
    # flow collections libyaml refuses and yaml-rs reads
    "k: [a:, b]\n", "k: [a:]\n", "k: {a:, b}\n", "k: {a: :b}\n", "k: [>]\n", "{k: >}\n", "k: [a,,b]\n",
    # characters and markers
    "a: \x07\n", "a:\tb\n", "a: b\rc: d\n", "\ufeffa: 1\n", "a: x\x85y\n", "a: x\u2028y\n", "%YAML 1.1\n---\na: 1\n",
    "a: 1\n...\nb: 2\n", "--- a\n", "--- |\n  x\n", "----\na: 1\n", "a: 1\n--- # c\nb: 2\n---\n# nothing\n---\nc: 3\n",
    # duplicate keys, anchors, merge keys, tags, non-string keys, dates
    "a: 1\na: 2\n", "a: 1\n'a': 2\n", "A: 1\n\"\\x41\": 2\n", "a: &x 1\nb: *x\n", "<<: {a: 1}\n", "a: !!str 1\n",
    "1: a\n", "1.5: a\n", "true: a\n", "null: a\n", "[a]: b\n", "{a: 1}: b\n", "a: 2024-01-01\n", "a: '2024-01-01'\n",
    "a: 1\n",
]  # fmt: skip


def test_fast_path_is_taken_for_plain_manifests() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a # c\n  labels: {app: a, tier: web}\n"
    text += "data:\n  port: '8080'\n  cpu: 100m\n  script: |\n    echo on\n  list: [1, 2.5, -c, 'x']\n"
    assert _fast_or_fell_back(text)
    assert _fast_or_fell_back("# c\n---\n" + text + "---\n\n" + text.replace("\n", "\r\n"))
    # prose: a word YAML 1.1 reads as a boolean, but only as the whole scalar
    assert _fast_or_fell_back("description: no value is set\n  on the node, yes\nnote: 1 of 2\n")


def test_fast_path_keeps_every_documents_first_line() -> None:
    from betcycle.model import yamlio

    text = (
        "# head\n\na: 1\n--- # c\n\n  # indented comment\nb:\n  - 1\n---\n---\n# only a comment\n---\n[c]\n"
    )
    assert yamlio.fast_load(text) == [({"a": 1}, 3), ({"b": [1]}, 7), (["c"], 13)]
    assert load_all_with_lines(text, "x") == yamlio._load_checked(yamlio.StrictLoader, text, "x")


def test_only_the_documents_that_might_read_differently_go_to_pyyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    from betcycle.model import yamlio

    read: list[str] = []
    slow = yamlio._load_checked
    monkeypatch.setattr(
        yamlio, "_load_checked", lambda cls, text, path: read.append(text) or slow(cls, text, path)
    )
    text = "a: 1\n---\n# c\nb: on\n---\nc: [1, 2]\n---\nd: |\n  x\n"
    assert load_all_with_lines(text, "x") == [
        ({"a": 1}, 1),
        ({"b": True}, 4),
        ({"c": [1, 2]}, 6),
        ({"d": "x\n"}, 8),
    ]
    assert read == ["# c\nb: on\n"]  # the others were read by yaml-rs
    # an error in a document PyYAML reads: the whole stream is read again, for PyYAML's own first error
    read.clear()
    with pytest.raises(UserError) as e:
        load_all_with_lines("a: 1\n---\nb: on\nb: off\n", "x")
    assert (e.value.line, len(read)) == (4, 2)


@pytest.mark.parametrize("generated", [False, True])
def test_deep_block_nesting_never_reaches_the_rust_parser(generated: bool) -> None:
    # 20,000 levels crash yaml-rs's recursion (a segfault, not an exception): PyYAML refuses them with a line
    text = ("# Generated by betcycle render\n" if generated else "") + "- " * 20_000 + "a\n"
    with pytest.raises(UserError, match="nested more than"):
        load_all_with_lines(text, "deep.yaml", generated=generated)


_ATOMS = [
    "a", "x y", "key", "true", "False", "null", "~", "", "0", "1", "-1", "+1", "1.5", "1.", "1.4.0", "100m", "10.0.0.0/8",
    "-c", "--x", "a:b", "a#b", "'q'", '"q"', "'it''s'", '"\\t"', '"\\x41"', '"\\u00e9"', '"\\/"', "é", "[]", "{}", "[a]",
    "{a: 1}", "[a, b]", "[1, 2]", '{"a":1}', "[a,]", "{a:1}", "[a: 1]", "[[a]]", "[{a: b}, c]", "['a', \"b\"]", "[-a]",
    "{a b: c d}", "1 2", "x\n  y", "1\n  2", "'a\n  b'", '"a\n\n  b"', "http://x/y?z=1", "{{ x }}", "a'", "|", ">", "|-",
    "on", "No", "y", "0755", "1:30", "1_000", "1e3", "0x1F", ".inF", "2024-01-01", "=", "<<", "*", "&a x", "!t x", "[on]",
    "{a: [b, {c: on}]}", "[a, [b]", '"\\q"', "@", "%", "`", "? x", "- x", "#", " # c",
]  # fmt: skip


@st.composite
def _documents(draw: st.DrawFn, depth: int = 0, indent: int = 0) -> str:
    """A block mapping or sequence of atoms, nested mappings/sequences and block scalars, with comments."""
    out = ""
    seq = draw(st.booleans())
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 9)) == 0:
            out += draw(st.sampled_from(["\n", "# c\n", " " * indent + "# c\n"]))
        head = " " * indent + ("-" if seq else draw(st.sampled_from([*_ATOMS[:40], "k1", "k1"])) + ":")
        kind = draw(st.integers(0, 9))
        if kind < 6 or depth >= 2:
            atom = draw(st.sampled_from(_ATOMS)).replace("\n  ", "\n" + " " * (indent + 2))
            out += head + " " + atom + draw(st.sampled_from(["", " ", " # c"])) + "\n"
        elif kind < 7:
            lines = draw(st.lists(st.sampled_from(["x", "", "  y", "on", "# z", "a: 'b"]), max_size=3))
            body = "".join(" " * (indent + 2) + line + "\n" if line else "\n" for line in lines)
            out += head + " " + draw(st.sampled_from(["|", ">", "|-", ">+", "|2"])) + "\n" + body
        else:
            out += head + "\n" + draw(_documents(depth + 1, indent + 2))
    return out


@settings(max_examples=400, deadline=None)
@given(st.lists(_documents(), min_size=1, max_size=3), st.sampled_from(["---\n", "--- # c\n", "...\n---\n"]))
def test_fast_path_agrees_with_pyyaml_on_random_documents(docs: list[str], marker: str) -> None:
    with contextlib.suppress(UserError):  # PyYAML refuses the text, and the fast path left it to PyYAML
        _fast_or_fell_back(marker.join(docs))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab01:-_ .,#[]{}'\"\n\n\n  |>&*!?%@=<~+eExXoO\\\t\ré", max_size=40))
def test_fast_path_agrees_with_pyyaml_on_random_text(text: str) -> None:
    with contextlib.suppress(UserError):
        _fast_or_fell_back(text)


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="0123456789" * 3 + "abcdefinxoetzEFINXOTZ_.:+-mMsGiK", min_size=1, max_size=8),
    st.sampled_from(["k: {W}\n", "- {W}\n", "k: [{W}, a]\n", "{W}: x\n", "k: {{a: {W}}}\n"]),
)
def test_fast_path_agrees_with_pyyaml_on_number_like_words(word: str, context: str) -> None:
    with contextlib.suppress(UserError):
        _fast_or_fell_back(context.format(W=word))


def test_fast_path_agrees_on_every_fixture_and_rendered_manifest(example: Path) -> None:
    files = sorted(p for p in example.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    fixtures = Path(__file__).parent / "fixtures"
    files += sorted(p for p in fixtures.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    taken = 0
    for f in files:
        text = f.read_text()
        try:
            taken += _fast_or_fell_back(text)  # read as anyone's file, header or not
        except UserError:
            continue  # a fixture PyYAML refuses on purpose
        if text.startswith("# Generated by betcycle render"):
            assert _fast_or_fell_back(text, generated=True), f  # a rendered manifest is always read fast
    assert taken > len(files) // 2  # most files are read fast: a scan that always falls back would fail here


# --- multi-line quoted and plain scalars (PyYAML wraps long strings at width 80) ---------------------------
#
# The scan follows a quoted scalar over several lines, and skips the lines after the first of a plain
# scalar, only where both readers read the same text; everything else is left to the scan as before.

_MULTILINE = [
    # quoted: folding, blank lines, trailing spaces, escapes, `''`, `\` line continuations, escaped quotes
    "k: 'a\n  b'\n", "k: 'a\n\n  b'\n", "k: 'a  \n  b  '\n", "k: 'a\n  \n\n  b'\n", "k: 'it''s\n  ''x'''\n",
    'k: "a\\\n  b"\n', 'k: "a\\\n\n  b"\n', 'k: "a\\"\n  b\\""\n', 'k: "a\\ \n  b"\n', 'k: "a\\\\\n  b"\n',
    'k: "\\x41\n  \\u00e9 \\t"\n', "k: '{\"a\": 1,\n  \"b\": [2]}'\n", 'k: "x\n  y" # c\nz: 1\n',
    # YAML 1.1-only values, document markers, comments and keys inside, or after, a quoted scalar
    "k: 'on\n  yes'\nj: on\n", "k: '0755\n  x'\n", "k: 'a\n---\n  b'\n", "k: 'a\n...\n  b'\n", "k: 'a\n  # c\n  b'\n",
    "k: 'a\n  b: on'\n", "k: 'a\n  b'\nx: on\n", "k: 'a\n  b' x\ny: on\n", "k: 'a\n  b': 1\n", "'a\n  b': 1\n",
    "'a\n  b'\n", "'a\nb'\n", "'a\nb': 1\n", "- 'a\nb'\n", "k: 'a\n  b'#c\n", "k: 'a\nb'\n", "k:\n  'a\n  b'\n", "k:\n  'a\n b'\nx: on\n", "- 'a\n  b'\n- on\n",
    "- 'a\n b'\n", "- k: 'a\n    b'\n  j: on\n", "- k: 'a\n  b'\n  j: on\n", "k: 'a\n  b\n", "k: 'a\n  b''\n",
    "a:\n  k: 'x\n  y'\n  j: on\n", "a:\n  k: 'x\n    y'\n  j: on\n", "k: &a 'x\n  y'\nj: *a\n", "k: ['a\n  b']\n",
    "? 'a\n  b'\n: 1\n", "k: !!str 'a\n  b'\n", "k: 'a\n  b'\r\nj: 1\r\n", "k: 'a\r\n  b'\r\n",
    # a quote in a block scalar, a comment or a plain scalar must not hide the lines after them
    "k: |\n  a: 'b\n    c'\nx: on\n", "k: |\n  a: 'b\n  c'\nx: on\n", "k: |\n  'b\n    c'\nx: on\n", "k: >\n  a: 'b\n\n   c' \nx: on\n",
    "k: 1 # a: 'b\n  c: on'\n", "k: x # 'y\n  z: on'\n", "a: # b: 'c\n  d: on'\n", "k: text 'q\n  on'\n",
    "k: |\n  x\n  y: 'z\n   w'\nj: on\n",
    # plain: continuations that look like flow collections, words YAML 1.1 reads, keys, comments, markers
    "k: a\n  {{ x }}.\n", "k: a\n  [b]\n", "k: a\n  on\n", "k: a\n  yes no\n", "k: a\n  0755\n", "k: on\n  a\n",
    "k: 0755\n  1\n", "k: a\n  b: on\n", "k: a\n  b #c\n", "k: a\n  # c\n  on\n", "k: a\n---\n  b\n", "k: a\n...\n",
    "k: a\n\n  on\n", "k: a  \n  {b}  \n", "k: a\non\n", "k: a\n on\n", "- a\n  on\n- a\n on\n", "- a\n {x}\n",
    "- k: a\n    on\n", "- k: a\n   {x}\n", "- k: a\n  on\n", "k:\n  a\n  on\n", "k: a\n  &b c\n", "k: a\n  *b\n",
    "k: a\n  !t x\n", "k: a\n  - on\n", "k: a\n  ? x\n", "k: a\n  : x\n", "k: a\n  |\n", "k: it's\n  {x}\n",
    "k: a\n  'b'\n", "k: a\n  {x}:\n", "k: a #c\n  {x}\n", "k: |\n  a\n    {x}\nj: on\n", "k: a\n  {x}\r\nj: 1\r\n",
    "a:\n  k: a\n    {x}\n  j: on\n", "a:\n  k: a\n  {x}\n", "a: b\n  c: d\n    {x}\n", "k: a\n    b\n  {x}\n",
]  # fmt: skip


@pytest.mark.parametrize("text", [*_ADVERSARIAL, *_MULTILINE])
def test_fast_path_on_texts_that_once_read_differently_and_multi_line_scalars(text: str) -> None:
    with contextlib.suppress(UserError):  # PyYAML refuses it: so does load_all_with_lines, through PyYAML
        _fast_or_fell_back(text)


def test_multi_line_scalars_pyyaml_wraps_take_the_fast_path() -> None:
    long = " ".join(f"word{i}" for i in range(40))
    dashboard = '{"a": "' + long + '", "expr": "sum(rate(x{job=\\"y\\"}[5m]))", "it\'s": [1, 2]}'
    doc = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "annotations": {"description": "p" * 70 + " {{ $value }}. on"}},
        "data": {"d.json": dashboard, "e": ["- " + long, long + " yes"], "f": {"g": 'say "' + long + '"'}},
    }
    text = yaml.safe_dump(doc)  # width 80: every long string is wrapped
    assert "\n      {{ $value }}. on\n" in text
    assert _fast_or_fell_back(text)
    assert _fast_or_fell_back("---\n".join([text, text]))


_LINE_PARTS = [
    "a", "b c", "on", "yes", "no", "0755", "1e3", "{{ x }}", "[y]", "{z: 1}", "k: v", "k:", "- x", "? x", ": x",
    "# c", "x # c", "a#b", "---", "...", "'", "''", '"', '\\"', "\\", "\\ ", "&a", "*a", "!t", "|", ">", "é", "",
    "  ", "x  ", "it's", "%", "@", "`", ",", "a,b",
]  # fmt: skip


@st.composite
def _multiline_texts(draw: st.DrawFn) -> str:
    """A key or entry whose quoted or plain scalar goes on over a few lines, at random indentations, with
    something after it."""
    indent = draw(st.sampled_from([0, 2]))
    head = " " * indent + draw(
        st.sampled_from(["k: ", "- ", "- k: ", "k:\n" + " " * (indent + 2), "a: 1\nk: "])
    )
    quote = draw(st.sampled_from(["'", '"', "", ""]))
    lines = [draw(st.sampled_from(_LINE_PARTS)) for _ in range(draw(st.integers(1, 4)))]
    body = lines[0]
    for line in lines[1:]:
        body += "\n" + " " * draw(st.integers(0, indent + 6)) + line
    tail = draw(st.sampled_from(["", " ", " # c", " x", ": 1"]))
    after = draw(st.sampled_from(["", "j: on\n", "  j: on\n", "- on\n", "    on\n", "j: 'x\n  y'\n"]))
    return head + quote + body + quote + tail + "\n" + " " * indent + after


@settings(max_examples=1500, deadline=None)
@given(_multiline_texts())
def test_fast_path_agrees_with_pyyaml_on_multi_line_scalars(text: str) -> None:
    with contextlib.suppress(UserError):
        _fast_or_fell_back(text)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet="abk-_.", min_size=1, max_size=6),
        st.one_of(
            st.text(alphabet="ab onyes0755:#-{}[]'\"\\,.é", max_size=200),
            st.lists(st.text(alphabet="ab onyes0:#-{}'\"\\", max_size=120), max_size=3),
        ),
        max_size=4,
    ),
    st.sampled_from([20, 40, 80]),
)
def test_fast_path_agrees_with_pyyaml_on_pyyaml_wrapped_text(doc: dict[str, object], width: int) -> None:
    text = yaml.safe_dump({"data": doc}, width=width, allow_unicode=True)
    with contextlib.suppress(UserError):
        _fast_or_fell_back(text)


# --- load_with_lines builds plain documents itself (strings from their nodes, other scalars by PyYAML) -----


def _constructed_by_pyyaml(text: str, strict_types: bool) -> object:
    """What load_with_lines returned before it built documents itself: PyYAML's construct_document."""
    loader = yamlio.FastLoader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def _same_as_pyyaml(text: str, strict_types: bool) -> None:
    try:
        data, _ = yamlio.load_with_lines(text, "t.yaml", strict_types=strict_types)
    except UserError:
        return  # refused before construction (duplicate key, a date, an odd tag...): as before
    expected = _constructed_by_pyyaml(text, strict_types)
    assert data == expected and type(data) is type(expected), text
    assert repr(data) == repr(expected), text  # 1 and True, 1.0 and 1 compare equal: the types must match too


@settings(max_examples=400, deadline=None)
@given(_documents(), st.booleans())
def test_load_with_lines_builds_what_pyyaml_builds(text: str, strict_types: bool) -> None:
    _same_as_pyyaml(text, strict_types)


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: 1.5\nc: true\nd: null\ne: ~\nf: '1'\ng: 0x1F\nh: 1_000\ni: 1:30\nj: .inf\nk: -.nan\n",
        "a: !!str 1\nb: !!int '7'\nc: !!float '2'\n",
        "list: [1, a, {b: [c, 2]}]\nblock: |\n  x\n  y\n",
        "a: &x {b: 1}\nc: *x\n",  # an alias: PyYAML builds it (one shared object)
        "base: &b {x: 1}\nmerged:\n  <<: *b\n  y: 2\n",  # a merge key
        "when: 2024-01-01\n",  # a date: refused when strict, a date object otherwise
        "8080: http\non: x\n",  # scalar keys: refused when strict, built by PyYAML otherwise
        "",
        "# only a comment\n",
    ],
)
@pytest.mark.parametrize("strict_types", [True, False])
def test_load_with_lines_builds_each_kind_of_scalar_as_pyyaml(text: str, strict_types: bool) -> None:
    _same_as_pyyaml(text, strict_types)


def test_load_with_lines_of_every_fixture_builds_what_pyyaml_builds(example: Path) -> None:
    files = sorted(p for p in example.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    fixtures = Path(__file__).parent / "fixtures"
    files += sorted(p for p in fixtures.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    assert len(files) > 20
    for f in files:
        for strict_types in (True, False):
            _same_as_pyyaml(f.read_text(), strict_types)
