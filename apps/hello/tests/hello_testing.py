"""Helpers for the hello service's tests: HTTP requests, servers on 127.0.0.1:0, a strict parser for the
Prometheus text format. Named hello_testing (not helpers) so other apps' test helpers cannot shadow it."""

from __future__ import annotations

import http.client
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from hello.config import Config
from hello.server import Server, make_server, serve

TEST_CONFIG = Config(host="127.0.0.1", port=0)


def wait_for(condition: Callable[[], object], timeout: float = 3.0) -> None:
    """Poll until `condition()` is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {condition}")
        time.sleep(0.005)


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def request(target: Server | int, path: str, method: str = "GET", body: bytes | None = None) -> Reply:
    """One request to a server (or a port) on 127.0.0.1 over a fresh connection, closed before returning."""
    port = target if isinstance(target, int) else target.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


@contextmanager
def running(
    config: Config = TEST_CONFIG, drain_seconds: float = 0.0
) -> Iterator[tuple[Server, threading.Event, threading.Thread]]:
    """A server going through `serve` on a thread; stopped, closed and joined on exit."""
    server = make_server(config)
    stop = threading.Event()
    thread = threading.Thread(
        target=serve, args=(server, stop.wait), kwargs={"drain_seconds": drain_seconds, "poll_interval": 0.01}
    )
    thread.start()
    try:
        wait_for(lambda: server.readiness.state == "ready")
        yield server, stop, thread
    finally:
        stop.set()
        thread.join(timeout=5)
        assert not thread.is_alive(), "serve() did not return after stop"


# --- Prometheus text exposition format 0.0.4 -------------------------------------------------------------

METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE_RE = re.compile(
    rf"^(?P<name>{METRIC_NAME})"
    rf"(?:\{{(?P<labels>(?:{LABEL_NAME}={LABEL_VALUE}(?:,{LABEL_NAME}={LABEL_VALUE})*)?,?)\}})?"
    r" (?P<value>\S+)(?: (?P<timestamp>-?\d+))?$"
)
LABEL_RE = re.compile(rf"({LABEL_NAME})=({LABEL_VALUE})")
HELP_RE = re.compile(rf"^# HELP (?P<name>{METRIC_NAME}) (?P<text>.*)$")
TYPE_RE = re.compile(rf"^# TYPE (?P<name>{METRIC_NAME}) (?P<type>counter|gauge|histogram|summary|untyped)$")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


@dataclass
class Family:
    name: str
    type: str = "untyped"
    help: str | None = None
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def value(self, sample_name: str | None = None, **labels: str) -> float:
        """The value of the one sample with exactly these labels."""
        wanted = sample_name or self.name
        found = [v for n, lab, v in self.samples if n == wanted and lab == labels]
        assert len(found) == 1, f"{wanted}{labels}: {len(found)} samples in {self.samples}"
        return found[0]


def _unescape(quoted: str) -> str:
    return re.sub(r"\\([\\\"n])", lambda m: "\n" if m[1] == "n" else m[1], quoted[1:-1])


def _parse_value(text: str) -> float:
    special = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}
    if text in special:
        return special[text]
    assert re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text), f"bad sample value {text!r}"
    return float(text)


def parse_exposition(text: str) -> dict[str, Family]:
    """Parse `text` strictly, failing on anything a Prometheus server would reject or warn about.

    Checks: the trailing newline, line grammar and escapes, HELP/TYPE at most once and before the family's
    samples, each family's samples contiguous, no duplicate series, and for histograms cumulative buckets
    ending in le="+Inf" equal to _count.
    """
    assert text.endswith("\n"), "the exposition must end with a newline"
    families: dict[str, Family] = {}
    finished: set[str] = set()
    current: str | None = None
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()

    def family_of(sample_name: str) -> str:
        for name, fam in families.items():
            if sample_name == name or sample_name in {name + s for s in SUFFIXES.get(fam.type, ())}:
                return name
        return sample_name

    for number, line in enumerate(text[:-1].split("\n"), start=1):
        where = f"line {number}: {line!r}"
        if not line.strip():
            continue
        if line.startswith("#"):
            match = HELP_RE.match(line) or TYPE_RE.match(line)
            if match is None:
                assert not line.startswith(("# HELP", "# TYPE")), f"malformed {where}"
                continue
            name = match["name"]
            assert name not in finished, f"{where}: {name} was already exposed"
            fam = families.setdefault(name, Family(name))
            assert not fam.samples, f"{where}: HELP/TYPE after samples of {name}"
            if "type" in match.groupdict():
                assert fam.type == "untyped", f"{where}: second TYPE for {name}"
                fam.type = match["type"]
            else:
                assert fam.help is None, f"{where}: second HELP for {name}"
                assert re.fullmatch(r"(?:[^\\]|\\[\\n])*", match["text"]), f"{where}: bad escape in HELP"
                fam.help = match["text"]
            if current is not None and current != name:
                finished.add(current)
            current = name
            continue
        match = SAMPLE_RE.match(line)
        assert match, f"malformed sample {where}"
        labels_text = match["labels"] or ""
        labels = {k: _unescape(v) for k, v in LABEL_RE.findall(labels_text)}
        assert len(labels) == len(LABEL_RE.findall(labels_text)), f"{where}: repeated label name"
        name = family_of(match["name"])
        assert name not in finished, f"{where}: samples of {name} are not contiguous"
        if current is not None and current != name:
            finished.add(current)
        current = name
        series = (match["name"], tuple(sorted(labels.items())))
        assert series not in seen, f"{where}: duplicate series"
        seen.add(series)
        families.setdefault(name, Family(name)).samples.append(
            (match["name"], labels, _parse_value(match["value"]))
        )

    for fam in families.values():
        if fam.type == "histogram":
            _check_histogram(fam)
    return families


def _check_histogram(fam: Family) -> None:
    groups: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    for sample_name, labels, value in fam.samples:
        if sample_name.endswith("_bucket"):
            assert "le" in labels, f"{fam.name}: bucket without le"
            rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            groups.setdefault(rest, []).append((_parse_value(labels["le"]), value))
    for rest, buckets in groups.items():
        bounds = [b for b, _ in buckets]
        counts = [c for _, c in buckets]
        assert bounds == sorted(bounds) and bounds[-1] == math.inf, f"{fam.name}{rest}: le order {bounds}"
        assert counts == sorted(counts), f"{fam.name}{rest}: buckets not cumulative {counts}"
        assert fam.value(f"{fam.name}_count", **dict(rest)) == counts[-1], f"{fam.name}{rest}: +Inf != _count"
        fam.value(f"{fam.name}_sum", **dict(rest))  # exactly one _sum
