"""Settings from the environment, checked all at once so one log line names every problem."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

# The app's name: apps/<name>/, its Kubernetes objects and image. The chart passes it as SERVICE_NAME too.
SERVICE_NAME = "hello"
DEFAULT_PORT = 8080
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(Exception):
    """The environment holds values the service cannot start with; `problems` lists each of them."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Config:
    """Everything the service reads from its environment; the defaults are the documented ones."""

    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    service_name: str = SERVICE_NAME
    service_version: str = "dev"
    log_level: str = "INFO"
    shutdown_drain_seconds: float = 0.0
    greeting_name: str = "World"  # hello's own setting (GREETING_NAME): who `GET /` greets


def _get(environ: Mapping[str, str], name: str) -> str | None:
    # An empty value counts as unset: manifests often template `value: ""` for "use the default".
    value = environ.get(name, "").strip()
    return value or None


def log_level_from(environ: Mapping[str, str]) -> int:
    """The LOG_LEVEL as a logging constant, INFO when unset or invalid (load_config reports the latter)."""
    name = (_get(environ, "LOG_LEVEL") or "INFO").upper()
    return logging.getLevelNamesMapping()[name] if name in LOG_LEVELS else logging.INFO


def load_config(environ: Mapping[str, str]) -> Config:
    """Read PORT, HOST, SERVICE_NAME, SERVICE_VERSION, GREETING_NAME, LOG_LEVEL, SHUTDOWN_DRAIN_SECONDS.

    Raises ConfigError naming every invalid variable, with the value found and what is accepted.
    """
    defaults = Config()
    problems: list[str] = []

    port = defaults.port
    raw_port = _get(environ, "PORT")
    if raw_port is not None:
        # Digits only: int() also accepts "+80", "8_080" and non-ASCII digits (and raises past 4300 of them).
        if len(raw_port) <= 5 and raw_port.isascii() and raw_port.isdecimal() and int(raw_port) <= 65535:
            port = int(raw_port)
        else:
            problems.append(f"PORT must be an integer from 0 to 65535, got {raw_port!r}")

    log_level = (_get(environ, "LOG_LEVEL") or defaults.log_level).upper()
    if log_level not in LOG_LEVELS:
        problems.append(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {environ['LOG_LEVEL']!r}")

    drain = defaults.shutdown_drain_seconds
    raw_drain = _get(environ, "SHUTDOWN_DRAIN_SECONDS")
    if raw_drain is not None:
        try:
            drain = float(raw_drain)
        except ValueError:
            drain = math.nan
        if not (math.isfinite(drain) and drain >= 0):
            problems.append(f"SHUTDOWN_DRAIN_SECONDS must be a number of seconds >= 0, got {raw_drain!r}")

    if problems:
        raise ConfigError(problems)
    return Config(
        host=_get(environ, "HOST") or defaults.host,
        port=port,
        service_name=_get(environ, "SERVICE_NAME") or defaults.service_name,
        service_version=_get(environ, "SERVICE_VERSION") or defaults.service_version,
        log_level=log_level,
        shutdown_drain_seconds=drain,
        greeting_name=_get(environ, "GREETING_NAME") or defaults.greeting_name,
    )
