"""`betcycle cost report`: Cost Explorer spend per environment and app, against budgets and the Kubernetes estimate.

Spend comes from Cost Explorer (`GetCostAndUsage`, monthly, `UnblendedCost`) grouped by the `environment`
and `app` cost-allocation tags over the last N complete months. Each environment's budget is
`budget.monthly` in its environment.yaml (absent: "no budget"). The Kubernetes estimate is the diff's:
the CPU and memory the committed manifests request (`diff/cost.requested`) priced with the environment's
`pricing:` table (`diff/report.EnvDiff.cost`), so the two numbers can be compared side by side.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

from betcycle.aws.session import Aws, aws_errors
from betcycle.diff.cost import format_money, format_number, requested
from betcycle.diff.report import EnvDiff, env_info
from betcycle.errors import UserError
from betcycle.model.repo import Environment, load_repo
from betcycle.validate.manifests import load_env_manifests

METRIC = "UnblendedCost"
TAG_KEYS = ("environment", "app")
UNTAGGED_ENV = "(untagged)"
UNTAGGED_APP = "(no app tag)"
#: Cost Explorer serves at most the last 14 months (38 with multi-year data enabled, which costs extra)
MAX_MONTHS = 14


@dataclass(frozen=True)
class Estimate:
    """The request-based Kubernetes estimate of one environment (what `betcycle diff` prices)."""

    cpu: Decimal
    memory_gib: Decimal
    #: None without a `pricing:` table in environment.yaml
    monthly: Decimal | None
    currency: str
    notes: tuple[str, ...] = ()


@dataclass
class EnvCost:
    name: str
    in_repository: bool
    budget: Decimal | None = None
    budget_currency: str = "USD"
    #: app -> month -> amount
    apps: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    estimate: Estimate | None = None

    def total(self, month: str) -> Decimal:
        return sum((m.get(month, Decimal(0)) for m in self.apps.values()), Decimal(0))

    def budget_used(self, month: str) -> Decimal | None:
        """Percent of the monthly budget spent in `month`."""
        if not self.budget:
            return None
        return (self.total(month) * 100 / self.budget).quantize(Decimal("0.1"), ROUND_HALF_UP)


@dataclass
class CostReport:
    start: str
    end: str
    months: list[str]
    unit: str
    envs: list[EnvCost]
    notes: list[str] = field(default_factory=list)


def month_range(today: date, months: int, last: str | None = None) -> tuple[str, str, list[str]]:
    """(start, exclusive end, labels) of `months` complete months ending with `last` (YYYY-MM; default: the
    month before `today`'s)."""
    if not 1 <= months <= MAX_MONTHS:
        raise UserError(
            f"--months must be between 1 and {MAX_MONTHS}, not {months}",
            hint="Cost Explorer keeps the last 14 months",
        )
    current = today.year * 12 + today.month - 1  # months since year 0
    end = current
    if last is not None:
        m = re.fullmatch(r"([0-9]{4})-(0[1-9]|1[0-2])", last)
        if not m:
            raise UserError(f"--to must be a month such as 2026-09, not {last!r}")
        end = int(m[1]) * 12 + int(m[2])  # the month after `last`: the exclusive end
        if end > current:
            raise UserError(
                f"--to {last} is not a complete month yet", hint="the report covers complete months only"
            )
    labels = [f"{(i // 12):04d}-{(i % 12) + 1:02d}" for i in range(end - months, end)]
    return f"{labels[0]}-01", f"{end // 12:04d}-{end % 12 + 1:02d}-01", labels


def _tag_value(key: str) -> str:
    """Cost Explorer's group key `environment$staging` -> `staging` (`environment$` -> "")."""
    return key.split("$", 1)[1] if "$" in key else key


def fetch_spend(
    aws: Aws, start: str, end: str, envs: list[str] | None = None
) -> tuple[list[tuple[str, str, str, Decimal]], set[str]]:
    """[(month, environment, app, amount)] and the units, every page (`NextPageToken`) of GetCostAndUsage."""
    kwargs: dict[str, Any] = {
        "TimePeriod": {"Start": start, "End": end},
        "Granularity": "MONTHLY",
        "Metrics": [METRIC],
        "GroupBy": [{"Type": "TAG", "Key": k} for k in TAG_KEYS],
    }
    if envs:
        kwargs["Filter"] = {
            "Tags": {"Key": "environment", "Values": sorted(envs), "MatchOptions": ["EQUALS"]}
        }
    rows: list[tuple[str, str, str, Decimal]] = []
    units: set[str] = set()
    ce = aws.client("ce")
    token: str | None = None
    while True:
        with aws_errors("Cost Explorer GetCostAndUsage"):
            page = ce.get_cost_and_usage(**kwargs, **({"NextPageToken": token} if token else {}))
        for period in page.get("ResultsByTime", []):
            month = str(period.get("TimePeriod", {}).get("Start", ""))[:7]
            for group in period.get("Groups", []):
                keys = [_tag_value(str(k)) for k in group.get("Keys", [])] + ["", ""]
                metric = group.get("Metrics", {}).get(METRIC, {})
                try:
                    amount = Decimal(str(metric.get("Amount", "0")))
                except InvalidOperation:
                    raise UserError(
                        f"Cost Explorer returned an amount that is not a number: {metric.get('Amount')!r}"
                    ) from None
                if metric.get("Unit"):
                    units.add(str(metric["Unit"]))
                rows.append((month, keys[0], keys[1], amount))
        token = page.get("NextPageToken")
        if not token:
            return rows, units


def budget_of(env: Environment) -> tuple[Decimal | None, str]:
    """`budget.monthly` and `budget.currency` of environment.yaml; (None, "USD") when there is none."""
    budget = env.data.get("budget")
    if not isinstance(budget, dict):
        return None, "USD"
    monthly = budget.get("monthly")
    currency = str(budget.get("currency") or "USD")
    if isinstance(monthly, int | float) and not isinstance(monthly, bool) and monthly > 0:
        return Decimal(str(monthly)), currency
    return None, currency


def kubernetes_estimate(root: Path, env: Environment) -> Estimate:
    """The CPU/memory the environment's committed manifests request, priced as `betcycle diff` prices it."""
    resources = load_env_manifests(root, env.name, env.manifests_dir)
    cpu, mem, notes = requested(resources)
    if not resources:
        notes = [f"no rendered manifests in {env.manifests_dir} (run `betcycle render`)", *notes]
    priced = EnvDiff(env_info(env.name, env.data), "changed", (), Decimal(0), cpu, Decimal(0), mem)
    return Estimate(cpu, mem, priced.cost(cpu, mem), priced.currency, tuple(notes))


def build(
    aws: Aws, root: Path, envs: list[str], months: int, today: date, last: str | None = None
) -> CostReport:
    """The report for `envs` (all of the repository's when empty) over `months` complete months up to `last`."""
    start, end, labels = month_range(today, months, last)
    repo = load_repo(root)
    selected = repo.select_envs(envs or None)
    rows, units = fetch_spend(aws, start, end, [e.name for e in selected] if envs else None)
    by_name: dict[str, EnvCost] = {}
    for env in selected:
        budget, currency = budget_of(env)
        by_name[env.name] = EnvCost(env.name, True, budget, currency, estimate=kubernetes_estimate(root, env))
    for month, env_name, app, amount in rows:
        name = env_name or UNTAGGED_ENV
        if name not in by_name:
            if envs:
                continue  # a tag value the filter let through in another spelling
            by_name[name] = EnvCost(name, False)
        per_app = by_name[name].apps.setdefault(app or UNTAGGED_APP, {})
        per_app[month] = per_app.get(month, Decimal(0)) + amount
    unit = sorted(units)[0] if len(units) == 1 else "USD"
    notes = []
    if len(units) > 1:
        notes.append(f"Cost Explorer returned several units ({', '.join(sorted(units))}); amounts are summed")
    for e in by_name.values():
        if e.budget is not None and e.budget_currency != unit:
            notes.append(f"{e.name}: the budget is in {e.budget_currency}, the spend in {unit}")

    def order(e: EnvCost) -> tuple[int, str]:
        return (0 if e.in_repository else 2 if e.name == UNTAGGED_ENV else 1, e.name)

    return CostReport(start, end, labels, unit, sorted(by_name.values(), key=order), notes)


# --- output ----------------------------------------------------------------------------------------------


def _money(amount: Decimal) -> str:
    return format(amount.quantize(Decimal("0.01"), ROUND_HALF_UP), "f")


def _app_order(e: EnvCost) -> list[str]:
    return sorted(e.apps, key=lambda a: (a == UNTAGGED_APP, a))


def _budget_text(e: EnvCost) -> str:
    if not e.in_repository:
        return "not an environment in environments/"
    if e.budget is None:
        return "no budget"
    return f"budget {format_money(e.budget, e.budget_currency, signed=False)}/month"


def _estimate_text(e: EnvCost) -> str:
    est = e.estimate
    if est is None:
        return ""
    resources = f"{format_number(est.cpu)} CPU, {format_number(est.memory_gib)} GiB memory requested"
    price = (
        f"≈ {format_money(est.monthly, est.currency, signed=False)}/month"
        if est.monthly is not None
        else "no price table (pricing: in environment.yaml)"
    )
    return f"Kubernetes estimate: {resources} {price}"


def _rows(e: EnvCost, months: list[str]) -> list[list[str]]:
    rows = [[app, *(_money(e.apps[app].get(m, Decimal(0))) for m in months)] for app in _app_order(e)]
    rows.append(["total", *(_money(e.total(m)) for m in months)])
    if e.budget is not None:
        rows.append(["of budget", *(f"{e.budget_used(m)}%" for m in months)])
    return rows


def write_text(report: CostReport, out: TextIO) -> None:
    out.write(
        f"Cost Explorer {METRIC}, {report.months[0]} to {report.months[-1]} "
        f"({len(report.months)} month(s), {report.unit}), by the environment and app tags\n"
    )
    for e in report.envs:
        out.write(f"\n{e.name}: {_budget_text(e)}\n")
        if e.estimate is not None:
            out.write(f"  {_estimate_text(e)}\n")
            for note in e.estimate.notes:
                out.write(f"  note: {note}\n")
        if not e.apps:
            out.write("  no spend recorded\n")
            continue
        table = [["app", *report.months], *_rows(e, report.months)]
        width = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
        for r in table:
            cells = [r[0].ljust(width[0])] + [c.rjust(w) for c, w in zip(r[1:], width[1:], strict=True)]
            out.write("  " + "  ".join(cells).rstrip() + "\n")
    for note in report.notes:
        out.write(f"\nnote: {note}\n")


def write_markdown(report: CostReport, out: TextIO) -> None:
    out.write(f"## Cost: {report.months[0]} to {report.months[-1]}\n\n")
    out.write(
        f"Cost Explorer `{METRIC}` in {report.unit}, grouped by the `environment` and `app` tags; the "
        "Kubernetes estimate prices the CPU and memory the committed manifests request.\n"
    )
    for e in report.envs:
        out.write(f"\n### {e.name}\n\n{_budget_text(e)[0].upper()}{_budget_text(e)[1:]}.")
        if e.estimate is not None:
            out.write(f" {_estimate_text(e)}.")
            for note in e.estimate.notes:
                out.write(f" Note: {note}.")
        out.write("\n\n")
        if not e.apps:
            out.write("No spend recorded.\n")
            continue
        out.write("| app | " + " | ".join(report.months) + " |\n")
        out.write("|---|" + "---:|" * len(report.months) + "\n")
        for r in _rows(e, report.months):
            label = f"**{r[0]}**" if r[0] in ("total", "of budget") else r[0]
            out.write(f"| {label} | " + " | ".join(r[1:]) + " |\n")
    if report.notes:
        out.write("\n" + "".join(f"- {n}\n" for n in report.notes))


def to_dict(report: CostReport) -> dict[str, Any]:
    def env(e: EnvCost) -> dict[str, Any]:
        est = e.estimate
        return {
            "name": e.name,
            "inRepository": e.in_repository,
            "budget": None
            if e.budget is None
            else {"monthly": _money(e.budget), "currency": e.budget_currency},
            "months": {
                m: {
                    "total": _money(e.total(m)),
                    "budgetUsedPercent": None if e.budget_used(m) is None else str(e.budget_used(m)),
                }
                for m in report.months
            },
            "apps": [
                {"app": a, "months": {m: _money(e.apps[a].get(m, Decimal(0))) for m in report.months}}
                for a in _app_order(e)
            ],
            "kubernetes": None
            if est is None
            else {
                "cpu": format_number(est.cpu),
                "memoryGiB": format_number(est.memory_gib),
                "monthly": None if est.monthly is None else _money(est.monthly),
                "currency": est.currency,
                "notes": list(est.notes),
            },
        }

    return {
        "period": {"start": report.start, "end": report.end, "months": report.months},
        "metric": METRIC,
        "unit": report.unit,
        "environments": [env(e) for e in report.envs],
        "notes": report.notes,
    }


def write_json(report: CostReport, out: TextIO) -> None:
    json.dump(to_dict(report), out, indent=2, sort_keys=True)
    out.write("\n")
