"""`betcycle schemas import|fetch`: fill the CRD schema cache `betcycle validate` reads."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from betcycle import crd, crd_fetch


def _report(schemas: list[crd.CrdSchema], cache: Path, out: TextIO) -> None:
    for s in schemas:
        path = crd.schema_path(cache, s.group, s.version, s.kind)
        print(f"imported {s.api_version} {s.kind} -> {path}", file=out)


def run_import(sources: list[str], cache: Path | None, out: TextIO, stdin: TextIO) -> int:
    """Convert CRDs from files, directories or `-` (stdin) into the cache; 0, or UserError on bad input."""
    cache = cache if cache is not None else crd.default_cache_dir()
    schemas = crd.import_crds(sources, cache, stdin, log=lambda line: print(line, file=out))
    _report(schemas, cache, out)
    print(f"{len(schemas)} schema{'s' if len(schemas) != 1 else ''} imported into {cache}", file=out)
    return 0


def run_fetch(lock: Path, cache: Path | None, out: TextIO) -> int:
    """Download the CRDs pinned in `lock`, verify their sha256 and import them; 0 on success."""
    cache = cache if cache is not None else crd.default_cache_dir()
    schemas = crd_fetch.fetch(lock, cache, log=lambda line: print(line, file=out))
    _report(schemas, cache, out)
    print(
        f"{len(schemas)} schema{'s' if len(schemas) != 1 else ''} pinned in {lock} imported into {cache}",
        file=out,
    )
    return 0
