"""hello.config: environment variables to Config, every problem reported at once."""

from __future__ import annotations

import logging

import pytest
from hello.config import (
    DEFAULT_PORT,
    SERVICE_NAME,
    Config,
    ConfigError,
    load_config,
    log_level_from,
)


def test_defaults_when_unset_or_empty() -> None:
    assert load_config({}) == Config()
    assert load_config({"PORT": "", "HOST": " ", "LOG_LEVEL": ""}) == Config()
    assert Config() == Config(
        host="0.0.0.0", port=DEFAULT_PORT, service_name=SERVICE_NAME, service_version="dev"
    )
    assert (SERVICE_NAME, DEFAULT_PORT) == ("hello", 8080)
    assert load_config({"GREETING_NAME": " "}).greeting_name == "World"


def test_every_variable_is_read() -> None:
    config = load_config(
        {
            "HOST": "127.0.0.1",
            "PORT": "9000",
            "SERVICE_NAME": "renamed",
            "SERVICE_VERSION": "1.2.3",
            "LOG_LEVEL": "debug",
            "SHUTDOWN_DRAIN_SECONDS": "2.5",
            "GREETING_NAME": "BetCycle",
        }
    )
    assert config == Config("127.0.0.1", 9000, "renamed", "1.2.3", "DEBUG", 2.5, "BetCycle")


@pytest.mark.parametrize("port", ["0", "1", "65535"])
def test_valid_ports(port: str) -> None:
    assert load_config({"PORT": port}).port == int(port)


@pytest.mark.parametrize(
    "port",
    ["abc", "-1", "65536", "80.0", "+80", "8_080", "١٢", "0x50", pytest.param("9" * 5000, id="5000-digits")],
)
def test_invalid_port_names_variable_value_and_range(port: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"PORT": port})
    assert caught.value.problems == [f"PORT must be an integer from 0 to 65535, got {port!r}"]


@pytest.mark.parametrize("drain", ["-1", "soon", "nan", "inf"])
def test_invalid_drain_seconds(drain: str) -> None:
    with pytest.raises(ConfigError, match="SHUTDOWN_DRAIN_SECONDS must be a number of seconds >= 0"):
        load_config({"SHUTDOWN_DRAIN_SECONDS": drain})


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"PORT": "http", "LOG_LEVEL": "loud", "SHUTDOWN_DRAIN_SECONDS": "x"})
    assert [p.split()[0] for p in caught.value.problems] == ["PORT", "LOG_LEVEL", "SHUTDOWN_DRAIN_SECONDS"]
    assert str(caught.value) == "; ".join(caught.value.problems)


def test_log_level_from_falls_back_to_info() -> None:
    assert log_level_from({"LOG_LEVEL": "warning"}) == logging.WARNING
    assert log_level_from({"LOG_LEVEL": "loud"}) == logging.INFO
    assert log_level_from({}) == logging.INFO
