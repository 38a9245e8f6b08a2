"""Terraform resources as policy records: each `resource` block once per root configuration that uses it.

A folder of `.tf` files under `terraform/` is one configuration. A configuration that another one calls
(`module "x" { source = "../../modules/x" }`, a local path) is a module; every other one is a root
configuration, named by its folder (`terraform/environments/prod` is the root `prod`). Each root is read with
its modules as Terraform would instantiate them, so a module used by staging and prod gives a record per root:

- variables: a module's are the module call's arguments, else their defaults; a root's are
  `terraform.tfvars` and `*.auto.tfvars`, else the defaults. A value that is exactly `var.x` or `local.y` is
  replaced by what it resolves to when that is known; any other expression stays a `${...}` string.
- tags: the resource's literal `tags` merged over the `default_tags` of the root's `provider "aws"` (the one
  the resource names with `provider = aws.ALIAS`, else the one without an alias). Modules inherit the root's
  provider, so a module resource has default_tags exactly when the root config calling it sets them.
- related: the other resources of the same configuration instance that refer to this one
  (`bucket = aws_s3_bucket.logs.id`, read textually) or name the same literal `bucket`; the bucket's
  encryption and public-access-block resources, for example.
- `count = 0` (after resolution) drops the resource.

A folder no configuration calls is a root, so a module nobody uses yet is read as its own root
(variables at their defaults, its own providers). Each root also gives one `root_config` record listing every resource its instances hold, for rules such as "a CloudTrail
trail exists" (docs/policies.md#terraform).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from betcycle.errors import UserError
from betcycle.iac.terraform import Block, parse_file, parse_text, parse_tfvars
from betcycle.model.yamlio import LineMap

#: the type of the one record per root configuration (no provider has resources named like this)
ROOT_TYPE = "root_config"
#: module block arguments that are Terraform's, not the module's variables
_META_ARGS = frozenset({"source", "version", "providers", "count", "for_each", "depends_on"})
_WHOLE_REF = re.compile(r"^\$\{(var|local)\.([A-Za-z_][A-Za-z0-9_-]*)\}$")
_PART_REF = re.compile(r"\$\{(var|local)\.([A-Za-z_][A-Za-z0-9_-]*)\}")
_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")
_ADDRESS = re.compile(r"(?<![\w.])([a-z][a-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_-]*)")
_MAX_DEPTH = 20
_UNSET = object()


@dataclass(eq=False)  # identity: records are collected in sets
class TfResource:
    """One resource of one root configuration, as the policy engine sees it."""

    type: str
    name: str
    #: Terraform address within the root: module.state.aws_s3_bucket.this
    address: str
    file: str
    line: int
    #: the root configuration's name (its folder), None for a module no root calls
    root: str | None
    #: the folder holding the block (display path)
    config: str
    #: what a policy's schema validates: type, name, address, root, config, attributes, tags, related
    doc: dict[str, Any]
    #: lines by path in `doc` (() is the block's first line)
    lines: LineMap = field(default_factory=dict, repr=False)

    @property
    def ident(self) -> str:
        """TYPE/NAME, what a waiver's `resource:` matches."""
        return f"{self.type}/{self.name}"


@dataclass
class _Config:
    dir: Path
    display: str
    blocks: list[Block]
    tfvars: dict[str, Any] = field(default_factory=dict)

    def of(self, kind: str) -> Iterator[Block]:
        return (b for b in self.blocks if b.kind == kind)


def _resolve(value: Any, scope: dict[str, dict[str, Any]]) -> Any:
    if isinstance(value, str):
        m = _WHOLE_REF.match(value)
        if m:
            found = scope[m.group(1)].get(m.group(2), _UNSET)
            return value if found is _UNSET else found
        return _PART_REF.sub(lambda p: _spliced(p, scope), value) if "${" in value else value
    if isinstance(value, dict):
        return {k: _resolve(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, scope) for v in value]
    return value


def _spliced(m: re.Match[str], scope: dict[str, dict[str, Any]]) -> str:
    """`"logs-${var.env}"`: a known string or number is spliced into the text; anything else stays."""
    found = scope[m.group(1)].get(m.group(2), _UNSET)
    if (isinstance(found, str) and "${" not in found) or (
        isinstance(found, int | float) and not isinstance(found, bool)
    ):
        return str(found)
    return m.group(0)


def _scope(config: _Config, bindings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    variables: dict[str, Any] = {}
    for block in config.of("variable"):
        if block.labels and "default" in block.body:
            variables[block.labels[0]] = block.body["default"]
    variables.update(bindings)
    scope: dict[str, dict[str, Any]] = {"var": variables, "local": {}}
    raw: dict[str, Any] = {}
    for block in config.of("locals"):
        raw.update(block.body)
    for _ in range(5):  # locals that use locals: a few passes settle any real chain
        scope["local"] = {k: _resolve(v, scope) for k, v in raw.items()}
    return scope


def _references(value: Any) -> set[str]:
    """`TYPE.NAME` addresses a value's `${...}` expressions mention."""
    out: set[str] = set()
    if isinstance(value, str):
        for expr in _INTERPOLATION.findall(value):
            out.update(f"{t}.{n}" for t, n in _ADDRESS.findall(expr))
    elif isinstance(value, dict):
        for v in value.values():
            out |= _references(v)
    elif isinstance(value, list):
        for v in value:
            out |= _references(v)
    return out


def _provider_tags(config: _Config, scope: dict[str, dict[str, Any]]) -> dict[str | None, dict[str, Any]]:
    """default_tags.tags of each `provider "aws"`, by alias (None: the default provider)."""
    out: dict[str | None, dict[str, Any]] = {}
    for block in config.of("provider"):
        if block.labels[:1] != ("aws",):
            continue
        body = _resolve(block.body, scope)
        alias = body.get("alias") if isinstance(body.get("alias"), str) else None
        tags: dict[str, Any] = {}
        for entry in body.get("default_tags") or []:
            if isinstance(entry, dict) and isinstance(entry.get("tags"), dict):
                tags.update(entry["tags"])
        out[alias] = tags
    return out


class _Loader:
    def __init__(self, tf_dir: Path, root: Path) -> None:
        self.root = root
        self.configs: dict[Path, _Config] = {}
        folders = sorted(
            {
                p.parent
                for p in tf_dir.rglob("*.tf")
                if not any(part.startswith(".") for part in p.relative_to(tf_dir).parts)
            }
        )
        for folder in folders:
            blocks: list[Block] = []
            for path in sorted(folder.glob("*.tf")):
                blocks += parse_file(path, _display(path, root))
            config = _Config(folder.resolve(), _display(folder, root), blocks)
            for path in sorted([*folder.glob("terraform.tfvars"), *folder.glob("*.auto.tfvars")]):
                config.tfvars.update(parse_tfvars(path, _display(path, root)))
            self.configs[folder.resolve()] = config
        self.visited: set[Path] = set()

    def callee(self, caller: _Config, block: Block) -> _Config | None:
        source = block.body.get("source")
        if not isinstance(source, str) or not source.startswith(("./", "../")):
            return None  # a registry or git module: not in this repository
        return self.configs.get((caller.dir / source).resolve())

    def called(self) -> set[Path]:
        out: set[Path] = set()
        for config in self.configs.values():
            for block in config.of("module"):
                target = self.callee(config, block)
                if target is not None:
                    out.add(target.dir)
        return out

    def instance(
        self,
        config: _Config,
        *,
        root: str | None,
        bindings: dict[str, Any],
        prefix: str,
        tags: dict[str | None, dict[str, Any]] | None,
        stack: tuple[Path, ...],
        recurse: bool = True,
    ) -> list[TfResource]:
        self.visited.add(config.dir)
        scope = _scope(config, bindings)
        if tags is None:  # a root: its own providers
            tags = _provider_tags(config, scope)
        out: list[TfResource] = []
        for block in config.of("resource"):
            if len(block.labels) != 2:
                continue
            attrs = _resolve(block.body, scope)
            if attrs.get("count") == 0:
                continue
            provider = attrs.get("provider")
            alias = None
            if isinstance(provider, str) and (m := re.match(r"^\$\{aws\.([\w-]+)\}$", provider)):
                alias = m.group(1) if not prefix else None
            defaults = tags.get(alias, tags.get(None, {}))
            own = attrs.get("tags")
            effective = {**defaults, **own} if isinstance(own, dict) else dict(defaults)
            rtype, name = block.labels
            doc: dict[str, Any] = {
                "type": rtype,
                "name": name,
                "address": f"{prefix}{rtype}.{name}",
                "root": root,
                "config": config.display,
                "attributes": attrs,
                "tags": effective,
                "related": {},
            }
            lines: LineMap = {(): block.line}
            lines.update({("attributes", *k): v for k, v in block.lines.items() if k})
            out.append(
                TfResource(
                    rtype, name, doc["address"], block.file, block.line, root, config.display, doc, lines
                )
            )
        _relate(out)
        if not recurse:
            return out
        for block in config.of("module"):
            target = self.callee(config, block)
            if target is None or not block.labels:
                continue
            if target.dir in stack or len(stack) >= _MAX_DEPTH:
                raise UserError(
                    f"module {block.labels[0]!r} calls {target.display}, which is already being read "
                    "(a module cycle, or nesting deeper than 20)",
                    path=block.file,
                    line=block.line,
                    hint="a module must not call itself, directly or through other modules",
                )
            args = {k: _resolve(v, scope) for k, v in block.body.items() if k not in _META_ARGS}
            if _resolve(block.body.get("count"), scope) == 0:
                continue
            out += self.instance(
                target,
                root=root,
                bindings=args,
                prefix=f"{prefix}module.{block.labels[0]}.",
                tags={None: tags.get(None, {})},
                stack=(*stack, target.dir),
            )
        return out


def _relate(resources: list[TfResource]) -> None:
    """Fill each record's `related` with the resources of its configuration instance that refer to it."""
    by_address = {f"{r.type}.{r.name}": r for r in resources}
    by_bucket: dict[str, list[TfResource]] = {}
    for r in resources:
        bucket = r.doc["attributes"].get("bucket")
        if r.type == "aws_s3_bucket" and isinstance(bucket, str) and "${" not in bucket:
            by_bucket.setdefault(bucket, []).append(r)
    for other in resources:
        attrs = other.doc["attributes"]
        targets = {by_address[a] for a in _references(attrs) if a in by_address}
        bucket = attrs.get("bucket")
        if other.type != "aws_s3_bucket" and isinstance(bucket, str):
            targets.update(by_bucket.get(bucket, ()))
        for target in targets:
            if target is not other:
                target.doc["related"].setdefault(other.type, []).append(attrs)


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _root_record(config: _Config, name: str, resources: list[TfResource]) -> TfResource:
    anchor = next(config.of("terraform"), None) or next(config.of("provider"), None) or config.blocks[0]
    listed: dict[str, list[Any]] = {}
    for r in resources:
        listed.setdefault(r.type, []).append(r.doc["attributes"])
    doc: dict[str, Any] = {
        "type": ROOT_TYPE,
        "name": name,
        "address": name,
        "root": name,
        "config": config.display,
    }
    doc["resources"] = listed
    return TfResource(
        ROOT_TYPE, name, name, anchor.file, anchor.line, name, config.display, doc, {(): anchor.line}
    )


def load_tree(tf_dir: Path, root: Path) -> list[TfResource]:
    """Every resource record of the configurations under `tf_dir` (paths shown relative to `root`)."""
    loader = _Loader(tf_dir, root)
    called = loader.called()
    out: list[TfResource] = []
    for config in loader.configs.values():
        if config.dir in called or not config.blocks:
            continue
        name = config.dir.name
        resources = loader.instance(
            config, root=name, bindings=config.tfvars, prefix="", tags=None, stack=(config.dir,)
        )
        out += resources
        out.append(_root_record(config, name, resources))
    for config in loader.configs.values():
        if config.dir not in loader.visited:
            out += loader.instance(
                config, root=None, bindings={}, prefix="", tags={}, stack=(config.dir,), recurse=False
            )
    return out


def records_from_text(text: str, display: str, root_name: str) -> list[TfResource]:
    """The records of one root configuration given as text (a policy example)."""
    blocks = parse_text(text, display)
    config = _Config(Path(display), display, blocks)
    loader = _Loader.__new__(_Loader)
    loader.configs, loader.visited, loader.root = {}, set(), Path(".")
    resources = loader.instance(
        config, root=root_name, bindings={}, prefix="", tags=None, stack=(config.dir,)
    )
    return [*resources, _root_record(config, root_name, resources)] if blocks else resources
