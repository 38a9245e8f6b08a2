"""Reading policy and waiver files: checked against their JSON Schemas with line numbers, compiled once.

Every problem in every file is collected and raised together as `UserErrors`; `engine.py` holds the
evaluation. JSON Schema messages are rewritten into short sentences (`describe`), and a schema may carry an
`x-message` keyword that replaces the message of every error beneath it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import jsonschema_rs

from betcycle.errors import UserError, UserErrors
from betcycle.model.findings import json_path
from betcycle.model.repo import close_matches, did_you_mean
from betcycle.model.yamlio import LineMap, PathKey, line_of, load_with_lines, read_text

WAIVERS_FILE = "waivers.yaml"
MESSAGE_KEYWORD = "x-message"
SUBJECTS = ("resource", "podSpec", "containers")


@dataclass(frozen=True)
class Requirement:
    """`requires:` entry: a resource of `kind` in the same env and namespace must select this one."""

    kind: str
    selects: str


@dataclass
class Example:
    resource: dict[str, Any]
    env: str | None = None
    app: str | None = None
    context: tuple[dict[str, Any], ...] = ()
    description: str = ""
    line: int | None = None
    #: a Terraform example: one root configuration's HCL text (evaluated as the root named `env`)
    hcl: str | None = None
    #: the line of the `hcl:` key (its text starts on the next line)
    hcl_line: int | None = None


@dataclass
class Policy:
    id: str
    name: str
    title: str
    severity: str
    rationale: str
    hint: str
    #: kinds the policy applies to; "*" means every kind
    kinds: frozenset[str]
    #: None means every environment
    environments: frozenset[str] | None
    selector: dict[str, Any] | None
    subject: str
    schema: dict[str, Any] | None
    validator: Any  # jsonschema_rs validator, compiled once at load (None when the policy only `requires`)
    when: Any  # jsonschema_rs validator for match.when, or None
    requires: tuple[Requirement, ...]
    pass_examples: list[Example]
    fail_examples: list[Example]
    source: str
    line: int | None = 1
    #: Terraform resource types the policy applies to (match.terraform); None for a Kubernetes policy
    terraform: frozenset[str] | None = None

    @property
    def rule(self) -> str:
        return f"policy/{self.id}"

    @property
    def target(self) -> str:
        """What the policy checks: kubernetes (rendered resources) or terraform (resource blocks)."""
        return "terraform" if self.terraform is not None else "kubernetes"


@dataclass(frozen=True)
class Waiver:
    policy: str
    env: str | None
    app: str | None
    resource: str | None
    reason: str
    owner: str
    expires: dt.date
    source: str
    line: int | None

    def scope_text(self) -> str:
        parts = [
            f"{k}={v}" for k, v in (("env", self.env), ("app", self.app), ("resource", self.resource)) if v
        ]
        return ", ".join(parts)


# --- JSON helpers --------------------------------------------------------------------------------------


def to_json(obj: Any) -> Any:
    """YAML 1.1 leaves dates and non-string keys in parsed data; JSON Schema wants plain JSON values."""
    if isinstance(obj, dict):
        return {k if isinstance(k, str) else str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_json(v) for v in obj]
    if isinstance(obj, dt.date):  # datetime is a date too
        return obj.isoformat()
    return obj


def short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


_TYPE_NAMES = {
    "string": "a string",
    "object": "a mapping",
    "array": "a list",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


_BOUNDS = {
    "minimum": "at least",
    "exclusiveMinimum": "greater than",
    "maximum": "at most",
    "exclusiveMaximum": "less than",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def schema_at(schema: Any, path: list[Any] | tuple[Any, ...]) -> Any:
    node = schema
    for part in path:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            node = node[part]
        else:
            return None
    return node


def _custom_message(schema: Any, schema_path: list[Any]) -> str | None:
    """The deepest `x-message` on the way to the failing keyword (the keyword's own value excluded)."""
    found = None
    node = schema
    for part in schema_path:
        if isinstance(node, dict):
            if isinstance(node.get(MESSAGE_KEYWORD), str):
                found = node[MESSAGE_KEYWORD]
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            break
    return found


def describe(err: Any, schema: Any) -> str:
    """A jsonschema_rs error as a short sentence about the value at its path."""
    custom = _custom_message(schema, list(err.schema_path))
    if custom is not None:
        return custom.replace("{value}", short(err.instance))
    kind = err.kind
    name = kind.name
    inst = err.instance
    if name == "required":
        return f"{kind.property} is not set"
    if name == "const":
        return f"must be {short(kind.expected_value)}, found {short(inst)}"
    if name == "enum":
        return f"must be one of {', '.join(short(o) for o in kind.options)}; found {short(inst)}"
    if name == "type":
        wanted = " or ".join(_TYPE_NAMES.get(t, t) for t in kind.types)
        return f"must be {wanted}, found {_json_type(inst)}"
    if name == "falseSchema":
        return "must not be set"
    if name == "not":
        return f"{short(inst)} is not allowed"
    if name in _BOUNDS:
        return f"must be {_BOUNDS[name]} {kind.limit}, found {short(inst)}"
    if name == "pattern":
        return f"{short(inst)} does not match the pattern {kind.pattern}"
    if name == "contains":
        return f"no item matches; found {short(inst)}"
    return str(err.message)


# --- file validation -----------------------------------------------------------------------------------


@cache
def file_schema(name: str) -> tuple[dict[str, Any], Any]:
    """One of our own file schemas (data/schemas/<name>), parsed and compiled once."""
    text = importlib_resources.files("betcycle").joinpath("data", "schemas", name).read_text("utf-8")
    schema = json.loads(text)
    return schema, jsonschema_rs.validator_for(schema)


def _in(ipath: PathKey) -> str:
    return f" in {json_path(ipath)}" if ipath else ""


def validate_file(data: Any, lines: LineMap, schema_name: str, display: str) -> list[UserError]:
    """Errors of `data` against one of our schemas, each at the line of the offending key or value."""
    schema, validator = file_schema(schema_name)
    out: list[UserError] = []
    missing: list[tuple[PathKey, str, UserError]] = []
    suggested: set[tuple[PathKey, str]] = set()  # (object path, key) a typo'd key probably meant
    for err in validator.iter_errors(data):
        ipath: PathKey = tuple(err.instance_path)
        kind = err.kind
        parent = schema_at(schema, list(err.schema_path)[:-1])
        parent = parent if isinstance(parent, dict) else {}
        hint: str | None
        if kind.name == "additionalProperties":
            allowed = sorted(parent.get("properties") or {})
            for key in kind.unexpected:
                close = difflib.get_close_matches(key, allowed, n=1)
                suggested.update((ipath, c) for c in close)
                hint = (
                    (f"did you mean {close[0]!r}? " if close else "") + "allowed keys: " + ", ".join(allowed)
                )
                line = line_of(lines, (*ipath, key))
                out.append(UserError(f"unknown key {key!r}{_in(ipath)}", path=display, line=line, hint=hint))
            continue
        if kind.name == "required":
            prop = kind.property
            sub = (parent.get("properties") or {}).get(prop)
            hint = sub.get("description") if isinstance(sub, dict) else None
            msg = f"missing required key {prop!r}{_in(ipath)}"
            missing.append((ipath, prop, UserError(msg, path=display, line=line_of(lines, ipath), hint=hint)))
            continue
        where = json_path(ipath)
        msg = f"{where}: {describe(err, schema)}" if where else describe(err, schema)
        described = parent.get("description")
        hint = described if isinstance(described, str) else None
        out.append(UserError(msg, path=display, line=line_of(lines, ipath), hint=hint))
    # "unknown key 'sevrity'" already says what is wrong; "missing required key 'severity'" would repeat it
    out += [e for ipath, prop, e in missing if (ipath, prop) not in suggested]
    unique = {(e.line, e.message): e for e in out}
    return sorted(unique.values(), key=lambda e: (e.line or 0, e.message))


def _load_yaml(path: Path, display: str) -> tuple[Any, LineMap]:
    text = read_text(path, display)
    try:
        # policy files may write dates unquoted (expires: 2025-09-30): to_json turns them into strings
        data, lines = load_with_lines(text, display, strict_types=False)
    except ValueError as exc:  # PyYAML raises plain ValueError for impossible dates such as 2025-02-30
        raise UserError(f"invalid value: {exc}", path=display, hint="quote the value or fix it") from None
    return to_json(data), lines


# --- policies ------------------------------------------------------------------------------------------


def _no_remote(uri: str) -> Any:
    raise ValueError(f"remote $ref {uri} is not allowed; policies must be self-contained (use $defs)")


def compile_schema(schema: dict[str, Any], key: PathKey, display: str, lines: LineMap) -> Any:
    """Compile with jsonschema_rs (which meta-validates); on failure, `jsonschema` pinpoints the bad keyword.

    The Python `jsonschema` package is imported only on that error path: it costs ~0.3 s of start-up that
    every `validate` run would otherwise pay.
    """
    try:
        return jsonschema_rs.validator_for(schema, retriever=_no_remote)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    import jsonschema  # type: ignore[import-untyped,unused-ignore]

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        at = tuple(exc.absolute_path)
        where = json_path((*key, *at))
        raise UserError(
            f"{where}: not a valid JSON Schema: {exc.message}",
            path=display,
            line=line_of(lines, (*key, *at)),
            hint="policy schemas are JSON Schema draft 2020-12 unless they set $schema; "
            "see https://json-schema.org/understanding-json-schema/",
        ) from None
    raise UserError(
        f"{json_path(key)}: cannot compile the JSON Schema: {first}",
        path=display,
        line=line_of(lines, key),
        hint="check $ref targets (only local #/$defs/... references are allowed) and regex patterns",
    )


def _example(raw: dict[str, Any], line: int | None, hcl_line: int | None = None) -> Example:
    if "kind" in raw:
        return Example(resource=raw, line=line)
    if "hcl" in raw:
        return Example(
            resource={},
            env=raw.get("env"),
            description=raw.get("description", ""),
            line=line,
            hcl=raw["hcl"],
            hcl_line=hcl_line,
        )
    return Example(
        resource=raw["resource"],
        env=raw.get("env"),
        app=raw.get("app"),
        context=tuple(raw.get("context") or ()),
        description=raw.get("description", ""),
        line=line,
    )


def load_policy(path: Path, display: str) -> tuple[Policy | None, str | None, list[UserError]]:
    """(policy or None, its id when readable, errors)."""
    try:
        data, lines = _load_yaml(path, display)
    except UserError as exc:
        return None, None, [exc]
    if not isinstance(data, dict):
        err = UserError(
            "a policy file must be a mapping (id, name, title, severity, rationale, hint, match, schema)",
            path=display,
            line=1,
            hint="see docs/policies.md for the format",
        )
        return None, None, [err]
    pid = data.get("id") if isinstance(data.get("id"), str) else None
    errors = validate_file(data, lines, "policy.schema.json", display)
    if errors:
        return None, pid, errors
    validator = when = None
    schema = data.get("schema")
    match = data["match"]
    try:
        if schema is not None:
            validator = compile_schema(schema, ("schema",), display, lines)
        if match.get("when") is not None:
            when = compile_schema(match["when"], ("match", "when"), display, lines)
    except UserError as exc:
        return None, pid, [exc]
    examples = data.get("examples") or {}
    envs = match.get("environments")
    policy = Policy(
        id=data["id"],
        name=data["name"],
        title=data["title"].strip(),
        severity=data["severity"],
        rationale=" ".join(data["rationale"].split()),
        hint=" ".join(data["hint"].split()),
        kinds=frozenset(match.get("kinds") or ()),
        environments=frozenset(envs) if envs is not None else None,
        selector=match.get("selector"),
        subject=data.get("subject", "resource"),
        schema=schema,
        validator=validator,
        when=when,
        requires=tuple(Requirement(r["kind"], r["selects"]) for r in data.get("requires") or ()),
        pass_examples=[
            _example(e, line_of(lines, ("examples", "pass", i)), lines.get(("examples", "pass", i, "hcl")))
            for i, e in enumerate(examples.get("pass", []))
        ],
        fail_examples=[
            _example(e, line_of(lines, ("examples", "fail", i)), lines.get(("examples", "fail", i, "hcl")))
            for i, e in enumerate(examples.get("fail", []))
        ],
        source=display,
        line=line_of(lines, ("id",)),
        terraform=frozenset(match["terraform"]) if "terraform" in match else None,
    )
    return policy, pid, []


# --- waivers -------------------------------------------------------------------------------------------


def load_waivers(path: Path, display: str, known: set[str] | None) -> tuple[list[Waiver], list[UserError]]:
    """Waivers from `path` (missing file → none). `known` policy ids, or None to skip that check."""
    if not path.is_file():
        return [], []
    try:
        data, lines = _load_yaml(path, display)
    except UserError as exc:
        return [], [exc]
    if data is None:
        return [], []
    errors = validate_file(data, lines, "waivers.schema.json", display)
    if errors:
        return [], errors
    waivers = []
    for i, w in enumerate(data["waivers"]):
        try:
            expires = dt.date.fromisoformat(w["expires"])
        except ValueError:
            errors.append(
                UserError(
                    f"waivers[{i}].expires: {w['expires']!r} is not a valid date",
                    path=display,
                    line=line_of(lines, ("waivers", i, "expires")),
                    hint="write the date as YYYY-MM-DD",
                )
            )
            continue
        if known is not None and w["policy"] not in known:
            close = close_matches(w["policy"], sorted(known))
            errors.append(
                UserError(
                    f"waivers[{i}].policy: unknown policy {w['policy']!r}",
                    path=display,
                    line=line_of(lines, ("waivers", i, "policy")),
                    hint=(did_you_mean(close) + " " if close else "")
                    + "run `betcycle policy list` for the ids",
                )
            )
            continue
        scope = w["scope"]
        waivers.append(
            Waiver(
                policy=w["policy"],
                env=scope.get("env"),
                app=scope.get("app"),
                resource=scope.get("resource"),
                reason=" ".join(w["reason"].split()),
                owner=w["owner"],
                expires=expires,
                source=display,
                line=line_of(lines, ("waivers", i)),
            )
        )
    return waivers, errors


def load_files(root: Path, policies_dir: str) -> tuple[list[Policy], list[Waiver], str]:
    """Every policy in `root/policies_dir` and its waivers; raises UserErrors listing every problem."""
    folder = root / policies_dir
    waivers_display = Path(policies_dir, WAIVERS_FILE).as_posix()
    if not folder.is_dir():
        return [], [], waivers_display
    errors: list[UserError] = []
    policies: list[Policy] = []
    ids: dict[str, Policy] = {}
    all_ids: set[str] = set()  # includes ids of files that failed, so their waivers are not "unknown"
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and p.suffix in (".yaml", ".yml")
        and p.stem != "waivers"
        and not p.name.startswith(".")
    )
    for path in files:
        display = Path(policies_dir, path.name).as_posix()
        policy, pid, errs = load_policy(path, display)
        errors.extend(errs)
        if pid:
            all_ids.add(pid)
        if policy is None:
            continue
        first = ids.get(policy.id)
        if first is not None:
            errors.append(
                UserError(
                    f"duplicate policy id {policy.id!r}",
                    path=display,
                    line=policy.line,
                    hint=f"{first.source}:{first.line} already uses it; give this policy a new id",
                )
            )
            continue
        ids[policy.id] = policy
        policies.append(policy)
    waivers, errs = load_waivers(folder / WAIVERS_FILE, waivers_display, all_ids)
    errors.extend(errs)
    if errors:
        raise UserErrors(errors)
    return policies, waivers, waivers_display
