"""Paths the render writes or deletes: built only from validated parts, proven to stay inside the folder
they belong to, never through a symbolic link (issue 8: a template's `kind: "../../x"` or a symlinked
`manifests/` folder must not reach outside the repository).

Names follow Kubernetes' own rules (k8s.io/apimachinery/pkg/util/validation): object names are DNS-1123
subdomains, namespaces (and our app and environment names) DNS-1123 labels, and a kind lowercased is a
DNS-1035 label (what the API server requires of a CRD's `names.kind`).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from betcycle.errors import UserError

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL = re.compile(_LABEL)
DNS1123_SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*")
KIND = re.compile(r"[A-Za-z]([-A-Za-z0-9]*[A-Za-z0-9])?")
#: the usual file-name limit (ext4, APFS, NTFS: 255 bytes or characters per path component)
NAME_MAX = 255


class UnsafeName(ValueError):
    """A name that can't be part of an output path; `hint` says what is allowed."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def check_label(what: str, value: Any) -> str:
    """`value` as a DNS-1123 label (at most 63 of a-z, 0-9 and '-', alphanumeric at both ends)."""
    if isinstance(value, str) and len(value) <= 63 and DNS1123_LABEL.fullmatch(value):
        return value
    raise UnsafeName(
        f"{what} {value!r} is not a valid name",
        "a DNS-1123 label: at most 63 lowercase letters, digits and '-', starting and ending with a letter "
        "or digit",
    )


def object_file_name(kind: Any, name: Any, namespace: Any = None) -> str:
    """`<kind lowercased>-<name>.yaml` for a rendered object, after checking kind, name and namespace."""
    if not (isinstance(kind, str) and len(kind) <= 63 and KIND.fullmatch(kind)):
        raise UnsafeName(
            f"rendered object has kind {kind!r}, which is not a Kubernetes kind",
            "a kind is letters and digits (e.g. Deployment, ServiceMonitor), at most 63 characters",
        )
    if not (isinstance(name, str) and len(name) <= 253 and DNS1123_SUBDOMAIN.fullmatch(name)):
        raise UnsafeName(
            f"rendered {kind} has metadata.name {name!r}, which is not a valid Kubernetes name",
            "a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', at most 253 characters, "
            "starting and ending with a letter or digit (no '/')",
        )
    if namespace is not None:
        try:
            check_label(f"rendered {kind} {name!r} has metadata.namespace", namespace)
        except UnsafeName as exc:
            exc.message = exc.message.replace(" is not a valid name", ", which is not a valid namespace")
            raise
    file_name = f"{kind.lower()}-{name}.yaml"
    if len(file_name.encode()) > NAME_MAX:
        raise UnsafeName(
            f"rendered {kind} {name[:40]}… gives a file name of {len(file_name)} characters",
            f"file names are limited to {NAME_MAX} characters: shorten metadata.name",
        )
    return file_name


def _is_link(p: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(p).st_mode)
    except FileNotFoundError:
        return False


def check_no_links(root: Path, rel: str) -> None:
    """No component of `rel` below `root` is a symbolic link (the render never writes through one)."""
    p = root
    for part in rel.split("/"):
        p = p / part
        if _is_link(p):
            raise symlink_error(root, p)


def symlink_error(root: Path, link: Path) -> UserError:
    rel = link.relative_to(root).as_posix()
    try:
        target = os.readlink(link)
    except OSError:  # pragma: no cover - it was a link a moment ago
        target = "?"
    return UserError(
        f"is a symbolic link (to {target}); betcycle writes and deletes only real files and folders here, "
        "never through a link",
        path=rel,
        hint="replace the link with a real folder or file (or remove it) and render again",
    )


def output_path(root: Path, rel: str, inside: str) -> Path:
    """`root/rel`, proven to lie inside `root/inside` with no symbolic link on the way: the only way a
    path the render writes or deletes is made."""
    parts = rel.split("/")
    if (
        not rel.startswith(inside + "/")
        or any(part in ("", ".", "..") or "\\" in part or "\0" in part for part in parts)
        or os.path.isabs(rel)
    ):
        raise UserError(f"refusing to write outside {inside}/", path=rel)  # pragma: no cover - a bug guard
    check_no_links(root, rel)
    path = root / rel
    base = (root / inside).resolve()
    if not path.resolve().is_relative_to(base):  # pragma: no cover - the checks above make this impossible
        raise UserError(f"resolves outside {inside}/", path=rel)
    return path


@dataclass
class Scan:
    """The files under an owned folder: generated (our header on line 1) and hand-written."""

    generated: list[str]
    other: list[str]


def scan_owned(root: Path, rel_dir: str, header: str) -> Scan:
    """Walk `rel_dir` without following links; a link or a special file anywhere in it is an error."""
    check_no_links(root, rel_dir)
    base = root / rel_dir
    out = Scan([], [])
    if not base.is_dir():
        return out
    stack = [base]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                p = Path(entry.path)
                if entry.is_symlink():
                    raise symlink_error(root, p)
                if entry.name.startswith("."):
                    continue  # editors' and our own temporary files, .gitkeep
                if entry.is_dir(follow_symlinks=False):
                    stack.append(p)
                    continue
                rel = p.relative_to(root).as_posix()
                if not entry.is_file(follow_symlinks=False):
                    raise UserError(
                        "is not a regular file (a FIFO, socket or device); betcycle render refuses it",
                        path=rel,
                        hint="remove it from the manifests folder",
                    )
                try:
                    with open(p, encoding="utf-8") as fh:
                        first = fh.readline()
                except (OSError, UnicodeDecodeError):
                    first = ""
                (out.generated if first.startswith(header) else out.other).append(rel)
    out.generated.sort()
    out.other.sort()
    return out


def check_links_inside(root: Path, rel_dir: str) -> list[UserError]:
    """Symbolic links under `rel_dir` (itself included) whose target resolves outside the repository."""
    errors: list[UserError] = []
    root = root.resolve()
    start = root / rel_dir

    def check(p: Path) -> None:
        if _is_link(p) and not p.resolve().is_relative_to(root):
            errors.append(
                UserError(
                    f"is a symbolic link to {os.readlink(p)}, outside the repository; render reads only "
                    "files inside it",
                    path=p.relative_to(root).as_posix(),
                    hint="copy the file into the repository instead of linking to it",
                )
            )

    # every folder from the root down to rel_dir, then everything below it (links are not descended)
    p = root
    for part in rel_dir.split("/"):
        p = p / part
        check(p)
    if errors or not start.is_dir():
        return errors
    for folder, dirs, files in os.walk(start):
        for name in [*dirs, *files]:
            check(Path(folder) / name)
    return errors
