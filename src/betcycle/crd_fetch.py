"""`betcycle schemas fetch`: the CRDs pinned in crds.lock.yaml, downloaded, checked and cached.

Reading the lock file and downloading live here; converting and caching is crd.py's, as for local imports.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from betcycle import yamlio
from betcycle.crd import GVK, CrdSchema, Log, _no_crds, schemas_from_text, write_schemas
from betcycle.errors import UserError, UserErrors

DOWNLOAD_TIMEOUT = 30.0
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024  # the largest upstream CRD we pin (ApplicationSet) is 1.4 MB

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class LockEntry:
    """One pinned CRD file in `crds.lock.yaml`."""

    name: str
    url: str
    sha256: str
    line: int | None = None


def read_lock(lock_path: Path) -> list[LockEntry]:
    """Parse crds.lock.yaml: `crds: [{name, url, sha256}, ...]`."""
    display = str(lock_path)
    data, lines = yamlio.load_with_lines(yamlio.read_text(lock_path, display), display)
    hint = "see the comment at the top of crds.lock.yaml for the format"
    if not isinstance(data, dict) or not isinstance(data.get("crds"), list):
        raise UserError("expected a mapping with a `crds` list", path=display, line=1, hint=hint)
    unknown = sorted(set(map(str, data)) - {"crds"})
    if unknown:
        raise UserError(f"unknown key {unknown[0]!r}", path=display, line=lines.get((unknown[0],)), hint=hint)
    entries: list[LockEntry] = []
    for i, item in enumerate(data["crds"]):
        line = lines.get(("crds", i))
        if not isinstance(item, dict):
            raise UserError(
                "each entry must be a mapping with url and sha256", path=display, line=line, hint=hint
            )
        extra = sorted(set(map(str, item)) - {"name", "url", "sha256"})
        if extra:
            raise UserError(
                f"unknown key {extra[0]!r}", path=display, line=lines.get(("crds", i, extra[0])), hint=hint
            )
        url, sha, name = item.get("url"), item.get("sha256"), item.get("name")
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
        label = name or urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1] or url
        entries.append(LockEntry(label, url, sha.lower(), line))
    return entries


class _ConnectionFailed(UserError):
    """The network itself is unusable: no point trying the other URLs."""


def _download(entry: LockEntry, opener: Callable[..., Any], lock: str) -> bytes:
    offline = "`betcycle schemas import FILE_OR_DIR...` works offline from local CRD files"
    try:
        with opener(entry.url, timeout=DOWNLOAD_TIMEOUT) as resp:
            data: bytes = resp.read(MAX_DOWNLOAD_BYTES + 1)
    except urllib.error.HTTPError as exc:
        if exc.fp is not None:
            exc.close()  # an HTTPError is also an open response
        raise UserError(
            f"cannot download {entry.url}: HTTP {exc.code} {exc.reason}",
            path=lock,
            line=entry.line,
            hint=offline,
        ) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, OSError) and reason.strerror:
            reason = reason.strerror  # "Name or service not known", not "[Errno -2] Name or ..."
        raise _ConnectionFailed(
            f"cannot download {entry.url}: {reason}", path=lock, line=entry.line, hint=offline
        ) from None
    except (OSError, http.client.HTTPException, ValueError) as exc:  # timeouts, resets, bad responses
        raise _ConnectionFailed(
            f"cannot download {entry.url}: {exc or type(exc).__name__}",
            path=lock,
            line=entry.line,
            hint=offline,
        ) from None
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise UserError(
            f"cannot download {entry.url}: larger than {MAX_DOWNLOAD_BYTES // (1024 * 1024)} MiB",
            path=lock,
            line=entry.line,
        )
    return data


def fetch(
    lock_path: Path,
    cache: Path,
    *,
    opener: Callable[..., Any] = urllib.request.urlopen,
    log: Log | None = None,
) -> list[CrdSchema]:
    """Download the CRDs pinned in a lock file, check their sha256, convert and cache them.

    The cache is written only once every file downloaded, verified and converted.
    """
    lock = str(lock_path)
    entries = read_lock(lock_path)
    errors: list[UserError] = []
    blobs: list[tuple[LockEntry, bytes]] = []
    for entry in entries:
        try:
            data = _download(entry, opener, lock)
        except _ConnectionFailed as exc:
            errors.append(exc)
            break
        except UserError as exc:
            errors.append(exc)
            continue
        got = hashlib.sha256(data).hexdigest()
        if got != entry.sha256:
            errors.append(
                UserError(
                    f"{entry.name}: sha256 mismatch for {entry.url}: expected {entry.sha256}, got {got}",
                    path=lock,
                    line=entry.line,
                    hint="if upstream changed on purpose, update the pin (see the header of the lock file)",
                )
            )
            continue
        blobs.append((entry, data))

    found: dict[GVK, CrdSchema] = {}
    if not errors:
        for entry, data in blobs:
            try:
                text = data.decode("utf-8")
                schemas, crds = schemas_from_text(
                    text, entry.url, is_json=entry.url.endswith(".json"), log=log
                )
                if not crds:
                    raise _no_crds(entry.url)
            except UnicodeDecodeError:
                errors.append(UserError("downloaded file is not UTF-8 text", path=entry.url))
                continue
            except UserError as exc:
                errors.append(exc)
                continue
            found.update((s.gvk, s) for s in schemas)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise UserErrors(errors)
    schemas = list(found.values())
    write_schemas(schemas, cache)
    return schemas
