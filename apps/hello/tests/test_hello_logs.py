"""hello.logs: one JSON object per line with timestamp, level, logger, message and the extra fields."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

from hello.config import SERVICE_NAME
from hello.logs import (
    LOGGER_NAME,
    JsonFormatter,
    configure_logging,
    get_logger,
)


def test_record_shape() -> None:
    record = logging.LogRecord(f"{LOGGER_NAME}.access", logging.INFO, __file__, 1, "GET %s", ("/",), None)
    record.created = 0.25
    record.status = 200
    line = JsonFormatter({"service": SERVICE_NAME}).format(record)
    assert "\n" not in line
    assert json.loads(line) == {
        "timestamp": "1970-01-01T00:00:00.250Z",
        "level": "info",
        "logger": f"{LOGGER_NAME}.access",
        "message": "GET /",
        "service": SERVICE_NAME,
        "status": 200,
    }


def test_exception_and_unserialisable_values_stay_on_one_line() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)
    try:
        raise ValueError("boom")
    except ValueError:
        get_logger("x").exception("failed", extra={"thing": object()})
    [line] = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["level"] == "error"
    assert entry["message"] == "failed"
    assert entry["thing"].startswith("<object object")
    assert "ValueError: boom" in entry["exception"]
    assert datetime.fromisoformat(entry["timestamp"]).tzinfo == UTC


def test_configure_logging_replaces_its_handler_and_filters_by_level() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first)
    configure_logging("WARNING", stream=second)
    logger = get_logger("x")
    logger.info("hidden")
    logger.warning("shown")
    assert first.getvalue() == ""
    assert [json.loads(line)["message"] for line in second.getvalue().splitlines()] == ["shown"]
    assert len(get_logger().handlers) == 1
    assert get_logger().propagate is False
