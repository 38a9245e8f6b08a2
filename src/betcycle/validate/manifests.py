"""Read Kubernetes manifests from disk (rendered environment folders or any files) into Resources."""

from __future__ import annotations

import contextlib
import marshal
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TextIO, TypeVar

import yaml

from betcycle.errors import UserError, UserErrors
from betcycle.model import limits
from betcycle.model.resources import Resource
from betcycle.model.yamlio import HEADER_MARK, load_all_with_lines, read_text
from betcycle.render import parallel

T = TypeVar("T")

_SUFFIXES = (".yaml", ".yml", ".json")
_COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _item_lines(text: str) -> dict[int, list[int]]:
    """For each document of `text` (by its first line), the first line of each item of its `items` list."""
    out: dict[int, list[int]] = {}
    try:
        for node in yaml.compose_all(text, Loader=_COMPOSER):
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if key.value == "items" and isinstance(value, yaml.SequenceNode):
                        out[node.start_mark.line + 1] = [i.start_mark.line + 1 for i in value.value]
    except yaml.YAMLError:
        pass  # the document parsed once already; without lines its items report the List's line
    return out


def _expand(doc: object, line: int, lines: dict[int, list[int]]) -> list[tuple[object, int]]:
    """`kind: List` (and FooList) objects become their items, each with its own first line."""
    if (
        isinstance(doc, dict)
        and str(doc.get("kind", "")).endswith("List")
        and isinstance(doc.get("items"), list)
    ):
        item_lines = lines.get(line, [])
        if len(item_lines) != len(doc["items"]):
            item_lines = [line] * len(doc["items"])
        return list(zip(doc["items"], item_lines, strict=True))
    return [(doc, line)]


def _head(text: str, lines: int = 4) -> str:
    """The text up to the end of its `lines`-th "\n" (splitting only the header, not a whole manifest,
    into lines: its first lines split the same)."""
    end = -1
    for _ in range(lines):
        end = text.find("\n", end + 1)
        if end < 0:
            return text
    return text[: end + 1]


def parse(text: str, display: str, *, env: str | None = None, app: str | None = None) -> list[Resource]:
    source = display
    generated = text.startswith(HEADER_MARK)
    if generated:
        # rendered file: attribute findings to the chart template named in the header
        for header_line in _head(text).splitlines()[1:4]:
            if header_line.startswith("# template: "):
                source = header_line.removeprefix("# template: ").strip()
                break
    out = []
    list_lines: dict[int, list[int]] | None = None  # composed once, only for a file that holds a List
    for doc, line in load_all_with_lines(text, display, generated=generated):
        if list_lines is None and isinstance(doc, dict) and isinstance(doc.get("items"), list):
            list_lines = _item_lines(text)
        for item, item_line in _expand(doc, line, list_lines or {}):
            if not isinstance(item, dict):
                raise UserError(
                    "document is not a Kubernetes object (expected a mapping with apiVersion and kind)",
                    path=display,
                    line=item_line,
                )
            out.append(
                Resource(
                    item,
                    env=env,
                    app=app,
                    source=source,
                    line=item_line if source == display else None,
                    output=display,
                )
            )
    return out


def files_under(path: Path) -> list[Path]:
    return sorted(
        p for p in path.rglob("*") if p.is_file() and p.suffix in _SUFFIXES and not p.name.startswith(".")
    )


def env_manifest_texts(root: Path, manifests_dir: str) -> list[tuple[str, str | None, str]]:
    """(path, app folder, text) of every manifest under environments/<env>/manifests, in a fixed order."""
    out: list[tuple[str, str | None, str]] = []
    base = os.path.join(root, manifests_dir)
    for folder in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        sub = os.path.join(base, folder)
        if os.path.isfile(sub):  # a file directly in manifests/: no app
            if folder.endswith(_SUFFIXES) and not folder.startswith("."):
                rel = f"{manifests_dir}/{folder}"
                out.append((rel, None, read_text(Path(sub), rel)))
            continue
        app = folder if folder != "argocd" else None
        prefix = f"{manifests_dir}/{folder}"
        for dirpath, dirnames, filenames in os.walk(sub):
            dirnames.sort()
            inner = dirpath[len(sub) :].replace(os.sep, "/")
            for name in sorted(filenames):
                if name.startswith(".") or not name.endswith(_SUFFIXES):
                    continue
                rel = f"{prefix}{inner}/{name}"
                out.append((rel, app, read_text(os.path.join(dirpath, name), rel)))
    return out


def load_env_manifests(
    root: Path,
    env: str,
    manifests_dir: str,
    texts: list[tuple[str, str | None, str]] | None = None,
) -> list[Resource]:
    """Every resource under environments/<env>/manifests, tagged with its environment and app folder
    (`texts`: the files as `env_manifest_texts` already read them)."""
    out: list[Resource] = []
    for rel, app, text in env_manifest_texts(root, manifests_dir) if texts is None else texts:
        out += parse(text, rel, env=env, app=app)
    return out


def load_paths(paths: list[str], *, cwd: Path, stdin: TextIO | None = None, jobs: int = 1) -> list[Resource]:
    """Files, folders (recursively) and `-` for standard input, in that order; the files are parsed in
    `jobs` processes (the resources, and the first error, come out as with one)."""
    return load_paths_checked(paths, cwd=cwd, stdin=stdin, jobs=jobs)[0]


def load_paths_checked(
    paths: list[str],
    *,
    cwd: Path,
    stdin: TextIO | None = None,
    jobs: int = 1,
    check: Callable[[list[Resource]], T] | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> tuple[list[Resource], list[T | UserError | UserErrors]]:
    """`load_paths`, and `check` run on each file's resources where the file is parsed (in the pool: a
    check that needs only the resources themselves, like schema validation, runs in parallel too). The
    checks' results (or user errors) come in the files' order; parse errors are raised first, as without
    checks. `meanwhile()` runs once while the pool works (after the first file), or at the end."""
    units: list[tuple[str, str, str] | str] = []  # (file, display to read, display to parse) | stdin's text
    for raw in paths:
        if raw == "-":
            units.append(_read_stdin(stdin or sys.stdin))
            continue
        p = (cwd / raw) if not Path(raw).is_absolute() else Path(raw)
        if p.is_dir():
            found = files_under(p)
            if not found:
                raise UserError("no .yaml, .yml or .json files in this folder", path=raw)
            units += [(str(f), str(f), _display(f, cwd)) for f in found]
        elif p.exists():
            units.append((str(p), raw, raw))
        else:
            raise UserError("no such file or folder", path=raw)
    files = [u for u in units if isinstance(u, tuple)]
    out: list[Resource] = []
    checked: list[T | UserError | UserErrors] = []
    # each file's resources are unpacked as soon as they come, while the workers parse the rest
    with contextlib.closing(parallel.iter_ordered(_parse_file, files, state=check, jobs=jobs)) as parsed:
        for unit in units:
            if isinstance(unit, tuple):
                got = next(parsed)
                if isinstance(got, UserError | UserErrors):
                    raise got
                resources, result = _unpack(got)
                if meanwhile is not None:  # the workers are busy: the caller's own work, once
                    meanwhile()
                    meanwhile = None
            else:
                resources = parse(unit, "<stdin>")
                result = _checked(check, resources) if check is not None else None
            out += resources
            if check is not None:
                checked.append(result)
    if meanwhile is not None:
        meanwhile()
    return out, checked


def _checked(check: Callable[[list[Resource]], T], resources: list[Resource]) -> T | UserError | UserErrors:
    try:
        return check(resources)
    except (UserError, UserErrors) as exc:  # reported after every file's parse errors, in the files' order
        return exc


class _Packed(NamedTuple):
    """A file's resources as a pool worker sends them back: marshal, not pickle, is 5x faster for plain
    data (pickling every Resource made a pool slower than one process on 7,200 resources)."""

    resources: bytes
    result: Any


def _parse_file(check: Callable[[list[Resource]], Any] | None, unit: tuple[str, str, str]) -> Any:
    path, read_as, display = unit
    resources = parse(read_text(Path(path), read_as), display)
    result = _checked(check, resources) if check is not None else None
    if not parallel.in_worker():
        return resources, result
    try:
        packed = marshal.dumps([(r.doc, r.env, r.app, r.source, r.line, r.output) for r in resources])
    except ValueError:  # pragma: no cover - a value marshal can't write (parse builds only plain data)
        return resources, result
    return _Packed(packed, result)


def _unpack(got: Any) -> tuple[list[Resource], Any]:
    if not isinstance(got, _Packed):
        resources, result = got
        return resources, result
    return [
        Resource(doc, env=env, app=app, source=source, line=line, output=output)
        # bytes this run's own forked worker wrote a moment ago (through the pool's pipe), never a file
        for doc, env, app, source, line, output in marshal.loads(got.resources)
    ], got.result


def _read_stdin(stream: TextIO) -> str:
    """Standard input as UTF-8 text within limits.fileBytes (a bad byte is reported with its line)."""
    cap = limits.current().fileBytes
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:  # a real stdin: read bytes, so a bad byte is an error here, not a crash later
        data = buffer.read(cap + 1)
        if len(data) > cap:
            raise limits.too_big("<stdin>", None, cap)
        return limits.decode(data, "<stdin>")
    text = stream.read(cap + 1)
    limits.check_text(text, "<stdin>")
    return text


def _display(p: Path, cwd: Path) -> str:
    try:
        return p.relative_to(cwd).as_posix()
    except ValueError:
        return str(p)
