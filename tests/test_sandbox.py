"""sandbox.py's cheaper bookkeeping keeps every bound: filters added or replaced late are still checked, the
output cap holds across one budget's templates, and the unchecked fast paths decide nothing on their own."""

from __future__ import annotations

from typing import Any

import jinja2
import markupsafe
import pytest

from betcycle.model import limits
from betcycle.render import sandbox


def _env() -> sandbox.BoundedEnvironment:
    return sandbox.BoundedEnvironment(undefined=jinja2.StrictUndefined)


def _budget(**overrides: Any) -> sandbox.Budget:
    return sandbox.Budget(limits.Limits(**overrides), "dev/hello")


def test_a_filter_replaced_after_a_render_is_checked_too() -> None:
    env = _env()
    template = env.from_string("{{ s | upper }}")  # a variable: nothing is folded while compiling
    assert _budget(outputBytes=100).render(template, {"s": "ab"}) == "AB"
    env.filters["upper"] = lambda s: s * 200  # replaced under a name that was already wrapped
    with pytest.raises(sandbox.TemplateLimitError, match="a value of over 100 characters"):
        _budget(outputBytes=100).render(env.from_string("{{ s | upper }}"), {"s": "ab"})


class _EqualToAnything:
    """A callable that claims to equal every object (a dict comparison would take it for the wrapper)."""

    def __call__(self, value: str) -> str:
        return value * 200

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


def test_a_replacement_that_claims_equality_is_checked_too() -> None:
    env = _env()
    assert _budget(outputBytes=100).render(env.from_string("{{ s | lower }}"), {"s": "AB"}) == "ab"
    env.filters["lower"] = _EqualToAnything()
    with pytest.raises(sandbox.TemplateLimitError, match="a value of over 100 characters"):
        _budget(outputBytes=100).render(env.from_string("{{ s | lower }}"), {"s": "ab"})


def test_a_filter_added_after_a_render_has_its_widths_checked_before_it_runs() -> None:
    env = _env()
    assert _budget().render(env.from_string("{{ 1 }}"), {}) == "1"
    calls: list[int] = []

    def pad(value: str, width: int) -> str:
        calls.append(width)
        return value

    env.filters["pad"] = pad
    with pytest.raises(sandbox.TemplateLimitError, match=r"filter pad\(\) with a width or count over 1,000"):
        _budget(outputBytes=1000).render(env.from_string("{{ x | pad(5000) }}"), {"x": "x"})
    with pytest.raises(sandbox.TemplateLimitError, match=r"filter pad\(\) with a width"):
        _budget(outputBytes=1000).render(env.from_string("{{ x | pad(width=5000) }}"), {"x": "x"})
    assert calls == []
    assert _budget(outputBytes=1000).render(env.from_string("{{ x | pad(10) }}"), {"x": "x"}) == "x"
    assert calls == [10]


def test_pass_context_filters_are_checked_after_their_first_argument() -> None:
    env = _env()

    @jinja2.pass_context
    def grow(ctx: Any, value: str, n: int) -> str:
        return value * n

    env.filters["grow"] = grow
    assert _budget(outputBytes=50).render(env.from_string("{{ x | grow(3) }}"), {"x": "x"}) == "xxx"
    with pytest.raises(sandbox.TemplateLimitError, match="filter grow"):
        _budget(outputBytes=50).render(env.from_string("{{ x | grow(51) }}"), {"x": "x"})
    with pytest.raises(sandbox.TemplateLimitError, match="a value of over 50 characters"):
        _budget(outputBytes=50).render(env.from_string("{{ x | grow(6) }}"), {"x": "x" * 10})


def test_value_sized_results_are_refused_whatever_their_type() -> None:
    env = _env()
    env.filters["many"] = lambda v: [v] * 60
    env.filters["markup"] = lambda v: markupsafe.Markup("y" * 60)
    env.filters["raw"] = lambda v: b"z" * 60
    for source in (
        "{{ n | many | length }}",
        "{{ n | markup }}",
        "{{ n | raw | length }}",
        "{{ (s ~ s) * 30 }}",
    ):
        with pytest.raises(sandbox.TemplateLimitError, match="a value of over 50 characters"):
            _budget(outputBytes=50).render(env.from_string(source), {"n": 1, "s": "a"})


def test_a_concatenation_is_refused_at_the_cap_not_just_past_the_output() -> None:
    env = _env()
    source = "{% set s = x ~ x ~ x %}{{ s | length }}"
    assert _budget(outputBytes=30).render(env.from_string(source), {"x": "a" * 10}) == "30"
    with pytest.raises(sandbox.TemplateLimitError, match="a value of over 30 characters"):
        _budget(outputBytes=30).render(env.from_string(source), {"x": "a" * 11})


def test_the_output_cap_is_shared_by_all_templates_of_a_budget_and_exact() -> None:
    env = _env()
    budget = _budget(outputBytes=25)
    assert budget.render(env.from_string("{{ 'x' * 10 }}"), {}) == "x" * 10
    assert budget.render(env.from_string("{{ 'y' * 15 }}"), {}) == "y" * 15  # exactly at the cap
    assert budget.output == 25
    with pytest.raises(sandbox.TemplateLimitError, match="output of over 25 characters"):
        budget.render(env.from_string("z"), {})


def test_the_output_cap_stops_a_template_part_way() -> None:
    env = _env()
    chunks: list[str] = []
    budget = _budget(outputBytes=1000)
    template = env.from_string("{% for i in range(500) %}{{ i }}-{% endfor %}")
    with pytest.raises(sandbox.TemplateLimitError, match="output of over 1,000 characters"):
        for chunk in budget.render(template, {}):
            chunks.append(chunk)
    assert chunks == []  # render returns nothing once refused
    assert 1000 < budget.output < 1100  # counted up to the chunk that crossed the cap, not the whole loop
