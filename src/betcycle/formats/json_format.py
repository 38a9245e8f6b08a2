"""Machine-readable findings: one JSON object with a summary and the sorted findings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TextIO

from betcycle.model.findings import Finding


def write(findings: Sequence[Finding], out: TextIO, context: dict[str, object]) -> None:
    doc = {
        "summary": {
            "errors": sum(f.severity == "error" for f in findings),
            "warnings": sum(f.severity == "warning" for f in findings),
            **{k: v for k, v in context.items() if isinstance(v, int | str)},
        },
        "findings": [f.to_dict() for f in findings],
    }
    json.dump(doc, out, indent=2, sort_keys=True)
    out.write("\n")
