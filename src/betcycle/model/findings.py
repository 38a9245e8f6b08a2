"""The Finding type: one problem, with everything a reader needs to find and fix it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from betcycle.model.resources import Resource

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    #: "error" fails the run (exit 1); "warning" and "info" are reported only
    severity: str
    #: stable rule id: "schema", "schema/removed-api", "crossref/service-selector", "policy/<id>", ...
    rule: str
    message: str
    hint: str = ""
    env: str | None = None
    app: str | None = None
    #: repository-relative file that produced the problem (chart template, values file, manifest)
    source: str | None = None
    line: int | None = None
    #: kind/namespace/name
    resource: str | None = None
    #: JSON path inside the resource, e.g. spec.template.spec.containers[0].image
    path: str | None = None
    #: the rendered manifest file, when the problem is in one
    manifest: str | None = None

    def sort_key(self) -> tuple[Any, ...]:
        return (
            self.env or "",
            self.app or "",
            self.source or "",
            self.resource or "",
            self.path or "",
            self.rule,
            self.message,
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


def for_resource(
    res: Resource,
    *,
    severity: str,
    rule: str,
    message: str,
    hint: str = "",
    path: str | None = None,
    origin: tuple[str, int] | None = None,
) -> Finding:
    """A finding about `res`, attributed to the values line that set the value when known (`origin`)."""
    source, line = origin if origin else (res.source, res.line)
    return Finding(
        severity=severity,
        rule=rule,
        message=message,
        hint=hint,
        env=res.env,
        app=res.app,
        source=source,
        line=line,
        resource=res.ident,
        path=path or None,
        manifest=res.output,
    )


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Sorted and de-duplicated: the same problem reported twice is shown once."""
    seen: set[Finding] = set()
    out = []
    for f in sorted(findings, key=Finding.sort_key):
        if f not in seen:
            seen.add(f)
            out.append(f)
    return out


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)


def json_path(parts: Iterable[str | int]) -> str:
    """('spec', 'containers', 0, 'image') -> spec.containers[0].image"""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif out:
            out += f".{p}" if _plain(p) else f"[{p!r}]"
        else:
            out = p if _plain(p) else f"[{p!r}]"
    return out


def _plain(key: str) -> bool:
    return key.replace("_", "a").replace("-", "a").isalnum()
