"""hello.metrics: values, escaping and the exact text exposition format."""

from __future__ import annotations

import math
import threading

import hypothesis
import hypothesis.strategies as st
import pytest
from hello.metrics import Counter, Gauge, Histogram, Registry, format_value
from hello_testing import parse_exposition


def test_render_exact_text() -> None:
    registry = Registry()
    counter = registry.register(Counter("jobs_total", "Jobs done.\nSecond \\ line.", ("kind",)))
    gauge = registry.register(Gauge("temperature", "Degrees.", value=21.5))
    histogram = registry.register(Histogram("latency_seconds", "Latency.", ("op",), buckets=(0.1, 1)))
    counter.inc(kind="a")
    counter.inc(2, kind='say "hi"\\\n')
    histogram.observe(0.1, op="read")  # on a bound: counts in that bucket (le means <=)
    histogram.observe(3, op="read")
    assert gauge.value() == 21.5
    assert registry.render() == (
        "# HELP jobs_total Jobs done.\\nSecond \\\\ line.\n"
        "# TYPE jobs_total counter\n"
        'jobs_total{kind="a"} 1\n'
        'jobs_total{kind="say \\"hi\\"\\\\\\n"} 2\n'
        "# HELP temperature Degrees.\n"
        "# TYPE temperature gauge\n"
        "temperature 21.5\n"
        "# HELP latency_seconds Latency.\n"
        "# TYPE latency_seconds histogram\n"
        'latency_seconds_bucket{op="read",le="0.1"} 1\n'
        'latency_seconds_bucket{op="read",le="1.0"} 1\n'
        'latency_seconds_bucket{op="read",le="+Inf"} 2\n'
        'latency_seconds_sum{op="read"} 3.1\n'
        'latency_seconds_count{op="read"} 2\n'
    )
    parse_exposition(registry.render())


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "1"), (0.5, "0.5"), (1e-7, "1e-07"), (math.inf, "+Inf"), (-math.inf, "-Inf"), (math.nan, "NaN")],
)
def test_format_value(value: float, text: str) -> None:
    assert format_value(value) == text


def test_misuse_is_rejected() -> None:
    registry = Registry()
    counter = registry.register(Counter("c_total", "C.", ("a",)))
    with pytest.raises(ValueError, match="takes labels"):
        counter.inc(b="x")
    with pytest.raises(ValueError, match="only goes up"):
        counter.inc(-1, a="x")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Counter("c_total", "Again."))
    with pytest.raises(ValueError, match="reserved"):
        Histogram("h", "H.", ("le",))


def test_updates_from_many_threads_are_not_lost() -> None:
    counter = Counter("c_total", "C.", ("a",))
    histogram = Histogram("h_seconds", "H.")
    gauge = Gauge("g", "G.")

    def work() -> None:
        for _ in range(1000):
            counter.inc(a="x")
            histogram.observe(0.01)
            gauge.inc()
            gauge.dec()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.value(a="x") == 8000
    assert histogram.count() == 8000
    assert gauge.value() == 0


@hypothesis.settings(max_examples=50, database=None)  # database=None: write nothing into the working tree
@hypothesis.given(st.lists(st.text(max_size=20), min_size=1, max_size=5, unique=True))
def test_any_label_value_round_trips(values: list[str]) -> None:
    counter = Counter("c_total", "C.", ("v",))
    for value in values:
        counter.inc(v=value)
    registry = Registry()
    registry.register(counter)
    family = parse_exposition(registry.render())["c_total"]
    assert sorted(labels["v"] for _, labels, _ in family.samples) == sorted(values)
