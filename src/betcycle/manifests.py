"""Read Kubernetes manifests from disk (rendered environment folders or any files) into Resources."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from betcycle.errors import UserError
from betcycle.render import HEADER_MARK
from betcycle.resources import Resource
from betcycle.yamlio import load_all_with_lines, read_text

_SUFFIXES = (".yaml", ".yml", ".json")


def _expand(doc: object, line: int) -> list[tuple[object, int]]:
    """`kind: List` (and FooList) objects become their items."""
    if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
        return [(item, line) for item in doc["items"]]
    return [(doc, line)]


def parse(text: str, display: str, *, env: str | None = None, app: str | None = None) -> list[Resource]:
    source = display
    if text.startswith(HEADER_MARK):
        # rendered file: attribute findings to the chart template named in the header
        for header_line in text.splitlines()[1:4]:
            if header_line.startswith("# template: "):
                source = header_line.removeprefix("# template: ").strip()
                break
    out = []
    for doc, line in load_all_with_lines(text, display):
        for item, item_line in _expand(doc, line):
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
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _SUFFIXES and not p.name.startswith("."))


def load_env_manifests(root: Path, env: str, manifests_dir: str) -> list[Resource]:
    """Every resource under environments/<env>/manifests, tagged with its environment and app folder."""
    base = root / manifests_dir
    out: list[Resource] = []
    for p in files_under(base):
        rel = p.relative_to(root).as_posix()
        folder = p.relative_to(base).parts[0] if len(p.relative_to(base).parts) > 1 else None
        app = folder if folder and folder != "argocd" else None
        out += parse(read_text(p, rel), rel, env=env, app=app)
    return out


def load_paths(paths: list[str], *, cwd: Path, stdin: TextIO | None = None) -> list[Resource]:
    """Files, folders (recursively) and `-` for standard input."""
    out: list[Resource] = []
    for raw in paths:
        if raw == "-":
            out += parse((stdin or sys.stdin).read(), "<stdin>")
            continue
        p = (cwd / raw) if not Path(raw).is_absolute() else Path(raw)
        if p.is_dir():
            found = files_under(p)
            if not found:
                raise UserError("no .yaml, .yml or .json files in this folder", path=raw)
            for f in found:
                out += parse(read_text(f, str(f)), _display(f, cwd))
        elif p.exists():
            out += parse(read_text(p, raw), raw)
        else:
            raise UserError("no such file or folder", path=raw)
    return out


def _display(p: Path, cwd: Path) -> str:
    try:
        return p.relative_to(cwd).as_posix()
    except ValueError:
        return str(p)
