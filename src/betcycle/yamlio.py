"""YAML in and out.

Bulk parsing uses PyYAML's libyaml-backed loader: it is several times faster than the pure-Python one and,
like Kubernetes (sigs.k8s.io/yaml → go-yaml v2), reads YAML 1.1 scalars (`on`, `yes`, `0755`) the 1.1 way.
Declarative files people edit are small; they are composed node by node so errors can name the line of
every value. Round-trip edits (comments kept) live in `yamledit.py` with ruamel.yaml.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from betcycle.errors import UserError

try:  # libyaml is part of every PyYAML wheel we install; the fallback keeps odd platforms working
    from yaml import CSafeDumper as _BaseDumper
    from yaml import CSafeLoader as FastLoader
except ImportError:  # pragma: no cover
    from yaml import SafeDumper as _BaseDumper  # type: ignore[assignment]
    from yaml import SafeLoader as FastLoader  # type: ignore[assignment]

PathKey = tuple[str | int, ...]
LineMap = dict[PathKey, int]


def _yaml_error(exc: yaml.YAMLError, path: str) -> UserError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    msg = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    return UserError(
        msg,
        path=path,
        line=mark.line + 1 if mark is not None else None,
        hint="check the indentation and quoting around this line (tabs are not allowed in YAML)",
    )


def load_all(text: str, path: str) -> list[Any]:
    """Parse a multi-document YAML stream fast; empty documents are dropped."""
    try:
        return [d for d in yaml.load_all(text, Loader=FastLoader) if d is not None]
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, path) from None


def load_all_with_lines(text: str, path: str) -> list[tuple[Any, int]]:
    """Like load_all, but each document comes with the line it starts on."""
    loader = FastLoader(text)
    out: list[tuple[Any, int]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            doc = loader.construct_document(node)
            if doc is not None:
                out.append((doc, node.start_mark.line + 1))
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, path) from None
    finally:
        loader.dispose()
    return out


def _walk(node: yaml.Node, key: PathKey, lines: LineMap, path: str) -> None:
    lines[key] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for k_node, v_node in node.value:
            k = k_node.value if isinstance(k_node, yaml.ScalarNode) else str(k_node.value)
            line = k_node.start_mark.line + 1
            if k in seen:
                raise UserError(
                    f"duplicate key {k!r} (first defined on line {seen[k]})",
                    path=path,
                    line=line,
                    hint="YAML keeps only the last one; remove or merge the duplicates",
                )
            seen[k] = line
            _walk(v_node, (*key, k), lines, path)
            lines[(*key, k)] = line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*key, i), lines, path)


def load_with_lines(text: str, path: str) -> tuple[Any, LineMap]:
    """Parse one YAML document and map every value's path to its line (duplicate keys are an error)."""
    loader = FastLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: LineMap = {}
        _walk(node, (), lines, path)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, path) from None
    finally:
        loader.dispose()
    return data, lines


def read_text(path: Path, display: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError("file not found", path=display) from None
    except UnicodeDecodeError as exc:
        raise UserError(f"not UTF-8 text ({exc.reason})", path=display) from None
    except OSError as exc:
        raise UserError(f"cannot read file: {exc.strerror}", path=display) from None


def line_of(lines: LineMap, key: PathKey) -> int | None:
    """The line of `key`, or of its nearest parent that has one."""
    while True:
        if key in lines:
            return lines[key]
        if not key:
            return None
        key = key[:-1]


class _Dumper(_BaseDumper):  # type: ignore[misc,valid-type]
    """Block style, template key order, literal blocks for multi-line strings."""


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data and not any(c in data for c in "\t\r") and not data.endswith((" ", "\n\n")):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_representer)


def dump(doc: Any) -> str:
    """Deterministic YAML for a rendered manifest (insertion order kept, YAML 1.1 ambiguities quoted)."""
    return yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=10_000,
    )


def atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
