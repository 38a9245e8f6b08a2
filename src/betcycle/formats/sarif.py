"""SARIF 2.1.0 for GitHub code scanning: one rule per check/policy id, one result per finding."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

from betcycle import __version__
from betcycle.model.findings import Finding

_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def write(findings: Sequence[Finding], out: TextIO, context: dict[str, object]) -> None:
    rules_meta = context.get("rules")
    rule_docs: dict[str, dict[str, str]] = rules_meta if isinstance(rules_meta, dict) else {}
    rule_ids = sorted({f.rule for f in findings} | set(rule_docs))
    rules = []
    for rid in rule_ids:
        meta = rule_docs.get(rid, {})
        rule: dict[str, Any] = {"id": rid, "name": rid.replace("/", "-")}
        if meta.get("title"):
            rule["shortDescription"] = {"text": meta["title"]}
        if meta.get("rationale"):
            rule["fullDescription"] = {"text": meta["rationale"]}
        if meta.get("severity"):
            rule["defaultConfiguration"] = {"level": _LEVEL.get(meta["severity"], "warning")}
        rules.append(rule)
    index = {rid: i for i, rid in enumerate(rule_ids)}
    results = []
    for f in findings:
        subject = " ".join(x for x in (f.env, f.app, f.resource, f.path) if x)
        text = f"{subject}: {f.message}" if subject else f.message
        if f.hint:
            text += f" Fix: {f.hint}"
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": _LEVEL.get(f.severity, "warning"),
            "message": {"text": text},
        }
        if f.source:
            region = {"startLine": f.line} if f.line else {}
            loc: dict[str, Any] = {"artifactLocation": {"uri": f.source, "uriBaseId": "%SRCROOT%"}}
            if region:
                loc["region"] = region
            result["locations"] = [{"physicalLocation": loc}]
        props = {k: v for k, v in (("env", f.env), ("app", f.app), ("resource", f.resource)) if v}
        if props:
            result["properties"] = props
        results.append(result)
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "betcycle",
                        "version": __version__,
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
    json.dump(doc, out, indent=2, sort_keys=True)
    out.write("\n")
