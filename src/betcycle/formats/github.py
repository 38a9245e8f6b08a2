"""GitHub Actions workflow commands: each finding becomes an annotation on its file and line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from betcycle.model.findings import Finding

_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_prop(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def write(findings: Sequence[Finding], out: TextIO, context: dict[str, object]) -> None:
    for f in findings:
        props = []
        if f.source:
            props.append(f"file={_escape_prop(f.source)}")
            if f.line:
                props.append(f"line={f.line}")
        props.append(f"title={_escape_prop(f.rule)}")
        subject = " ".join(x for x in (f.env, f.app, f.resource, f.path) if x)
        msg = f"{subject}: {f.message}" if subject else f.message
        if f.hint:
            msg += f"\nfix: {f.hint}"
        out.write(f"::{_LEVEL.get(f.severity, 'warning')} {','.join(props)}::{_escape_data(msg)}\n")
