"""Validate a declarative file against its JSON Schema and turn every violation into a UserError with a line.

Used for our own file kinds (environment.yaml, app.yaml, chart.yaml, policies, waivers) and for merged chart
values. Schemas are compiled once per process with jsonschema-rs.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs

from betcycle.errors import UserError
from betcycle.model.findings import json_path
from betcycle.model.yamlio import LineMap, PathKey, line_of

#: maps a path inside the checked document to (file, line); lets merged values point at the layer that set it
Locator = Callable[[PathKey], tuple[str, int | None]]


@cache
def builtin_schema(name: str) -> dict[str, Any]:
    """One of the JSON Schemas shipped in betcycle/data/schemas (e.g. "environment")."""
    text = resources.files("betcycle").joinpath(f"data/schemas/{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _builtin_validator(name: str) -> Any:
    return jsonschema_rs.validator_for(builtin_schema(name))


def compile_schema(schema: dict[str, Any], *, path: str, line: int | None = None) -> Any:
    """Compile a user-supplied schema (chart values schema, policy schema) with a clear error if broken."""
    try:
        return jsonschema_rs.validator_for(schema)
    except (ValueError, jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError) as exc:
        raise UserError(
            f"invalid JSON Schema: {str(exc).splitlines()[0]}",
            path=path,
            line=line,
            hint="check the schema against https://json-schema.org/draft/2020-12",
        ) from None


def _schema_at(schema: Any, schema_path: list[str | int]) -> Any:
    node = schema
    for part in schema_path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def check(
    data: Any,
    validator: Any,
    *,
    schema: dict[str, Any] | None,
    path: str,
    lines: LineMap | None = None,
    locate: Locator | None = None,
    what: str = "",
) -> list[UserError]:
    """Every schema violation of `data` as a UserError (sorted by line), empty when valid."""
    errors: list[UserError] = []
    hint: str | None

    def where(key: PathKey) -> tuple[str, int | None]:
        if locate is not None:
            return locate(key)
        return path, line_of(lines or {}, key)

    for err in validator.iter_errors(data):
        key: PathKey = tuple(err.instance_path)
        kind = type(err.kind).__name__
        prefix = f"{what} " if what else ""
        at = json_path(key)
        if kind == "AdditionalProperties":
            parent = _schema_at(schema, list(err.schema_path)[:-1]) if schema else None
            allowed = sorted(parent.get("properties", {})) if isinstance(parent, dict) else []
            for name in err.kind.unexpected:
                file, line = where((*key, name))
                suggestion = _suggest(name, allowed)
                hint = suggestion or (f"allowed keys: {', '.join(allowed)}" if allowed else "")
                full = json_path((*key, name))
                errors.append(
                    UserError(f"{prefix}unknown key {full!r}", path=file, line=line, hint=hint or None)
                )
            continue
        if kind == "PropertyNames" and isinstance(err.kind.error.instance, str):
            # a refused map key: name the key and the layer that set it, not the map's first definition
            inner = err.kind.error
            file, line = where((*key, inner.instance))
            rule = _schema_at(schema, list(inner.schema_path)[:-1]) if schema else None
            described = rule.get("description") if isinstance(rule, dict) else None
            detail = inner.message.removeprefix(json.dumps(inner.instance, ensure_ascii=False)).strip()
            message = f"key {inner.instance!r} {detail}"
            hint = described if isinstance(described, str) else None
            errors.append(UserError(f"{prefix}{at}: {message}", path=file, line=line, hint=hint))
            continue
        file, line = where(key)
        message = err.message
        if kind == "Enum" and isinstance(err.instance, str):
            suggestion = _suggest(err.instance, [str(o) for o in err.kind.options])
            hint = suggestion or None
        else:
            hint = None
        loc = f"{at}: " if at else ""
        errors.append(UserError(f"{prefix}{loc}{message}", path=file, line=line, hint=hint))
    errors.sort(key=lambda e: (e.path or "", e.line or 0, e.message))
    return errors


def check_builtin(
    data: Any, name: str, *, path: str, lines: LineMap | None = None, what: str = ""
) -> list[UserError]:
    """Check a file of one of our own kinds against its shipped schema."""
    return check(
        data, _builtin_validator(name), schema=builtin_schema(name), path=path, lines=lines, what=what
    )
