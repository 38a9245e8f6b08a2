"""The git operations BetCycle needs, as one small wrapper over the `git` command.

Base revisions are read with `git ls-tree` + `git cat-file --batch` (never a checkout), so diffing never
touches the working tree; trees for `--head REV` are exported with `git archive` into a temporary folder.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from betcycle.errors import UserError


def git(root: Path, *args: str, input: bytes | None = None, check: bool = True) -> str:
    """Run git in `root`; a failure is a UserError quoting git's own message."""
    proc = _run(root, *args, input=input)
    if check and proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UserError(
            f"git {args[0]} failed: {message[-1] if message else f'exit {proc.returncode}'}",
            hint="is this a git repository with the revision you named? (git fetch origin main for CI)",
        )
    return proc.stdout.decode("utf-8", "replace")


def _run(root: Path, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=root,
            input=input,
            capture_output=True,
            check=False,
            # pathspecs are file names, never patterns or magic (":(top)…"), whatever a name looks like
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_LITERAL_PATHSPECS": "1"},
        )
    except FileNotFoundError:
        raise UserError(
            "git is not installed", hint="install git; diff, promote and rollback need it"
        ) from None


def is_repo(root: Path) -> bool:
    return _run(root, "rev-parse", "--git-dir").returncode == 0


def resolve(root: Path, rev: str) -> str | None:
    proc = _run(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def default_base(root: Path) -> str:
    """The merge base with origin/main, else with main; a repository without either is an error."""
    if not is_repo(root):
        raise UserError("not a git repository", path=str(root), hint="betcycle diff compares git revisions")
    for candidate in ("origin/main", "main"):
        if resolve(root, candidate):
            head = resolve(root, "HEAD")
            if head is None:
                return candidate
            proc = _run(root, "merge-base", "HEAD", candidate)
            if proc.returncode == 0:
                return proc.stdout.decode().strip()
    raise UserError(
        "no origin/main or main to compare with",
        hint="pass --base REV (in CI: fetch the base branch, e.g. actions/checkout with fetch-depth: 0)",
    )


def list_files(root: Path, rev: str, prefix: str) -> list[str]:
    """Files under `prefix` at `rev` (repository-relative paths)."""
    out = git(root, "ls-tree", "-r", "--name-only", "-z", rev, "--", prefix)
    return sorted(p for p in out.split("\0") if p)


def read_files(root: Path, rev: str, paths: list[str]) -> dict[str, str]:
    """The contents of `paths` at `rev`, in one `git cat-file --batch` call."""
    blobs = read_blobs(root, [f"{rev}:{p}" for p in paths])
    return {p: blobs[f"{rev}:{p}"] for p in paths if f"{rev}:{p}" in blobs}


def read_blobs(root: Path, specs: list[str]) -> dict[str, str]:
    """`REV:PATH` -> text for every spec that exists, in one `git cat-file --batch` call."""
    if not specs:
        return {}
    for spec in specs:
        # cat-file reads one object name per line: a committed file name holding a line break would make it
        # answer for other objects (any file at any revision) in that file's place
        if "\n" in spec or "\0" in spec:
            raise UserError(
                "a file name contains a line break; betcycle refuses to read it from git",
                path=repr(spec.split(":", 1)[-1]),
                hint="rename the file (git mv) so its name is one line",
            )
    proc = _run(root, "cat-file", "--batch", input="".join(f"{s}\n" for s in specs).encode())
    if proc.returncode != 0:
        raise UserError(f"git cat-file failed: {proc.stderr.decode().strip()}")
    data, out, pos = proc.stdout, {}, 0
    for spec in specs:
        end = data.index(b"\n", pos)
        header = data[pos:end].decode()
        pos = end + 1
        if header.endswith(" missing") or header.endswith(" ambiguous"):
            continue
        size = int(header.rsplit(" ", 1)[1])
        out[spec] = data[pos : pos + size].decode("utf-8", "replace")
        pos += size + 1
    return out


def export_tree(root: Path, rev: str, dest: Path, paths: list[str]) -> None:
    """Write the files under `paths` at `rev` into `dest` (git archive; no checkout, no worktree)."""
    # one non-recursive ls-tree says which of the paths exist at rev (git archive fails on a missing one)
    listed = git(root, "ls-tree", "--name-only", "-z", rev, "--", *paths)
    present = sorted(p for p in listed.split("\0") if p)
    if not present:
        return
    proc = _run(root, "archive", "--format=tar", rev, "--", *present)
    if proc.returncode != 0:
        raise UserError(f"git archive failed: {proc.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        members = [_safe_member(m, rev) for m in tar.getmembers()]
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:  # Python < 3.11.4 (Debian 12's 3.11.2) has no extraction filters; _safe_member is stricter
            tar.extractall(dest, members=members)


def _safe_member(member: tarfile.TarInfo, rev: str) -> tarfile.TarInfo:
    """Plain files and folders with relative paths inside dest: no links or devices, whatever Python runs this."""
    parts = Path(member.name).parts
    if member.name.startswith("/") or ".." in parts or not (member.isfile() or member.isdir()):
        raise UserError(
            f"refusing {member.name!r} from git archive of {rev}: only plain files inside the tree are read",
            hint="a symlink or special file is committed under environments/; replace it with a plain file",
        )
    member.mode = (member.mode | 0o600) & 0o755 if member.isfile() else 0o755
    return member


def changed_paths(root: Path, base: str, head: str | None) -> list[str]:
    """Paths that differ between `base` and `head` (or the working tree, untracked files included)."""
    if head:
        out = git(root, "diff", "--name-only", "-z", "--no-renames", base, head)
        return sorted(p for p in out.split("\0") if p)
    out = git(root, "diff", "--name-only", "-z", "--no-renames", base)
    untracked = git(root, "ls-files", "--others", "--exclude-standard", "-z")
    return sorted({p for p in (out + untracked).split("\0") if p})


@dataclass(frozen=True)
class FileVersion:
    commit: str
    date: str
    text: str


def history(root: Path, path: str, limit: int = 200) -> list[FileVersion]:
    """Versions of `path` in the commits that changed it, newest first."""
    log = git(root, "log", f"-{limit}", "--format=%H %cs", "--", path)
    entries = [line.split(" ", 1) for line in log.splitlines() if line.strip()]
    blobs = read_blobs(root, [f"{sha}:{path}" for sha, _ in entries])
    return [
        FileVersion(sha, date, blobs[f"{sha}:{path}"]) for sha, date in entries if f"{sha}:{path}" in blobs
    ]


def valid_branch_name(root: Path, name: str) -> bool:
    """git's own rule for branch names (`git check-ref-format --branch`)."""
    return not name.startswith("-") and _run(root, "check-ref-format", "--branch", name).returncode == 0


def is_clean(root: Path, paths: list[str]) -> bool:
    return not git(root, "status", "--porcelain", "--", *paths).strip()


def commit_paths(root: Path, branch: str | None, paths: list[str], message: str) -> str:
    """Create (or reuse the current) branch and commit exactly `paths`; returns the new commit."""
    if branch:
        current = git(root, "rev-parse", "--abbrev-ref", "HEAD").strip()
        if current != branch:
            if resolve(root, f"refs/heads/{branch}"):
                raise UserError(
                    f"branch {branch!r} already exists", hint="pass another --branch, or delete it"
                )
            git(root, "switch", "-q", "-c", branch)
    git(root, "add", "-A", "--", *paths)
    git(root, "commit", "-q", "-m", message, "--", *paths)
    return git(root, "rev-parse", "HEAD").strip()
