"""Hostile and mutated input never crashes render or validate: exit 0, 1 or 2, never a traceback (issue 8.6).

A corpus of known-hostile documents, then hypothesis mutations of the fixture repository's own files (a
values file, app.yaml, environment.yaml, a chart template, a rendered manifest for `validate PATH`).
Everything runs in-process through the `cli` fixture; bounded `max_examples` keep it to a few seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_limits import billion_laughs

Run = Callable[..., tuple[int, str, str]]

VALUES = "environments/dev/apps/hello.yaml"
APP = "apps/hello/app.yaml"
ENVIRONMENT = "environments/dev/environment.yaml"
TEMPLATE = "charts/service/templates/deployment.yaml.j2"
MANIFEST = "environments/dev/manifests/hello/deployment-hello.yaml"
TARGETS = [VALUES, APP, ENVIRONMENT, TEMPLATE, MANIFEST]

#: whole documents that broke (or could break) a loader, the merge, the sandbox or the emitter
CORPUS: list[str | bytes] = [
    billion_laughs(),
    "a: &a [1, *a]\n",
    "a: *nope\n",
    "a: &x 1\nb: &x 2\n",
    "image:\n  tag: 2024-01-01\n",
    "config:\n  8080: x\n  on: y\n  ~: z\n  1.5: w\n",
    "? [a, b]\n: c\n",
    "<<: 5\n",
    "<<: [1, 2]\n",
    "a: !!binary aGVsbG8=\n",
    "a: !!set {x, y}\n",
    "a: !!omap [{x: 1}]\n",
    "a: !!python/object/apply:os.system [echo]\n",
    "a: !custom tag\n",
    "a: !!timestamp 2024-01-01T00:00:00Z\n",
    "a: " + "[" * 300 + "]" * 300 + "\n",
    "a: " + "[" * 100_000 + "\n",
    "config:\n" + "".join("  " * (i + 1) + "a:\n" for i in range(300)),
    "replicas: " + "9" * 5000 + "\n",
    "replicas: 1e999\nport: .nan\n",
    "%YAML 1.3\n---\na: 1\n",
    "%TAG ! tag:evil.com,2000:\n---\na: !x 1\n",
    "---\na: 1\n---\nb: 2\n",
    "- 1\n- 2\n",
    "just a string\n",
    "\ufeffimage:\n  tag: '1'\n",
    "a: 'unterminated\n",
    'a: "\\x00\\ud800"\n',
    "a:\tb\n",
    "a: b: c\n",
    "a:\n  - b\n  c: d\n",
    "image: {tag: '1', tag: '2'}\n",
    b"image:\n  tag: '\xff\xfe'\n",
    b"\x00\x01\x02",
    "{{ values }}\n{% for %}\n",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n",
    "{{ 'x' * 10**9 }}\n",
    "{{ 10 ** (10 ** 8) }}\n",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}\n",
    "{% include '/etc/passwd' %}\n",
    "{% extends 'deployment.yaml.j2' %}\n",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}\n",
    "{{ cycler.__init__.__globals__ }}\n",
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: {a: [1, {b: 2}]}\n",
    "apiVersion: v1\nkind: List\nitems: [1, 2, {kind: 3}]\n",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: []\n",
    "apiVersion: 5\nkind: [x]\nmetadata: {name: {a: 1}}\n",
]

#: fragments spliced into real files by the mutations
FRAGMENTS = [
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    "&a ",
    "*a",
    "!!str ",
    "!!binary ",
    "'",
    '"',
    "|",
    ">-",
    "#",
    "\t",
    "\n",
    "---\n",
    "...\n",
    "? ",
    "<<: ",
    "2024-01-01",
    "8080",
    "on",
    "~",
    "null",
    "0o17",
    "1e3",
    "=",
    "\x85",
    "\u2028",
    "\ufeff",
    "\x00",
    "9" * 2000,
    "[" * 200,
    "{{ ",
    " }}",
    "{% ",
    " %}",
    "{# ",
    "{{ values.nope }}",
    "{% for x in values %}",
    "{% endfor %}",
    "{{ values | toyaml }}",
    "{{ 'x' * 99999999 }}",
    "{% if %}",
    "{{ range(100000) | list }}",
    "kind: ",
    "metadata:\n  name: ",
    "apiVersion: v1\n",
]

mutation = st.tuples(
    st.sampled_from(["insert", "delete", "replace_line", "duplicate_line", "bad_byte"]),
    st.integers(min_value=0, max_value=1_000_000),
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)),
)


def mutate(data: bytes, ops: list[tuple[str, int, str]]) -> bytes:
    for op, pos, fragment in ops:
        piece = fragment.encode("utf-8", "surrogatepass")
        at = pos % (len(data) + 1)
        lines = data.split(b"\n")
        i = pos % len(lines)
        if op == "insert":
            data = data[:at] + piece + data[at:]
        elif op == "delete":
            data = data[:at] + data[at + 1 + pos % 40 :]
        elif op == "replace_line":
            data = b"\n".join([*lines[:i], piece, *lines[i + 1 :]])
        elif op == "duplicate_line":
            data = b"\n".join([*lines[: i + 1], lines[i], *lines[i + 1 :]])
        else:
            data = data[:at] + bytes([0x80 + pos % 128]) + data[at:]
    return data


def command(target: str, root: Path) -> list[str | Path]:
    if target == MANIFEST:
        return ["--root", root, "validate", root / MANIFEST]
    return ["--root", root, "render", "--check", "--env", "dev"]


def check_run(cli: Run, target: str, root: Path, data: bytes) -> None:
    (root / target).write_bytes(data)
    code, _, err = cli(*command(target, root))
    assert code in (0, 1, 2), (target, data[:300], err[-2000:])
    assert "Traceback" not in err and "this is a bug" not in err, (target, data[:300], err[-2000:])


@pytest.mark.parametrize("target", TARGETS)
def test_hostile_corpus(example: Path, cli: Run, target: str) -> None:
    original = (example / target).read_bytes()
    for doc in CORPUS:
        check_run(
            cli, target, example, doc if isinstance(doc, bytes) else doc.encode("utf-8", "surrogatepass")
        )
    check_run(cli, target, example, original)


@pytest.mark.parametrize("target", TARGETS)
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_inputs(example: Path, cli: Run, target: str, ops: list[tuple[str, int, str]]) -> None:
    # the same copy for every example: each one writes the whole file, so none sees another's edits
    original = (example / target).read_bytes()
    try:
        check_run(cli, target, example, mutate(original, ops))
    finally:
        (example / target).write_bytes(original)
