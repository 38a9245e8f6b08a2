"""crds.lock.yaml and the vendored CRD schemas in `schemas/crds/`, which `betcycle validate` reads first.

The lock pins upstream CustomResourceDefinition files: a URL at a commit, the file's sha256 and its licence.
The vendored folder holds their converted schemas and nothing else. It is generated, all at once, by
`betcycle schemas fetch` (online; crd_fetch.py downloads) or `betcycle schemas import --vendor` (offline, from
local copies of the pinned files, each checked against the lock's sha256). Every schema records the lock
entry it came from under `x-betcycle-source`, and `SHA256SUMS` holds the sha256 of every schema file, so
`betcycle schemas check` can verify offline that the folder is exactly what the lock pins: every entry
vendored, nothing extra, nothing stale, nothing edited by hand.

Layout (`<root>/schemas` is a schema folder like a user cache, so CrdSchemaStore reads both alike):

    schemas/crds/README.md                                generated: what this is, provenance, how to refresh
    schemas/crds/SHA256SUMS                               `sha256sum -c` format, one line per schema file
    schemas/crds/.gitattributes                           marks the folder as generated for GitHub
    schemas/crds/<group>/<kind lowercased>_<version>.json
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from betcycle.errors import UserError, raise_collected
from betcycle.model import yamlio
from betcycle.validate.crd import (
    GVK,
    CrdSchema,
    Log,
    dump_schema,
    gvk_of,
    no_crds_error,
    read_schema_file,
    schema_path,
    schemas_from_text,
    source_files,
)

LOCK_FILE = "crds.lock.yaml"
VENDOR_DIR = "schemas"  # relative to the repository root; the schemas are in VENDOR_DIR/crds/
SOURCE_KEY = "x-betcycle-source"
README, SUMS, ATTRIBUTES = "README.md", "SHA256SUMS", ".gitattributes"
REFRESH_HINT = (
    "refresh it with `betcycle schemas fetch` (online), or offline with "
    "`betcycle schemas import --vendor DIR` from local copies of the pinned files"
)
ADD_HINT = (
    "pin its CRD in crds.lock.yaml, then run `betcycle schemas fetch` "
    "(offline: `betcycle schemas import --vendor CRD.yaml`)"
)

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# An SPDX licence expression (Apache-2.0, MIT OR Apache-2.0, GPL-2.0-only WITH Classpath-exception-2.0).
_SPDX_ID = r"[A-Za-z0-9][A-Za-z0-9.+-]*"
_LICENSE_RE = re.compile(rf"^\(?{_SPDX_ID}\)?( (AND|OR|WITH) \(?{_SPDX_ID}\)?)*$")
_GITHUB_RAW = re.compile(r"^https://raw\.githubusercontent\.com/([^/]+/[^/]+)/([0-9a-f]{40})/(.+)$")


def vendored_dir(root: Path) -> Path:
    """The repository's vendored schema folder (as CrdSchemaStore takes it; the files are in its crds/)."""
    return root / VENDOR_DIR


# ------------------------------------------------------------------------------------------------ the lock


@dataclass(frozen=True)
class LockEntry:
    """One pinned CRD file in `crds.lock.yaml`."""

    name: str
    url: str
    sha256: str
    license: str
    line: int | None = field(default=None, compare=False)

    def record(self) -> dict[str, str]:
        """What each schema converted from this file records about it (under SOURCE_KEY)."""
        return {"license": self.license, "name": self.name, "sha256": self.sha256, "url": self.url}


def read_lock(lock_path: Path) -> list[LockEntry]:
    """Parse crds.lock.yaml: `crds: [{name, url, sha256, license}, ...]`."""
    display = str(lock_path)
    data, lines = yamlio.load_with_lines(yamlio.read_text(lock_path, display), display)
    hint = "see the comment at the top of crds.lock.yaml for the format"
    if not isinstance(data, dict) or not isinstance(data.get("crds"), list):
        raise UserError("expected a mapping with a `crds` list", path=display, line=1, hint=hint)
    unknown = sorted(set(map(str, data)) - {"crds"})
    if unknown:
        raise UserError(f"unknown key {unknown[0]!r}", path=display, line=lines.get((unknown[0],)), hint=hint)
    entries: list[LockEntry] = []
    seen: dict[str, LockEntry] = {}
    for i, item in enumerate(data["crds"]):
        line = lines.get(("crds", i))
        if not isinstance(item, dict):
            raise UserError(
                "each entry must be a mapping with url, sha256 and license",
                path=display,
                line=line,
                hint=hint,
            )
        extra = sorted(set(map(str, item)) - {"name", "url", "sha256", "license"})
        if extra:
            raise UserError(
                f"unknown key {extra[0]!r}", path=display, line=lines.get(("crds", i, extra[0])), hint=hint
            )
        url, sha, name, lic = item.get("url"), item.get("sha256"), item.get("name"), item.get("license")
        if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("https", "http"):
            raise UserError(f"url must be an http(s) URL, got {url!r}", path=display, line=line, hint=hint)
        if not isinstance(sha, str) or not _SHA256_RE.match(sha.lower()):
            raise UserError(
                "sha256 must be 64 hex digits",
                path=display,
                line=line,
                hint="quote it if it is all digits (YAML reads those as a number)",
            )
        if name is not None and not isinstance(name, str):
            raise UserError("name must be a string", path=display, line=line, hint=hint)
        if not isinstance(lic, str) or not _LICENSE_RE.match(lic):
            raise UserError(
                f"license must be the upstream file's SPDX licence (e.g. Apache-2.0), got {lic!r}",
                path=display,
                line=line,
                hint="the vendored schemas are derived from the file, so its licence travels with them",
            )
        label = name or urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1] or url
        entry = LockEntry(label, url, sha.lower(), lic, line)
        for key, what in ((entry.name, "name"), (entry.sha256, "sha256")):
            if key in seen:
                raise UserError(
                    f"duplicate {what} {key!r} (also at line {seen[key].line})",
                    path=display,
                    line=line,
                    hint="each pinned file appears once, under a name of its own",
                )
            seen[key] = entry
        entries.append(entry)
    return entries


# ------------------------------------------------------------------------------------ converting and writing


@dataclass(frozen=True)
class Pinned:
    """The converted schemas of one lock entry's file."""

    entry: LockEntry
    schemas: list[CrdSchema]


def convert_pinned(entry: LockEntry, data: bytes, display: str, log: Log | None = None) -> Pinned:
    """Convert the (already verified) bytes of a pinned file."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError("not UTF-8 text", path=display) from None
    is_json = display.lower().endswith(".json") or entry.url.lower().endswith(".json")
    schemas, crds = schemas_from_text(text, display, is_json=is_json, log=log)
    if not crds:
        raise no_crds_error(display)
    return Pinned(entry, schemas)


def _rel(gvk: GVK) -> str:
    """A schema's path inside the vendored crds/ folder."""
    return schema_path(Path(), *gvk).relative_to("crds").as_posix()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _readme(pinned: list[Pinned]) -> str:
    rows = []
    for p in pinned:
        m = _GITHUB_RAW.match(p.entry.url)
        repo, commit, path = (m[1], m[2], m[3]) if m else (p.entry.url, "-", "-")
        files = "<br>".join(sorted(_rel(s.gvk) for s in p.schemas))
        cells = (p.entry.name, repo, path, commit, p.entry.license, files)
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    table = "\n".join(rows) if rows else "| (nothing pinned) | | | | | |"
    return f"""# Vendored CRD schemas (generated: do not edit)

JSON schemas of the custom resources BetCycle validates, converted from the upstream
CustomResourceDefinitions pinned (URL at a commit, sha256, licence) in `crds.lock.yaml` at the repository
root. `betcycle validate` checks custom resources against these first, so validation needs no network and
gives the same result on every machine and in CI. The upstream files themselves are not copied here.

Every file in this folder is written by `betcycle schemas fetch` (or `schemas import --vendor`); edits by
hand are lost on the next refresh and reported by `betcycle schemas check`. Each schema records the lock entry it came from under
`{SOURCE_KEY}`, and `SHA256SUMS` holds each schema file's sha256.

- Refresh (online): `betcycle schemas fetch` downloads every pinned file, verifies its sha256 and rewrites
  this folder (all or nothing; schemas of removed entries are deleted).
- Refresh offline from local copies of the pinned files: `betcycle schemas import --vendor DIR`.
- Check this folder against the lock (offline): `betcycle schemas check`.
- Add or update a CRD: edit `crds.lock.yaml` as its header says, then refresh. See docs/validation.md.

| Lock entry | Upstream repository | Path | Commit | Licence | Schemas |
| --- | --- | --- | --- | --- | --- |
{table}
"""


def render_folder(pinned: list[Pinned], lock: str) -> dict[str, bytes]:
    """Every file of the vendored crds/ folder (path inside it → content) for these converted entries."""
    owner: dict[GVK, LockEntry] = {}
    errors: list[UserError] = []
    files: dict[str, bytes] = {}
    ordered = sorted(pinned, key=lambda p: p.entry.name)
    for p in ordered:
        for s in p.schemas:
            if s.gvk in owner and owner[s.gvk] != p.entry:
                errors.append(
                    UserError(
                        f"{p.entry.name}: {s.api_version} {s.kind} is also defined by {owner[s.gvk].name}",
                        path=lock,
                        line=p.entry.line,
                        hint="pin each custom resource kind in one file only",
                    )
                )
                continue
            owner[s.gvk] = p.entry
            files[_rel(s.gvk)] = dump_schema({**s.schema, SOURCE_KEY: p.entry.record()}).encode("utf-8")
    raise_collected(errors)
    sums = "".join(f"{_sha(files[rel])}  {rel}\n" for rel in sorted(files))
    files[SUMS] = sums.encode("utf-8")
    files[README] = _readme(ordered).encode("utf-8")
    # LF everywhere (SHA256SUMS holds on a checkout with core.autocrlf too); GitHub folds generated files in diffs
    files[ATTRIBUTES] = b"# written by betcycle schemas fetch\n* text eol=lf linguist-generated=true\n"
    return files


def _current_files(folder: Path) -> dict[str, bytes]:
    if not folder.is_dir():
        return {}
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _swap_in(base: Path, files: dict[str, bytes]) -> None:
    """Make base/crds hold exactly `files`: written to a sibling folder, then renamed into place."""
    folder = base / "crds"
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    new, old = base / f".crds-new-{token}", base / f".crds-old-{token}"
    try:
        base.mkdir(parents=True, exist_ok=True)
        new.mkdir()
        for rel, data in files.items():
            path = new / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        had = folder.exists()
        if had:
            folder.rename(old)
        try:
            new.rename(folder)
        except OSError:
            if had:
                old.rename(folder)
            raise
    except OSError as exc:
        shutil.rmtree(new, ignore_errors=True)
        raise UserError(
            f"cannot write the vendored schemas: {exc.strerror or exc}",
            path=folder,
            hint="the repository's schemas/ folder must be writable",
        ) from None
    shutil.rmtree(old, ignore_errors=True)


@dataclass
class VendorResult:
    """What a refresh left in the vendored folder."""

    folder: Path
    pinned: list[Pinned]
    #: paths inside the folder that were added or changed, and removed
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    #: lock entries that are still not vendored (only after a partial `import --vendor`)
    missing: list[LockEntry] = field(default_factory=list)


def write_vendored(base: Path, pinned: list[Pinned], entries: list[LockEntry], lock: str) -> VendorResult:
    """Replace the vendored folder with exactly the schemas of `pinned`, all or nothing.

    Nothing is written when the folder already holds exactly these files, so a refresh that changes nothing
    touches nothing.
    """
    files = render_folder(pinned, lock)
    folder = base / "crds"
    current = _current_files(folder)
    result = VendorResult(folder, sorted(pinned, key=lambda p: p.entry.name))
    result.changed = sorted(rel for rel, data in files.items() if current.get(rel) != data)
    result.removed = sorted(set(current) - set(files))
    done = {p.entry.name for p in pinned}
    result.missing = [e for e in entries if e.name not in done]
    if result.changed or result.removed:
        _swap_in(base, files)
    return result


# -------------------------------------------------------------------------------------- reading and checking


@dataclass
class _Scan:
    """The vendored folder as found: the schemas whose provenance matches the lock, and every problem."""

    valid: dict[str, list[CrdSchema]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    named: set[str] = field(default_factory=set)  # lock entries some file claims to come from
    broken: set[str] = field(default_factory=set)  # ... and those of them with a problem

    def intact(self) -> dict[str, list[CrdSchema]]:
        """The entries whose every file is as generated."""
        return {n: s for n, s in self.valid.items() if n not in self.broken}


def _scan(base: Path, entries: list[LockEntry]) -> _Scan:
    folder = base / "crds"
    by_name = {e.name: e for e in entries}
    scan = _Scan()
    current = _current_files(folder)
    sums: dict[str, str] = {}
    for line in current.get(SUMS, b"").decode("utf-8", "replace").splitlines():
        sha, sep, rel = line.partition("  ")
        if sep:
            sums[rel] = sha
    for rel, data in current.items():
        if rel in (README, SUMS, ATTRIBUTES):
            continue
        where = f"{folder / rel}"
        if rel.count("/") != 1 or not rel.endswith(".json"):
            scan.problems.append(f"{where}: extra: not a file betcycle writes here")
            continue
        try:
            schema = read_schema_file(folder / rel, REFRESH_HINT)
        except UserError as exc:
            scan.problems.append(f"{where}: {exc.message}")
            continue
        gvk = gvk_of(schema) if schema is not None else None
        if schema is None or gvk is None or _rel_safe(gvk) != rel:
            scan.problems.append(f"{where}: its x-kubernetes-group-version-kind does not match its file name")
            continue
        source = schema.get(SOURCE_KEY)
        if not isinstance(source, dict):
            source = {}
        name = source.get("name")
        if not isinstance(name, str):
            scan.problems.append(f"{where}: extra: records no {SOURCE_KEY} (not generated from the lock)")
            continue
        scan.named.add(name)
        entry = by_name.get(name)
        if entry is None:
            scan.problems.append(f"{where}: extra: generated from {name!r}, which the lock no longer pins")
            continue
        if source != entry.record():
            diffs = [k for k in ("sha256", "url", "license") if source.get(k) != entry.record()[k]]
            detail = "; ".join(f"{k} {source.get(k)!r}, the lock {entry.record()[k]!r}" for k in diffs)
            scan.problems.append(f"{where}: stale: generated from {name} with {detail}")
            scan.broken.add(name)
            continue
        if sums.get(rel) != _sha(data):
            why = "not listed in" if rel not in sums else "its sha256 differs from the one in"
            scan.problems.append(f"{where}: edited by hand: {why} {SUMS}")
            scan.broken.add(name)
            continue
        body = {k: v for k, v in schema.items() if k != SOURCE_KEY}
        scan.valid.setdefault(name, []).append(CrdSchema(*gvk, body, source=entry.url))
    for rel in sorted(set(sums) - set(current)):
        scan.problems.append(f"{folder / rel}: missing: listed in {SUMS} but not there")
    return scan


def _rel_safe(gvk: GVK) -> str | None:
    try:
        return _rel(gvk)
    except ValueError:
        return None


def check(base: Path, lock_path: Path) -> list[str]:
    """Every way the vendored folder differs from what crds.lock.yaml pins (empty: it matches), offline.

    It cannot see a change of the conversion itself (that needs the upstream files): `betcycle schemas fetch`
    followed by `git diff --exit-code schemas/` does.
    """
    entries = read_lock(lock_path)
    folder = base / "crds"
    scan = _scan(base, entries)
    problems = list(scan.problems)
    for e in entries:
        if e.name not in scan.named:
            problems.append(f"{e.name}: missing: pinned in {lock_path} but not vendored in {folder}")
    if not problems:
        pinned = [Pinned(e, scan.valid[e.name]) for e in entries]
        expected = render_folder(pinned, str(lock_path))
        current = _current_files(folder)
        for rel in (README, SUMS, ATTRIBUTES):
            if current.get(rel) != expected[rel]:
                problems.append(f"{folder / rel}: out of date (generated from the lock and the schemas)")
    return problems


# ------------------------------------------------------------------------------------------- offline import


def import_vendored(
    sources: list[str], lock_path: Path, base: Path, stdin: BinaryIO, *, log: Log | None = None
) -> VendorResult:
    """Vendor local copies of pinned files (files, folders recursively, `-` for stdin), offline.

    Each file must be byte for byte one the lock pins (its sha256); a CRD file the lock doesn't pin is an
    error. Schemas of other entries already vendored and still pinned are kept; those of entries the lock no
    longer pins (or pins at another sha256) are removed. Everything is checked before anything is written.
    """
    lock = str(lock_path)
    entries = read_lock(lock_path)
    by_sha = {e.sha256: e for e in entries}
    found: dict[str, Pinned] = {}
    shown: dict[str, str] = {}
    errors: list[UserError] = []

    def one(data: bytes, display: str, in_dir: bool) -> bool:
        entry = by_sha.get(_sha(data))
        if entry is not None:
            if entry.name in found and log:
                log(f"{display}: the same file as {shown[entry.name]}; using this one")
            found[entry.name] = convert_pinned(entry, data, display, log)
            shown[entry.name] = display
            return True
        try:
            _, crds = schemas_from_text(
                data.decode("utf-8"), display, is_json=display.lower().endswith(".json")
            )
        except UnicodeDecodeError:
            raise UserError("not UTF-8 text", path=display) from None
        if crds:
            raise UserError(
                f"not pinned in {lock}: no entry has its sha256 {_sha(data)}",
                path=display,
                hint="pin the file in crds.lock.yaml first (url at a commit, sha256, license), or import "
                "it into your own schema cache: `betcycle schemas import` without --vendor",
            )
        if not in_dir:
            raise no_crds_error(display)
        if log:
            log(f"{display}: no CRDs, skipped")
        return False

    for source in sources:
        try:
            if source == "-":
                one(stdin.read(), "<stdin>", False)
                continue
            path = Path(source)
            if not path.is_dir():
                try:
                    data = path.read_bytes()
                except FileNotFoundError:
                    raise UserError("file not found", path=source) from None
                except OSError as exc:
                    raise UserError(f"cannot read file: {exc.strerror}", path=source) from None
                one(data, source, False)
                continue
            files = source_files(path)
            if not files:
                raise UserError("no .yaml, .yml or .json files in this directory", path=source)
            matched = False
            for file in files:
                try:
                    matched = one(file.read_bytes(), str(file), True) or matched
                except UserError as exc:
                    errors.append(exc)
            if not matched and not errors:
                raise no_crds_error(source, "directory")
        except UserError as exc:
            errors.append(exc)
    raise_collected(errors)

    scan = _scan(base, entries)
    by_name = {e.name: e for e in entries}
    kept = [Pinned(by_name[n], s) for n, s in scan.intact().items() if n not in found]
    if log:
        for problem in scan.problems:
            log(f"dropping {problem}")
    return write_vendored(base, [*kept, *found.values()], entries, lock)
