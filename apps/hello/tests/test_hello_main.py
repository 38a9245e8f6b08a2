"""hello.main and `python -m hello`: exit codes, the one-line config error, signals and the clean stop."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hello.config import SERVICE_NAME
from hello.main import ShutdownSignals, main
from hello_testing import request

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "hello"  # what `python -m` runs


def test_invalid_port_is_one_json_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main({"PORT": "eighty"}) == 2
    out, err = capsys.readouterr()
    [line] = out.splitlines()
    entry = json.loads(line)
    assert entry["level"] == "error"
    assert entry["message"] == "invalid configuration: PORT must be an integer from 0 to 65535, got 'eighty'"
    assert entry["problems"] == ["PORT must be an integer from 0 to 65535, got 'eighty'"]
    assert err == ""


def test_every_config_problem_in_the_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main({"PORT": "99999", "LOG_LEVEL": "chatty"}) == 2
    [line] = capsys.readouterr().out.splitlines()
    assert len(json.loads(line)["problems"]) == 2


def test_port_in_use_is_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main({"HOST": "127.0.0.1", "PORT": str(port)}) == 1
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["message"].startswith(f"cannot listen on 127.0.0.1 port {port}: ")


def test_shutdown_signals_are_recorded_then_restored() -> None:
    before = signal.getsignal(signal.SIGINT)
    with ShutdownSignals() as signals:
        os.kill(os.getpid(), signal.SIGINT)  # recorded, no KeyboardInterrupt
        assert signals.wait() == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is before


def _start(env: dict[str, str]) -> subprocess.Popen[str]:
    # -X dev -W error: ResourceWarnings and other warnings in the real process fail the test (via stderr).
    return subprocess.Popen(
        [sys.executable, "-X", "dev", "-W", "error", "-m", PACKAGE],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(SRC), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_python_m_stops_cleanly_on_signal(signum: signal.Signals) -> None:
    env = {"HOST": "127.0.0.1", "PORT": "0", "SERVICE_VERSION": "9.9.9"}
    with _start(env) as proc:
        stdout, stderr_pipe = proc.stdout, proc.stderr
        assert stdout is not None and stderr_pipe is not None
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:  # readline has no timeout: read on a thread, wait on the queue
            for line in stdout:
                lines.put(line)

        reader = threading.Thread(target=pump)
        reader.start()
        try:
            first = json.loads(lines.get(timeout=5))
            assert first["message"].startswith("listening on http://127.0.0.1:")
            reply = request(first["port"], "/")
            assert (reply.status, json.loads(reply.body)["version"]) == (200, "9.9.9")
            proc.send_signal(signum)
            assert proc.wait(timeout=5) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            reader.join(timeout=5)
        stderr = stderr_pipe.read()
    entries = [first] + [json.loads(lines.get_nowait()) for _ in range(lines.qsize())]
    messages = [e["message"] for e in entries]
    assert f"received {signum.name}, shutting down" in messages
    assert messages[-1] == "stopped"
    assert all(e["service"] == SERVICE_NAME and e["version"] == "9.9.9" for e in entries)
    assert stderr == ""


def test_python_m_invalid_port_exits_2_without_traceback() -> None:
    with _start({"PORT": "not-a-port"}) as proc:
        out, err = proc.communicate(timeout=5)
    assert proc.returncode == 2
    [line] = out.splitlines()
    assert "PORT must be an integer from 0 to 65535, got 'not-a-port'" in json.loads(line)["message"]
    assert err == ""
