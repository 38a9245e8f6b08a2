"""The Jinja sandbox charts render in, with bounded cost (issue 8: a template is untrusted input too).

Jinja's sandbox already stops attribute tricks (`__globals__`, `__mro__`) and caps `range()` at 100,000
items, but not how long a template runs or how much memory it takes: nested loops, `"x" * 10**9`,
`10 ** 10 ** 8`, `'x'.center(10**9)`, a string doubled in a loop, or a macro calling itself twice. Here:

- every loop iteration and every call (functions, methods, macros, `loop()`) is a *step*; rendering one app
  in one environment may take `limits.templateSteps` steps and `limits.renderSeconds` seconds;
- no value a template builds (`*`, `+`, `%`, `~`, a filter's or a call's result) and no app's whole output
  may exceed `limits.outputBytes`; widths and counts past that are refused before anything is allocated.

Each refusal is a `TemplateLimitError` (a Jinja TemplateRuntimeError), reported with the template's line.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any

import jinja2
import jinja2.sandbox
from jinja2 import nodes
from jinja2.visitor import NodeTransformer

from betcycle.model import limits

#: methods and filters whose int arguments are widths or counts: a huge one allocates before we could check
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
#: filters whose extra int argument is a value, not a size
_VALUE_FILTERS = frozenset({"default", "d"})
_LOOP_FILTER, _SIZED_FILTER = "betcycle_loop", "betcycle_sized"
_BIG_POWER_BITS = 100_000
_FORMAT_NUMBER = re.compile(r"[0-9]+")


class TemplateLimitError(jinja2.TemplateRuntimeError):
    """A template went past one of the limits (steps, time, size)."""


def _size(value: Any) -> int:
    if type(value) is str:  # the usual case, ahead of the isinstance chain
        return len(value)
    return len(value) if isinstance(value, str | bytes | list | tuple | dict) else 0


class Budget:
    """What one app in one environment may spend rendering all of its templates."""

    def __init__(self, lim: limits.Limits, what: str) -> None:
        self.limits = lim
        self.what = what
        self.steps = 0
        self.output = 0
        self.deadline = time.monotonic() + lim.renderSeconds

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.limits.templateSteps:
            raise TemplateLimitError(
                f"rendering {self.what} took over {self.limits.templateSteps:,} steps (loop iterations and "
                "calls; limits.templateSteps in betcycle.yaml)"
            )
        if self.steps % 64 == 0:
            self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateLimitError(
                f"rendering {self.what} took over {self.limits.renderSeconds:g} s "
                "(limits.renderSeconds in betcycle.yaml)"
            )

    def check_size(self, n: int, what: str = "a value") -> None:
        if n > self.limits.outputBytes:
            raise TemplateLimitError(
                f"{what} of over {self.limits.outputBytes:,} characters while rendering {self.what} "
                "(limits.outputBytes in betcycle.yaml)"
            )

    def render(self, template: jinja2.Template, context: dict[str, Any]) -> str:
        """The template's output, within this budget (shared by all templates of the app)."""
        env = template.environment
        if isinstance(env, BoundedEnvironment):
            env.wrap_filters()
        token = _current.set(self)
        cap = self.limits.outputBytes
        try:
            chunks: list[str] = []
            append = chunks.append
            output = self.output
            try:
                for chunk in template.generate(context):
                    output += len(chunk)
                    if output > cap:  # each chunk, before the next is built
                        self.check_size(output, "output")
                    append(chunk)
            finally:
                self.output = output
            self.check_time()
            return "".join(chunks)
        finally:
            _current.reset(token)


#: the budget of the render in progress
_current: ContextVar[Budget | None] = ContextVar("betcycle_template_budget", default=None)


def _budget() -> Budget:
    """The render's budget; outside a render (Jinja folding constants while compiling) a fresh one, so a
    constant `"x" | center(10**9)` is refused at compile time too."""
    return _current.get() or Budget(limits.current(), "a template")


def _count(iterable: Iterable[Any]) -> Iterator[Any]:
    """A loop's iterable, one step per iteration."""
    step = _budget().step
    for item in iterable:
        step()
        yield item


def _sized(value: Any) -> Any:
    if _size(value) > _cap():
        _budget().check_size(_size(value))
    return value


def _cap() -> int:
    """The render's `outputBytes` (what a value may reach)."""
    budget = _current.get()
    return budget.limits.outputBytes if budget is not None else limits.current().outputBytes


class _Bound(NodeTransformer):
    """Route every `{% for %}` iterable through a step counter and every `~` result through a size check."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, _LOOP_FILTER, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(node, _SIZED_FILTER, [], [], None, None, lineno=node.lineno)


class BoundedEnvironment(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """ImmutableSandboxedEnvironment whose templates stop at the limits of the render's `Budget`."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters[_LOOP_FILTER] = _count
        self.filters[_SIZED_FILTER] = _sized
        #: the filters as last checked: every value is a checking wrapper (or one of the two above); holding
        #: them keeps their ids theirs, so the same ids in the same order mean nothing was added or replaced
        self._checked: dict[str, Callable[..., Any]] = {_LOOP_FILTER: _count, _SIZED_FILTER: _sized}
        self._checked_ids: tuple[int, ...] = ()

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        self.wrap_filters()  # before Jinja compiles (and may constant-fold) any filter call
        tree = super()._parse(source, name, filename)
        bounded: nodes.Template = _Bound().visit(tree)
        return bounded

    def wrap_filters(self) -> None:
        """Check the arguments and results of every filter, including ones added or replaced after
        construction (a comparison of ids when nothing changed: this runs before every template; not `==`,
        which a callable object's __eq__ could answer)."""
        if tuple(map(id, self.filters.values())) == self._checked_ids:
            return
        for name, func in list(self.filters.items()):
            if self._checked.get(name) is not func:
                self.filters[name] = _checked_filter(name, func)
        self._checked = dict(self.filters)
        self._checked_ids = tuple(map(id, self._checked.values()))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """`"…".format(…)`: Jinja's safe formatter, after refusing widths past the size limit."""
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        fmt, name = str(value.__self__), value.__name__

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_widths(_budget(), name, args, kwargs, fmt)
            return wrapper(*args, **kwargs)

        return checked

    def getattr(self, obj: Any, attribute: str) -> Any:
        """`values.image.tag`: for a plain dict whose type has no such attribute, the item itself (what the
        sandbox's getattr returns after its failed attribute lookup, without raising and catching that)."""
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except (TypeError, LookupError):  # an unhashable or missing key: the sandbox says undefined
                pass
        return super().getattr(obj, attribute)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.step()
        name = getattr(__obj, "__name__", "")
        if name in _WIDTH_METHODS and isinstance(getattr(__obj, "__self__", None), str):
            _check_widths(budget, name, args, kwargs, None)
        result = super().call(__context, __obj, *args, **kwargs)
        budget.check_size(_size(result))
        return result

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = _budget()
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if _size(seq) and _is_int(n):
                    budget.check_size(_size(seq) * max(n, 0))
        elif operator == "**" and _is_int(left) and _is_int(right) and abs(left) > 1 and right > 0:
            if right * math.log2(abs(left)) > _BIG_POWER_BITS:
                raise TemplateLimitError(f"{left} ** {right} is too big a number to compute")
        elif operator == "%" and isinstance(left, str):
            _check_widths(budget, "%", (), {}, left)
        result = super().call_binop(context, operator, left, right)
        budget.check_size(_size(result))
        return result


#: what `getattr(a_dict, name)` finds on the type (methods, dunders): the sandbox decides about those
_DICT_ATTRIBUTES = frozenset(dir(dict))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_widths(
    budget: Budget, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], fmt: str | None
) -> None:
    """Refuse int arguments (and numbers in a format string) that would build something over the limit."""
    cap = budget.limits.outputBytes
    numbers = [v for v in (*args, *kwargs.values()) if _is_int(v)]
    if fmt is not None:
        numbers += [int(m) for m in _FORMAT_NUMBER.findall(fmt) if len(m) <= 30]
        if any(len(m) > 30 for m in _FORMAT_NUMBER.findall(fmt)):
            numbers.append(cap + 1)
    if any(n > cap for n in numbers):
        raise TemplateLimitError(
            f"{name}() with a width or count over {cap:,} while rendering {budget.what} "
            "(limits.outputBytes in betcycle.yaml)"
        )


def _checked_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    # the filtered value comes first (after the context or environment for pass_* filters)
    at = 1 if hasattr(func, "jinja_pass_arg") else 0
    sized_args = name not in _VALUE_FILTERS
    is_format = name == "format"
    what = f"filter {name}"

    def checked(*args: Any, **kwargs: Any) -> Any:
        # the common `value | f` call has no arguments to check: only the result's size
        if sized_args and (kwargs or len(args) > at + 1 or is_format):
            fmt = args[at] if is_format and len(args) > at and isinstance(args[at], str) else None
            _check_widths(_budget(), what, tuple(args[at + 1 :]), kwargs, fmt)
        result = func(*args, **kwargs)
        if _size(result) > _cap():
            _budget().check_size(_size(result))
        return result

    # keep pass_context / pass_environment / pass_eval_context markers so Jinja passes the same arguments
    if hasattr(func, "jinja_pass_arg"):
        checked.jinja_pass_arg = func.jinja_pass_arg  # type: ignore[attr-defined]
    checked.__name__ = getattr(func, "__name__", name)
    checked.__doc__ = func.__doc__
    return checked
