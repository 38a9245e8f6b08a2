"""The HTTP server: routes, probes, metrics, access logs and the graceful stop Kubernetes expects.

Life of a server: `make_server` binds the socket (readiness "starting"); `serve` accepts connections on a
thread, turns ready, waits for `until()` to return (a signal in production, an Event in tests), then turns
"draining", optionally keeps serving for the drain delay so endpoints can drop the pod, stops accepting and
waits for in-flight requests before returning.
"""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hello.config import SERVICE_NAME, Config
from hello.logs import LOGGER_NAME, get_logger
from hello.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from hello.metrics import (
    PROCESS_START_TIME,
    Counter,
    Gauge,
    Histogram,
    Registry,
)

ROUTES = ("/", "/healthz", "/readyz", "/metrics")
ALLOWED_METHODS = ("GET", "HEAD")
ALLOW_HEADER = ", ".join(ALLOWED_METHODS)
# Label values for anything else, so a scan of random paths or methods cannot grow the series without bound.
UNMATCHED_PATH = "unmatched"
OTHER_METHOD = "OTHER"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
# Probes and scrapes arrive every few seconds; their access logs are DEBUG so INFO shows real traffic.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

# A client that connects and then sends nothing must not hold a thread, or the stop, for ever.
REQUEST_TIMEOUT_SECONDS = 10.0
# Request bodies are never used, but read (up to this much) before answering: closing a socket with unread
# data makes the kernel send RST, and the client may then lose the 404/405 it was being sent.
MAX_DISCARDED_BODY = 64 * 1024

STARTING, READY, DRAINING = "starting", "ready", "draining"

# The one gauge named after the service (Prometheus names take "_" where the service name has "-").
BUILD_INFO = "hello_build_info"

access_log = get_logger("access")
log = get_logger("server")


class Readiness:
    """starting → ready → draining; /readyz answers 200 only while ready."""

    def __init__(self) -> None:
        self._state = STARTING
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    def set_ready(self) -> None:
        with self._lock:
            # Once draining, never ready again: a late set_ready must not undo a stop.
            if self._state == STARTING:
                self._state = READY

    def set_draining(self) -> None:
        with self._lock:
            self._state = DRAINING


class ServiceMetrics:
    """The metrics one server exposes on /metrics."""

    def __init__(self, config: Config) -> None:
        self.registry = Registry()
        self.requests = self.registry.register(
            Counter(
                "http_requests_total",
                "HTTP requests answered, by method, route and status code.",
                ("method", "path", "code"),
            )
        )
        self.duration = self.registry.register(
            Histogram(
                "http_request_duration_seconds",
                "Time from reading the request line to sending the response, in seconds.",
                ("method", "path"),
            )
        )
        self.in_flight = self.registry.register(
            Gauge("http_requests_in_flight", "Connections being read or answered right now.")
        )
        self.registry.register(
            Gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                value=PROCESS_START_TIME,
            )
        )
        build_info = self.registry.register(
            Gauge(BUILD_INFO, "Always 1; the labels name the running build.", ("service", "version"))
        )
        build_info.set(1, service=config.service_name, version=config.service_version)


@dataclass
class Response:
    status: HTTPStatus
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: HTTPStatus, payload: dict[str, Any], **headers: str) -> Response:
    return Response(status, (json.dumps(payload) + "\n").encode(), headers=headers)


def error_response(status: HTTPStatus, **headers: str) -> Response:
    return json_response(status, {"error": status.phrase, "status": int(status)}, **headers)


class Handler(BaseHTTPRequestHandler):
    """Answers every request through `_dispatch`; HTTP/1.0, so one request per connection."""

    server: Server
    server_version = SERVICE_NAME  # no Python version in the Server header
    timeout = REQUEST_TIMEOUT_SECONDS

    def version_string(self) -> str:
        return self.server_version

    def handle(self) -> None:
        self.server.metrics.in_flight.inc()
        try:
            super().handle()
        finally:
            self.server.metrics.in_flight.dec()

    def parse_request(self) -> bool:
        # BaseHTTPRequestHandler would look for a do_<METHOD> next and answer methods it lacks with 501 and
        # an HTML page. Dispatching here instead gives every method a JSON answer (404/405) that is counted
        # and logged; False tells handle_one_request there is nothing left to do.
        if super().parse_request():
            self._dispatch()
        return False

    def _dispatch(self) -> None:
        started = time.perf_counter()
        path = self.path.split("?", 1)[0]
        route = path if path in ROUTES else UNMATCHED_PATH
        method = self.command if self.command in KNOWN_METHODS else OTHER_METHOD
        try:
            if route == UNMATCHED_PATH:
                response = error_response(HTTPStatus.NOT_FOUND)
            elif self.command not in ALLOWED_METHODS:
                response = error_response(HTTPStatus.METHOD_NOT_ALLOWED, Allow=ALLOW_HEADER)
            else:
                response = self._route(path)
        except Exception:
            log.exception("error answering %s %s", self.command, path[:256])
            response = error_response(HTTPStatus.INTERNAL_SERVER_ERROR)
        try:
            self._discard_body()
            self._send(response, with_body=self.command != "HEAD")
        except (ConnectionError, TimeoutError) as exc:
            # The client went away; the answer is still counted as the one the service chose.
            log.debug("client gone before the response was sent: %r", exc)
        finally:
            seconds = time.perf_counter() - started
            metrics = self.server.metrics
            metrics.requests.inc(method=method, path=route, code=str(int(response.status)))
            metrics.duration.observe(seconds, method=method, path=route)
            access_log.log(
                logging.DEBUG if path in QUIET_PATHS else logging.INFO,
                "%s %s %d",
                self.command,
                path[:256],
                response.status,
                extra={
                    "method": self.command,
                    "path": path[:256],  # the query string is left out: it may carry secrets
                    "status": int(response.status),
                    "duration_ms": round(seconds * 1000, 3),
                    "client": self.client_address[0],
                },
            )

    def _route(self, path: str) -> Response:
        config = self.server.config
        if path == "/":
            return json_response(
                HTTPStatus.OK,
                {
                    "message": f"Hello, {config.greeting_name}!",  # hello's own greeting
                    "service": config.service_name,
                    "version": config.service_version,
                },
            )
        if path == "/healthz":
            return json_response(HTTPStatus.OK, {"status": "ok"})
        if path == "/readyz":
            state = self.server.readiness.state
            status = HTTPStatus.OK if state == READY else HTTPStatus.SERVICE_UNAVAILABLE
            return json_response(status, {"status": state})
        if path == "/metrics":
            body = self.server.metrics.registry.render().encode()
            return Response(HTTPStatus.OK, body, METRICS_CONTENT_TYPE)
        raise AssertionError(f"route {path!r} is in ROUTES but has no handler")

    def _discard_body(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return
        if 0 < length <= MAX_DISCARDED_BODY:
            self.rfile.read(length)

    def _send(self, response: Response, *, with_body: bool) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if with_body:
            self.wfile.write(response.body)
        self.wfile.flush()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer a request the base class rejects before routing (400, 414, 431, 505) in JSON too."""
        self.close_connection = True
        self.log_error("code %d, message %s", code, message)
        self._send(error_response(HTTPStatus(code)), with_body=self.command != "HEAD")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: `_dispatch` writes the access log, with the duration."""

    def log_message(self, format: str, *args: Any) -> None:
        # Only reached through log_error (malformed requests, timeouts); the base class writes to stderr.
        log.warning(format, *args, extra={"client": self.client_address[0]})


class Server(ThreadingHTTPServer):
    """A ThreadingHTTPServer carrying the service's config, readiness and metrics."""

    request_queue_size = 128  # the default of 5 drops connections in a burst
    # ThreadingHTTPServer makes request threads daemons, and server_close() joins only non-daemon ones: a stop
    # would then cut off requests in flight. (A client that stalls is cut off by the handler's timeout.)
    daemon_threads = False

    def __init__(self, config: Config) -> None:
        self.config = config
        self.readiness = Readiness()
        self.metrics = ServiceMetrics(config)
        self.address_family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        super().__init__((config.host, config.port), Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind also calls socket.getfqdn(host), a reverse DNS lookup that can stall start-up
        # for seconds where DNS is unreachable; the name is only used by CGI.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    @property
    def port(self) -> int:
        """The bound port: the one the OS chose when the config said 0."""
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = str(self.server_address[0])
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The base class prints a traceback to stderr; keep it in the JSON log instead. A client resetting
        # its connection (load balancers' TCP checks do) is routine, not an error.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            log.debug("connection from %s closed early: %r", client_address[0], error)
        else:
            log.error("unhandled error serving %s", client_address[0], exc_info=True)


def make_server(config: Config | None = None) -> Server:
    """Bind a server for `config` (default: Config()); use `Config(host="127.0.0.1", port=0)` in tests.

    It is not serving yet: call `serve`, or `serve_forever` on a thread and `readiness.set_ready()` yourself.
    Raises OSError when the address cannot be bound.
    """
    return Server(config or Config())


def serve(
    server: Server,
    until: Callable[[], object],
    *,
    drain_seconds: float = 0.0,
    poll_interval: float = 0.1,
) -> None:
    """Serve until `until()` returns, then drain and stop; the server is closed on return.

    Stopping: /readyz turns 503 at once; for `drain_seconds` the server keeps answering (so traffic routed
    before the endpoints update still succeeds); then it stops accepting, closes the listening socket and
    waits for the requests in flight to finish. `poll_interval` bounds how long serve_forever takes to notice
    the stop (the stdlib default of 0.5 s would add that much to every shutdown).
    """
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": poll_interval}, name=f"{LOGGER_NAME}-http"
    )
    thread.start()
    try:
        server.readiness.set_ready()
        log.info("listening on %s", server.url, extra={"host": server.server_name, "port": server.port})
        until()
    finally:
        server.readiness.set_draining()
        log.info(
            "draining for %gs, then stopping",
            drain_seconds,
            extra={"drain_seconds": drain_seconds, "in_flight": int(server.metrics.in_flight.value())},
        )
        if drain_seconds > 0:
            time.sleep(drain_seconds)
        server.shutdown()  # returns once serve_forever has left its loop: nothing new is accepted
        thread.join()
        server.server_close()  # closes the listening socket, then joins the request threads
        log.info("stopped")
