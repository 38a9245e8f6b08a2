"""`betcycle findings merge`: the reports of `validate --shard I/N --format json` as one report.

CI fans validation out over a matrix (docs/performance.md); the last job merges the shards' JSON reports
into one text, JSON, SARIF or GitHub report and fails (exit 1) on any error finding. A missing, repeated or
foreign shard is bad input (exit 2): a shard that crashed left no report, and its share of the work was
never checked.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any, TextIO

from betcycle import formats
from betcycle.errors import UserError
from betcycle.model.findings import Finding, has_errors, sort_findings
from betcycle.model.limits import read_text
from betcycle.render.shard import Shard

_FIELDS = {f.name for f in dataclasses.fields(Finding)}
_SKIPPED = re.compile(r"(.+) \(([0-9]+)\)")


def _load(path: Path, display: str) -> tuple[dict[str, Any], list[Finding]]:
    try:
        doc = json.loads(read_text(path, display))
    except json.JSONDecodeError as exc:
        raise UserError(f"not JSON: {exc.msg}", path=display, line=exc.lineno, hint=_HINT) from None
    summary = doc.get("summary") if isinstance(doc, dict) else None
    items = doc.get("findings") if isinstance(doc, dict) else None
    if not isinstance(summary, dict) or not isinstance(items, list):
        raise UserError("not a betcycle JSON report (no summary and findings)", path=display, hint=_HINT)
    findings = []
    for i, item in enumerate(items):
        if (
            not isinstance(item, dict)
            or not {"severity", "rule", "message"} <= set(item)
            or set(item) - _FIELDS
        ):
            raise UserError(f"finding {i + 1} is not one betcycle writes", path=display, hint=_HINT)
        findings.append(Finding(**item))
    return summary, findings


_HINT = "merge the files `betcycle validate --shard I/N --format json --output FILE` wrote"


def _check_shards(summaries: list[tuple[str, dict[str, Any]]]) -> None:
    shards = [(display, summary.get("shard")) for display, summary in summaries]
    if not any(s for _, s in shards):
        return  # reports of separate runs: merged as they are
    unsharded = [d for d, s in shards if not s]
    if unsharded:
        raise UserError("is not a shard's report, but others are", path=unsharded[0], hint=_HINT)
    parsed = [(d, Shard.parse(str(s))) for d, s in shards]
    counts = {s.count for _, s in parsed}
    if len(counts) > 1:
        splits = ", ".join(sorted({str(s) for _, s in parsed}))
        raise UserError(f"the reports come from different splits ({splits})", hint=_HINT)
    count = counts.pop()
    seen: dict[int, str] = {}
    for display, shard in parsed:
        if shard.index in seen:
            raise UserError(
                f"shard {shard} is also in {seen[shard.index]}",
                path=display,
                hint="pass each shard's report once",
            )
        seen[shard.index] = display
    missing = [f"{i}/{count}" for i in range(1, count + 1) if i not in seen]
    if missing:
        raise UserError(
            f"no report for shard {', '.join(missing)}: that share of the repository was not validated",
            hint="re-run the failed shard job (its report is missing because it did not finish)",
        )


def merge(root: Path, files: list[Path], *, fmt: str, out: TextIO, cwd: Path) -> int:
    if not files:
        raise UserError("no reports to merge", hint=_HINT)
    summaries: list[tuple[str, dict[str, Any]]] = []
    findings: list[Finding] = []
    for f in files:
        display = str(f)
        summary, found = _load(f if f.is_absolute() else cwd / f, display)
        summaries.append((display, summary))
        findings += found
    _check_shards(summaries)
    checks = {str(s.get("checks", "")) for _, s in summaries}
    if len(checks) > 1:
        raise UserError(
            f"the reports ran different checks ({'; '.join(sorted(checks))})",
            hint="run every shard with the same options",
        )
    skipped_kinds: dict[str, int] = {}
    for _, s in summaries:
        for part in str(s.get("skipped_kinds") or "").split(", "):
            m = _SKIPPED.fullmatch(part)
            if m:
                skipped_kinds[m[1]] = skipped_kinds.get(m[1], 0) + int(m[2])
    total = {k: sum(int(s.get(k, 0) or 0) for _, s in summaries) for k in ("checked", "skipped")}
    extra: dict[str, Any] = {}
    if any("terraform" in s for _, s in summaries):
        extra["terraform"] = sum(int(s.get("terraform", 0) or 0) for _, s in summaries)
    rules: dict[str, dict[str, str]] = {}
    if (root / "policies").is_dir():  # titles and rationale for SARIF, from the checkout being merged in
        from betcycle.policy.engine import load_policies

        rules = load_policies(root).rules_meta()
    findings = sort_findings(list(dict.fromkeys(findings)))
    formats.write(
        fmt,
        findings,
        out,
        checked=total["checked"],
        checks=checks.pop(),
        skipped=total["skipped"],
        skipped_kinds=", ".join(f"{k} ({n})" for k, n in sorted(skipped_kinds.items())),
        rules=rules,
        **extra,
    )
    return 1 if has_errors(findings) else 0
