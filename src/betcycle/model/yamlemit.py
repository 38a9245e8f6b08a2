"""A fast emitter for the YAML that `yamlio.dump` writes, byte-identical to PyYAML's output.

PyYAML's representer and resolver run in Python for every scalar and dominate render time. Rendered
manifests are plain trees of maps, lists, strings, numbers, booleans and nulls, and almost every scalar in
them is a short plain string, so this module writes them directly. Anything it is not certain to write
exactly as PyYAML would (unusual characters, long or odd multi-line strings, non-string keys, other types)
raises `Fallback`, and `yamlio.dump` hands the whole document to PyYAML. tests/test_yamlemit.py checks the
two agree byte for byte on generated documents and on every rendered manifest.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

#: printable ASCII on one line: the only strings written here (anything else goes to PyYAML)
_PRINTABLE = re.compile(r"[ -~]*")
_LEADING_INDICATORS = set("#,[]{}&*!|>'\"%@`")


def _plain_allowed(value: str) -> bool:
    """PyYAML's analyze_scalar for block context, restricted to printable one-line ASCII."""
    if value[0] == " " or value[-1] == " " or value[0] in _LEADING_INDICATORS:
        return False
    if value.startswith(("---", "...")):  # document markers at the start of a line: PyYAML quotes them
        return False
    if value[0] in "?:-" and (len(value) == 1 or value[1] == " "):
        return False
    return ": " not in value and not value.endswith(":") and " #" not in value


class Fallback(Exception):
    """This document needs PyYAML's general emitter."""


#: the `width` `yamlio.pyyaml_dump` passes: PyYAML breaks a plain or quoted scalar at a space only once the
#: line has passed this column, so a line no longer than this is written unbroken
WIDTH = 10_000
#: the most a key takes on its line, quoted (keys are at most 128 characters; PyYAML writes longer as `? key`)
_KEY_MAX = 2 * 128 + 2


@lru_cache(maxsize=65536)  # labels, names and keys repeat across every object of a render
def _string(value: str, not_str: re.Pattern[str], key: bool) -> str:
    if len(value) > (128 if key else 1000) or not _PRINTABLE.fullmatch(value):
        raise Fallback
    return _quoted(value, not_str)


def _quoted(value: str, not_str: re.Pattern[str]) -> str:
    if value and not not_str.fullmatch(value) and _plain_allowed(value):
        return value
    return "'" + value.replace("'", "''") + "'"


def _long_string(value: str, not_str: re.Pattern[str], indent: int) -> str:
    """A value of over 1,000 characters (an embedded JSON document), when its line stays within `WIDTH`:
    its line is `indent` spaces (or `- ` items) and a key of at most `_KEY_MAX` characters before it."""
    if not _PRINTABLE.fullmatch(value):
        raise Fallback
    text = _quoted(value, not_str)
    if indent + _KEY_MAX + len(text) > WIDTH:
        raise Fallback
    return text


def _literal(value: str, indent: int) -> str:
    """A multi-line string as a `|` block, when PyYAML would write the same block."""
    if not value.endswith("\n") or value.endswith("\n\n") or value.startswith((" ", "\n")) or "\t" in value:
        raise Fallback
    lines = value[:-1].split("\n")
    if any(line != line.rstrip(" ") or not _PRINTABLE.fullmatch(line) for line in lines):
        raise Fallback
    pad = " " * indent
    return "|\n" + "".join(f"{pad}{line}\n" if line else "\n" for line in lines)


def _scalar(value: Any, not_str: re.Pattern[str], indent: int) -> str:
    """The text after `key: ` or `- ` (a literal block includes its newline and lines)."""
    if value is None:
        return "null\n"
    if value is True:
        return "true\n"
    if value is False:
        return "false\n"
    if type(value) is int:
        return f"{value}\n"
    if type(value) is float:
        if math.isnan(value):
            return ".nan\n"
        if math.isinf(value):
            return (".inf" if value > 0 else "-.inf") + "\n"
        text = repr(value).lower()
        if "." not in text and "e" in text:
            text = text.replace("e", ".0e", 1)
        return text + "\n"
    if type(value) is str:
        if "\n" in value and not not_str.fullmatch(value):
            return _literal(value, indent)
        if len(value) > 1000:
            return _long_string(value, not_str, indent) + "\n"
        return _string(value, not_str, False) + "\n"
    raise Fallback


class _Texts:
    """What the strings of one `not_str` pattern are written as: keys and values looked up in plain dicts
    (cheaper than an lru_cache call, which hashes its arguments as a tuple); each dict is emptied when it
    reaches _TEXTS_MAX entries, so memory stays bounded."""

    __slots__ = ("keys", "not_str", "values")

    def __init__(self, not_str: re.Pattern[str]) -> None:
        self.not_str = not_str
        self.keys: dict[str, str] = {}
        self.values: dict[str, str] = {}

    def key(self, key: str) -> str:
        return self._add(self.keys, key, True)

    def value(self, value: str) -> str:
        """A one-line string of at most 1,000 characters."""
        return self._add(self.values, value, False)

    def _add(self, table: dict[str, str], string: str, key: bool) -> str:
        if len(table) >= _TEXTS_MAX:
            table.clear()
        text = table[string] = _string(string, self.not_str, key)
        return text


_TEXTS_MAX = 65536
_TEXTS: dict[re.Pattern[str], _Texts] = {}


def _map(doc: dict[Any, Any], indent: int, out: list[str], texts: _Texts, first: str) -> None:
    pad = " " * indent
    lead = first
    append = out.append
    keys = texts.keys
    values = texts.values
    for key, value in doc.items():
        if type(key) is not str:
            raise Fallback
        k = keys.get(key) or texts.key(key)
        if type(value) is str:  # most values: a short one-line string, inline
            v = values.get(value)
            if v is None:
                if "\n" in value or len(value) > 1000:
                    append(f"{lead}{k}: {_scalar(value, texts.not_str, indent + 2)}")
                    lead = pad
                    continue
                v = texts.value(value)
            append(f"{lead}{k}: {v}\n")
        elif isinstance(value, dict) and value:
            append(f"{lead}{k}:\n")
            _map(value, indent + 2, out, texts, " " * (indent + 2))
        elif isinstance(value, list) and value:
            append(f"{lead}{k}:\n")
            _seq(value, indent, out, texts)
        elif isinstance(value, dict):
            append(f"{lead}{k}: {{}}\n")
        elif isinstance(value, list):
            append(f"{lead}{k}: []\n")
        else:
            append(f"{lead}{k}: {_scalar(value, texts.not_str, indent + 2)}")
        lead = pad


def _seq(items: list[Any], indent: int, out: list[str], texts: _Texts) -> None:
    pad = " " * indent
    append = out.append
    values = texts.values
    for item in items:
        if type(item) is str:  # as in `_map`
            v = values.get(item)
            if v is None:
                if "\n" in item or len(item) > 1000:
                    append(f"{pad}- {_scalar(item, texts.not_str, indent + 2)}")
                    continue
                v = texts.value(item)
            append(f"{pad}- {v}\n")
        elif isinstance(item, dict) and item:
            _map(item, indent + 2, out, texts, f"{pad}- ")
        elif isinstance(item, list) and item:
            raise Fallback  # nested sequences: rare in manifests, PyYAML's layout is subtle
        elif isinstance(item, dict):
            append(f"{pad}- {{}}\n")
        elif isinstance(item, list):
            append(f"{pad}- []\n")
        else:
            append(f"{pad}- {_scalar(item, texts.not_str, indent + 2)}")


def emit(doc: Any, not_str: re.Pattern[str]) -> str:
    """`doc` (a non-empty map or list) as block YAML, or Fallback. `not_str`: strings that must be
    single-quoted."""
    texts = _TEXTS.get(not_str)
    if texts is None:
        texts = _TEXTS[not_str] = _Texts(not_str)
    out: list[str] = []
    if isinstance(doc, dict) and doc:
        _map(doc, 0, out, texts, "")
    elif isinstance(doc, list) and doc:  # `toyaml` of a list (a PrometheusRule's groups)
        _seq(doc, 0, out, texts)
    else:
        raise Fallback
    return "".join(out)
