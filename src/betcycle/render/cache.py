"""The incremental caches: what one (environment, app) rendered to (`RenderCache`), and what validating
one environment found (`Store` under `validate/`, see commands/validate_cmd.py), each keyed by everything
it depends on.

A render entry's key is the SHA-256 of every input the pair's render reads — betcycle.yaml, environment.yaml,
apps/<app>/app.yaml, environments/<env>/apps/<app>.yaml, every file of the app's chart — plus BetCycle's
own code and the versions of the libraries that shape the output (Jinja2, PyYAML, yaml-rs). Any change to
any of them is a different key, so an entry is never stale, only unused.

The cache lives outside the repository (default `$XDG_CACHE_HOME/betcycle/render`, else
`~/.cache/betcycle/render`; `BETCYCLE_CACHE_DIR` moves it), so a pull request can't plant entries that a
CI render would trust. Deleting it is always safe. Each entry carries a SHA-256 of its own body: a
truncated, corrupted or hand-edited entry is detected, ignored and rewritten, never trusted. Entries are
written atomically; old ones are pruned by age once the folder holds more than `MAX_ENTRIES`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from betcycle import __version__
from betcycle.model.yamlio import atomic_write

T = TypeVar("T")

#: bumped whenever the entry layout changes (old entries are then simply not found)
FORMAT = 2  # 2: file texts as raw bytes after the JSON header line
#: entries kept before the oldest (by modification time) are pruned
MAX_ENTRIES = 20_000
#: the environment variable that moves the cache (the render cache uses its `render/` subfolder)
ENV_VAR = "BETCYCLE_CACHE_DIR"


def default_dir(kind: str = "render") -> Path:
    """The folder of one kind of entries: `render`, `validate`."""
    base = os.environ.get(ENV_VAR)
    if base:
        return Path(base) / kind
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "betcycle" / kind


@dataclass
class PairOutput:
    """What one (environment, app) renders to: its files, and for each resource its file, template and kind.

    `docs` holds the parsed objects when this process rendered them; from the cache or a worker they are
    parsed again from the file text only if someone asks (the render command itself never does).
    """

    env: str
    app: str
    files: dict[str, str]
    #: (output file, chart template, kind) per resource, in render order
    resources: list[tuple[str, str, str]]
    #: values provenance: JSON path -> (file, line, value)
    origins: dict[str, tuple[str, int, Any]]
    docs: list[dict[str, Any]] | None = field(default=None, repr=False)
    #: the process that rendered it also wrote its files, into a folder that did not exist (render's
    #: EagerWriter handed the folder out); never stored in the cache
    written: bool = field(default=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "app": self.app,
            "files": self.files,
            "resources": [list(r) for r in self.resources],
            "origins": {k: list(v) for k, v in self.origins.items()},
        }

    @classmethod
    def from_json(cls, data: Any) -> PairOutput:
        """Raises ValueError/KeyError/TypeError when `data` isn't what `to_json` wrote."""
        files = data["files"]
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            raise ValueError("files")
        resources = [(str(o), str(s), str(k)) for o, s, k in data["resources"]]
        if any(o not in files for o, _, _ in resources):
            raise ValueError("resources")
        origins = {str(k): (str(f), int(n), v) for k, (f, n, v) in data["origins"].items()}
        return cls(str(data["env"]), str(data["app"]), files, resources, origins)


@cache
def code_fingerprint() -> str:
    """BetCycle's version and source, and the versions of the libraries that shape rendered output.

    The source is hashed, not only the version: an editable install changes code without a new version.
    """
    h = hashlib.sha256(f"format {FORMAT}\nbetcycle {__version__}\n".encode())
    for dist in ("jinja2", "pyyaml", "yaml-rs", "markupsafe", "kubernetes-validate", "jsonschema-rs"):
        try:
            h.update(f"{dist} {metadata.version(dist)}\n".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist} -\n".encode())
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def hash_files(root: Path, rels: list[str]) -> str:
    """One digest over the named files (path and bytes each; a missing file counts as missing)."""
    h = hashlib.sha256()
    for rel in rels:
        try:
            data = (root / rel).read_bytes()
        except FileNotFoundError:
            data = b"\0missing"
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def hash_tree(root: Path, rel_dir: str) -> str:
    """One digest over every file below `rel_dir` (names and bytes)."""
    base = root / rel_dir
    rels = sorted(p.relative_to(root).as_posix() for p in base.rglob("*") if p.is_file())
    return hash_files(root, rels)


class Store:
    """JSON entries under one folder, each with a checksum and its key; `enabled=False` does nothing."""

    def __init__(self, directory: Path, *, enabled: bool = True) -> None:
        self.directory = directory
        self.enabled = enabled
        self.hits = 0
        self.misses = 0
        self.rebuilt = 0  # entries found damaged and replaced
        self._written = 0

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get_json(self, key: str, decode: Callable[[Any], T] | None = None) -> T | Any | None:
        """The entry's data (passed through `decode`), or None: missing, or damaged (a bad checksum, or data
        `decode` refuses with ValueError/KeyError/TypeError/AttributeError), counted in `rebuilt`; the
        caller then does the work again."""
        if not self.enabled:
            return None
        path = self._path(key)
        try:
            # a regular file only: a FIFO or device planted here would block or never end
            raw = path.read_bytes() if stat.S_ISREG(os.lstat(path).st_mode) else b""
        except OSError:  # not there (or unreadable): do the work
            self.misses += 1
            return None
        data = _decode(raw, key)
        if data is not None and decode is not None:
            try:
                data = decode(data)
            except (ValueError, KeyError, TypeError, AttributeError):
                data = None
        if data is None:
            self.rebuilt += 1
            self.misses += 1
            return None
        self.hits += 1
        with contextlib.suppress(OSError):  # pruning goes by last use
            os.utime(self._path(key))
        return data

    def put_json(self, key: str, data: Any, blobs: list[bytes] | None = None) -> None:
        """Store `data` (JSON) under `key`; `blobs` (bytes, e.g. file texts) go after the JSON line as they are,
        not as JSON strings (no escaping to write or read), and come back as `data["blobs"]`."""
        if not self.enabled:
            return
        entry: dict[str, Any] = {"key": key, "data": data}
        if blobs is not None:
            entry["blobs"] = [len(b) for b in blobs]
        body = json.dumps(entry, separators=(",", ":")).encode() + b"\n" + b"".join(blobs or ())
        text = hashlib.sha256(body).hexdigest().encode() + b"\n" + body
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(path, text)
            self._written += 1
        except OSError:
            pass  # a read-only or full cache folder only costs speed

    def wrote(self) -> None:
        """Entries were added (by worker processes): `prune` has work to look at."""
        self._written += 1

    def prune(self) -> None:
        """Drop the least recently used entries once there are more than MAX_ENTRIES (only after this run
        added some)."""
        if not self.enabled or not self._written:
            return
        try:
            entries = [p for d in self.directory.iterdir() if d.is_dir() for p in d.iterdir()]
            if len(entries) <= MAX_ENTRIES:
                return
            by_age = sorted(entries, key=lambda p: p.stat().st_mtime)
            for p in by_age[: len(entries) - MAX_ENTRIES]:
                p.unlink(missing_ok=True)
        except OSError:
            pass


class RenderCache(Store):
    """What each (environment, app) rendered to, by the digest of its inputs (`engine._Keys`)."""

    def __init__(self, directory: Path | None = None, *, enabled: bool = True) -> None:
        super().__init__(directory if directory is not None else default_dir(), enabled=enabled)

    def get(self, key: str) -> PairOutput | None:
        output: PairOutput | None = self.get_json(key, _pair_from_entry)
        return output

    def put(self, key: str, output: PairOutput) -> None:
        data = output.to_json()
        files = data.pop("files")
        data["files"] = list(files)  # names; their texts are the blobs, in the same order
        self.put_json(key, data, [text.encode() for text in files.values()])


def _pair_from_entry(data: Any) -> PairOutput:
    names, blobs = data["files"], data["blobs"]
    if not isinstance(names, list) or len(names) != len(blobs) or not all(isinstance(n, str) for n in names):
        raise ValueError("files")
    try:
        texts = [b.decode() for b in blobs]
    except UnicodeDecodeError:
        raise ValueError("files") from None
    return PairOutput.from_json({**data, "files": dict(zip(names, texts, strict=True))})


def _decode(raw: bytes, key: str) -> Any | None:
    """The entry's data, or None when it is damaged (wrong checksum, not JSON, another key's, blobs that
    don't add up)."""
    digest, sep, body = raw.partition(b"\n")
    if not sep or hashlib.sha256(body).hexdigest().encode() != digest:
        return None
    header, sep, rest = body.partition(b"\n")
    try:
        entry = json.loads(header)
    except ValueError:
        return None
    if not sep or not isinstance(entry, dict) or entry.get("key") != key or "data" not in entry:
        return None
    sizes = entry.get("blobs")
    if sizes is None:
        return entry["data"] if not rest else None
    if (
        not isinstance(sizes, list)
        or not all(type(n) is int and n >= 0 for n in sizes)
        or sum(sizes) != len(rest)
        or not isinstance(entry["data"], dict)
    ):
        return None
    blobs, at = [], 0
    for n in sizes:
        blobs.append(rest[at : at + n])
        at += n
    return {**entry["data"], "blobs": blobs}
