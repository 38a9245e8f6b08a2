"""`betcycle diff`: what each cluster will receive, per resource, against the base revision."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from betcycle.diff import changes
from betcycle.diff import engine as diff
from betcycle.diff import formats as diff_formats
from betcycle.formats.text import use_colour
from betcycle.render import parallel
from betcycle.render.cache import RenderCache


def run(
    root: Path,
    *,
    base: str | None,
    head: str | None,
    envs: list[str],
    apps: list[str],
    fmt: str,
    full: bool,
    exit_code: bool,
    max_chars: int,
    out: TextIO,
    jobs: str | int = 1,
    cache: bool = True,
) -> int:
    comparison = changes.compare(
        root,
        base=base,
        head=head,
        envs=envs or None,
        apps=apps or None,
        full=full,
        jobs=parallel.parse_jobs(jobs),
        cache=RenderCache(enabled=cache),
    )
    report = diff.compute(comparison.base, comparison.head, comparison.envs, comparison.context)
    if fmt == "markdown":
        diff_formats.write_markdown(report, out, max_chars=max_chars)
    elif fmt == "json":
        diff_formats.write_json(report, out)
    else:
        out.write(f"base {comparison.base_rev[:12]} → {comparison.head_label}\n")
        diff_formats.write_text(report, out, colour=use_colour(out))
    return 1 if exit_code and report.has_changes else 0
