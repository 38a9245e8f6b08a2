"""`betcycle cost report` and `betcycle cost orphans`: read-only AWS cost views (orphans may delete on request)."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TextIO

from betcycle.aws import cost, orphans
from betcycle.aws.session import Aws
from betcycle.errors import UserError

EXIT_OK, EXIT_USAGE = 0, 2


def run_report(
    aws: Aws,
    root: Path,
    *,
    envs: list[str],
    months: int,
    last: str | None = None,
    fmt: str,
    out: TextIO,
    today: date | None = None,
) -> int:
    report = cost.build(aws, root, envs, months, today or datetime.now(UTC).date(), last)
    {"json": cost.write_json, "markdown": cost.write_markdown}.get(fmt, cost.write_text)(report, out)
    return EXIT_OK


def run_orphans(
    aws: Aws,
    root: Path,
    *,
    older_than: int,
    fmt: str,
    delete: bool,
    yes: bool,
    out: TextIO,
    err: TextIO | None = None,
    now: datetime | None = None,
) -> int:
    """List the orphans (exit 0: findings are information); with `delete` and `yes`, delete them."""
    err = err or sys.stderr
    if older_than < 0:
        raise UserError(f"--older-than must be 0 or more days, not {older_than}")
    if yes and not delete:
        raise UserError("--yes only confirms --delete", hint="add --delete to delete what is listed")
    found, notes = orphans.find(aws, root, older_than, now or datetime.now(UTC))
    region = aws.region_name
    (orphans.write_json if fmt == "json" else orphans.write_text)(found, notes, region, out)
    if not delete or not found:
        return EXIT_OK
    if not yes:
        err.write(
            f"error: --delete would delete the {len(found)} resource(s) above; nothing was deleted\n"
            "  hint: run again with --delete --yes to delete them\n"
        )
        return EXIT_USAGE
    # the report went to `out` (maybe a JSON document); the deletion log goes to stderr in JSON mode
    log = err if fmt == "json" else out
    if fmt != "json":
        log.write("\n")
    errors = orphans.delete(aws, found, log)
    for e in errors:
        err.write(f"error: {e}\n")
    if errors:
        err.write(f"{len(errors)} of {len(found)} deletion(s) failed\n")
        return EXIT_USAGE
    log.write(f"deleted {len(found)} resource(s)\n")
    return EXIT_OK
