"""Bounded cost of untrusted input: how big, how deep and how expanded a file may be, and what a read refuses.

A pull request controls values files, app and environment files, chart templates and committed manifests.
Each is read through here, so a hostile one fails fast with one line naming the file (and line) instead of
hanging or exhausting memory: special files (a FIFO blocks forever) are refused before they are opened, a
file's size is capped, and a YAML document is checked node by node before anything is built from it
(nesting depth, alias dereferences and the size aliases expand to, and values JSON can't hold: dates,
binary, sets, non-string keys). The template side (loops, calls, output size, time) is in `render/sandbox.py`.

The defaults suit any real repository; `limits:` in betcycle.yaml overrides them (docs/configuration.md).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from betcycle.errors import UserError

try:  # the loader yamlio uses (imported here, not from yamlio, which imports this module)
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


@dataclass(frozen=True)
class Limits:
    """The caps; field names are the camelCase keys of `limits:` in betcycle.yaml."""

    #: bytes of one input file (values, app, environment, chart, policy files and manifests)
    fileBytes: int = 5_000_000  # the betcycle.yaml key: camelCase
    #: nesting depth of maps and lists in one YAML document
    depth: int = 100
    #: alias dereferences (`*name`) in one YAML document
    aliases: int = 1_000
    #: a document's size with every alias expanded, as a multiple of its text size (nodes per character)
    aliasExpansion: int = 10
    #: bytes of rendered output of one app in one environment (all its templates together)
    outputBytes: int = 20_000_000
    #: loop iterations plus macro/function calls while rendering one app in one environment
    templateSteps: int = 1_000_000
    #: seconds rendering one app in one environment may take (a safety net behind templateSteps)
    renderSeconds: float = 30.0


DEFAULTS = Limits()
_active: ContextVar[Limits] = ContextVar("betcycle_limits", default=DEFAULTS)


def current() -> Limits:
    """The limits in force (the defaults unless `scope()` set the repository's)."""
    return _active.get()


@contextlib.contextmanager
def scope(limits: Limits) -> Iterator[Limits]:
    """Use `limits` for everything read or rendered inside the block."""
    token = _active.set(limits)
    try:
        yield limits
    finally:
        _active.reset(token)


def from_settings(data: Any) -> Limits:
    """The limits a betcycle.yaml mapping sets (its schema checks the values; this ignores bad ones)."""
    section = data.get("limits") if isinstance(data, dict) else None
    if not isinstance(section, dict):
        return DEFAULTS
    changes: dict[str, Any] = {}
    for f in fields(Limits):
        value = section.get(f.name)
        lowest = 0 if f.name == "aliases" else 1e-9
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= lowest:
            changes[f.name] = float(value) if f.name == "renderSeconds" else int(value)
    if "depth" in changes:
        changes["depth"] = min(changes["depth"], SAFE_COMPOSE_DEPTH)
    return replace(DEFAULTS, **changes)


def for_repository(root: Path) -> Limits:
    """The limits of the repository at `root`: its betcycle.yaml's `limits:`, read with the defaults."""
    from betcycle.model.yamlio import load_with_lines  # yamlio reads through this module

    settings = root / "betcycle.yaml"
    if not settings.is_file():
        return DEFAULTS
    try:
        data, _ = load_with_lines(read_text(settings, "betcycle.yaml"), "betcycle.yaml")
    except UserError:
        return DEFAULTS  # load_repo reports what is wrong with the file
    return from_settings(data)


def _size(n: float) -> str:
    return f"{n / 1_000_000:g} MB" if n >= 1_000_000 else f"{n / 1000:g} kB" if n >= 1000 else f"{n:g} bytes"


def too_big(display: str, size: int | None, limit: int) -> UserError:
    """The error for input over `limit` bytes (`size` None: a stream, read only up to the limit)."""
    return UserError(
        (f"file is {_size(size)}, over" if size is not None else "input is over")
        + f" the {_size(limit)} limit for an input file",
        path=display,
        hint="split it, or raise limits.fileBytes in betcycle.yaml if it really must be this big",
    )


def read_bytes(path: str | os.PathLike[str], display: str) -> bytes:
    """The bytes of a regular file, refusing special files (before blocking on them) and oversized files;
    one read for a file that doesn't change while it is read (thousands of manifests are read this way)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        # O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise UserError("file not found", path=display) from None
    except IsADirectoryError:
        raise UserError("is a folder, not a file", path=display) from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket, or a FIFO nobody writes to on some systems
            raise _special(display, "a socket or FIFO") from None
        raise UserError(f"cannot read file: {exc.strerror}", path=display) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = (
                "a folder"
                if stat.S_ISDIR(st.st_mode)
                else "a FIFO (named pipe)"
                if stat.S_ISFIFO(st.st_mode)
                else "a socket"
                if stat.S_ISSOCK(st.st_mode)
                else "a device"
            )
            raise _special(display, kind)
        limit = current().fileBytes
        if st.st_size > limit:
            raise too_big(display, st.st_size, limit)
        first = os.read(fd, st.st_size + 1)  # a byte more than fstat says: a short read is the end
        if len(first) <= st.st_size:
            return first
        chunks, total = [first], len(first)
        if total > limit:
            raise too_big(display, total, limit)
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > limit:  # the file grew while we read it
                raise too_big(display, total, limit)
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise UserError(f"cannot read file: {exc.strerror}", path=display) from None
    finally:
        os.close(fd)


def _special(display: str, kind: str) -> UserError:
    return UserError(
        f"is {kind}, not a regular file; refusing to read it",
        path=display,
        hint="BetCycle reads only plain files (a FIFO or device could block or never end)",
    )


def decode(data: bytes, display: str) -> str:
    """UTF-8 text; a bad byte is reported with its line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UserError(
            f"not UTF-8 text ({exc.reason}: byte 0x{data[exc.start]:02x})",
            path=display,
            line=line,
            hint="save the file as UTF-8",
        ) from None


def read_text(path: str | os.PathLike[str], display: str) -> str:
    """A regular input file as UTF-8 text, within the size limit."""
    return decode(read_bytes(path, display), display)


def check_text(text: str, display: str) -> None:
    """Size cap for text that did not come from a file on disk (git history, stdin)."""
    limit = current().fileBytes
    if len(text) > limit:
        size = len(text.encode("utf-8", "replace"))
        if size > limit:
            raise too_big(display, size, limit)


# -- YAML documents -------------------------------------------------------------------------------------

_STR = "tag:yaml.org,2002:str"
#: scalar types a value may have: what JSON (and so Kubernetes and JSON Schema) can hold
_VALUE_TAGS = frozenset(
    {
        _STR,
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:null",
    }
)
_MERGE = "tag:yaml.org,2002:merge"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MAX_INT_DIGITS = 1000
_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})
_TYPE_NAMES = {
    "tag:yaml.org,2002:int": "a number",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:timestamp": "a date",
}
#: chars a block node can be nested behind at the start of a line (indentation and indicators)
_LEADING = re.compile(r"^[ \t?:-]*", re.M)
#: past this many levels libyaml's C composer recurses deep enough to crash the interpreter, so deeper
#: documents are measured on the (flat) event stream first; depth limits above it are not accepted
SAFE_COMPOSE_DEPTH = 1000


def _depth_bound(text: str) -> int:
    """A cheap upper bound of the nesting depth of `text`.

    Flow collections need a bracket each. A nested block collection starts further right than its parent
    (a sequence may share its parent key's column: hence the factor 2), and what precedes a block node on
    its line is indentation and indicators (`- `, `? `, `: `).
    """
    widest = max((len(m.group()) for m in _LEADING.finditer(text)), default=0)
    return text.count("[") + text.count("{") + 2 * (widest + 1)


def _too_deep(display: str, line: int, limit: int) -> UserError:
    return UserError(
        f"nested more than {limit} levels deep",
        path=display,
        line=line,
        hint="flatten the structure, or raise limits.depth in betcycle.yaml",
    )


def check_stream_depth(text: str, display: str, loader_class: type[Any] = _Loader) -> None:
    """Refuse a document nested deeper than the limit before composing it (composing is recursive)."""
    limit = min(current().depth, SAFE_COMPOSE_DEPTH)
    if _depth_bound(text) <= limit:
        return
    depth = 0
    loader = loader_class(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > limit:
                    raise _too_deep(display, _line(event), limit)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        loader.dispose()


def _line(item: yaml.Node | yaml.Event) -> int:
    mark = item.start_mark
    return mark.line + 1 if mark is not None else 1


def _key_text(node: yaml.Node) -> str:
    value = node.value if isinstance(node, yaml.ScalarNode) else "…"
    return value if len(value) <= 40 else value[:37] + "..."


def check_node(node: yaml.Node, display: str, text_size: int, *, strict_types: bool = True) -> None:
    """Refuse what a document must not hold, before it is constructed.

    Aliases: at most `limits.aliases` dereferences, and the document with them expanded at most
    `limits.aliasExpansion` nodes per character of text (a "billion laughs" bomb fails at the first few
    thousand nodes instead of expanding to 10**9), and never a recursive one. Values: only what JSON holds;
    a YAML 1.1 date (`2024-01-01`), `!!binary`, `!!set` and non-string keys (`8080:`, `on:`, `~:`) are
    errors naming the line, with the quoting that fixes them. `strict_types=False` lets dates and scalar
    keys of other types through, for callers that turn them into strings themselves (policy files).
    """
    lim = current()
    max_nodes = lim.aliasExpansion * max(text_size, 1000)
    seen: set[int] = set()
    aliases = nodes = 0
    path: list[yaml.Node] = []  # ancestors of the node being visited
    stack: list[tuple[yaml.Node, int]] = [(node, 0)]
    while stack:
        n, depth = stack.pop()
        nodes += 1
        line = _line(n)
        if id(n) in seen:
            aliases += 1
            if aliases > lim.aliases:
                raise UserError(
                    f"more than {lim.aliases} alias dereferences (*name) in one document",
                    path=display,
                    line=line,
                    hint="write the values out, or raise limits.aliases in betcycle.yaml",
                )
            if any(a is n for a in path[:depth]):
                raise UserError("recursive alias: a value contains itself", path=display, line=line)
        elif not isinstance(n, yaml.ScalarNode):
            seen.add(id(n))
        if nodes > max_nodes:
            raise UserError(
                f"aliases expand this document to over {lim.aliasExpansion}× its size (an alias bomb?)",
                path=display,
                line=line,
                hint="write the values out, or raise limits.aliasExpansion in betcycle.yaml",
            )
        if isinstance(n, yaml.ScalarNode):
            if strict_types or n.tag != _TIMESTAMP:
                _check_scalar(n, display, line)
            continue
        if depth >= lim.depth:
            raise _too_deep(display, line, lim.depth)
        del path[depth:]
        path.append(n)
        if n.tag not in _COLLECTION_TAGS:
            raise _unsupported(n.tag, display, line)
        if isinstance(n, yaml.MappingNode):
            for k, _ in n.value:  # in order, so the first bad key is the one reported
                plain = k.tag == _STR or (k.tag == _MERGE and isinstance(k, yaml.ScalarNode))
                if not plain and (strict_types or not isinstance(k, yaml.ScalarNode)):
                    _bad_key(k, display)
            stack.extend((v, depth + 1) for _, v in reversed(n.value))
        else:
            stack.extend((item, depth + 1) for item in reversed(n.value))


def _check_scalar(n: yaml.ScalarNode, display: str, line: int) -> None:
    if n.tag in _VALUE_TAGS:
        if n.tag == "tag:yaml.org,2002:int" and len(n.value) > _MAX_INT_DIGITS:
            # Python refuses to convert such a number (sys.get_int_max_str_digits) and no API takes one
            raise UserError(
                f"number with {len(n.value)} digits", path=display, line=line, hint="quote it if it is text"
            )
        return
    if n.tag == _TIMESTAMP:
        raise UserError(
            f"{n.value} is read as a date (YAML 1.1), not as text",
            path=display,
            line=line,
            hint=f'quote it: "{n.value}"',
        )
    raise _unsupported(n.tag, display, line)


def _unsupported(tag: str, display: str, line: int) -> UserError:
    short = tag.replace("tag:yaml.org,2002:", "!!")
    return UserError(
        f"unsupported YAML type {short}",
        path=display,
        line=line,
        hint="use plain strings, numbers, booleans, lists and maps (what JSON can hold)",
    )


def _bad_key(k: yaml.Node, display: str) -> None:
    line = _line(k)
    if not isinstance(k, yaml.ScalarNode):
        raise UserError("a map key must be a string, not a list or map", path=display, line=line)
    what = _TYPE_NAMES.get(k.tag, k.tag.replace("tag:yaml.org,2002:", "!!"))
    raise UserError(
        f"map key {_key_text(k)!r} is read as {what}, not a string",
        path=display,
        line=line,
        hint=f'quote the key: "{_key_text(k)}":',
    )


# -- documents from the fast parser ---------------------------------------------------------------------

#: an anchor, alias or tag outside quotes might be one: the fast parser would expand or drop it silently
#: (the indicator first, then what precedes it: `re` then looks for `& * !` at C speed)
_FAST_SUSPECT = re.compile(r"[&*!](?<![^\s\[{,][&*!])[^\s\[\]{},]")


def fast_path_suspect(text: str) -> bool:
    """True when `text` may hold anchors, aliases or tags: then PyYAML (checked node by node) reads it."""
    return ("&" in text or "*" in text or "!" in text) and _FAST_SUSPECT.search(text) is not None


def plain_json_data(doc: Any) -> bool:
    """True when every key is a string and the nesting is within the limit (checks the fast parser's result)."""
    if type(doc) is not dict and type(doc) is not list:
        return True
    try:
        return _plain(doc, 0, current().depth)
    except RecursionError:  # deeper than Python's stack (limits.depth near 1000): PyYAML measures it
        return False


def _plain(value: dict[Any, Any] | list[Any], depth: int, limit: int) -> bool:
    # recursive, one frame per container: this runs on every manifest the fast parser reads, and a loop
    # over one nesting level at a time took twice as long
    if depth >= limit:
        return False
    if type(value) is dict:
        for k, v in value.items():
            if type(k) is not str:
                return False
            if (type(v) is dict or type(v) is list) and not _plain(v, depth + 1, limit):
                return False
    else:
        for v in value:
            if (type(v) is dict or type(v) is list) and not _plain(v, depth + 1, limit):
                return False
    return True
