"""Round-trip edits of the YAML files people maintain (ruamel.yaml keeps comments, order and quoting).

Used by set-image, promote and rollback: change one value, leave every other byte of the file alone.
"""

from __future__ import annotations

import io
import itertools
import re
import warnings
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from betcycle.errors import UserError


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def _detect_indent(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) as the file already uses them, so an edit does not re-indent it."""
    lines = text.splitlines()
    mapping = 2
    for prev, line in itertools.pairwise(lines):
        if prev.rstrip().endswith(":") and line.strip() and not line.lstrip().startswith(("#", "-")):
            mapping = (len(line) - len(line.lstrip())) - (len(prev) - len(prev.lstrip()))
            if mapping > 0:
                break
    offset = 0
    for prev, line in itertools.pairwise(lines):
        if prev.rstrip().endswith(":") and line.lstrip().startswith("- "):
            offset = (len(line) - len(line.lstrip())) - (len(prev) - len(prev.lstrip()))
            break
    return max(mapping, 1), offset + 2, offset


def load(path: Path, display: str) -> tuple[Any, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError("file not found", path=display) from None
    return parse(text, display), text


def parse(text: str, display: str) -> Any:
    """The round-trip document of `text` (a mapping; an empty file is an empty mapping)."""
    try:
        data = _yaml().load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(
            f"invalid YAML: {getattr(exc, 'problem', exc)}",
            path=display,
            line=mark.line + 1 if mark else None,
        ) from None
    if data is None:
        data = CommentedMap()
    if not isinstance(data, CommentedMap):
        raise UserError("expected a mapping at the top of the file", path=display, line=1)
    return data


def _styled(old: Any, new: str) -> Any:
    """Keep the old scalar's quoting; quote a new string that YAML would read as something else."""
    if isinstance(old, DoubleQuotedScalarString):
        return DoubleQuotedScalarString(new)
    if isinstance(old, SingleQuotedScalarString):
        return SingleQuotedScalarString(new)
    from betcycle.model.yamlio import load_all

    try:
        plain_means = load_all(f"k: {new}\n", "<value>")[0]["k"]
    except UserError:
        plain_means = None
    return new if plain_means == new else DoubleQuotedScalarString(new)


def set_value(text: str, display: str, keys: list[str], value: Any) -> tuple[str, str | None]:
    """Set keys[0].keys[1]... = value in YAML `text`; returns (new text, old value). Writes nothing.

    A string keeps the old scalar's quoting; a map or list replaces the old value wholesale.
    """
    data = parse(text, display)
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if child is None:
            child = CommentedMap()
            node[key] = child
        elif not isinstance(child, CommentedMap):
            raise UserError(f"{key} is not a mapping", path=display, line=_line(node, key))
        node = child
    old = node.get(keys[-1])
    node[keys[-1]] = _styled(old, value) if isinstance(value, str) else value
    return dump(data, text), None if old is None or isinstance(old, dict | list) else str(old)


def get_value(text: str, keys: list[str], display: str = "<text>") -> Any:
    """The value at `keys` in `text` (None if absent), for reading old versions of a file from git.

    Anything wrong with the text is a one-line UserError naming `display` and the line: broken YAML, a
    reused anchor (which ruamel only warns about, printing a multi-line `^ (line: N)` excerpt to stderr), a
    file over limits.fileBytes, or nesting too deep for ruamel's recursive composer.
    """
    from betcycle.model import limits

    limits.check_text(text, display)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            data = _yaml().load(text) if text.strip() else None
    except Exception as exc:  # ruamel raises several unrelated types (and warnings) for broken YAML
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).strip() or type(exc).__name__
        line = mark.line + 1 if mark is not None else None
        if line is None:  # ReusedAnchorWarning keeps its marks only in the text
            found = re.findall(r"\^ \(line: ([0-9]+)\)", problem)
            line = int(found[-1]) if found else None
        first = next((ln.strip() for ln in problem.splitlines() if ln.strip()), problem)
        raise UserError(f"invalid YAML: {first}", path=display, line=line) from None
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def dump(data: Any, original: str) -> str:
    y = _yaml()
    mapping, sequence, offset = _detect_indent(original)
    y.indent(mapping=mapping, sequence=sequence, offset=offset)
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()


def _line(node: CommentedMap, key: str) -> int | None:
    try:
        return int(node.lc.key(key)[0]) + 1
    except (KeyError, AttributeError, TypeError):
        return None
