"""Run one function over many items in a pool of worker processes, results in the items' order.

Render and validate work on (environment, app) pairs that don't depend on each other, so `--jobs N` spreads
them over N processes. The output doesn't depend on N: results come back in the order of the items, and
each item's user errors travel back with it, so the caller reports them in the same order as a one-process
run would.

Where the platform can fork (Linux), workers start as copies of the parent and inherit what it already
loaded (the repository model, compiled templates and schemas), so nothing is read twice. Elsewhere they
start fresh and rebuild that state with `rebuild`. Workers ignore Ctrl-C: the parent handles it once,
stops the pool and leaves the files as they were.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from betcycle.errors import UserError, UserErrors

T = TypeVar("T")
R = TypeVar("R")

#: fewer items than this are not worth starting processes for
MIN_ITEMS = 16
#: the most items sent to a worker at once
CHUNK_MAX = 16
#: `--jobs` beyond this many workers per CPU only costs memory (`--jobs 1000` must not fork 1000 processes)
MAX_PER_CPU = 4

_state: Any = None
_fn: Callable[[Any, Any], Any] | None = None


def default_jobs() -> int:
    """The CPUs this process may use (the container's share, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def parse_jobs(value: str | int) -> int:
    """`--jobs N` (N >= 1), or 0/`auto` for one per CPU."""
    if isinstance(value, int):
        value = str(value)
    if value.strip().lower() == "auto":
        return default_jobs()
    try:
        jobs = int(value)
    except ValueError:
        raise UserError(
            f"--jobs {value!r} is not a number", hint="use --jobs N (1 = no pool) or auto"
        ) from None
    if jobs < 0:
        raise UserError(f"--jobs {jobs} is negative", hint="use --jobs N (1 = no pool) or auto")
    return jobs or default_jobs()


def in_worker() -> bool:
    """True inside a pool worker (results travel back pickled, so keep them lean)."""
    return _fn is not None


def _init(state: Any, rebuild: Callable[[], Any] | None, fn: Callable[[Any, Any], Any]) -> None:
    global _state, _fn
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent alone reacts to Ctrl-C
    _state = rebuild() if rebuild is not None else state
    _fn = fn


def _run(items: Sequence[Any]) -> list[Any]:
    if _fn is None:  # pragma: no cover - _init runs first in every worker
        raise RuntimeError("pool worker started without its function")
    return [_call(_fn, _state, item) for item in items]


def _call(fn: Callable[[Any, Any], Any], state: Any, item: Any) -> Any:
    try:
        return fn(state, item)
    except (UserError, UserErrors) as exc:  # the item's own failure: reported in order with the others
        return exc


def map_ordered(
    fn: Callable[[Any, T], R],
    items: Sequence[T],
    *,
    state: Any,
    jobs: int,
    rebuild: Callable[[], Any] | None = None,
    min_items: int = MIN_ITEMS,
) -> list[R | UserError | UserErrors]:
    """`[fn(state, item) for item in items]`, each user error returned in its item's place."""
    with contextlib.closing(
        iter_ordered(fn, items, state=state, jobs=jobs, rebuild=rebuild, min_items=min_items)
    ) as results:
        return list(results)


def iter_ordered(
    fn: Callable[[Any, T], R],
    items: Sequence[T],
    *,
    state: Any,
    jobs: int,
    rebuild: Callable[[], Any] | None = None,
    min_items: int = MIN_ITEMS,
) -> Generator[R | UserError | UserErrors, None, None]:
    """`fn(state, item)` for each item, yielded in the items' order as soon as each is ready (the caller
    can use the first results while workers compute the rest); each user error in its item's place.

    `fn` must be a module-level function (workers find it by name). With `jobs <= 1`, or fewer than
    `min_items` items, everything runs in this process. Any other exception is a bug and propagates.
    Closing the iterator early stops the pool.
    """
    fork = "fork" in multiprocessing.get_all_start_methods()
    if jobs <= 1 or len(items) < max(min_items, 2) or (not fork and rebuild is None):
        for item in items:  # in this process
            yield _call(fn, state, item)
        return
    ctx: multiprocessing.context.BaseContext
    if fork:
        ctx = multiprocessing.get_context("fork")
        initargs: tuple[Any, ...] = (state, None, fn)
    else:  # pragma: no cover - no fork on this platform: workers rebuild the state themselves
        ctx = multiprocessing.get_context("spawn")
        initargs = (None, rebuild, fn)
    workers = min(jobs, len(items), MAX_PER_CPU * default_jobs())
    # a few chunks per worker evens out uneven items; small ones stream: the caller starts on the first
    # results (render writes them) while the workers go on, and waits little for the last one
    size = max(1, min(-(-len(items) // (workers * 4)), CHUNK_MAX))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init, initargs=initargs)
    finished = False
    try:
        for part in pool.map(_run, chunks):
            yield from part
        finished = True
    finally:
        # always wait for the chunks already running (at most CHUNK_MAX items each): a worker may be writing
        # files the caller is about to roll back
        pool.shutdown(wait=True, cancel_futures=not finished)
