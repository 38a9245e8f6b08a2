"""JSON lines on stdout: one object per record, so the cluster's log collector needs no parsing rules."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

LOGGER_NAME = "hello"

# Attributes every LogRecord has; anything else on a record came from `extra=` and becomes a JSON field.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


class JsonFormatter(logging.Formatter):
    """Formats a record as `{"timestamp", "level", "logger", "message", **extra, "exception"?}`."""

    def __init__(self, static_fields: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.static_fields = dict(static_fields or {})

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, tz=UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **self.static_fields,
        }
        entry.update((k, v) for k, v in record.__dict__.items() if k not in _RECORD_ATTRIBUTES)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # default=str: a stray non-JSON value in `extra=` must not cost the log line; ASCII-only output
        # (the json default) cannot fail on a stdout whose locale is not UTF-8.
        return json.dumps(entry, default=str)


def get_logger(name: str = "") -> logging.Logger:
    """The service's logger, or its child `hello.<name>`."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


def configure_logging(
    level: int | str = logging.INFO,
    *,
    stream: TextIO | None = None,
    static_fields: dict[str, Any] | None = None,
) -> logging.Handler:
    """Send the `hello` loggers to `stream` (stdout by default) as JSON; calling it again replaces the setup.

    Only the `hello` logger is touched, not the root logger, so embedding the server (tests) keeps the host's
    logging as it was.
    """
    logger = get_logger()
    for old in list(logger.handlers):
        if getattr(old, "_service_json", False):
            logger.removeHandler(old)
    handler = logging.StreamHandler(sys.stdout if stream is None else stream)
    handler.setFormatter(JsonFormatter(static_fields))
    handler._service_json = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return handler
