"""Terraform files as data: every top-level block of `terraform/**/*.tf` with its file and lines (python-hcl2).

python-hcl2 8.x parses to a rule tree whose blocks keep lark's line numbers; its `with_meta` serialisation
option is accepted but adds nothing, so each top-level block is serialised on its own and carries its
`line`/`end_line` from the tree. Values are plain data: strings, numbers, booleans, lists and maps; an
expression BetCycle does not evaluate stays a string in Terraform's own `${...}` spelling
(`bucket = aws_s3_bucket.logs.id` reads as `"${aws_s3_bucket.logs.id}"`).

Every file is read through the bounded reader (`model/limits.py`), so a FIFO or a huge file fails as fast as
any other input, and a syntax error is one `UserError` naming the file and line (exit 2).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from betcycle.errors import UserError
from betcycle.model import limits
from betcycle.model.yamlio import LineMap, PathKey

if TYPE_CHECKING:  # hcl2 and lark are imported where a file is parsed: they cost ~0.1 s of every start-up
    import hcl2
    from hcl2.rules.base import BodyRule


@functools.cache
def _options() -> hcl2.SerializationOptions:
    """Strings without their quotes, heredocs as their text, no comments, blocks as plain maps."""
    import hcl2

    return hcl2.SerializationOptions(
        with_comments=False,
        strip_string_quotes=True,
        explicit_blocks=False,
        preserve_heredocs=False,
    )


@dataclass(frozen=True)
class Block:
    """One top-level block: `resource "aws_s3_bucket" "logs" {…}` is kind resource, labels (type, name)."""

    kind: str
    labels: tuple[str, ...]
    body: dict[str, Any]
    file: str  # the display path (relative to the repository root when under it)
    line: int
    end_line: int
    #: line of each attribute and nested block, by path in `body` (("ingress", 0, "cidr_blocks"): 22)
    lines: LineMap = field(default_factory=dict, compare=False, repr=False)


def _label(rule: Any) -> str:
    value = rule.serialize(_options())
    return value if isinstance(value, str) else str(value)


def parse_text(text: str, display: str) -> list[Block]:
    """The top-level blocks of one file's text (top-level attributes, which Terraform refuses, are ignored)."""
    import hcl2
    from hcl2.rules.base import BlockRule
    from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

    try:
        tree = hcl2.parses(text, discard_comments=True)
    except UnexpectedInput as exc:
        line = getattr(exc, "line", None)
        line = line if isinstance(line, int) and line > 0 else None
        token = getattr(exc, "token", None)
        at_end = isinstance(exc, UnexpectedEOF) or getattr(token, "type", None) == "$END"
        if at_end or line is None:
            line = max(len(text.splitlines()), 1)  # the last line: where the block or string stays open
        what = "unexpected character" if isinstance(exc, UnexpectedCharacters) else "syntax error"
        if at_end:
            what = "unexpected end of file (an unclosed block or string?)"
        elif token is not None and str(token).strip():
            what += f" near {str(token).strip()[:40]!r}"
        raise UserError(
            f"not valid Terraform (HCL): {what}",
            path=display,
            line=line,
            hint="run `terraform fmt` on the file to see the error in Terraform's words",
        ) from None
    except RecursionError:
        raise UserError(
            "not valid Terraform (HCL): nested too deeply to read",
            path=display,
            hint="flatten the expression (a few hundred levels of brackets is the limit)",
        ) from None
    except (LarkError, RuntimeError, ValueError) as exc:
        raise UserError(f"not valid Terraform (HCL): {exc}", path=display) from None
    blocks: list[Block] = []
    for child in tree.body.children:
        if not isinstance(child, BlockRule):
            continue
        labels = tuple(_label(label) for label in child.labels)
        meta = child._meta  # the rule keeps lark's positions; there is no public accessor
        line = getattr(meta, "line", None) or 1
        lines: LineMap = {(): line}
        try:
            body = _body(child.body, (), lines)
        except (RuntimeError, ValueError) as exc:
            raise UserError(f"not valid Terraform (HCL): {exc}", path=display, line=line) from None
        blocks.append(
            Block(
                kind=labels[0],
                labels=labels[1:],
                body=body,
                file=display,
                line=line,
                end_line=getattr(meta, "end_line", None) or line,
                lines=lines,
            )
        )
    return blocks


def _line(rule: Any) -> int | None:
    line = getattr(getattr(rule, "_meta", None), "line", None)
    return line if isinstance(line, int) else None


def _body(body: BodyRule, base: PathKey, lines: LineMap) -> dict[str, Any]:
    """A block body as plain data (nested blocks as lists, one map per repetition), recording lines."""
    from hcl2.rules.base import AttributeRule, BlockRule

    out: dict[str, Any] = {}
    for child in body.children:
        if isinstance(child, AttributeRule):
            name = _label(child.identifier)
            out[name] = child.expression.serialize(_options())
            at = _line(child)
            if at:
                lines[(*base, name)] = at
        elif isinstance(child, BlockRule):
            labels = [_label(label) for label in child.labels]
            name, rest = labels[0], labels[1:]
            repeated = out.setdefault(name, [])
            if not isinstance(repeated, list):  # an attribute and a block of one name: keep the attribute
                continue
            where: PathKey = (*base, name, len(repeated), *rest)
            inner: Any = _body(child.body, where, lines)
            for label in reversed(rest):
                inner = {label: inner}
            repeated.append(inner)
            at = _line(child)
            if at:
                lines[(*base, name, len(repeated) - 1)] = at
    return out


def parse_file(path: Path, display: str) -> list[Block]:
    """The top-level blocks of one `.tf` file, read through the bounded reader."""
    return parse_text(limits.read_text(path, display), display)


def _display(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return str(path)


def config_blocks(config_dir: Path, root: Path | None = None) -> list[Block]:
    """Every top-level block of the `.tf` files directly in one folder (one Terraform configuration)."""
    blocks: list[Block] = []
    for path in sorted(config_dir.glob("*.tf")):
        blocks.extend(parse_file(path, _display(path, root)))
    return blocks


def backend(config_dir: Path, root: Path | None = None) -> dict[str, Any]:
    """The literal settings of the root configuration's `backend "s3"` block (`{}` when it declares none).

    `terraform { backend "s3" { bucket = "…", key = "…", dynamodb_table = "…" } }` gives
    `{"bucket": "…", "key": "…", "dynamodb_table": "…"}`; values that are expressions stay `${…}` strings
    (Terraform itself refuses variables in a backend block). Two backend blocks are an error.
    """
    found: list[tuple[Block, dict[str, Any]]] = []
    for block in config_blocks(config_dir, root):
        if block.kind != "terraform":
            continue
        for entry in _blocks(block.body.get("backend")):
            for kind, settings in entry.items():
                if kind == "s3" and isinstance(settings, dict):
                    found.append((block, settings))
    if len(found) > 1:
        second = found[1][0]
        raise UserError(
            'more than one backend "s3" block in this configuration',
            path=second.file,
            line=second.line,
            hint="a root configuration has exactly one backend; keep one",
        )
    return dict(found[0][1]) if found else {}


def default_tags(config_dir: Path, root: Path | None = None) -> dict[str, str]:
    """The literal `default_tags` of the configuration's default `provider "aws"` (no alias): what every
    resource Terraform creates there carries, and so what the resources made outside it should carry too."""
    tags: dict[str, str] = {}
    for block in config_blocks(config_dir, root):
        if block.kind != "provider" or block.labels[:1] != ("aws",) or "alias" in block.body:
            continue
        for entry in _blocks(block.body.get("default_tags")):
            given = entry.get("tags")
            if isinstance(given, dict):
                tags.update({str(k): v for k, v in given.items() if isinstance(v, str) and "${" not in v})
    return tags


def _blocks(value: Any) -> list[dict[str, Any]]:
    """A nested block's serialised form (a list of maps, one per repetition) as that list."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def parse_tfvars(path: Path, display: str) -> dict[str, Any]:
    """The literal assignments of a `.tfvars` file (`name = value` lines at the top level)."""
    import hcl2
    from lark.exceptions import LarkError

    text = limits.read_text(path, display)
    try:
        tree = hcl2.parses(text, discard_comments=True)
    except LarkError:
        parse_text(text, display)  # raises the same one-line error as a .tf file
        raise  # pragma: no cover - parse_text raised
    lines: LineMap = {}
    return _body(tree.body, (), lines)
