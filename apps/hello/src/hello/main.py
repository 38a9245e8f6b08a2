"""The process: read the environment, log JSON, serve until SIGTERM or SIGINT.

Exit codes: 0 after a clean stop, 1 when it cannot run (address in use, a bug), 2 for bad configuration.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from types import FrameType, TracebackType

from hello.config import ConfigError, load_config, log_level_from
from hello.logs import configure_logging, get_logger
from hello.server import make_server, serve

EXIT_OK, EXIT_FAILURE, EXIT_BAD_CONFIG = 0, 1, 2
SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)

log = get_logger()


class ShutdownSignals:
    """While entered, SIGTERM and SIGINT are recorded instead of killing the process; `wait` blocks for one.

    The handler only appends to a list. Setting a threading.Event or logging from a signal handler can
    deadlock: the handler runs on the main thread, which may hold that very lock at the moment the signal
    lands. So `wait` polls the list instead (time.sleep is cut short by the signal and resumed, PEP 475).
    """

    def __init__(self, signals: tuple[signal.Signals, ...] = SHUTDOWN_SIGNALS, poll: float = 0.05) -> None:
        self.signals = signals
        self.poll = poll
        self.received: list[int] = []
        self._previous: dict[signal.Signals, object] = {}

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)

    def __enter__(self) -> ShutdownSignals:
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._record)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)  # type: ignore[arg-type]  # whatever signal.signal returned

    def wait(self) -> int:
        """Block until a shutdown signal arrives; return its number."""
        while not self.received:
            time.sleep(self.poll)
        signum = self.received[0]
        name = signal.Signals(signum).name
        log.info("received %s, shutting down", name, extra={"signal": name})
        return signum


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run the service; returns the exit code. `environ` defaults to os.environ."""
    env = os.environ if environ is None else environ
    configure_logging(log_level_from(env))
    try:
        config = load_config(env)
    except ConfigError as exc:
        log.error("invalid configuration: %s", exc, extra={"problems": exc.problems})
        return EXIT_BAD_CONFIG
    configure_logging(
        config.log_level, static_fields={"service": config.service_name, "version": config.service_version}
    )
    try:
        server = make_server(config)
    except OSError as exc:
        log.error("cannot listen on %s port %d: %s", config.host, config.port, exc.strerror or exc)
        return EXIT_FAILURE
    try:
        with ShutdownSignals() as signals:
            serve(server, signals.wait, drain_seconds=config.shutdown_drain_seconds)
    except Exception:
        log.exception("unexpected error; this is a bug, please report it")
        return EXIT_FAILURE
    return EXIT_OK
