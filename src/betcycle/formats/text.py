"""Human output: grouped by environment/app and source file, colour on a TTY."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TextIO

from betcycle.model.findings import Finding

_COLOURS = {"error": "\033[31m", "warning": "\033[33m", "info": "\033[36m"}
_BOLD, _DIM, _RESET = "\033[1m", "\033[2m", "\033[0m"


def use_colour(out: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(out, "isatty") and out.isatty()


def write(findings: Sequence[Finding], out: TextIO, context: dict[str, object]) -> None:
    colour = use_colour(out)

    def c(code: str, s: str) -> str:
        return f"{code}{s}{_RESET}" if colour else s

    group: tuple[str, str, str] | None = None
    for f in findings:
        g = (f.env or "", f.app or "", f.source or "")
        if g != group:
            group = g
            head = " / ".join(x for x in (f.env, f.app) if x)
            where = f.source or "(no file)"
            if group is not None and findings[0] is not f:
                out.write("\n")
            out.write(c(_BOLD, f"{head + ': ' if head else ''}{where}") + "\n")
        loc = f"{f.source}:{f.line}" if f.source and f.line else (f.source or "")
        subject = " ".join(x for x in (f.resource, f.path) if x)
        sev = c(_COLOURS.get(f.severity, ""), f.severity)
        out.write(f"  {sev} [{f.rule}] {subject + ': ' if subject else ''}{f.message}\n")
        if loc and f.line:
            out.write(c(_DIM, f"    at {loc}") + "\n")
        if f.manifest and f.manifest != f.source:
            out.write(c(_DIM, f"    in {f.manifest}") + "\n")
        if f.hint:
            out.write(f"    fix: {f.hint}\n")
    errors = sum(f.severity == "error" for f in findings)
    warnings = sum(f.severity == "warning" for f in findings)
    checked = context.get("checked")
    skipped = context.get("skipped")
    summary = f"{errors} error(s), {warnings} warning(s)"
    if checked is not None and "schema" not in str(context.get("checks", "schema")).split(","):
        summary = f"{checked} resource(s), schemas not checked (--checks): " + summary
    elif checked is not None:
        validated = int(str(checked)) - int(str(skipped or 0))
        summary = f"{checked} resource(s), {validated} validated against a schema: " + summary
    if skipped:
        summary += f", {skipped} without schema"
    if findings:
        out.write("\n")
    out.write(c(_BOLD, summary) + "\n")
    if skipped:
        out.write(
            f"skipped (no schema): {context.get('skipped_kinds')}\n"
            "  pin their CRDs in crds.lock.yaml and run `betcycle schemas fetch` (offline: "
            "`betcycle schemas import --vendor CRD.yaml`); without --no-strict this is an error\n"
        )
