"""`betcycle schemas import|fetch|check`: the vendored CRD schemas (schemas/crds) and the user's schema cache.

`fetch` (online) and `import --vendor` (offline) write the repository's vendored folder from the files pinned
in crds.lock.yaml; plain `import` writes the user's cache, for CRDs the repository doesn't vendor; `check`
verifies the vendored folder against the lock.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from betcycle.errors import UserError
from betcycle.validate import crd, crd_fetch, crd_vendor


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _report_vendored(result: crd_vendor.VendorResult, lock: Path, root: Path, out: TextIO) -> None:
    def shown(path: Path) -> str:
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)

    count = 0
    for p in result.pinned:
        for s in sorted(p.schemas, key=lambda s: s.gvk):
            path = crd.schema_path(result.folder.parent, s.group, s.version, s.kind)
            print(f"vendored {s.api_version} {s.kind} -> {shown(path)} ({p.entry.name})", file=out)
            count += 1
    for rel in result.removed:
        print(f"removed {shown(result.folder / rel)}", file=out)
    for e in result.missing:
        print(
            f"not vendored yet: {e.name} ({e.url}); pass its file too, or run `betcycle schemas fetch`",
            file=out,
        )
    state = (
        f"{_plural(len(result.changed), 'file')} written, {len(result.removed)} removed"
        if result.changed or result.removed
        else "unchanged"
    )
    print(
        f"{_plural(count, 'schema')} from {_plural(len(result.pinned), 'file')} pinned in {shown(lock)} "
        f"vendored in {shown(result.folder)} ({state})",
        file=out,
    )


def run_import(
    sources: list[str],
    cache: Path | None,
    out: TextIO,
    stdin: TextIO,
    *,
    vendor: bool = False,
    root: Path | None = None,
    lock: Path | None = None,
    stdin_bytes: BinaryIO | None = None,
) -> int:
    """Convert CRDs from files, directories or `-` (stdin) into the cache, or (`vendor`) into the repository's
    vendored folder, where each file must be pinned in the lock. 0, or UserError on bad input."""
    if vendor:
        root = root or Path.cwd()
        lock = lock or root / crd_vendor.LOCK_FILE
        raw = stdin_bytes if stdin_bytes is not None else getattr(stdin, "buffer", None)
        if raw is None:  # pragma: no cover - a text stream without bytes underneath
            raise UserError("standard input has no byte stream to check against the lock")
        log = lambda line: print(line, file=out)  # noqa: E731
        result = crd_vendor.import_vendored(sources, lock, crd_vendor.vendored_dir(root), raw, log=log)
        _report_vendored(result, lock, root, out)
        return 0
    if lock is not None:
        raise UserError("--lock only applies with --vendor", hint="add --vendor, or leave out --lock")
    cache = cache if cache is not None else crd.default_cache_dir()
    schemas = crd.import_crds(sources, cache, stdin, log=lambda line: print(line, file=out))
    for s in schemas:
        path = crd.schema_path(cache, s.group, s.version, s.kind)
        print(f"imported {s.api_version} {s.kind} -> {path}", file=out)
    print(f"{_plural(len(schemas), 'schema')} imported into {cache}", file=out)
    return 0


def run_fetch(
    root: Path, lock: Path | None, out: TextIO, *, opener: Callable[..., Any] = urllib.request.urlopen
) -> int:
    """Download the CRDs pinned in the lock, verify their sha256 and rewrite the vendored folder; 0."""
    lock = lock or root / crd_vendor.LOCK_FILE
    log = lambda line: print(line, file=out)  # noqa: E731
    result = crd_fetch.fetch(lock, crd_vendor.vendored_dir(root), opener=opener, log=log)
    _report_vendored(result, lock, root, out)
    return 0


def run_check(root: Path, lock: Path | None, out: TextIO) -> int:
    """0 when the vendored folder is exactly what the lock pins, else 1 listing every difference."""
    lock = lock or root / crd_vendor.LOCK_FILE
    base = crd_vendor.vendored_dir(root)
    problems = crd_vendor.check(base, lock)
    if problems:
        for problem in problems:
            print(problem.replace(f"{root}{os.sep}", ""), file=out)
        folder = (base / "crds").relative_to(root)
        print(f"{_plural(len(problems), 'problem')} in {folder}: {crd_vendor.REFRESH_HINT}", file=out)
        return 1
    count = len(crd.CrdSchemaStore(base).known())
    entries = crd_vendor.read_lock(lock)
    shown = (p.relative_to(root) if p.is_relative_to(root) else p for p in (base / "crds", lock))
    print(
        "{}: {} from {}, as pinned in {}".format(
            next(shown), _plural(count, "schema"), _plural(len(entries), "file"), next(shown)
        ),
        file=out,
    )
    return 0
