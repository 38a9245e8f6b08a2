"""Render charts + merged values into plain manifests, then write them atomically or compare (--check).

Templates run in Jinja2's sandbox with StrictUndefined. The (environment, app) pairs are rendered in a
process pool (`--jobs`) or taken from the cache; the render command writes each pair's files as soon as it
is ready (EagerWriter) inside one transaction, so any failure puts every file back. Each file is replaced
atomically.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import functools
import hashlib
import json
import os
import re
import stat
import traceback
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from betcycle.errors import UserError, UserErrors
from betcycle.model import limits, safepaths, schemacheck, values, yamlemit
from betcycle.model.findings import json_path
from betcycle.model.repo import SETTINGS_FILE, Chart, Environment, Repo, sub_lines
from betcycle.model.resources import Resource
from betcycle.model.yamlio import _YAML12_NOT_STR as YAML12_NOT_STR  # the quoting `dump` applies
from betcycle.model.yamlio import (
    HEADER_MARK,
    DuplicateKeyError,
    atomic_write,
    dump,
    load_all_with_lines,
    read_text,
)
from betcycle.render import argocd, parallel, platform, sandbox, transaction
from betcycle.render.cache import PairOutput, RenderCache, code_fingerprint
from betcycle.render.shard import Shard, Split


class RenderResult:
    """What a render produced: file texts by path, the folders it owns, and the resources (built on demand).

    Pairs that came from the cache or a worker process carry their file texts only; their resources are
    parsed from those texts the first time `resources` is read (the render command never reads them).
    """

    def __init__(self) -> None:
        #: repository-relative path -> file content
        self.files: dict[str, str] = {}
        #: folders this render owns completely: any other generated file inside is stale
        self.owned_dirs: list[str] = []
        #: folders inside owned ones that another shard renders (`--shard`): not this run's to judge
        self.foreign_dirs: list[str] = []
        self._segments: list[PairOutput | list[Resource]] = []
        self.scans: dict[tuple[str, str], safepaths.Scan] = {}
        self._resources: list[Resource] | None = []

    def add_pair(self, output: PairOutput) -> None:
        self.files.update(output.files)
        self._segments.append(output)
        self._resources = None

    def add_resources(self, resources: list[Resource]) -> None:
        self._segments.append(resources)
        self._resources = None

    @property
    def resources(self) -> list[Resource]:
        if self._resources is None:
            built: list[Resource] = []
            for seg in self._segments:
                built += _pair_resources(seg) if isinstance(seg, PairOutput) else seg
            self._resources = built
        return self._resources


def _pair_resources(output: PairOutput) -> list[Resource]:
    docs = output.docs
    if docs is None:  # from the cache or a worker: parse our own output again (the exact fast path)
        docs = [load_all_with_lines(output.files[o], o, generated=True)[0][0] for o, _, _ in output.resources]
        output.docs = docs
    return [
        Resource(doc, env=output.env, app=output.app, source=source, origins=output.origins, output=out)
        for doc, (out, source, _) in zip(docs, output.resources, strict=True)
    ]


@dataclass
class FileChange:
    path: str
    state: str  # "stale" | "missing" | "extra"


# Template filters. Values come from pull requests, so anything a template interpolates must reach the YAML
# parser as one scalar or one whole sub-tree, never as text that can end a line or open a key
# (docs/rendering.md, "Template filters"). Every filter below emits printable ASCII only, with "\n" as its
# only line break, so no character a value carries can start a new YAML line, be folded by a YAML 1.1
# reader (NEL, LS, PS) or be split by `indent` (str.splitlines splits on \x0b, \x1c, \u2028, ...).
_PLAIN_ASCII = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII except '"' and backslash
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}
_NOT_PLAIN = re.compile(r"[^ !#-\[\]-~]")


def _escape_char(m: re.Match[str]) -> str:
    ch = m.group()
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    return f"\\x{code:02X}" if code < 0x100 else f"\\u{code:04X}" if code < 0x10000 else f"\\U{code:08X}"


def yaml_string(text: str) -> str:
    """`text` as one double-quoted YAML scalar that reads back as exactly `text` (YAML 1.1 and 1.2)."""
    if _PLAIN_ASCII.fullmatch(text):
        return f'"{text}"'
    if _PRINTABLE_ASCII.fullmatch(text):  # only quotes and backslashes to escape (JSON text): C-speed replace
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return '"' + _NOT_PLAIN.sub(_escape_char, text) + '"'


_PRINTABLE_ASCII = re.compile(r"[ -~]*")


def _scalar_text(value: Any, filter_name: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, str | int | float):
        return str(value)
    raise jinja2.exceptions.FilterArgumentError(
        f"{filter_name} takes a string, number, boolean or null, not a {type(value).__name__}: "
        "emit structures with `| toyaml`"
    )


def _quote(value: Any) -> str:
    """A double-quoted YAML string; booleans as true/false and None as "" (not Python's True/None)."""
    return yaml_string(_scalar_text(value, "quote"))


def _yamlkey(value: Any) -> str:
    """A mapping key: always one quoted scalar, whatever the text (`a: b`, a newline, `? x`...)."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise jinja2.exceptions.FilterArgumentError(f"yamlkey takes a string, not a {type(value).__name__}")
    key = yaml_string(str(value))
    if len(key) > _MAX_FLOW_KEY:  # YAML reads `key: value` only for keys up to 1024 characters
        raise jinja2.exceptions.FilterArgumentError(
            f"yamlkey: a key of {len(key)} characters (quoted) can't be a YAML key (YAML allows 1024); "
            "emit the map with `| toyaml`"
        )
    return key


def _toyaml(value: Any, indent: int = 0) -> str:
    """A value as YAML: a mapping or list as a block sub-tree (keys quoted where needed), a scalar quoted."""
    if isinstance(value, dict | list) and value:
        text = _block_yaml(value)
    elif isinstance(value, dict | list):
        text = "{}" if isinstance(value, dict) else "[]"
    elif isinstance(value, str):
        text = yaml_string(value)
    else:  # a number, boolean or null, written as in a manifest (`.nan`, not JSON's `NaN`)
        text = dump({"v": value}).removeprefix("v: ").rstrip("\n")
    return _indent(text, indent, first=True) if indent else text


class _ToyamlDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Block YAML for embedding: a string that isn't one line of printable ASCII is double-quoted with
    escapes (never a `|` block, a folded quoted scalar or a `...` end marker, whose meaning depends on the
    lines and indentation around them)."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = None if _ONE_ASCII_LINE.fullmatch(data) else '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_ONE_ASCII_LINE = re.compile(r"[ -~]*")
_ToyamlDumper.add_representer(str, _represent_str)


def _block_yaml(value: Any) -> str:
    """`value` (a non-empty map or list) as block YAML read back exactly by PyYAML, which parses the
    template output; `dump` writes the manifest itself afterwards."""
    try:  # the fast emitter writes only plain or single-quoted ASCII lines and clean `|` blocks: safe to nest
        return yamlemit.emit(value, YAML12_NOT_STR).rstrip("\n")
    except yamlemit.Fallback:
        pass
    text: str = yaml.dump(
        value,
        Dumper=_ToyamlDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=False,
        width=10_000,
    )
    return text.rstrip("\n").removesuffix("\n...")


def _indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    """Jinja's `indent`, splitting on "\n" only: str.splitlines would also split on characters that are
    text inside a YAML scalar (\x0b, \x1c-\x1e, \x85, \u2028, \u2029) and inject the indentation."""
    pad = width if isinstance(width, str) else " " * width
    lines = str(s).split("\n")
    out = [lines[0], *(pad + line if line or blank else line for line in lines[1:])]
    text = "\n".join(out)
    return pad + text if first else text


def _yaml_safe_json(obj: Any, **kwargs: Any) -> str:
    """JSON (a YAML flow value) in printable ASCII: Jinja's `tojson` writes characters beyond the BMP as
    surrogate-pair escapes, which YAML readers refuse; here every non-ASCII character is one YAML escape."""
    text = json.dumps(obj, ensure_ascii=False, **kwargs)
    if not text.isascii() or len(text) > _MAX_FLOW_KEY:  # else no key can be too long: skip the walk
        _check_json_keys(obj)
    return text if text.isascii() and "\x7f" not in text else _NON_ASCII.sub(_escape_char, text)


#: YAML 1.1/1.2 cap an implicit key (every key of a flow mapping such as JSON's) at 1024 characters
_MAX_FLOW_KEY = 1000


#: a string key of at most this many characters is short enough whatever it holds (json.dumps writes a
#: character as at most 12: a surrogate pair's two \uXXXX escapes)
_SHORT_KEY = (_MAX_FLOW_KEY - 2) // 12


def _check_json_keys(obj: Any) -> None:
    stack = [obj]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if (type(key) is not str or len(key) > _SHORT_KEY) and len(json.dumps(key)) > _MAX_FLOW_KEY:
                    raise jinja2.exceptions.FilterArgumentError(
                        f"tojson: a map key of {len(str(key))} characters can't be a YAML flow key "
                        f"(YAML allows 1024); emit the map with `| toyaml`"
                    )
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)


_NON_ASCII = re.compile(r"[^\x00-\x7e]")


def _sha256(value: Any) -> str:
    data = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()


def _b64enc(value: Any) -> str:
    return base64.b64encode(str(value).encode()).decode()


class _SnapshotLoader(jinja2.BaseLoader):
    """A chart's templates folder, read whole at the start of each render (`refresh`) and only then: what
    is compiled is exactly the text the render cache keys on (`digest`), even if a file changes mid-run.
    A compiled template is reused while its file's text stays the same."""

    def __init__(self, templates_dir: Path) -> None:
        self.templates_dir = templates_dir
        self.sources: dict[str, tuple[str, str]] = {}  # name -> (text, filename)
        self._read = False

    def refresh(self) -> None:
        current: dict[str, tuple[str, str]] = {}
        if self.templates_dir.is_dir():
            for p in sorted(self.templates_dir.rglob("*")):
                if p.is_file():
                    current[p.relative_to(self.templates_dir).as_posix()] = (read_text(p, str(p)), str(p))
        self.sources, self._read = current, True

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        if not self._read:
            self.refresh()
        name = "/".join(jinja2.loaders.split_template_path(template))  # refuses `..`
        if name not in self.sources:
            raise jinja2.TemplateNotFound(template)
        text, filename = self.sources[name]
        return text, filename, lambda: self.sources.get(name, ("",))[0] == text

    def digest(self) -> str:
        """SHA-256 over every file of the folder as last read (names and text)."""
        if not self._read:
            self.refresh()
        h = hashlib.sha256()
        for name, (text, _) in sorted(self.sources.items()):
            h.update(name.encode() + b"\0" + hashlib.sha256(text.encode()).digest())
        return h.hexdigest()


@functools.lru_cache(maxsize=64)
def _template_names(
    root: Path, templates_dir: Path, templates: tuple[str, ...]
) -> dict[str, tuple[Path, str]]:
    """Each template of a chart (repository-relative) -> its path and its name in the chart's loader."""
    return {rel: (root / rel, (root / rel).relative_to(templates_dir).as_posix()) for rel in templates}


@cache
def _jinja_env(templates_dir: Path) -> jinja2.Environment:
    env = sandbox.BoundedEnvironment(  # Jinja's sandbox, with bounded loops, calls, sizes and time
        loader=_SnapshotLoader(templates_dir),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters.update(
        toyaml=_toyaml, quote=_quote, yamlkey=_yamlkey, indent=_indent, sha256=_sha256, b64enc=_b64enc
    )
    env.policies["json.dumps_function"] = _yaml_safe_json  # `tojson`: the same text, YAML-safe
    return env


def _template_line(exc: BaseException, template_file: Path) -> int | None:
    """The template line an exception was raised from (Jinja2 rewrites tracebacks to template lines)."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename) == template_file:
            line = frame.lineno
    return line


def merged_values(
    repo: Repo, env: Environment, app_name: str
) -> tuple[dict[str, Any], values.Origins, list[str]]:
    """The app's values in `env`, validated against its chart's values.schema.json."""
    app = repo.apps[app_name]
    chart = repo.charts[app.chart]
    ea = repo.env_apps[env.name][app_name]
    layers = [
        values.Layer(chart.values_file, chart.defaults, chart.defaults_lines),
        values.Layer(app.file, app.values, sub_lines(app.lines, "values")),
        values.Layer(env.file, env.defaults, sub_lines(env.lines, "defaults")),
        values.Layer(ea.file, ea.values, ea.lines),
    ]
    merged, origins = values.merge(layers)
    if chart.validator is not None:
        problems = schemacheck.check(
            merged,
            chart.validator,
            schema=chart.schema,
            path=ea.file,
            locate=lambda key: values.locate(origins, key, ea.file),
            what="value",
        )
        for p in problems:
            p.hint = (p.hint + "; " if p.hint else "") + f"the schema is {chart.schema_file}"
        if problems:
            raise UserErrors(problems)
    return merged, origins, [layer.file for layer in layers]


def origin_map_of(vals: dict[str, Any], origins: values.Origins) -> dict[str, tuple[str, int, Any]]:
    """JSON path of every scalar value -> (file, line, value): lets findings name the values line."""
    out: dict[str, tuple[str, int, Any]] = {}
    for key, (file, line) in origins.items():
        if line is None:
            continue
        v: Any = vals
        try:
            for k in key:
                v = v[k]
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(v, dict | list):
            out[_json_path(key)] = (file, line, v)
    return out


@functools.lru_cache(maxsize=65536)  # the same value paths in every app of a chart
def _json_path(key: tuple[str | int, ...]) -> str:
    return json_path(key)


def _header(template: str, sources: list[str]) -> str:
    return (
        f"{HEADER_MARK} - do not edit; change the sources and re-render.\n"
        f"# template: {template}\n"
        f"# values: {', '.join(sources)}\n"
    )


def _context(
    repo: Repo, env: Environment, app_name: str, chart: Chart, vals: dict[str, Any]
) -> dict[str, Any]:
    app = repo.apps[app_name]
    raw_image = vals.get("image")
    image: dict[str, Any] = raw_image if isinstance(raw_image, dict) else {}
    tag = str(image.get("tag") or "")
    repository = str(image.get("repository") or "")
    if tag.startswith("sha256:"):
        image_ref = f"{repository}@{tag}"
        version = "sha256-" + tag.removeprefix("sha256:")[:12]
    else:
        image_ref = f"{repository}:{tag}" if tag else repository
        version = _label_value(tag or chart.version)
    selector = {"app.kubernetes.io/name": app_name, "app.kubernetes.io/instance": f"{app_name}-{env.name}"}
    labels = {
        **selector,
        "app.kubernetes.io/version": version,
        "app.kubernetes.io/managed-by": "betcycle",
        "app.kubernetes.io/part-of": app_name,
        "betcycle.io/owner": app.owner,
        "betcycle.io/environment": env.name,
    }
    return {
        "app": {"name": app_name, "owner": app.owner, "description": app.description},
        "env": {
            "name": env.name,
            "kubernetesVersion": env.kubernetes_version,
            "project": env.project,
            "isProd": env.name.startswith("prod"),
        },
        "chart": {"name": chart.name, "version": chart.version},
        "namespace": env.namespace_for(app_name),
        "values": vals,
        "labels": dict(sorted(labels.items())),
        "selectorLabels": dict(sorted(selector.items())),
        "imageRef": image_ref,
        "containerEnv": _container_env(app_name, vals, tag),
    }


def _label_value(value: str) -> str:
    """A valid label value: at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", value)[:63]
    return cleaned.strip("-_.")


def _container_env(app_name: str, vals: dict[str, Any], tag: str) -> list[dict[str, str]]:
    """The container's env: chart-provided variables, overridden (not duplicated) by the values' `env`."""
    env: dict[str, str] = {
        "PORT": str(vals.get("port", "")),
        "SERVICE_NAME": app_name,
        "SERVICE_VERSION": tag,
    }
    user = vals.get("env")
    for key, value in sorted((user if isinstance(user, dict) else {}).items()):
        env[str(key)] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return [{"name": k, "value": v} for k, v in env.items()]


def render_app(repo: Repo, env: Environment, app_name: str) -> PairOutput:
    """One (environment, app): its manifest files keyed by path, and its resources (parsed)."""
    app = repo.apps[app_name]
    chart = repo.charts[app.chart]
    vals, origins, sources = merged_values(repo, env, app_name)
    ctx = _context(repo, env, app_name, chart, vals)
    origin_map = origin_map_of(vals, origins)
    templates_dir = repo.root / chart.dir / "templates"
    jenv = _jinja_env(templates_dir)
    names = _template_names(repo.root, templates_dir, tuple(chart.templates))
    files: dict[str, str] = {}
    resources: list[Resource] = []
    owners: dict[str, str] = {}
    errors: list[UserError] = []
    budget = sandbox.Budget(limits.current(), f"{env.name}/{app_name}")  # for all its templates
    for template_rel in chart.templates:
        template_path, name = names[template_rel]
        try:
            text = budget.render(jenv.get_template(name), ctx)
        except jinja2.TemplateSyntaxError as exc:
            errors.append(
                UserError(f"template syntax error: {exc.message}", path=template_rel, line=exc.lineno)
            )
            continue
        except jinja2.UndefinedError as exc:
            errors.append(
                UserError(
                    f"undefined value: {exc.message} (rendering {env.name}/{app_name})",
                    path=template_rel,
                    line=_template_line(exc, template_path),
                    hint="set it in the chart's values.yaml, or guard it with `is defined` / `| default(...)`",
                )
            )
            continue
        except jinja2.TemplateError as exc:
            errors.append(
                UserError(
                    f"template error: {exc}", path=template_rel, line=_template_line(exc, template_path)
                )
            )
            continue
        except Exception as exc:  # a filter or test raising on a bad value is still the template's problem
            errors.append(
                UserError(
                    f"template failed: {type(exc).__name__}: {exc} (rendering {env.name}/{app_name})",
                    path=template_rel,
                    line=_template_line(exc, template_path),
                )
            )
            continue
        try:
            docs = load_all_with_lines(text, template_rel)
        except DuplicateKeyError as exc:
            errors.append(_duplicate_key(exc, text, template_path, template_rel, f"{env.name}/{app_name}"))
            continue
        except UserError as exc:
            out_line = exc.line or 0
            rendered = text.splitlines()
            shown = rendered[out_line - 1].strip() if 0 < out_line <= len(rendered) else ""
            errors.append(
                UserError(
                    f"rendered output is not valid YAML ({env.name}/{app_name}, output line {out_line}: "
                    f"{shown!r}): {exc.message.removeprefix('invalid YAML: ')}",
                    path=template_rel,
                    hint="check indentation of multi-line values: use `| toyaml | indent(N)` or `| quote`",
                )
            )
            continue
        for doc, line in docs:
            if not isinstance(doc, dict) or not doc.get("kind") or not doc.get("apiVersion"):
                errors.append(
                    UserError(
                        "rendered a document that is not a Kubernetes object (needs apiVersion and kind)",
                        path=template_rel,
                        hint=f"output line {line} ({env.name}/{app_name})",
                    )
                )
                continue
            res = Resource(doc, env=env.name, app=app_name, source=template_rel, origins=origin_map)
            if not res.name:
                errors.append(UserError(f"rendered {res.kind} has no metadata.name", path=template_rel))
                continue
            meta = res.metadata
            try:  # the output path is made of checked names only: a kind like "../../x" can't steer it
                file_name = safepaths.object_file_name(doc["kind"], meta["name"], meta.get("namespace"))
            except safepaths.UnsafeName as exc:
                errors.append(
                    UserError(
                        f"{exc.message} (rendering {env.name}/{app_name}, object at output line {line})",
                        path=template_rel,
                        hint=exc.hint,
                    )
                )
                continue
            out = f"{env.manifests_dir}/{app_name}/{file_name}"
            if out in owners:
                errors.append(
                    UserError(
                        f"{res.kind} {res.name!r} is rendered twice (also by {owners[out]})",
                        path=template_rel,
                        hint="give each object a unique name",
                    )
                )
                continue
            owners[out] = template_rel
            res.output = out
            files[out] = _header(template_rel, sources) + dump(doc)
            resources.append(res)
    if errors:
        raise UserErrors(errors)
    return PairOutput(
        env.name,
        app_name,
        files,
        [(r.output or "", r.source or "", r.kind) for r in resources],
        origin_map,
        docs=[r.doc for r in resources],
    )


def _duplicate_key(
    exc: DuplicateKeyError, text: str, template_path: Path, template_rel: str, where: str
) -> UserError:
    """A key the rendered output repeats, at the template line that wrote it when that line is plain text.

    The output is parsed strictly (yamlio.StrictLoader): a repeated key would otherwise silently replace
    the first, which is how text spliced in from a value could override `replicas` or a pod template.
    """
    out = text.split("\n")
    shown = out[exc.line - 1].strip() if exc.line and 0 < exc.line <= len(out) else ""
    try:
        source = template_path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError):
        source = []
    # the line as the template wrote it (`replicas: 3`), else the one template line writing this key
    same = [n for n, t in enumerate(source, 1) if t.strip() == shown]
    if len(same) != 1:
        prefix = f"{exc.key}:" if isinstance(exc.key, str) else None
        same = [n for n, t in enumerate(source, 1) if prefix and t.strip().startswith(prefix)]
    return UserError(
        f"rendered output repeats the key {exc.key!r} ({where}, output line {exc.line}: {shown!r}; "
        f"first on output line {exc.first_line})",
        path=template_rel,
        line=same[-1] if len(same) == 1 else None,
        hint="YAML would keep only the last one: write each key once, and emit values with `| quote`, "
        "keys with `| yamlkey` and whole maps with `| toyaml` so a value can't add keys",
    )


def render(
    repo: Repo,
    env_names: list[str] | None = None,
    app_names: list[str] | None = None,
    *,
    jobs: int = 1,
    cache: RenderCache | None = None,
    shard: Shard | None = None,
    on_pair: Callable[[PairOutput], None] | None = None,
    fresh: Callable[[dict[tuple[str, str], str]], set[tuple[str, str]]] | None = None,
) -> RenderResult:
    """Render the selected environments (all by default), narrowed to `app_names` if given.

    `app_names=[]` renders only the Argo CD objects of the environments. `jobs` > 1 renders the pairs in
    that many processes; `cache` skips pairs whose inputs are unchanged; `shard` takes one share of the
    work (see shard.py). None of them changes a byte of the output. `on_pair` is called with each pair's
    output as soon as it is ready, until one fails (`EagerWriter` writes while the rest still render).
    `fresh` is given the output folder of every pair to render and answers the pairs whose folder the
    process rendering them may create and fill itself (`EagerWriter.hand_out`).
    """
    envs = repo.select_envs(env_names)
    repo.check_apps(app_names)
    _check_inputs(repo, envs, app_names)
    split = Split(repo, shard)
    for chart_name in sorted({repo.apps[a].chart for e in envs for a in repo.env_apps.get(e.name, {})}):
        _loader(repo, repo.charts[chart_name]).refresh()  # this render's templates: read once, now
    keys = _Keys(repo) if cache is not None and cache.enabled else None
    plan: list[tuple[Environment, list[str], list[str]]] = []
    outputs: dict[tuple[str, str], PairOutput] = {}
    todo: list[tuple[str, str]] = []
    pair_keys: dict[tuple[str, str], str] = {}
    for env in envs:
        deployed = sorted(repo.env_apps.get(env.name, {}))
        selected = [a for a in deployed if (app_names is None or a in app_names) and split.owns(env.name, a)]
        plan.append((env, deployed, selected))
        for app in selected:
            if keys is not None and cache is not None:
                key = keys.pair(env, app)
                hit = cache.get(key)
                if hit is not None and hit.env == env.name and hit.app == app:
                    outputs[(env.name, app)] = hit
                    if on_pair is not None:
                        on_pair(hit)
                    continue
                pair_keys[(env.name, app)] = key
            todo.append((env.name, app))
    failed: dict[tuple[str, str], list[UserError]] = {}
    # each environment's Argo CD objects, made as soon as its last pair is in (they say which apps have an
    # HPA), so the parent builds and writes them while the workers still render other environments
    argo: dict[str, tuple[RenderResult, list[UserError]]] = {}
    pending = {env.name: 0 for env in envs}
    for e, _ in todo:
        pending[e] += 1

    def env_done(env: Environment, deployed: list[str], selected: list[str]) -> None:
        if not split.owns(env.name):
            return  # its Argo CD objects and leftover folders are another shard's
        env_outputs = {a: outputs[(env.name, a)] for a in selected if (env.name, a) in outputs}
        part = RenderResult()
        errs = _render_argocd(repo, env, _autoscaled(repo, env, deployed, env_outputs), part)
        argo[env.name] = (part, errs)
        if on_pair is not None and not failed and not errs:
            on_pair(PairOutput(env.name, argocd.ARGOCD_DIR, part.files, [], {}))

    by_name = {env.name: (env, deployed, selected) for env, deployed, selected in plan}
    for name, count in pending.items():
        if not count:
            env_done(*by_name[name])
    if todo:
        _compile_templates(repo, {repo.apps[a].chart for _, a in todo})  # once, before any fork
    handed = (
        fresh({(e, a): f"{repo.envs[e].manifests_dir}/{a}" for e, a in todo}) if fresh and todo else set()
    )
    units = [(e, a, pair_keys.get((e, a), ""), (e, a) in handed) for e, a in todo]
    done = parallel.iter_ordered(
        _render_unit,
        units,
        state=(repo, cache),
        jobs=jobs,
        rebuild=functools.partial(_worker_state, repo.root, cache),
    )
    with contextlib.closing(done):
        for pair, got in zip(todo, done, strict=True):
            if isinstance(got, PairOutput):
                outputs[pair] = got
                if on_pair is not None and not failed:
                    on_pair(got)
            else:
                failed[pair] = got.errors if isinstance(got, UserErrors) else [got]
            pending[pair[0]] -= 1
            if not pending[pair[0]]:
                env_done(*by_name[pair[0]])
    if cache is not None:
        if pair_keys:
            cache.wrote()  # by the workers
        cache.prune()

    result = RenderResult()
    errors: list[UserError] = []
    for env, deployed, selected in plan:
        for app in selected:
            if (env.name, app) in failed:
                errors += failed[(env.name, app)]
                continue
            result.add_pair(outputs[(env.name, app)])
            result.owned_dirs.append(f"{env.manifests_dir}/{app}")
        if not split.owns(env.name):
            continue  # its Argo CD objects and leftover folders are another shard's
        if app_names is not None:
            # apps named but not deployed here: their old output (if any) is stale
            result.owned_dirs += [f"{env.manifests_dir}/{a}" for a in app_names if a not in deployed]
        else:
            result.owned_dirs.append(env.manifests_dir)
            result.foreign_dirs += [
                f"{env.manifests_dir}/{a}" for a in deployed if not split.owns(env.name, a)
            ]
        part, errs = argo[env.name]
        result.files.update(part.files)
        result.add_resources(part.resources)
        errors += errs
        result.owned_dirs.append(f"{env.manifests_dir}/{argocd.ARGOCD_DIR}")
    if errors:
        raise UserErrors(errors)
    result.owned_dirs = sorted(set(result.owned_dirs))
    return result


def _render_unit(state: tuple[Repo, RenderCache | None], unit: tuple[str, str, str, bool]) -> PairOutput:
    """One pair, in this process or a worker, which also stores it in the cache under its key (so the
    entries are written in parallel too), writes its files when its folder was handed out (`write`: file
    creation costs the kernel as much as rendering costs Python, and this way it is spread over the
    workers too) and sends back texts only (parsing is cheaper than pickling)."""
    repo, cache = state
    env, app, key, write = unit
    output = render_app(repo, repo.envs[env], app)
    if cache is not None and key:
        cache.put(key, output)
    if write:
        output.written = _write_new_folder(repo.root, f"{repo.envs[env].manifests_dir}/{app}", output)
    if parallel.in_worker():
        output.docs = None
    return output


def _write_new_folder(root: Path, folder: str, output: PairOutput) -> bool:
    """Create `root/folder` and write the pair's files into it; False when it exists after all (then the
    parent writes them file by file). A failure is the pair's error: the transaction removes the folder."""
    try:
        os.mkdir(root / folder)
    except FileExistsError:
        return False
    except OSError as exc:
        raise UserError(f"cannot create the folder: {exc.strerror}", path=folder) from None
    for rel, text in sorted(output.files.items()):
        try:
            atomic_write(root / rel, text, new=True)
        except OSError as exc:
            raise UserError(f"cannot write: {exc.strerror}", path=rel) from None
    return True


def _worker_state(
    root: Path, cache: RenderCache | None
) -> tuple[Repo, RenderCache | None]:  # pragma: no cover - only where workers can't fork
    from betcycle.model.repo import load_repo

    limits.scope(limits.for_repository(root)).__enter__()  # for the worker's whole life
    return load_repo(root), cache


def _loader(repo: Repo, chart: Chart) -> _SnapshotLoader:
    loader = _jinja_env(repo.root / chart.dir / "templates").loader
    if not isinstance(loader, _SnapshotLoader):  # pragma: no cover - _jinja_env makes nothing else
        raise TypeError(f"unexpected template loader {loader!r}")
    return loader


def _compile_templates(repo: Repo, charts: set[str]) -> None:
    for name in sorted(charts):
        chart = repo.charts[name]
        templates_dir = repo.root / chart.dir / "templates"
        jenv = _jinja_env(templates_dir)
        for rel in chart.templates:
            with contextlib.suppress(jinja2.TemplateError):  # reported with its line when rendered
                jenv.get_template((repo.root / rel).relative_to(templates_dir).as_posix())


class _Keys:
    """Cache keys: one digest of everything a pair's render reads (see cache.py)."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.base = _digest(code_fingerprint(), repo.digests.get(SETTINGS_FILE, "-"))
        self._charts: dict[str, str] = {}

    def _chart(self, name: str) -> str:
        if name not in self._charts:
            chart = self.repo.charts[name]
            loader = _loader(self.repo, chart)
            files = [f"{chart.dir}/chart.yaml", chart.values_file, chart.schema_file]
            self._charts[name] = _digest(
                chart.dir, *(self.repo.digests.get(f, "-") for f in files), loader.digest()
            )
        return self._charts[name]

    def pair(self, env: Environment, app: str) -> str:
        ea = self.repo.env_apps[env.name][app]
        spec = self.repo.apps[app]
        return _digest(
            self.base,
            env.name,
            app,
            *(self.repo.digests.get(f, "-") for f in (env.file, spec.file, ea.file)),
            self._chart(spec.chart),
        )


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _check_inputs(repo: Repo, envs: list[Environment], app_names: list[str] | None) -> None:
    """Names that become output folders are valid, and no input the render reads (values files, chart
    templates and their includes) is a symbolic link to something outside the repository."""
    errors: list[UserError] = []
    inputs: set[str] = set()
    for env in envs:
        deployed = {a: ea for a, ea in repo.env_apps.get(env.name, {}).items()}
        named = [*deployed, *(app_names or [])]
        for what, name, file in [
            ("environment", env.name, env.file),
            *[("app", a, repo.apps[a].file) for a in named if a in repo.apps],
        ]:
            try:
                safepaths.check_label(f"{what} name", name)
            except safepaths.UnsafeName as exc:
                errors.append(UserError(exc.message, path=file, hint=exc.hint))
        inputs.add(env.file)
        for a, ea in deployed.items():
            if app_names is None or a in app_names:
                inputs |= {ea.file, repo.apps[a].file, repo.charts[repo.apps[a].chart].dir}
    errors += safepaths.check_all_links_inside(repo.root, sorted(inputs))
    _raise_all(errors)


def _render_argocd(
    repo: Repo, env: Environment, autoscaled: frozenset[str], result: RenderResult
) -> list[UserError]:
    """Add the Argo CD objects of `env` to `result`, each in its own file headed by its own inputs only."""
    errors: list[UserError] = []
    made: list[Resource] = []
    owners: dict[str, argocd.ArgoObject] = {}
    generated = [(argocd.TEMPLATE, obj) for obj in argocd.objects(repo, env, autoscaled)]
    try:  # environments/<env>/platform.yaml (optional): upstream Helm charts, one Application each
        generated += [(platform.TEMPLATE, obj) for obj in platform.objects(repo, env)]
    except UserErrors as exc:
        errors += exc.errors
    except UserError as exc:
        errors.append(exc)
    for template, obj in generated:
        try:  # names built from the environment's project and app names: checked like any object's
            file_name = safepaths.object_file_name(obj.doc["kind"], obj.doc["metadata"]["name"])
        except safepaths.UnsafeName as exc:
            errors.append(UserError(exc.message, path=env.file, hint=exc.hint))
            continue
        out = f"{env.manifests_dir}/{argocd.ARGOCD_DIR}/{file_name}"
        if out in owners:
            # e.g. an app named "root": its Application would overwrite the environment's root Application
            other = owners[out].app
            errors.append(
                UserError(
                    f"{obj.doc['kind']} {obj.doc['metadata']['name']!r} of app {obj.app!r} is also rendered "
                    + (f"for app {other!r}" if other else "for the environment itself"),
                    path=repo.apps[obj.app].file if obj.app else env.file,
                    hint="rename the app (its name is part of the Argo CD object names)",
                )
            )
            continue
        owners[out] = obj
        made.append(Resource(obj.doc, env=env.name, app=None, source=env.file, line=1, output=out))
        result.files[out] = _header(template, list(obj.sources)) + dump(obj.doc)
    result.add_resources(made)
    return errors


def _autoscaled(
    repo: Repo, env: Environment, deployed: list[str], outputs: dict[str, PairOutput]
) -> frozenset[str]:
    """Apps of `env` whose chart renders an HPA (from this render, or from merged values when narrowed)."""
    found = {
        a for a, out in outputs.items() if any(k == "HorizontalPodAutoscaler" for _, _, k in out.resources)
    }
    for app in deployed:
        if app not in outputs:  # narrowed with --app, or another shard's: decide from the values
            try:
                vals, _, _ = merged_values(repo, env, app)
            except UserErrors:
                continue
            auto = vals.get("autoscaling")
            if isinstance(auto, dict) and auto.get("enabled") is True:
                found.add(app)
    return frozenset(found)


def _owned(path: str, owned_dirs: list[str]) -> bool:
    return any(path.startswith(d + "/") for d in owned_dirs)


class _Outputs:
    """Rendered files under `root`: inside their environment's manifests folder, no link on the way (each
    folder checked once per pass: make one per pass over the files)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._check = safepaths.OutputPaths(root)

    def __call__(self, rel: str) -> Path:
        return self._check(rel, _inside(rel))

    def resolve(self, rel: str) -> tuple[str, bool]:
        """`root/rel` as text with its folders checked, and whether its folder exists (`OutputPaths`)."""
        return self._check.resolve(rel, _inside(rel))

    def text(self, rel: str) -> str | None:
        """The text of an existing output file (None: there is none); a link, a folder or anything but a
        regular file is refused (opened with O_NOFOLLOW, looked at with fstat: no lookups before)."""
        path, folder_exists = self._check.resolve(rel, _inside(rel))
        if not folder_exists:
            return None
        try:
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # O_NOFOLLOW: the file is a symbolic link
                raise safepaths.symlink_error(self.root, Path(path)) from None
            if exc.errno == errno.ENXIO:  # a socket
                raise _not_regular(rel) from None
            raise UserError(f"cannot read: {exc.strerror}", path=rel) from None
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise UserError(
                    "is a folder where the render writes a file",
                    path=rel,
                    hint="move the folder out of manifests/",
                )
            if not stat.S_ISREG(st.st_mode):
                raise _not_regular(rel)
            chunks = []
            while chunk := os.read(fd, max(st.st_size + 1, 65536)):
                chunks.append(chunk)
        except OSError as exc:
            raise UserError(f"cannot read: {exc.strerror}", path=rel) from None
        finally:
            os.close(fd)
        try:
            text = b"".join(chunks).decode("utf-8")
        except UnicodeDecodeError:
            return ""  # not what the render writes, so it is stale
        # read as text files are (universal newlines): a file saved with CRLF line ends reads the same
        return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


#: O_NONBLOCK: a FIFO planted there must not block the open (fstat then refuses it)
_READ_FLAGS = (
    os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
)


def _inside(rel: str) -> str:
    """The environment's manifests folder of a rendered file (environments/ENV/manifests)."""
    return "/".join(rel.split("/")[:3])


def _not_regular(rel: str) -> UserError:
    return UserError("is not a regular file (a FIFO, socket or device)", path=rel, hint="remove it")


def _raise_all(errors: list[UserError]) -> None:
    if errors:  # one symlinked folder shows up once, not once per file below it
        raise UserErrors(list({str(e): e for e in errors}.values()))


def _file_states(
    files: dict[str, str], outputs: _Outputs, skip: Collection[str], errors: list[UserError]
) -> Iterator[tuple[str, str]]:
    """(path, "missing" | "stale" | "same") of each rendered file against the disk, in path order; files
    that can't be read as output (a link, a folder, a FIFO) go to `errors`."""
    for rel, text in sorted(files.items()):
        if rel in skip:
            continue
        try:
            current = outputs.text(rel)
        except UserError as exc:
            errors.append(exc)
            continue
        yield rel, "missing" if current is None else "stale" if current != text else "same"


def compare(root: Path, result: RenderResult, handled: Collection[str] = ()) -> list[FileChange]:
    """What differs between the render and the files on disk (the --check report); files in `handled`
    were already brought in line (EagerWriter) and are not read again."""
    changes = []
    errors: list[UserError] = []
    output_path = _Outputs(root)
    # files whose text on disk is the render's: generated, no need to read them again
    same = set(handled)
    for rel, state in _file_states(result.files, output_path, handled, errors):
        if state == "same":
            same.add(rel)
        else:
            changes.append(FileChange(rel, state))
    for d in _outermost(result.owned_dirs):
        try:
            generated = _scan(root, result, d, same).generated
        except UserError as exc:
            errors.append(exc)
            continue
        for rel in generated:
            if rel in result.files or _owned(rel, result.foreign_dirs):
                continue
            if _owned(rel, result.owned_dirs):
                changes.append(FileChange(rel, "extra"))
    _raise_all(errors)
    return sorted({(c.path, c.state): c for c in changes}.values(), key=lambda c: c.path)


def _outermost(dirs: list[str]) -> list[str]:
    """The folders not inside another one of `dirs` (a folder is scanned once, with everything below)."""
    out: list[str] = []
    for d in sorted(set(dirs)):
        if not out or not d.startswith(out[-1] + "/"):
            out.append(d)
    return out


def _scan(root: Path, result: RenderResult, rel_dir: str, known: Collection[str] = ()) -> safepaths.Scan:
    """The owned folder's files, scanned once per result: `write` changes only generated files, so what
    `hand_written` reports afterwards is the same. Files in `known` hold the render's text (checked)."""
    key = (str(root), rel_dir)
    if key not in result.scans:
        result.scans[key] = safepaths.scan_owned(root, rel_dir, HEADER_MARK, known=known)
    return result.scans[key]


def hand_written(root: Path, result: RenderResult) -> list[str]:
    """Files in the rendered folders that betcycle did not generate (kept as they are, never deleted)."""
    kept: list[str] = []
    for d in _outermost(result.owned_dirs):
        kept += _scan(root, result, d).other
    return sorted({k for k in kept if not _owned(k, result.foreign_dirs)})


@dataclass
class _Op:
    change: FileChange
    path: Path
    before: transaction.Snapshot


def _prepare(root: Path, changes: list[FileChange]) -> list[_Op]:
    """Every change's path checked, its original read into memory and its folder found writable, before
    any file is touched: a read-only environment folder stops the run before another one is written."""
    ops: list[_Op] = []
    errors: list[UserError] = []
    output_path = _Outputs(root)
    verdicts: dict[Path, UserError | None] = {}  # each folder judged once per pass
    for change in changes:
        try:
            path = output_path(change.path)
            before = transaction.Snapshot.of(path)
        except UserError as exc:
            errors.append(exc)
            continue
        except OSError as exc:
            errors.append(UserError(f"cannot read: {exc.strerror}", path=change.path))
            continue
        if path.parent not in verdicts:
            verdicts[path.parent] = _folder_problem(root, path.parent)
        problem = verdicts[path.parent]
        if problem is not None:
            errors.append(problem)
        ops.append(_Op(change, path, before))
    _raise_all(errors)
    return ops


def _folder_problem(root: Path, folder: Path) -> UserError | None:
    """Why a file can't be created in `folder` (or the nearest existing folder above it), if it can't."""
    while not os.path.lexists(folder):
        folder = folder.parent
    rel_folder = folder.relative_to(root).as_posix()
    if not folder.is_dir():
        return UserError("is a file where the render needs a folder", path=rel_folder, hint="move it away")
    if not os.access(folder, os.W_OK | os.X_OK):
        return UserError(
            "folder is not writable",
            path=rel_folder,
            hint=f"make it writable (chmod u+w {rel_folder}) and render again",
        )
    return None


def _apply(root: Path, result: RenderResult, ops: list[_Op], txn: transaction.Transaction) -> None:
    fresh: dict[Path, bool] = {}  # folder -> it did not exist (made here, so its files are all new)
    for op in ops:
        if op.change.state == "extra":
            continue
        folder = op.path.parent
        if op.before.data is None and folder not in fresh:
            fresh[folder] = not os.path.lexists(folder)
            if fresh[folder]:
                txn.mkdirs(folder)
        if op.before.data is None and fresh[folder]:
            txn.create(op.path, result.files[op.change.path], op.change.path)
        else:
            txn.write(op.path, result.files[op.change.path], before=op.before)
    for op in ops:
        if op.change.state == "extra":
            txn.delete(op.path, before=op.before)
    # remove folders emptied by deletions (removed apps); no links below them (compare checked); a folder
    # inside another is walked with it
    for d in _outermost(result.owned_dirs):
        base = root / d
        if base.is_dir() and not base.is_symlink():
            for walked, _, _ in os.walk(base, topdown=False):
                if not any(Path(walked).iterdir()):
                    txn.rmdir(Path(walked))


class EagerWriter:
    """Writes each pair's files into a transaction as soon as the pair is rendered (`render(on_pair=)`),
    so writing overlaps with the workers still rendering. The caller finishes with `write(...,
    writer=writer)` and rolls the transaction back on any failure, so a failed render
    still leaves every file as it was. After the first path or permission error it only checks the
    remaining pairs, so all such errors are reported together (`finish`)."""

    def __init__(self, root: Path, txn: transaction.Transaction) -> None:
        self.root = root
        self.txn = txn
        self.changes: list[FileChange] = []
        self.handled: set[str] = set()
        self.errors: list[UserError] = []
        self._path = _Outputs(root)
        self._verdicts: dict[Path, UserError | None] = {}  # folder above a new pair folder -> its problem

    def hand_out(self, folders: dict[tuple[str, str], str]) -> set[tuple[str, str]]:
        """The pairs (of `folders`: pair -> its output folder) whose folder doesn't exist and may be created
        and filled by the process that renders them; each is in the transaction from now on, so a failure
        or Ctrl-C removes it with whatever is in it. A folder with anything odd on the way is left to the
        file-by-file path, which reports it."""
        out: set[tuple[str, str]] = set()
        for pair, rel in folders.items():
            try:
                path, _ = self._path.resolve(f"{rel}/_")  # the folders on the way: real folders, inside
            except UserError:
                continue
            folder = Path(path).parent
            if not self._can_create(folder):
                continue
            self.txn.mkdirs(folder.parent)  # the environment's manifests/ on a first render
            self.txn.hand_out(folder)
            out.add(pair)
        return out

    def __call__(self, output: PairOutput) -> None:
        if output.written:  # the worker wrote them into the folder handed out to it
            rels = sorted(output.files)
            for rel in rels:
                self.txn.created(self.root / rel, rel)
            self.changes += [FileChange(rel, "missing") for rel in rels]
            self.handled.update(rels)
            return
        if not self.errors and self._into_new_folder(output):
            return
        errors: list[UserError] = []
        changes = [
            FileChange(rel, state)
            for rel, state in _file_states(output.files, self._path, (), errors)
            if state != "same"
        ]
        try:
            if errors:
                _raise_all(errors)
            ops = _prepare(self.root, changes)
        except UserErrors as exc:
            self.errors += exc.errors
            return
        except UserError as exc:
            self.errors.append(exc)
            return
        if self.errors:
            return  # reported with the others; nothing more is written
        for op in ops:
            self.txn.write(op.path, output.files[op.change.path], before=op.before)
        self.changes += changes
        self.handled |= set(output.files)

    def _into_new_folder(self, output: PairOutput) -> bool:
        """A pair whose folder does not exist yet (a first render, a new app): every file is new, so the
        folder is created and its files written without looking each one up. False: it is not such a
        pair (or something is wrong with it, which the file-by-file path then reports)."""
        rels = sorted(output.files)
        if not rels:
            return False
        folder_rel = rels[0].rpartition("/")[0]
        try:
            paths = [self._path(rel) for rel in rels]  # names and folders checked (each folder once)
        except UserError:
            return False
        folder = paths[0].parent
        if any(rel.rpartition("/")[0] != folder_rel for rel in rels) or not self._can_create(folder):
            return False
        self.txn.mkdirs(folder)
        for rel, path in zip(rels, paths, strict=True):
            self.txn.create(path, output.files[rel], rel)
        self.changes += [FileChange(rel, "missing") for rel in rels]
        self.handled.update(rels)
        return True

    def _can_create(self, folder: Path) -> bool:
        """`folder` doesn't exist and can be made where it goes (each folder above judged once)."""
        if os.path.lexists(folder):
            return False
        above = folder.parent
        if above not in self._verdicts:
            self._verdicts[above] = _folder_problem(self.root, above)
        return self._verdicts[above] is None

    def finish(self) -> None:
        _raise_all(self.errors)


def write(
    root: Path,
    result: RenderResult,
    *,
    txn: transaction.Transaction | None = None,
    writer: EagerWriter | None = None,
) -> list[FileChange]:
    """Bring the files on disk in line with the render, all or nothing; returns the changes made.

    Holds the repository's render lock. Every path is checked and every original read first; a failure (or
    Ctrl-C) part-way puts back what was already changed. With `txn`, the changes join that transaction and
    the caller rolls back (a release edit undoes its values file too). With an EagerWriter, the changes
    join its transaction and include what it already wrote.
    """
    if writer is not None:
        txn = writer.txn
    with transaction.lock(root, "betcycle render"):
        if writer is not None:
            writer.finish()
        changes = compare(root, result, writer.handled if writer is not None else ())
        ops = _prepare(root, changes)
        if txn is not None:
            _apply(root, result, ops, txn)
        else:
            with transaction.all_or_nothing(root) as own:
                _apply(root, result, ops, own)
    if writer is not None:
        changes = sorted(writer.changes + changes, key=lambda c: c.path)
    return changes


def manifests_for(result: RenderResult, env: str) -> list[Resource]:
    return [r for r in result.resources if r.env == env]
