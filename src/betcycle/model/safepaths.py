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
from collections.abc import Callable, Collection, Iterable
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
    path the render writes or deletes is made. For many paths use one `OutputPaths` (each folder checked
    once)."""
    return OutputPaths(root)(rel, inside)


def output_paths(
    root: Path, rels: Iterable[str], inside_of: Callable[[str], str]
) -> tuple[dict[str, Path], list[UserError]]:
    """`output_path` for each of `rels` (inside `inside_of(rel)`), each distinct folder checked once: the
    paths that passed, and the refusals of the others."""
    check = OutputPaths(root)
    paths: dict[str, Path] = {}
    errors: list[UserError] = []
    for rel in rels:
        try:
            paths[rel] = check(rel, inside_of(rel))
        except UserError as exc:
            errors.append(exc)
    return paths, errors


#: what `OutputPaths` knows of a folder: a real folder, or not there (so nothing below it is either)
_DIR, _MISSING = "dir", "missing"


class OutputPaths:
    """`output_path` for many paths under one root, with each folder on the way checked once (one `lstat`
    and, for a folder holding files, one `realpath`), then one `lstat` per file. The verdicts are kept for
    the life of the object: make one per pass over the files (a compare, a prepare), not one per run, so a
    folder replaced by a link since is seen by the next pass."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = os.fspath(root)
        self._real_root = os.path.realpath(self._root)
        self._folders: dict[str, str] = {}  # rel folder -> _DIR or _MISSING, every folder on the way
        self._inside: dict[str, str] = {}  # rel folder -> `inside` it was proven to resolve within
        self._bases: dict[str, str] = {}  # inside -> its real path

    def __call__(self, rel: str, inside: str) -> Path:
        """`root/rel`, inside `root/inside`, no component a symbolic link (else a UserError)."""
        path, folder_exists = self.resolve(rel, inside)
        if folder_exists:  # else the file can't be there either
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                pass
            else:
                if stat.S_ISLNK(st.st_mode):
                    raise symlink_error(self.root, Path(path))
        return Path(path)

    def resolve(self, rel: str, inside: str) -> tuple[str, bool]:
        """`root/rel` as text, inside `root/inside`, no folder on the way a symbolic link (else a UserError),
        and whether its folder exists. The file itself is not looked at: a caller that opens it refuses a
        link there with O_NOFOLLOW (as render reads an output file)."""
        folder, _, name = rel.rpartition("/")
        if self._inside.get(folder) != inside:
            # the shape of rel once per folder: every path through here shares the folder's (checked) parts
            parts = rel.split("/")
            if (
                not rel.startswith(inside + "/")
                or any(part in ("", ".", "..") or "\\" in part or "\0" in part for part in parts)
                or os.path.isabs(rel)
            ):
                raise UserError(f"refusing to write outside {inside}/", path=rel)
            self._check_folder(folder, inside)
        elif name in ("", ".", "..") or "\\" in name or "\0" in name:
            raise UserError(f"refusing to write outside {inside}/", path=rel)
        return f"{self._root}/{rel}", self._folders[folder] is _DIR

    def _check_folder(self, folder: str, inside: str) -> None:
        """Every folder from the root down to `folder` is a real folder (or missing, with all below it)."""
        at = 0
        state = _DIR
        while state is _DIR:
            at = folder.find("/", at + 1)
            prefix = folder if at < 0 else folder[:at]
            known = self._folders.get(prefix)
            if known is None:
                known = self._folders[prefix] = self._lstat_folder(prefix)
            state = known
            if at < 0:
                break
        if state is _MISSING:  # mark the rest missing too (nothing can be below a missing folder)
            while at >= 0:
                at = folder.find("/", at + 1)
                self._folders[folder if at < 0 else folder[:at]] = _MISSING
        # the bug guard, once per folder: with no link and no `..` on the way this can't fail
        base = self._bases.get(inside) or self._bases.setdefault(
            inside, os.path.realpath(f"{self._root}/{inside}")
        )
        real = os.path.realpath(f"{self._root}/{folder}")
        if not (real == base or real.startswith(base + "/")):  # impossible, see above (tests fake it)
            raise UserError(f"resolves outside {inside}/", path=folder)
        self._inside[folder] = inside

    def _lstat_folder(self, rel: str) -> str:
        path = f"{self._root}/{rel}"
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return _MISSING
        if stat.S_ISLNK(st.st_mode):
            raise symlink_error(self.root, Path(path))
        if not stat.S_ISDIR(st.st_mode):
            raise UserError("is a file where the render needs a folder", path=rel, hint="move it away")
        return _DIR


@dataclass
class Scan:
    """The files under an owned folder: generated (our header on line 1) and hand-written."""

    generated: list[str]
    other: list[str]


def scan_owned(root: Path, rel_dir: str, header: str, *, known: Collection[str] = ()) -> Scan:
    """Walk `rel_dir` without following links; a link or a special file anywhere in it is an error.

    Files in `known` are the caller's, already read and found to start with `header`: not opened again.
    """
    check_no_links(root, rel_dir)
    out = Scan([], [])
    if not (root / rel_dir).is_dir():
        return out
    top = os.fspath(root)
    start = Path(rel_dir).as_posix()  # relative folders as strings from here on: no pathlib per entry
    stack = ["" if start == "." else f"{start}/"]
    while stack:
        folder = stack.pop()
        with os.scandir(f"{top}/{folder}") as entries:
            for entry in entries:
                rel = f"{folder}{entry.name}"
                if entry.is_symlink():
                    raise symlink_error(root, Path(entry.path))
                if entry.name.startswith("."):
                    continue  # editors' and our own temporary files, .gitkeep
                if entry.is_dir(follow_symlinks=False):
                    stack.append(f"{rel}/")
                    continue
                if not entry.is_file(follow_symlinks=False):
                    raise UserError(
                        "is not a regular file (a FIFO, socket or device); betcycle render refuses it",
                        path=rel,
                        hint="remove it from the manifests folder",
                    )
                if rel in known:
                    out.generated.append(rel)
                    continue
                try:
                    with open(entry.path, encoding="utf-8") as fh:
                        first = fh.readline()
                except (OSError, UnicodeDecodeError):
                    first = ""
                (out.generated if first.startswith(header) else out.other).append(rel)
    out.generated.sort()
    out.other.sort()
    return out


def check_links_inside(root: Path, rel_dir: str) -> list[UserError]:
    """Symbolic links under `rel_dir` (itself included) whose target resolves outside the repository."""
    return check_all_links_inside(root, [rel_dir])


def check_all_links_inside(root: Path, rel_dirs: list[str]) -> list[UserError]:
    """`check_links_inside` for each of `rel_dirs` in turn, each folder on the way looked at once (a render
    checks a thousand inputs that share their first folders)."""
    errors: list[UserError] = []
    root = root.resolve()
    # folder on the way -> it is fine (a bad one was reported with the first input below it)
    seen: dict[str, bool] = {}
    for rel_dir in rel_dirs:
        errors += _links_inside(root, rel_dir, seen)
    return errors


def _links_inside(root: Path, rel_dir: str, seen: dict[str, bool]) -> list[UserError]:
    errors: list[UserError] = []
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
    at = ""
    for part in rel_dir.split("/"):
        p = p / part
        at = f"{at}/{part}"
        if at in seen and at != f"/{rel_dir}":
            if not seen[at]:
                return []  # below a link already reported: nothing more to say (as before, once)
            continue
        before = len(errors)
        check(p)
        seen[at] = len(errors) == before
    if errors or not start.is_dir():
        return errors
    for folder, dirs, files in os.walk(start):
        for name in [*dirs, *files]:
            check(Path(folder) / name)
    return errors
