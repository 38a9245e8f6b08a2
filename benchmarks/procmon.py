"""Wall time and peak memory of a whole process tree, for the benchmarks (Linux /proc only).

Peak RSS is sampled: every ~20 ms the tree under a pid is walked (`/proc/<pid>/task/*/children`) and the
resident set sizes (`/proc/<pid>/statm`) are summed; the highest sum is the peak. Pages shared between a
parent and its forked workers count once per process, as in `ps`/`top` (the sum is an upper bound). A process
that lives less than one interval may be missed. `ru_maxrss` from `os.wait4` is exact, but it is the largest
single process (the main one or any one child it waited for), never a sum. CPU seconds (user + system, from
the same rusage) include the waited-for workers; on a busy machine they move less than wall time.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

INTERVAL = 0.02
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
MIB = 1024 * 1024
_HAS_CHILDREN = Path(f"/proc/{os.getpid()}/task/{threading.get_native_id()}/children").exists()


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read()
    except OSError:  # the process ended between listing and reading
        return ""


def _children(pid: int) -> list[int]:
    if not _HAS_CHILDREN:  # kernels without CONFIG_PROC_CHILDREN: scan every process's parent
        return [p for p in _all_pids() if _parent(p) == pid]
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    return [int(c) for t in tasks for c in _read(f"/proc/{pid}/task/{t}/children").split()]


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _parent(pid: int) -> int:
    stat = _read(f"/proc/{pid}/stat")
    fields = stat.rpartition(")")[2].split()  # the command name may hold spaces and parentheses
    return int(fields[1]) if len(fields) > 1 else -1


def rss(pid: int) -> int:
    """Resident bytes of one process (0 once it has gone)."""
    fields = _read(f"/proc/{pid}/statm").split()
    return int(fields[1]) * PAGE if len(fields) > 1 else 0


def tree_rss(root: int, *, include_root: bool = True) -> tuple[int, int]:
    """(summed RSS bytes, number of processes) of `root` and all its descendants."""
    total, count, seen, stack = 0, 0, set(), [root]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        if pid != root or include_root:
            size = rss(pid)
            total += size
            count += size > 0
        stack.extend(_children(pid))
    return total, count


class PeakSampler:
    """Samples tree_rss(root) in a thread until stopped; `peak` is the highest sum seen, in bytes."""

    def __init__(self, root: int, *, include_root: bool = True, interval: float = INTERVAL) -> None:
        self.root, self.include_root, self.interval = root, include_root, interval
        self.peak = 0
        self.peak_processes = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            size, count = tree_rss(self.root, include_root=self.include_root)
            self.samples += 1
            if size > self.peak:
                self.peak, self.peak_processes = size, count
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Measured:
    """One whole process: wall seconds, peak tree RSS (sampled) and the main process's ru_maxrss, in bytes."""

    seconds: float
    peak_rss: int
    maxrss: int
    returncode: int
    stdout: str
    stderr: str
    processes: int = 1
    cpu: float = 0.0  # user + system seconds of the process and the children it waited for (its workers)


def run(
    cmd: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    sample: bool = True,
) -> Measured:
    """Run `cmd` to completion, timing it from spawn to reaping, sampling its tree's memory meanwhile."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        # output goes to files, not pipes: nothing to drain while we wait, and a full pipe can't stall the child
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=out, stderr=err)
        sampler = PeakSampler(proc.pid) if sample else None
        with sampler or contextlib.nullcontext():
            _, status, usage = os.wait4(proc.pid, 0)  # wait4, not proc.wait(): it hands back the rusage
            seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
        maxrss = usage.ru_maxrss * 1024  # KiB on Linux
        out.seek(0)
        err.seek(0)
        return Measured(
            seconds=seconds,
            peak_rss=max(sampler.peak if sampler else 0, maxrss),
            maxrss=maxrss,
            returncode=proc.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            processes=max(sampler.peak_processes if sampler else 1, 1),
            cpu=usage.ru_utime + usage.ru_stime,
        )
