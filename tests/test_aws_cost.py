"""aws/cost.py and `betcycle cost report`: Cost Explorer results seeded through moto's API, over HTTP."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from betcycle.aws import cost
from betcycle.errors import UserError

Cli = Callable[..., tuple[int, str, str]]


def _seed(moto: str, *results: dict[str, Any]) -> None:
    """Queue GetCostAndUsage answers: moto hands them out in order, one per distinct request."""
    request = urllib.request.Request(
        f"{moto}/moto-api/static/ce/cost-and-usage-results",
        data=json.dumps({"results": list(results)}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
        assert response.status == 201


def _group(env: str, app: str, amount: str) -> dict[str, Any]:
    return {
        "Keys": [f"environment${env}", f"app${app}"],
        "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}},
    }


def _period(month: str, *groups: dict[str, Any]) -> dict[str, Any]:
    return {
        "TimePeriod": {"Start": f"{month}-01", "End": "x"},
        "Total": {},
        "Groups": list(groups),
        "Estimated": False,
    }


def _months() -> list[str]:
    return cost.month_range(datetime.now(UTC).date(), 2)[2]


def _budget(example: Path, env: str, monthly: int) -> None:
    path = example / "environments" / env / "environment.yaml"
    text = path.read_text().split("\nbudget:")[0].rstrip("\n")  # the fixture's own budget:, if any
    path.write_text(f"{text}\nbudget:\n  monthly: {monthly}\n")


def _seed_two_pages(moto: str) -> list[str]:
    m1, m2 = _months()
    page1 = {
        "ResultsByTime": [
            _period(m1, _group("staging", "hello", "100.004"), _group("staging", "", "20")),
            _period(m2, _group("staging", "hello", "150"), _group("", "", "7.5")),
        ],
        "NextPageToken": "page-2",
        "DimensionValueAttributes": [],
    }
    page2 = {
        "ResultsByTime": [_period(m2, _group("prod", "hello", "400"), _group("sandbox", "tool", "3"))],
        "DimensionValueAttributes": [],
    }
    _seed(moto, page1, page2)
    return [m1, m2]


@pytest.fixture
def budgeted(example: Path) -> Path:
    _budget(example, "staging", 200)
    _budget(example, "prod", 1000)
    path = example / "environments" / "dev" / "environment.yaml"
    path.write_text(path.read_text().split("\nbudget:")[0].rstrip("\n") + "\n")  # dev: no budget
    return example


def test_text_report_every_page_per_environment_and_app(aws: str, budgeted: Path, cli: Cli) -> None:
    m1, m2 = _seed_two_pages(aws)
    code, out, err = cli("--root", budgeted, "cost", "report", "--months", "2")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == (
        f"Cost Explorer UnblendedCost, {m1} to {m2} (2 month(s), USD), by the environment and app tags"
    )
    staging = lines[lines.index("staging: budget 200.00 USD/month") :]
    assert staging[1].startswith("  Kubernetes estimate: ")
    assert staging[2:7] == [
        f"  app           {m1}  {m2}",
        "  hello          100.00   150.00",
        "  (no app tag)    20.00     0.00",
        "  total          120.00   150.00",
        "  of budget       60.0%    75.0%",
    ]
    assert "dev: no budget" in lines
    assert lines[lines.index("dev: no budget") + 2] == "  no spend recorded"
    # the second page (NextPageToken) is there, and tag values outside environments/ come after, untagged last
    assert "prod: budget 1000.00 USD/month" in lines
    names = [line.split(":")[0] for line in lines if line and not line.startswith((" ", "Cost"))]
    assert names == ["dev", "prod", "staging", "sandbox", "(untagged)"]
    assert "sandbox: not an environment in environments/" in lines


def test_the_kubernetes_estimate_is_the_diffs(aws: str, budgeted: Path) -> None:
    from betcycle.diff.cost import requested
    from betcycle.model.repo import load_repo
    from betcycle.validate.manifests import load_env_manifests

    env = load_repo(budgeted).envs["staging"]
    cpu, mem, _ = requested(load_env_manifests(budgeted, "staging", env.manifests_dir))
    est = cost.kubernetes_estimate(budgeted, env)
    assert (est.cpu, est.memory_gib) == (cpu, mem) and cpu > 0
    assert (
        est.monthly == cpu * 24 + mem * 32 / 10
    )  # the fixture's staging pricing: 24.0 per core, 3.2 per GiB
    assert est.currency == "USD"


def test_json_and_markdown(aws: str, budgeted: Path, cli: Cli) -> None:
    m1, m2 = _seed_two_pages(aws)
    code, out, _ = cli("--root", budgeted, "cost", "report", "--months", "2", "--format", "json")
    doc = json.loads(out)
    assert code == 0
    assert doc["period"]["months"] == [m1, m2]
    staging = next(e for e in doc["environments"] if e["name"] == "staging")
    assert staging["budget"] == {"monthly": "200.00", "currency": "USD"}
    assert staging["months"][m2] == {"total": "150.00", "budgetUsedPercent": "75.0"}
    assert staging["apps"] == [
        {"app": "hello", "months": {m1: "100.00", m2: "150.00"}},
        {"app": "(no app tag)", "months": {m1: "20.00", m2: "0.00"}},
    ]
    assert staging["kubernetes"]["currency"] == "USD"
    assert [e["name"] for e in doc["environments"]] == ["dev", "prod", "staging", "sandbox", "(untagged)"]

    code, out, _ = cli("--root", budgeted, "cost", "report", "--months", "2", "--format", "markdown")
    assert code == 0
    assert out.startswith(f"## Cost: {m1} to {m2}\n")
    assert "### staging\n\nBudget 200.00 USD/month. Kubernetes estimate: " in out
    assert f"| app | {m1} | {m2} |\n|---|---:|---:|\n| hello | 100.00 | 150.00 |\n" in out
    assert "| **of budget** | 60.0% | 75.0% |" in out


def test_deterministic(aws: str, budgeted: Path, cli: Cli) -> None:
    _seed_two_pages(aws)
    first = cli("--root", budgeted, "cost", "report", "--months", "2", "--format", "json")
    # moto answers the same request with the same result, as Cost Explorer does for a closed month
    assert cli("--root", budgeted, "cost", "report", "--months", "2", "--format", "json") == first


def test_env_filter_only_reports_that_environment(aws: str, budgeted: Path, cli: Cli) -> None:
    _, m2 = _months()
    _seed(
        aws, {"ResultsByTime": [_period(m2, _group("staging", "hello", "5"))], "DimensionValueAttributes": []}
    )
    code, out, _ = cli(
        "--root", budgeted, "cost", "report", "--env", "staging", "--months", "2", "-o", budgeted / "c.md"
    )
    assert (code, out) == (0, "")
    text = (budgeted / "c.md").read_text()
    assert "staging: budget 200.00 USD/month" in text and "prod" not in text


def test_no_spend_at_all(aws: str, budgeted: Path, cli: Cli) -> None:
    code, out, _ = cli("--root", budgeted, "cost", "report", "--env", "dev")
    assert code == 0
    lines = out.splitlines()
    assert lines[1:3] == ["", "dev: no budget"]
    assert lines[3].startswith("  Kubernetes estimate: ")
    assert lines[4:] == ["  no spend recorded"]


def test_months_are_the_complete_ones_before_today() -> None:
    assert cost.month_range(date(2026, 1, 15), 3) == (
        "2025-10-01",
        "2026-01-01",
        ["2025-10", "2025-11", "2025-12"],
    )
    assert cost.month_range(date(2026, 3, 1), 1) == ("2026-02-01", "2026-03-01", ["2026-02"])
    with pytest.raises(UserError, match="--months must be between 1 and 14, not 15"):
        cost.month_range(date(2026, 3, 1), 15)
    assert cost.month_range(date(2026, 3, 1), 2, "2025-12") == (
        "2025-11-01",
        "2026-01-01",
        ["2025-11", "2025-12"],
    )
    with pytest.raises(UserError, match="--to 2026-03 is not a complete month yet"):
        cost.month_range(date(2026, 3, 31), 1, "2026-03")
    with pytest.raises(UserError, match="--to must be a month such as 2026-09, not '2026-13'"):
        cost.month_range(date(2026, 3, 1), 1, "2026-13")


def test_to_picks_the_period(aws: str, budgeted: Path, cli: Cli) -> None:
    _seed(
        aws,
        {
            "ResultsByTime": [_period("2025-02", _group("prod", "hello", "12.345"))],
            "DimensionValueAttributes": [],
        },
    )
    code, out, _ = cli(
        "--root", budgeted, "cost", "report", "--env", "prod", "--months", "1", "--to", "2025-02"
    )
    assert code == 0
    assert out.splitlines()[0].startswith("Cost Explorer UnblendedCost, 2025-02 to 2025-02 (1 month(s), USD)")
    assert "  hello        12.35" in out.splitlines()


def test_bad_months_and_unknown_env_are_usage_errors(aws: str, budgeted: Path, cli: Cli) -> None:
    code, _, err = cli("--root", budgeted, "cost", "report", "--months", "0")
    assert (code, err.splitlines()[0]) == (2, "error: --months must be between 1 and 14, not 0")
    code, _, err = cli("--root", budgeted, "cost", "report", "--env", "stagin")
    assert code == 2
    assert err.splitlines()[0] == "error: unknown environment 'stagin'"


def test_an_aws_error_is_one_line_exit_2(aws: str, budgeted: Path, cli: Cli) -> None:
    _seed(
        aws,
        {
            "ResultsByTime": [
                {
                    "TimePeriod": {"Start": "2026-01-01"},
                    "Groups": [
                        {
                            "Keys": ["environment$x", "app$y"],
                            "Metrics": {"UnblendedCost": {"Amount": "lots", "Unit": "USD"}},
                        }
                    ],
                }
            ]
        },
    )
    code, out, err = cli("--root", budgeted, "cost", "report")
    assert (code, out) == (2, "")
    assert err.splitlines() == ["error: Cost Explorer returned an amount that is not a number: 'lots'"]


def test_an_unreachable_endpoint_is_one_line(
    aws: str, budgeted: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setattr("betcycle.aws.session.RETRIES", {"mode": "standard", "max_attempts": 1})
    code, out, err = cli("--root", budgeted, "cost", "report")
    assert (code, out) == (2, "")
    assert err.splitlines()[0].startswith("error: Cost Explorer GetCostAndUsage: cannot reach AWS (")
    assert "Traceback" not in err
