"""hello.server on a real socket: routes, probes, metrics, access logs and the graceful stop."""

from __future__ import annotations

import dataclasses
import io
import json
import socket
import struct
import threading
from datetime import UTC, datetime

import pytest
from hello.config import SERVICE_NAME
from hello.logs import LOGGER_NAME, configure_logging
from hello.metrics import CONTENT_TYPE
from hello.server import BUILD_INFO, Handler, Server, make_server
from hello_testing import (
    TEST_CONFIG,
    parse_exposition,
    request,
    running,
    wait_for,
)


def test_root(server: Server) -> None:
    reply = request(server, "/?utm=x")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.headers["Server"] == SERVICE_NAME
    body = json.loads(reply.body)
    assert body == {"message": "Hello, World!", "service": SERVICE_NAME, "version": "dev"}


def test_root_reports_name_and_version_from_config() -> None:
    config = dataclasses.replace(
        TEST_CONFIG, service_name="renamed", service_version="1.2.3", greeting_name="BetCycle"
    )
    with running(config) as (server, _, _):
        body = json.loads(request(server, "/").body)
        metrics = parse_exposition(request(server, "/metrics").body.decode())
    assert body == {"message": "Hello, BetCycle!", "service": "renamed", "version": "1.2.3"}
    assert metrics[BUILD_INFO].value(service="renamed", version="1.2.3") == 1


def test_head_has_headers_but_no_body(server: Server) -> None:
    get, head = request(server, "/"), request(server, "/", method="HEAD")
    assert head.status == 200
    assert head.body == b""
    assert head.headers["Content-Length"] == get.headers["Content-Length"] == str(len(get.body))


def test_probes(server: Server) -> None:
    for path, body in [("/healthz", {"status": "ok"}), ("/readyz", {"status": "ready"})]:
        reply = request(server, path)
        assert (reply.status, json.loads(reply.body)) == (200, body)
        assert reply.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/nope", "/healthz/", "/metrics.json", "/" + "x" * 5000])
def test_unknown_path_is_404_json(server: Server, path: str) -> None:
    reply = request(server, path)
    assert reply.status == 404
    assert json.loads(reply.body) == {"error": "Not Found", "status": 404}


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"])
def test_other_methods_are_405_with_allow(server: Server, method: str) -> None:
    # The body is read and dropped before the answer (up to 64 KiB), so the client gets the 405, not a reset.
    reply = request(server, "/", method=method, body=b"x" * 60_000 if method == "POST" else None)
    assert reply.status == 405
    assert reply.headers["Allow"] == "GET, HEAD"
    assert json.loads(reply.body) == {"error": "Method Not Allowed", "status": 405}


def test_metrics_endpoint(server: Server) -> None:
    request(server, "/")
    request(server, "/")
    request(server, "/does-not-exist")
    request(server, "/random-7", method="BREW")
    request(server, "/readyz", method="POST")
    # Counters are updated just after the response is sent: wait for the last one to land.
    wait_for(lambda: server.metrics.requests.value(method="POST", path="/readyz", code="405") == 1)

    reply = request(server, "/metrics")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    families = parse_exposition(reply.body.decode("utf-8"))

    assert {name: fam.type for name, fam in families.items()} == {
        "http_requests_total": "counter",
        "http_request_duration_seconds": "histogram",
        "http_requests_in_flight": "gauge",
        "process_start_time_seconds": "gauge",
        BUILD_INFO: "gauge",
    }
    assert all(fam.help for fam in families.values())
    requests = families["http_requests_total"]
    assert requests.value(method="GET", path="/", code="200") == 2
    assert requests.value(method="GET", path="unmatched", code="404") == 1
    assert requests.value(method="OTHER", path="unmatched", code="404") == 1
    assert requests.value(method="POST", path="/readyz", code="405") == 1
    duration = families["http_request_duration_seconds"]
    assert duration.value("http_request_duration_seconds_count", method="GET", path="/") == 2
    assert duration.value("http_request_duration_seconds_bucket", method="GET", path="/", le="+Inf") == 2
    assert families["http_requests_in_flight"].value() == 1  # this very scrape
    assert families[BUILD_INFO].value(service=SERVICE_NAME, version="dev") == 1
    start = families["process_start_time_seconds"].value()
    assert 1.7e9 < start <= datetime.now(UTC).timestamp()


def test_concurrent_requests_are_all_counted() -> None:
    with running() as (server, _, _):
        replies: list[int] = []

        def client() -> None:
            for _ in range(20):
                replies.append(request(server, "/").status)

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # The server is stopped and its request threads joined: every counter update has landed.
    assert replies == [200] * 160
    assert server.metrics.requests.value(method="GET", path="/", code="200") == 160
    assert server.metrics.duration.count(method="GET", path="/") == 160
    assert server.metrics.in_flight.value() == 0


def test_access_log_lines() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream, static_fields={"service": SERVICE_NAME})
    with running() as (server, _, _):
        request(server, "/?token=secret")
        request(server, "/healthz")
    lines = stream.getvalue().splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    access = [e for e in entries if e["logger"] == f"{LOGGER_NAME}.access"]
    # each request logs from its own handler thread after answering, so the two lines may come in either order
    assert sorted((e["level"], e["path"]) for e in access) == [("debug", "/healthz"), ("info", "/")]
    greeting = next(e for e in access if e["path"] == "/")
    assert set(greeting) == {"timestamp", "level", "logger", "message", "service"} | {
        "method", "path", "status", "duration_ms", "client"
    }  # fmt: skip
    assert greeting["timestamp"].endswith("Z")
    assert datetime.fromisoformat(greeting["timestamp"]).tzinfo == UTC
    assert (greeting["method"], greeting["status"], greeting["client"]) == ("GET", 200, "127.0.0.1")
    assert isinstance(greeting["duration_ms"], float) and greeting["duration_ms"] >= 0
    assert "secret" not in stream.getvalue()
    assert [e["message"] for e in entries if e["logger"] == f"{LOGGER_NAME}.server"][-1] == "stopped"


def test_malformed_request_is_logged_as_json_not_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)
    with running() as (server, _, _), socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n" + b"X: y\r\n" * 101 + b"\r\n")  # http.client allows 100
        response = b""
        while chunk := sock.recv(4096):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 431 Request Header Fields Too Large\r\n")
    assert b"Content-Type: application/json\r\n" in head
    assert json.loads(body) == {"error": "Request Header Fields Too Large", "status": 431}
    [warning] = [json.loads(line) for line in stream.getvalue().splitlines() if '"warning"' in line]
    assert warning["message"] == "code 431, message Too many headers"
    assert capfd.readouterr().err == ""


def test_a_failing_route_is_a_500_and_a_logged_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Handler, path: str) -> None:
        raise RuntimeError("kaput")

    monkeypatch.setattr(Handler, "_route", broken)
    stream = io.StringIO()
    configure_logging(stream=stream)
    with running() as (server, _, _):
        reply = request(server, "/")
    assert (reply.status, json.loads(reply.body)) == (500, {"error": "Internal Server Error", "status": 500})
    [error] = [json.loads(line) for line in stream.getvalue().splitlines() if '"error"' in line]
    assert error["message"] == "error answering GET /"
    assert "RuntimeError: kaput" in error["exception"]
    assert server.metrics.requests.value(method="GET", path="/", code="500") == 1


def test_a_client_reset_is_not_an_error() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)
    with running() as (server, _, _):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"GET / HTTP/1.0\r\n")
        wait_for(lambda: server.metrics.in_flight.value() == 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # with linger 0: RST instead of FIN
        wait_for(lambda: server.metrics.in_flight.value() == 0)
    assert [json.loads(line)["level"] for line in stream.getvalue().splitlines()] == ["info"] * 3


def test_readiness_starts_unready_and_turns_503_when_draining() -> None:
    server = make_server(TEST_CONFIG)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        assert request(server, "/readyz").status == 503
        assert json.loads(request(server, "/readyz").body) == {"status": "starting"}
        server.readiness.set_ready()
        assert request(server, "/readyz").status == 200
        server.readiness.set_draining()
        server.readiness.set_ready()  # too late: draining is final
        reply = request(server, "/readyz")
        assert (reply.status, json.loads(reply.body)) == (503, {"status": "draining"})
        assert request(server, "/healthz").status == 200  # alive all along
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def test_stop_keeps_serving_during_the_drain_then_refuses_connections() -> None:
    with running(drain_seconds=0.3) as (server, stop, thread):
        assert request(server, "/readyz").status == 200
        stop.set()
        wait_for(lambda: server.readiness.state == "draining")
        assert request(server, "/readyz").status == 503
        assert request(server, "/").status == 200  # still answering while endpoints catch up
        assert thread.is_alive()
        thread.join(timeout=5)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_stop_waits_for_requests_in_flight() -> None:
    with running() as (server, stop, thread):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n")  # the request is not complete yet
            wait_for(lambda: server.metrics.in_flight.value() == 1)
            stop.set()

            def refused() -> bool:
                try:
                    socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
                except ConnectionRefusedError:
                    return True
                except ConnectionResetError:
                    pass  # queued just as the listening socket closed: try again
                return False

            wait_for(refused)  # no longer accepting...
            assert thread.is_alive()  # ...but serve() is still waiting for the open request
            sock.sendall(b"Host: test\r\n\r\n")
            response = b""
            while chunk := sock.recv(4096):
                response += chunk
        thread.join(timeout=5)
        assert not thread.is_alive()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK")
    assert json.loads(body)["message"] == "Hello, World!"
