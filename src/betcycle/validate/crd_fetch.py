"""`betcycle schemas fetch`: download the CRDs pinned in crds.lock.yaml, verify them, and vendor their schemas.

Downloading lives here; the lock file and the vendored folder are crd_vendor.py's, converting is crd.py's.
"""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from betcycle.errors import UserError, raise_collected
from betcycle.validate.crd import Log
from betcycle.validate.crd_vendor import (
    LockEntry,
    Pinned,
    VendorResult,
    convert_pinned,
    read_lock,
    write_vendored,
)

DOWNLOAD_TIMEOUT = 30.0
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024  # the largest upstream CRD we pin (ApplicationSet) is 1.4 MB


class _ConnectionFailed(UserError):
    """The network itself is unusable: no point trying the other URLs."""


def _download(entry: LockEntry, opener: Callable[..., Any], lock: str) -> bytes:
    offline = (
        "offline, `betcycle schemas import --vendor DIR` vendors local copies of the pinned files; "
        "validate keeps using the schemas already in schemas/crds"
    )
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
    base: Path,
    *,
    opener: Callable[..., Any] = urllib.request.urlopen,
    log: Log | None = None,
) -> VendorResult:
    """Download every CRD pinned in a lock file, check its sha256, convert it, and rewrite the vendored folder
    `base`/crds with exactly those schemas (schemas of entries no longer pinned are removed).

    The folder is written only once every file downloaded, verified and converted, and all at once.
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

    pinned: list[Pinned] = []
    if not errors:
        for entry, data in blobs:
            try:
                pinned.append(convert_pinned(entry, data, entry.url, log))
            except UserError as exc:
                errors.append(exc)
    raise_collected(errors)
    return write_vendored(base, pinned, entries, lock)
