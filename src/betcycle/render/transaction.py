"""All-or-nothing file changes, and the lock that keeps two writers of one repository apart.

A `Transaction` remembers every file it writes or deletes (the original bytes and mode, in memory) and every
folder it creates or removes, so that any failure or Ctrl-C part-way puts all of them back
(issue 8: a render that fails half-way, or a release edit whose commit fails, leaves the tree as it was).
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from betcycle.errors import UserError, UserErrors
from betcycle.model.yamlio import atomic_write

if sys.platform != "win32":
    import fcntl

#: how long a second writer waits for the lock by default (seconds); BETCYCLE_LOCK_TIMEOUT overrides it
LOCK_TIMEOUT = 30.0


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, raised once the files are consistent again; str() says what was (not) changed."""


@dataclass(frozen=True)
class Snapshot:
    """A file as it was before a transaction touched it (`data` None: it did not exist)."""

    data: bytes | None
    mode: int | None

    @classmethod
    def of(cls, path: Path) -> Snapshot:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return cls(None, None)
        if not stat.S_ISREG(st.st_mode):
            what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
            raise OSError(errno.EINVAL, what, str(path))
        return cls(path.read_bytes(), stat.S_IMODE(st.st_mode))


_ABSENT = Snapshot(None, None)


@dataclass
class _Step:
    #: "file" (written or deleted; restore the snapshot) | "mkdir" | "rmdir" | "newdir" (a folder that did
    #: not exist, handed to a worker process to create and fill: removed with every file in it)
    op: str
    path: Path
    display: str
    before: Snapshot | None = None
    #: the change happened (a step is recorded before it is made, so an interrupt can't slip between)
    done: bool = False


@dataclass
class Transaction:
    """File changes under `root` that can all be undone; paths are shown relative to `root`."""

    root: Path
    _steps: list[_Step] = field(default_factory=list)

    def _display(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    @property
    def changed(self) -> list[str]:
        """The files changed so far, in order."""
        return list(dict.fromkeys(s.display for s in self._steps if s.op == "file" and s.done))

    def write(self, path: Path, data: str | bytes, before: Snapshot | None = None) -> None:
        """Replace (or create) `path` atomically, keeping its mode; `before` is its prepared snapshot."""
        display = self._display(path)
        try:
            snap = before if before is not None else Snapshot.of(path)
            self._mkdirs(path.parent)
            step = _Step("file", path, display, snap)
            self._steps.append(step)
            atomic_write(path, data, mode=snap.mode)
            step.done = True
        except OSError as exc:
            raise _os_error("cannot write", display, exc) from None

    def create(self, path: Path, data: str | bytes, display: str) -> None:
        """Write a file that does not exist into a folder that does (`mkdirs` made it in this transaction,
        so nothing else can be there): nothing to snapshot or look up. `display`: its path for messages."""
        step = _Step("file", path, display, _ABSENT)
        self._steps.append(step)
        try:
            atomic_write(path, data, new=True)
        except OSError as exc:
            raise _os_error("cannot write", display, exc) from None
        step.done = True

    def hand_out(self, folder: Path) -> None:
        """`folder` does not exist, and another process may create it and write files into it as part of
        this transaction (a render worker): a rollback removes it with every file in it, whether or not
        the files were reported back (`created`)."""
        self._steps.append(_Step("newdir", folder, self._display(folder), done=True))

    def created(self, path: Path, display: str) -> None:
        """Another process created `path` (new) for this transaction: a rollback removes it."""
        self._steps.append(_Step("file", path, display, _ABSENT, done=True))

    def mkdirs(self, folder: Path) -> None:
        """Create `folder` and its missing parents (removed again by a rollback)."""
        try:
            self._mkdirs(folder)
        except OSError as exc:
            raise _os_error("cannot create the folder", self._display(folder), exc) from None

    def delete(self, path: Path, before: Snapshot | None = None) -> None:
        display = self._display(path)
        try:
            snap = before if before is not None else Snapshot.of(path)
            step = _Step("file", path, display, snap)
            self._steps.append(step)
            path.unlink()
            step.done = True
        except OSError as exc:
            raise _os_error("cannot delete", display, exc) from None

    def rmdir(self, path: Path) -> None:
        display = self._display(path)
        self._steps.append(_Step("rmdir", path, display))
        try:
            path.rmdir()
        except OSError as exc:
            raise _os_error("cannot remove the empty folder", display, exc) from None

    def _mkdirs(self, folder: Path) -> None:
        missing: list[Path] = []
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for p in reversed(missing):
            self._steps.append(_Step("mkdir", p, self._display(p)))
            p.mkdir()

    def keep(self) -> None:
        """The changes are final (e.g. committed): a later rollback leaves them alone."""
        self._steps.clear()

    def rollback(self) -> list[str]:
        """Undo every step, newest first; returns the ones that could not be undone ("path: reason")."""
        failed: list[str] = []
        with _sigint_deferred():
            for step in reversed(self._steps):
                try:
                    if step.op == "file" and step.before is not None:
                        if step.before.data is None:
                            step.path.unlink(missing_ok=True)
                        else:
                            atomic_write(step.path, step.before.data, mode=step.before.mode)
                    elif step.op == "mkdir":
                        if step.path.is_dir() and not any(step.path.iterdir()):
                            step.path.rmdir()
                    elif step.op == "rmdir":
                        step.path.mkdir(exist_ok=True)
                    elif step.op == "newdir":
                        _remove_new_folder(step.path)
                except OSError as exc:
                    failed.append(f"{step.display} ({exc.strerror or exc})")
        return failed

    def outcome(self, failed: list[str]) -> str:
        """What a rollback left: one sentence for the error message."""
        changed = self.changed
        if not changed:
            return "nothing was changed"
        if not failed:
            n = len(changed)
            return f"nothing was changed (the {n} file{'s' if n != 1 else ''} already written were put back)"
        restored = [c for c in changed if not any(f.startswith(c + " (") for f in failed)]
        return (
            f"could not put back {', '.join(failed)}; "
            + (f"put back {', '.join(restored)}; " if restored else "")
            + "check these files with `git status` before running again"
        )


def _remove_new_folder(folder: Path) -> None:
    """A folder this transaction created (`hand_out`), with the files in it; never through a link."""
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return  # never created (the worker had not got to it)
    if not stat.S_ISDIR(st.st_mode):
        return
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False) or entry.is_symlink():
                os.unlink(entry.path)
    os.rmdir(folder)


def _os_error(verb: str, display: str, exc: OSError) -> UserError:
    return UserError(f"{verb}: {exc.strerror or exc}", path=display)


@contextmanager
def all_or_nothing(root: Path) -> Iterator[Transaction]:
    """A transaction that is rolled back on any failure; the error then says what was (not) changed."""
    txn = Transaction(root)
    try:
        yield txn
    except KeyboardInterrupt:
        failed = txn.rollback()
        raise Interrupted(txn.outcome(failed)) from None
    except UserErrors as exc:
        failed = txn.rollback()
        if failed:
            raise UserError(f"{len(exc.errors)} input error(s); {txn.outcome(failed)}") from exc
        raise
    except UserError as exc:
        failed = txn.rollback()
        if txn.changed:
            exc.message += f"; {txn.outcome(failed)}"
        raise
    except OSError as exc:
        failed = txn.rollback()
        where = exc.filename if exc.filename is not None else None
        raise UserError(f"{exc.strerror or exc}; {txn.outcome(failed)}", path=where) from None
    except BaseException:
        txn.rollback()
        raise


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Ctrl-C can't stop a rollback half-way: a SIGINT during it is ignored (the caller is already
    reporting an interrupt or a failure)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ignore(signum: int, frame: FrameType | None) -> None:
        pass

    previous = signal.signal(signal.SIGINT, ignore)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# ---- the lock ---------------------------------------------------------------------------------------------

_held = threading.local()


def lock_path(root: Path) -> Path:
    """`.git/betcycle.lock` in a git repository (never committed), else `.betcycle.lock` (git-ignored)."""
    git_dir = root / ".git"
    if git_dir.is_dir() and not git_dir.is_symlink():
        return git_dir / "betcycle.lock"
    return root / ".betcycle.lock"


def _timeout() -> float:
    raw = os.environ.get("BETCYCLE_LOCK_TIMEOUT")
    if raw is None:
        return LOCK_TIMEOUT
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise UserError(
            f"BETCYCLE_LOCK_TIMEOUT={raw!r} is not a number of seconds", hint="e.g. BETCYCLE_LOCK_TIMEOUT=60"
        ) from None


@contextmanager
def lock(root: Path, what: str, *, shared: bool = False) -> Iterator[None]:
    """Hold the repository's render lock: exclusive for writers, `shared` for readers (render --check).

    Re-entrant within a thread. A second writer waits up to BETCYCLE_LOCK_TIMEOUT seconds, then fails with one
    line naming the holder.
    """
    root = root.resolve()
    path = lock_path(root)
    held: dict[Path, int] = getattr(_held, "paths", None) or {}
    _held.paths = held
    if held.get(path):
        held[path] += 1
        try:
            yield
        finally:
            held[path] -= 1
        return
    rel = path.relative_to(root).as_posix()
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(
                "the lock file is a symbolic link; betcycle refuses to follow it",
                path=rel,
                hint="remove it; betcycle creates it as a plain file",
            ) from None
        if not shared and exc.errno != errno.ENOENT:
            raise UserError(f"cannot create the lock file: {exc.strerror}", path=rel) from None
        # a read-only checkout (nobody writes it through betcycle, so a reader needs no lock), or no such
        # folder (loading the repository says so next)
        fd = -1
    if fd < 0:
        yield
        return
    try:
        _acquire(fd, path, rel, shared)
        if not shared:
            started = time.strftime("%H:%M:%S", time.localtime())
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"pid {os.getpid()}, {what}, since {started}\n".encode())
        held[path] = 1
        try:
            yield
        finally:
            held.pop(path, None)
            if not shared:
                os.ftruncate(fd, 0)  # a later waiter must not name this finished run as the holder
            _release(fd)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, rel: str, shared: bool) -> None:
    timeout = _timeout()
    deadline = time.monotonic() + timeout
    told = False
    while True:
        if _try_lock(fd, shared):
            return
        holder = _holder(path)
        if time.monotonic() >= deadline:
            raise UserError(
                f"another betcycle run is writing this repository ({holder}); gave up after {timeout:g} s "
                f"for {rel}"
            )
        if not told:
            sys.stderr.write(f"waiting for another betcycle run to finish ({holder})…\n")
            told = True
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        text = ""
    return text.splitlines()[0] if text else "a betcycle render --check, or one that just started"


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int, shared: bool) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _release(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:

    def _try_lock(fd: int, shared: bool) -> bool:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _release(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
