"""Output formats for a DiffReport: terminal text, a pull-request comment (Markdown) and JSON.

Every value shown comes from the report, whose documents were masked before diffing: no format can leak a
secret. The Markdown comment stays under GitHub's 65,536-character limit for comment bodies.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from typing import TextIO

from betcycle.diff.engine import (
    AppDiff,
    DiffReport,
    EnvDiff,
    FieldChange,
    ObjectChange,
    Risk,
    format_money,
    format_number,
    show_value,
)

#: first line of the PR comment, so CI can find its own comment and update it instead of adding another
MARKER = "<!-- betcycle-diff -->"

_SIGN = {"added": "+", "removed": "-", "changed": "~"}
_GREEN, _RED, _YELLOW, _CYAN = "\033[32m", "\033[31m", "\033[33m", "\033[36m"
_BOLD, _DIM, _RESET = "\033[1m", "\033[2m", "\033[0m"
_STATUS_COLOUR = {"added": _GREEN, "removed": _RED, "changed": _YELLOW}


def _title(report: DiffReport, flag: str) -> str:
    envs = ", ".join((flag if e.info.is_prod else "") + e.name for e in report.envs)
    counts = ", ".join(f"{n} {status}" for status, n in report.counts.items() if n)
    n = len(report.envs)
    return f"{n} environment{'s' if n != 1 else ''} change{'' if n != 1 else 's'} ({envs}): {counts}"


def _where(r: Risk) -> str:
    return "/".join(p for p in (r.env, r.app) if p)


def _field_text(f: FieldChange, limit: int = 120) -> tuple[str, str]:
    """(path with item names, what happened) for one field change."""
    path = f"{f.path} ({f.where})" if f.where else f.path
    if f.op == "added":
        return path, f"added {show_value(f.new, limit)}"
    if f.op == "removed":
        return path, f"removed {show_value(f.old, limit)}"
    if f.op == "reordered":
        return path, f"reordered {', '.join(f.old)} → {', '.join(f.new)}"
    return path, f"{show_value(f.old, limit)} → {show_value(f.new, limit)}"


def _resources_line(e: EnvDiff) -> str:
    cpu = f"{format_number(e.cpu_base)} → {format_number(e.cpu_head)} cores"
    mem = f"{format_number(e.mem_base)} → {format_number(e.mem_head)} GiB"
    cost = e.cost_delta
    price = f"est. {format_money(cost, e.currency)}/month" if cost is not None else "no price table"
    if not e.cpu_delta and not e.mem_delta:
        return f"requests unchanged (CPU {format_number(e.cpu_head)} cores, memory {format_number(e.mem_head)} GiB)"
    return (
        f"CPU {cpu} ({format_number(e.cpu_delta, signed=True)}), "
        f"memory {mem} ({format_number(e.mem_delta, signed=True)}); {price}"
    )


# --- text ------------------------------------------------------------------------------------------------


def write_text(report: DiffReport, out: TextIO, colour: bool) -> None:
    """Summary first (risks, requested resources and cost), then every object change per environment/app."""

    def c(code: str, s: str) -> str:
        return f"{code}{s}{_RESET}" if colour else s

    if not report.has_changes:
        out.write("no changes\n")
        return
    out.write(c(_BOLD, "betcycle diff: " + _title(report, "⚠ ")) + "\n")
    risks = [r for r in report.risks if r.category != "environments"]
    if risks:
        out.write("\n" + c(_BOLD, "Risks") + "\n")
        for r in risks:
            line = f"{'⚠' if r.prod else '-'} {_where(r)}: {r.message}"
            out.write(f"  {c(_YELLOW, line) if r.prod else line}\n")
    out.write("\n" + c(_BOLD, "Requested resources") + "\n")
    for e in report.envs:
        out.write(f"  {e.name}: {_resources_line(e)}\n")
        for note in e.notes:
            out.write(c(_DIM, f"    note: {note}") + "\n")
    for e in report.envs:
        for app in e.apps:
            out.write("\n" + c(_BOLD, f"{e.name} / {app.label}") + "\n")
            for o in app.objects:
                out.write("  " + c(_STATUS_COLOUR[o.status], f"{_SIGN[o.status]} {o.ident}") + "\n")
                for f in o.fields:
                    path, what = _field_text(f)
                    out.write(f"      {path}: {what}\n")
                if o.status == "changed" and o.hunk:
                    for line in o.hunk.splitlines():
                        out.write("        " + _hunk_line(line, c) + "\n")


def _hunk_line(line: str, c: Callable[[str, str], str]) -> str:
    if line.startswith(("---", "+++")):
        return c(_BOLD, line)
    if line.startswith("@@"):
        return c(_CYAN, line)
    return c(_GREEN, line) if line.startswith("+") else c(_RED, line) if line.startswith("-") else line


# --- markdown --------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#])")


def _md(text: str) -> str:
    """Plain text in Markdown: characters that would format, link or open HTML are escaped."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def _code(text: str) -> str:
    """A code span for a table cell: fenced with more backticks than it contains; pipes escaped for tables."""
    if not text:
        return ""
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (run + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}".replace("|", "\\|")


def _fence(text: str) -> str:
    run = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    return "`" * (run + 1)


def _md_risk(r: Risk) -> str:
    return f"- {'⚠️ ' if r.prod else ''}**{_md(_where(r))}**: {_md(r.message)}"


def _env_row(e: EnvDiff) -> str:
    name = f"{'⚠️ ' if e.info.is_prod else ''}**{_md(e.name)}**"
    if e.status != "changed":
        name += f" ({'new' if e.status == 'added' else 'removed'})"
    cpu = f"{format_number(e.cpu_delta, signed=True)} ({format_number(e.cpu_base)} → {format_number(e.cpu_head)})"
    mem = f"{format_number(e.mem_delta, signed=True)} ({format_number(e.mem_base)} → {format_number(e.mem_head)})"
    cost = e.cost_delta
    money = format_money(cost, e.currency) if cost is not None else "no price table"
    counts = " | ".join(str(e.count(s)) for s in ("added", "removed", "changed"))
    return f"| {name} | {counts} | {cpu} | {mem} | {money} |"


def _object_rows(o: ObjectChange) -> list[str]:
    obj = f"{_SIGN[o.status]} {_code(o.ident)}"
    if o.status != "changed":
        return [f"| {obj} | *{o.status}* | | |"]
    rows = []
    for f in o.fields:
        path, _ = _field_text(f)
        if f.op == "changed":
            old, new = _code(show_value(f.old, 200)), _code(show_value(f.new, 200))
        elif f.op == "reordered":
            old, new = _code(", ".join(f.old)), _code(", ".join(f.new))
        else:
            old = "*(none)*" if f.op == "added" else _code(show_value(f.old, 200))
            new = "*(none)*" if f.op == "removed" else _code(show_value(f.new, 200))
        rows.append(f"| {obj} | {_code(path)} | {old} | {new} |")
    return rows or [f"| {obj} | *changed* | | |"]


def _app_section(app: AppDiff) -> str:
    counts = ", ".join(f"{app.count(s)} {s}" for s in ("added", "removed", "changed") if app.count(s))
    lines = [
        f"<details><summary><b>{html.escape(app.label)}</b>: {counts}</summary>",
        "",
        "| Object | Field | Old | New |",
        "|---|---|---|---|",
    ]
    for o in app.objects:
        lines += _object_rows(o)
    hunks = "\n".join(o.hunk for o in app.objects if o.status == "changed" and o.hunk)
    if hunks:
        fence = _fence(hunks)
        lines += ["", f"{fence}diff", hunks, fence]
    lines += ["", "</details>", ""]
    return "\n".join(lines) + "\n"


def _summary(report: DiffReport, risks: list[Risk], more: int) -> str:
    lines = [MARKER, "## BetCycle diff", "", _title(report, "⚠️ ").replace("_", "\\_"), ""]
    if risks or more:
        lines += ["### Risks", "", *(_md_risk(r) for r in risks)]
        if more:
            lines.append(f"- … and {more} more risk(s), see the full diff")
        lines.append("")
    lines += [
        "### Environments",
        "",
        "| Environment | Added | Removed | Changed | CPU Δ (cores) | Memory Δ (GiB) | Monthly cost Δ |",
        "|---|--:|--:|--:|--:|--:|--:|",
        *(_env_row(e) for e in report.envs),
        "",
    ]
    notes = [f"- {_md(e.name)}: {_md(n)}" for e in report.envs for n in e.notes]
    if notes:
        lines += ["<sub>", "", *notes, "", "</sub>", ""]
    return "\n".join(lines) + "\n"


def write_markdown(
    report: DiffReport,
    out: TextIO,
    max_chars: int = 60000,
    artifact_hint: str = "the full diff is in the workflow's artifacts",
) -> None:
    """A pull-request comment of at most `max_chars` characters: summary and tables, then per-app details."""
    if not report.has_changes:
        out.write(f"{MARKER}\n## BetCycle diff\n\nNo changes: Argo CD has nothing new to sync.\n")
        return
    sections: list[str] = []
    for e in report.envs:
        heading = f"### {'⚠️ ' if e.info.is_prod else ''}{_md(e.name)}\n\n"
        sections += [(heading if i == 0 else "") + _app_section(a) for i, a in enumerate(e.apps)]
    total = len(sections)

    def note(shown: int) -> str:
        return f"\n> ⚠️ Diff truncated at {max_chars} characters: {shown} of {total} app sections shown; {artifact_hint}\n"

    reserve = len(note(total))
    risks = [r for r in report.risks if r.category != "environments"]
    keep = len(risks)
    text = _summary(report, risks, 0)
    while keep and len(text) + reserve > max_chars:  # an enormous risk list: keep the first ones
        keep = max(0, keep - max(1, keep // 10))
        text = _summary(report, risks[:keep], len(risks) - keep)
    shown = 0
    for section in sections:
        if len(text) + len(section) + (reserve if shown + 1 < total else 0) > max_chars:
            break
        text += section
        shown += 1
    if shown < total:
        text = (text + note(shown))[:max_chars]
    out.write(text)


# --- json ------------------------------------------------------------------------------------------------


def write_json(report: DiffReport, out: TextIO) -> None:
    json.dump(report.to_dict(), out, indent=2, sort_keys=True)
    out.write("\n")
