"""Output formats for findings, one module each; `write` routes by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TextIO

from betcycle.formats import github, json_format, sarif, text
from betcycle.model.findings import Finding

Formatter = Callable[[Sequence[Finding], TextIO, dict[str, object]], None]

FORMATS: dict[str, Formatter] = {
    "text": text.write,
    "json": json_format.write,
    "sarif": sarif.write,
    "github": github.write,
}


def write(fmt: str, findings: Sequence[Finding], out: TextIO, **context: object) -> None:
    FORMATS[fmt](findings, out, context)
