"""CustomResourceDefinitions → JSON schemas, and the on-disk cache `betcycle validate` reads them from.

The conversion follows kubeconform's scripts/openapi2jsonschema.py (int-or-string as a string/integer `oneOf`,
`additionalProperties: false` on every object with `properties` in strict mode) but walks the schema
structurally instead of every nested dict, so a field that happens to be called `format`, `properties` or
`description` (external-secrets' Doppler provider has a `format` field) is never mistaken for a keyword.
On top of that it honours what the API server honours: `nullable`, `x-kubernetes-preserve-unknown-fields`,
`x-kubernetes-embedded-resource`, and v1beta1's `preserveUnknownFields` (pruning off by default). CEL rules
(`x-kubernetes-validations`) and list-type/map-key uniqueness are not checked.

Schema folder layout, for the repository's vendored `schemas/` and for a user cache alike (the same as
datreeio/CRDs-catalog, so kubeconform can read it with
`-schema-location '<dir>/crds/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json'`):

    <dir>/crds/<group>/<kind lowercased>_<version>.json

The lock file and the vendored folder are crd_vendor.py's; downloading the pinned CRDs is crd_fetch.py's.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from betcycle.errors import UserError, raise_collected
from betcycle.model import yamlio

JSON_SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"
REIMPORT_HINT = "re-run betcycle schemas import"

Log = Callable[[str], None]
GVK = tuple[str, str, str]

# Names end up as path components, so they are checked against Kubernetes' own rules before use
# (a group of "../x" must never escape the cache).
_GROUP_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_VERSION_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_KIND_RE = re.compile(r"^[A-Za-z]([-A-Za-z0-9]*[A-Za-z0-9])?$")

# Keywords dropped from the output: documentation (it is most of a CRD's bytes), and things a CRD may not use
# (`$ref`, `definitions`: the API server rejects them) that would only make the schema fail to compile.
_DROP = frozenset({"description", "title", "example", "externalDocs", "id", "$schema", "$ref", "definitions"})
_JUNCTORS = ("allOf", "anyOf", "oneOf")

# metadata is ObjectMeta, which no CRD spells out; type the fields a rendered manifest sets and leave the rest
# open, like the API server does for fields it fills in itself.
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_OBJECT_META: dict[str, Any] = {
    "name": {"type": "string"},
    "generateName": {"type": "string"},
    "namespace": {"type": "string"},
    "labels": _STRING_MAP,
    "annotations": _STRING_MAP,
}


@dataclass(frozen=True)
class CrdSchema:
    """The JSON schema of one served version of one custom resource kind."""

    group: str
    version: str
    kind: str
    schema: dict[str, Any] = field(hash=False, repr=False)
    source: str = field(default="", compare=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def gvk(self) -> GVK:
        return (self.group, self.version, self.kind)


# ---------------------------------------------------------------------------------------------- conversion


def _key(k: Any) -> str:
    # Go's YAML → JSON step (sigs.k8s.io/yaml) spells non-string keys this way; `on:` is a bool in YAML 1.1.
    if isinstance(k, bool):
        return "true" if k else "false"
    return str(k)


def _jsonable(value: Any) -> Any:
    """Values inside enum/default: YAML 1.1 timestamps become strings, as they do in the API server."""
    if isinstance(value, dict):
        return {_key(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, _dt.date | _dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _is_int_or_string_pair(value: Any) -> bool:
    return (
        isinstance(value, list)
        and all(isinstance(v, dict) and list(v) == ["type"] for v in value)
        and sorted(v["type"] for v in value) == ["integer", "string"]
    )


def _schema_map(value: Any, strict: bool) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    return {_key(name): _convert(sub, strict) for name, sub in value.items()}


def _convert(node: Any, strict: bool) -> Any:
    """One OpenAPI v3 (Kubernetes structural) schema node → a draft 2020-12 JSON schema node.

    `strict` is off inside allOf/anyOf/oneOf/not: properties listed there repeat fields the enclosing node
    already declares, so closing them would reject valid objects.
    """
    if isinstance(node, bool):
        return node
    if not isinstance(node, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or key.startswith("x-") or key == "nullable":
            continue
        if key in ("properties", "patternProperties"):
            out[key] = _schema_map(value, strict)
        elif key in ("additionalProperties", "additionalItems", "contains"):
            out[key] = _convert(value, strict)
        elif key == "items":
            if isinstance(value, list):  # tuple form: draft 2020-12 calls it prefixItems
                out["prefixItems"] = [_convert(v, strict) for v in value]
            else:
                out["items"] = _convert(value, strict)
        elif key in _JUNCTORS:
            out[key] = [_convert(v, False) for v in value] if isinstance(value, list) else []
        elif key == "not":
            out[key] = _convert(value, False)
        elif key == "dependencies" and isinstance(value, dict):  # split in two since draft 2019-09
            for name, dep in value.items():
                if isinstance(dep, list):
                    out.setdefault("dependentRequired", {})[_key(name)] = [_key(d) for d in dep]
                else:
                    out.setdefault("dependentSchemas", {})[_key(name)] = _convert(dep, False)
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and isinstance(value, bool):
            continue  # OpenAPI 3.0's boolean form, handled below
        elif key in ("enum", "default", "const"):
            out[key] = _jsonable(value)
        else:
            out[key] = value

    # OpenAPI 3.0 / draft 4: `minimum: 1, exclusiveMinimum: true`; draft 2020-12: `exclusiveMinimum: 1`.
    for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if node.get(flag) is True and bound in out:
            out[flag] = out.pop(bound)

    if node.get("x-kubernetes-int-or-string") is True:
        if _is_int_or_string_pair(out.get("anyOf")):
            del out["anyOf"]
        out.pop("type", None)
        out.pop("format", None)
        if "oneOf" in out:
            out["allOf"] = [*out.get("allOf", []), {"oneOf": out.pop("oneOf")}]
        out["oneOf"] = [{"type": "string"}, {"type": "integer"}]

    if node.get("nullable") is True:
        kind = out.get("type")
        if isinstance(kind, str) and kind != "null":
            out["type"] = [kind, "null"]
        elif isinstance(kind, list) and "null" not in kind:
            out["type"] = [*kind, "null"]
        if "oneOf" in out and node.get("x-kubernetes-int-or-string") is True:
            out["oneOf"].append({"type": "null"})
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"].append(None)

    if node.get("x-kubernetes-embedded-resource") is True and "properties" in out:
        # An embedded object always may carry apiVersion/kind/metadata even if the CRD does not list them.
        props = out["properties"]
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})

    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if strict and "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def _object_meta(crd_meta: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"type": "object", "properties": copy.deepcopy(_OBJECT_META)}
    converted = _convert(crd_meta, False) if isinstance(crd_meta, dict) else {}
    for key, value in converted.items():
        if key == "properties":
            meta["properties"].update(value)
        elif key != "type":
            meta[key] = value
    return meta


def _wrap(openapi: Any, group: str, version: str, kind: str, strict: bool) -> dict[str, Any]:
    if not isinstance(openapi, dict):
        # No schema (allowed in v1beta1): the API server keeps whatever is sent.
        openapi = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    body = _convert(openapi, strict)
    props = body.pop("properties", {})
    crd_meta = (
        openapi.get("properties", {}).get("metadata") if isinstance(openapi.get("properties"), dict) else None
    )
    required = [r for r in body.pop("required", []) if r not in ("apiVersion", "kind")]
    root: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DRAFT,
        "x-kubernetes-group-version-kind": [{"group": group, "kind": kind, "version": version}],
        "type": "object",
        "required": ["apiVersion", "kind", *required],
        "properties": {
            **props,
            "apiVersion": {"type": "string", "enum": [f"{group}/{version}"]},
            "kind": {"type": "string", "enum": [kind]},
            "metadata": _object_meta(crd_meta),
        },
    }
    body.pop("type", None)
    root.update(body)
    preserve = openapi.get("x-kubernetes-preserve-unknown-fields") is True
    if strict and not preserve and "additionalProperties" not in root:
        root["additionalProperties"] = False
    return root


def _crd_error(message: str, source: str, name: str, line: int | None) -> UserError:
    return UserError(
        f"CustomResourceDefinition {name}: {message}",
        path=source,
        line=line,
        hint="the file must be a CRD as the API server accepts it (kubectl apply --dry-run=server checks it)",
    )


def is_crd(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and doc.get("kind") == "CustomResourceDefinition"
        and str(doc.get("apiVersion", "")).startswith("apiextensions.k8s.io/")
    )


def convert_crd(
    doc: dict[str, Any], source: str, *, strict: bool = True, line: int | None = None
) -> list[CrdSchema]:
    """One CrdSchema per served version of a CustomResourceDefinition (apiextensions.k8s.io v1 or v1beta1)."""
    meta = doc.get("metadata")
    name = str(meta.get("name", "?")) if isinstance(meta, dict) else "?"
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise _crd_error("spec is missing", source, name, line)
    group = spec.get("group")
    names = spec.get("names")
    kind = names.get("kind") if isinstance(names, dict) else None
    if not isinstance(group, str) or not _GROUP_RE.match(group) or len(group) > 253:
        raise _crd_error(f"spec.group {group!r} is not a DNS subdomain", source, name, line)
    if not isinstance(kind, str) or not _KIND_RE.match(kind):
        raise _crd_error(f"spec.names.kind {kind!r} is not a valid kind", source, name, line)

    v1beta1 = doc.get("apiVersion") == "apiextensions.k8s.io/v1beta1"
    if v1beta1 and spec.get("preserveUnknownFields", True) is not False:
        strict = False  # v1beta1 CRDs do not prune unknown fields unless they opt in
    shared = (
        spec.get("validation", {}).get("openAPIV3Schema")
        if isinstance(spec.get("validation"), dict)
        else None
    )

    versions = spec.get("versions")
    if not versions and v1beta1 and isinstance(spec.get("version"), str):
        versions = [{"name": spec["version"], "served": True}]
    if not isinstance(versions, list) or not versions:
        raise _crd_error("spec.versions is empty", source, name, line)

    out: list[CrdSchema] = []
    for entry in versions:
        if not isinstance(entry, dict):
            raise _crd_error("spec.versions has an entry that is not a mapping", source, name, line)
        version = entry.get("name")
        if not isinstance(version, str) or not _VERSION_RE.match(version):
            raise _crd_error(f"version name {version!r} is not a DNS label", source, name, line)
        if entry.get("served", v1beta1) is not True:
            continue
        schema_block = entry.get("schema")
        openapi = schema_block.get("openAPIV3Schema") if isinstance(schema_block, dict) else None
        if openapi is None:
            openapi = shared
        out.append(CrdSchema(group, version, kind, _wrap(openapi, group, version, kind, strict), source))
    return out


# -------------------------------------------------------------------------------------------------- cache


def default_cache_dir() -> Path:
    """$BETCYCLE_SCHEMA_CACHE, else $XDG_CACHE_HOME/betcycle/schemas, else ~/.cache/betcycle/schemas."""
    explicit = os.environ.get("BETCYCLE_SCHEMA_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says relative values are to be ignored
        return Path(xdg) / "betcycle" / "schemas"
    return Path.home() / ".cache" / "betcycle" / "schemas"


def _valid_gvk(group: str, version: str, kind: str) -> bool:
    return bool(_GROUP_RE.match(group) and _VERSION_RE.match(version) and _KIND_RE.match(kind))


def schema_path(cache: Path, group: str, version: str, kind: str) -> Path:
    if not _valid_gvk(group, version, kind):
        raise ValueError(f"not a valid group/version/kind: {group!r} {version!r} {kind!r}")
    return cache / "crds" / group / f"{kind.lower()}_{version}.json"


_DUMP_WIDTH = 100


def _dump_node(value: Any, indent: int) -> str:
    flat = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    if not isinstance(value, dict | list) or not value or indent + len(flat) <= _DUMP_WIDTH:
        return flat
    pad = " " * (indent + 1)
    if isinstance(value, dict):
        items = [
            f"{pad}{json.dumps(_key(k), ensure_ascii=False)}: {_dump_node(value[k], indent + 1)}"
            for k in sorted(value, key=_key)
        ]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + _dump_node(v, indent + 1) for v in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def dump_schema(schema: dict[str, Any]) -> str:
    """A schema as JSON text that depends only on its content: sorted keys, one member per line except for
    members that fit on one line (`{"type": "string"}`), so a refresh that changes nothing changes no byte and
    one that changes a field shows as a small diff."""
    return _dump_node(schema, 0) + "\n"


def write_schemas(schemas: list[CrdSchema], cache: Path) -> list[Path]:
    """Write each schema atomically into the cache; returns their paths in the same order."""
    paths: list[Path] = []
    for s in schemas:
        path = schema_path(cache, s.group, s.version, s.kind)
        try:
            yamlio.atomic_write(path, dump_schema(s.schema))
        except OSError as exc:
            raise UserError(
                f"cannot write schema cache: {exc.strerror or exc}",
                path=path,
                hint="set BETCYCLE_SCHEMA_CACHE to a writable folder",
            ) from None
        paths.append(path)
    return paths


@dataclass(frozen=True)
class SchemaDir:
    """One folder of converted schemas (`<dir>/crds/<group>/<kind>_<version>.json`) the store reads from,
    with the hint to print when one of its files is unreadable."""

    path: Path
    hint: str = REIMPORT_HINT


def read_schema_file(path: Path, hint: str = REIMPORT_HINT) -> dict[str, Any] | None:
    """A schema file written by betcycle, or None if there is no such file."""

    def corrupt(why: str) -> UserError:
        return UserError(f"corrupt schema file: {why}", path=path, hint=hint)

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise corrupt("not UTF-8") from None
    except OSError as exc:
        raise UserError(f"cannot read schema: {exc.strerror}", path=path, hint=hint) from None
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise corrupt(f"invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(loaded, dict) or loaded.get("$schema") != JSON_SCHEMA_DRAFT:
        raise corrupt("not a schema written by betcycle")
    return loaded


def gvk_of(schema: dict[str, Any]) -> GVK | None:
    """The (group, version, kind) a schema written by betcycle says it is for."""
    gvks = schema.get("x-kubernetes-group-version-kind")
    if isinstance(gvks, list) and gvks and isinstance(gvks[0], dict):
        g = gvks[0]
        group, version, kind = g.get("group"), g.get("version"), g.get("kind")
        if isinstance(group, str) and isinstance(version, str) and isinstance(kind, str):
            return (group, version, kind)
    return None


class CrdSchemaStore:
    """Read side of one or more schema folders, looked up in order (the first that has a kind wins).

    `betcycle validate` passes the repository's vendored folder first and the user cache second. Each schema
    file is parsed at most once per store (and so per process).
    """

    def __init__(self, *dirs: Path | SchemaDir) -> None:
        self.dirs = [d if isinstance(d, SchemaDir) else SchemaDir(d) for d in dirs]
        self._loaded: dict[GVK, tuple[dict[str, Any], Path] | None] = {}

    def _find(self, group: str, version: str, kind: str) -> tuple[dict[str, Any], Path] | None:
        key = (group, version, kind.lower())
        if key not in self._loaded:
            found = None
            if _valid_gvk(group, version, kind):
                for d in self.dirs:
                    path = schema_path(d.path, group, version, kind)
                    schema = read_schema_file(path, d.hint)
                    if schema is not None:
                        found = (schema, path)
                        break
            self._loaded[key] = found
        return self._loaded[key]

    def get(self, group: str, version: str, kind: str) -> dict[str, Any] | None:
        """The schema for group/version/kind, or None if no folder has one. Do not mutate the result."""
        found = self._find(group, version, kind)
        return found[0] if found else None

    def path_of(self, group: str, version: str, kind: str) -> Path | None:
        """The file the schema for group/version/kind is read from (for messages)."""
        found = self._find(group, version, kind)
        return found[1] if found else None

    def other_versions(self, kind: str) -> list[str]:
        """apiVersions under which some folder has a schema for `kind` (for hints; reads no file)."""
        if not _KIND_RE.match(kind):
            return []
        out = set()
        for d in self.dirs:
            for path in (d.path / "crds").glob(f"*/{kind.lower()}_*.json"):
                version = path.stem.partition("_")[2]
                if _valid_gvk(path.parent.name, version, kind):
                    out.add(f"{path.parent.name}/{version}")
        return sorted(out)

    def known(self) -> list[GVK]:
        """Every (group, version, kind) in the folders, sorted; loads each file (once) for the kind's case."""
        found: set[GVK] = set()
        for d in self.dirs:
            root = d.path / "crds"
            if not root.is_dir():
                continue
            for path in sorted(root.glob("*/*.json")):
                group = path.parent.name
                kind_lower, sep, version = path.stem.partition("_")
                if not sep or not _valid_gvk(group, version, kind_lower):
                    continue
                schema = self.get(group, version, kind_lower)
                gvk = gvk_of(schema) if schema else None
                found.add((group, version, gvk[2] if gvk else kind_lower))
        return sorted(found)


# ------------------------------------------------------------------------------------------------- import


def _documents(text: str, display: str, is_json: bool) -> list[tuple[Any, int]]:
    if is_json:
        try:
            return [(json.loads(text), 1)]
        except json.JSONDecodeError as exc:
            raise UserError(f"invalid JSON: {exc.msg}", path=display, line=exc.lineno) from None
    return yamlio.load_all_with_lines(text, display)


def _flatten(docs: list[tuple[Any, int]]) -> Iterator[tuple[Any, int]]:
    for doc, line in docs:
        if (
            isinstance(doc, dict)
            and str(doc.get("kind", "")).endswith("List")
            and isinstance(doc.get("items"), list)
        ):
            for item in doc["items"]:
                yield item, line
        else:
            yield doc, line


def schemas_from_text(
    text: str, display: str, *, is_json: bool = False, log: Log | None = None
) -> tuple[list[CrdSchema], int]:
    """Convert every CRD in one YAML (or JSON) stream; returns the schemas and how many CRDs there were.

    Non-CRD documents are skipped (and counted in a log line).
    """
    schemas: list[CrdSchema] = []
    crds = other = 0
    for doc, line in _flatten(_documents(text, display, is_json)):
        if not is_crd(doc):
            other += 1
            continue
        crds += 1
        schemas.extend(convert_crd(doc, display, line=line))
    if other and crds and log:
        log(f"{display}: ignored {other} non-CRD document{'s' if other != 1 else ''}")
    return schemas, crds


def no_crds_error(display: str, what: str = "file") -> UserError:
    return UserError(
        f"no CustomResourceDefinition in this {what}",
        path=display,
        hint="pass CRD manifests (kind: CustomResourceDefinition), e.g. the chart's crds/ folder",
    )


def _is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def source_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.rglob("*")
        if p.suffix.lower() in (".yaml", ".yml", ".json") and p.is_file() and not _is_hidden(p, directory)
    )


def _collect(sources: list[str], stdin: TextIO, log: Log | None) -> list[CrdSchema]:
    found: dict[GVK, CrdSchema] = {}
    errors: list[UserError] = []

    def add(schemas: list[CrdSchema]) -> None:
        for s in schemas:
            previous = found.get(s.gvk)
            if previous is not None and previous.source != s.source and log:
                log(f"{s.source}: {s.api_version} {s.kind} also defined in {previous.source}; using this one")
            found[s.gvk] = s

    for source in sources:
        try:
            if source == "-":
                schemas, crds = schemas_from_text(stdin.read(), "<stdin>", log=log)
                if not crds:
                    raise no_crds_error("<stdin>", "input")
                add(schemas)
                continue
            path = Path(source)
            if not path.is_dir():
                text = yamlio.read_text(path, source)
                schemas, crds = schemas_from_text(
                    text, source, is_json=path.suffix.lower() == ".json", log=log
                )
                if not crds:
                    raise no_crds_error(source)
                add(schemas)
                continue
            files = source_files(path)
            if not files:
                raise UserError("no .yaml, .yml or .json files in this directory", path=source)
            total = 0
            for file in files:
                # A folder may hold other manifests too (kustomization.yaml, templates): skip those.
                try:
                    text = yamlio.read_text(file, str(file))
                    schemas, crds = schemas_from_text(
                        text, str(file), is_json=file.suffix.lower() == ".json", log=log
                    )
                except UserError as exc:
                    errors.append(exc)
                    continue
                if not crds and log:
                    log(f"{file}: no CRDs, skipped")
                total += crds
                add(schemas)
            if not total and not errors:
                raise no_crds_error(source, "directory")
        except UserError as exc:
            errors.append(exc)
    raise_collected(errors)
    return list(found.values())


def import_crds(sources: list[str], cache: Path, stdin: TextIO, *, log: Log | None = None) -> list[CrdSchema]:
    """Convert the CRDs in files, directories (recursively) or `-` (stdin) and store them in the cache.

    Everything is parsed before anything is written, so a bad input leaves the cache as it was.
    """
    schemas = _collect(sources, stdin, log)
    write_schemas(schemas, cache)
    return schemas
