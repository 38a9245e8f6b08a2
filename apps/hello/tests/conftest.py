"""Fixtures for the hello service's tests; puts apps/hello/src and this folder on sys.path."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for path in (HERE.parent / "src", HERE):
    # The service is no installed package (`python -m hello` runs it from apps/hello/src), and with
    # --import-mode=importlib test folders are not put on sys.path, so hello_testing needs this too.
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from hello.logs import LOGGER_NAME  # noqa: E402
from hello.server import Server  # noqa: E402
from hello_testing import running  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_service_logging() -> Iterator[None]:
    """main() and configure_logging() reconfigure the service's logger; undo that after each test."""
    logger = logging.getLogger(LOGGER_NAME)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


@pytest.fixture
def server() -> Iterator[Server]:
    """A ready server on 127.0.0.1 and a free port, stopped after the test."""
    with running() as (srv, _stop, _thread):
        yield srv
