"""aws/budgets.py: `budgets ensure` keeps one AWS Budget per environment that has a `budget:` section."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from betcycle.aws.session import Aws

Cli = Callable[..., tuple[int, str, str]]
ACCOUNT = "123456789012"

STAGING = """\
budget:
  monthly: 300
  alerts:
    - {threshold: 80, type: ACTUAL}
    - {threshold: 100, type: FORECASTED}
  subscribers: [ops@example.com]
"""
PROD = """\
budget:
  monthly: 1200.5
  currency: USD
  alerts: [{threshold: 90}]
  subscribers: [ops@example.com, "arn:aws:sns:eu-west-1:123456789012:budget-alerts"]
"""


@pytest.fixture
def budgets_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two Budgets calls moto 5.2.5 lacks (UpdateBudget, DescribeSubscribersForNotification), added to the
    moto server running in this process so the code under test still goes through boto3 over HTTP."""
    from moto.budgets.exceptions import NotFoundException
    from moto.budgets.responses import BudgetsResponse

    def update_budget(self: Any) -> str:
        new = self._get_param("NewBudget")
        budgets = self.backend.budgets[self._get_param("AccountId")]
        if new["BudgetName"] not in budgets:
            raise NotFoundException(
                f"Unable to update budget: {new['BudgetName']} - the budget doesn't exist."
            )
        budgets[new["BudgetName"]].budget.update(new)
        return json.dumps({})

    def describe_subscribers_for_notification(self: Any) -> str:
        budget = self.backend.budgets[self._get_param("AccountId")][self._get_param("BudgetName")]
        wanted = self._get_param("Notification")
        for n in budget.notifications:
            if n.details == wanted:
                return json.dumps({"Subscribers": n.subscribers})
        raise NotFoundException("Unable to find the notification")

    monkeypatch.setattr(BudgetsResponse, "update_budget", update_budget, raising=False)
    monkeypatch.setattr(
        BudgetsResponse,
        "describe_subscribers_for_notification",
        describe_subscribers_for_notification,
        raising=False,
    )


def add(root: Path, env: str, text: str) -> None:
    path = root / "environments" / env / "environment.yaml"
    path.write_text(path.read_text() + text)


def replace(root: Path, env: str, old: str, new: str) -> None:
    path = root / "environments" / env / "environment.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def budgets() -> dict[str, dict[str, Any]]:
    found = Aws().client("budgets").describe_budgets(AccountId=ACCOUNT).get("Budgets", [])
    return {b["BudgetName"]: b for b in found}


def alerts(name: str) -> list[tuple[str, float]]:
    found = Aws().client("budgets").describe_notifications_for_budget(AccountId=ACCOUNT, BudgetName=name)
    return sorted((n["NotificationType"], n["Threshold"]) for n in found["Notifications"])


def test_a_budget_per_environment_then_no_changes(
    aws: str, budgets_api: None, example: Path, cli: Cli
) -> None:
    add(example, "staging", STAGING)
    add(example, "prod", PROD)
    code, out, err = cli("--root", example, "budgets", "ensure", "--endpoint-url", aws)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "dev: skipped (no budget: in environments/dev/environment.yaml)",
        "prod: created budget platform-prod (1200.5 USD/month; ACTUAL > 90%)",
        "staging: created budget platform-staging (300.0 USD/month; ACTUAL > 80%, FORECASTED > 100%)",
    ]
    found = budgets()
    assert sorted(found) == ["platform-prod", "platform-staging"]
    assert found["platform-staging"]["BudgetLimit"] == {"Amount": "300.0", "Unit": "USD"}
    assert found["platform-staging"]["TimeUnit"] == "MONTHLY"
    assert found["platform-staging"]["CostFilters"] == {"TagKeyValue": ["user:environment$staging"]}
    assert alerts("platform-staging") == [("ACTUAL", 80.0), ("FORECASTED", 100.0)]

    code, out, _ = cli("--root", example, "budgets", "ensure")
    assert (code, out) == (0, "dev: skipped (no budget: in environments/dev/environment.yaml)\nno changes\n")


def test_limit_alert_and_subscriber_changes_are_updates(
    aws: str, budgets_api: None, example: Path, cli: Cli
) -> None:
    add(example, "staging", STAGING)
    cli("--root", example, "budgets", "ensure")
    replace(example, "staging", "monthly: 300", "monthly: 450")
    replace(example, "staging", "{threshold: 80, type: ACTUAL}", "{threshold: 50, type: ACTUAL}")
    replace(example, "staging", "[ops@example.com]", "[ops@example.com, finance@example.com]")
    code, out, _ = cli("--root", example, "budgets", "ensure")
    assert code == 0
    assert out.splitlines()[2:] == [
        "staging: budget platform-staging limit 300.0 USD → 450.0 USD",
        "staging: budget platform-staging alert ACTUAL > 80% removed",
        "staging: budget platform-staging alert ACTUAL > 50% added",
        "staging: budget platform-staging alert FORECASTED > 100% subscribers → finance@example.com, ops@example.com",
    ]
    assert budgets()["platform-staging"]["BudgetLimit"]["Amount"] == "450.0"
    assert alerts("platform-staging") == [("ACTUAL", 50.0), ("FORECASTED", 100.0)]
    subscribers = (
        Aws()
        .client("budgets")
        .describe_subscribers_for_notification(
            AccountId=ACCOUNT,
            BudgetName="platform-staging",
            Notification={
                "NotificationType": "FORECASTED",
                "ComparisonOperator": "GREATER_THAN",
                "Threshold": 100.0,
                "ThresholdType": "PERCENTAGE",
            },
        )["Subscribers"]
    )
    assert sorted(s["Address"] for s in subscribers) == ["finance@example.com", "ops@example.com"]
    assert cli("--root", example, "budgets", "ensure")[1].endswith("no changes\n")


def test_a_removed_environments_budget_is_left_alone(
    aws: str, budgets_api: None, example: Path, cli: Cli
) -> None:
    Aws().client("budgets").create_budget(
        AccountId=ACCOUNT,
        Budget={
            "BudgetName": "platform-qa",
            "BudgetLimit": {"Amount": "10", "Unit": "USD"},
            "TimeUnit": "MONTHLY",
            "BudgetType": "COST",
        },
    )
    add(example, "staging", STAGING)
    code, out, _ = cli("--root", example, "budgets", "ensure")
    assert code == 0
    assert "platform-qa: not in environments/: left alone" in out.splitlines()
    assert "platform-qa" in budgets()


def test_name_override_and_no_budget_anywhere(aws: str, budgets_api: None, example: Path, cli: Cli) -> None:
    assert cli("--root", example, "budgets", "ensure")[1].splitlines()[-1] == "no changes"
    add(example, "staging", "budget:\n  name: team-x staging\n  monthly: 5\n")
    out = cli("--root", example, "budgets", "ensure")[1]
    assert "staging: created budget team-x staging (5.0 USD/month; no alerts)" in out.splitlines()


@pytest.mark.parametrize(
    ("text", "first_line"),
    [
        (
            "budget:\n  monthly: 0\n",
            "error: environments/staging/environment.yaml:",
        ),
        (
            "budget:\n  monthly: 10\n  alerts: [{threshold: 80, type: ACTUALLY}]\n  subscribers: [a@b.io]\n",
            "error: environments/staging/environment.yaml:",
        ),
        (
            "budget:\n  monthly: 10\n  subscribers: [not-an-address]\n",
            "error: environments/staging/environment.yaml:",
        ),
    ],
)
def test_schema_checks_the_budget(example: Path, cli: Cli, text: str, first_line: str) -> None:
    add(example, "staging", text)
    code, out, err = cli("--root", example, "budgets", "ensure")
    assert (code, out) == (2, "")
    assert err.startswith(first_line)


def test_alerts_without_subscribers_name_the_line(example: Path, cli: Cli) -> None:
    add(example, "staging", "budget:\n  monthly: 10\n  alerts: [{threshold: 80}]\n")
    code, _, err = cli("--root", example, "budgets", "ensure")
    assert code == 2
    lines = (example / "environments/staging/environment.yaml").read_text().splitlines()
    line = lines.index("  alerts: [{threshold: 80}]") + 1
    assert err.splitlines()[:2] == [
        f"error: environments/staging/environment.yaml:{line}: budget.alerts has no one to alert",
        "  hint: add budget.subscribers: [an email address or an SNS topic ARN]",
    ]


def test_the_same_name_twice_is_refused(example: Path, cli: Cli) -> None:
    add(example, "staging", "budget:\n  name: shared\n  monthly: 10\n")
    add(example, "prod", "budget:\n  name: shared\n  monthly: 10\n")
    code, _, err = cli("--root", example, "budgets", "ensure")
    assert code == 2
    assert "budget name 'shared' is also prod's" in err


def test_access_denied_is_one_line(
    monkeypatch: pytest.MonkeyPatch, aws: str, example: Path, cli: Cli
) -> None:
    from botocore.exceptions import ClientError

    def deny(**_: object) -> None:
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not authorized to budgets:ViewBudget"}},
            "DescribeBudgets",
        )

    real = Aws.client

    def client(self: Aws, service: str) -> object:
        made = real(self, service)
        made.meta.events.register("before-call.budgets.DescribeBudgets", deny, unique_id="deny-budgets")
        return made

    monkeypatch.setattr(Aws, "client", client)
    add(example, "staging", STAGING)
    code, out, err = cli("--root", example, "budgets", "ensure")
    assert (code, out) == (
        2,
        "dev: skipped (no budget: in environments/dev/environment.yaml)\n"
        "prod: skipped (no budget: in environments/prod/environment.yaml)\n",
    )
    assert err.splitlines()[0] == (
        "error: budgets describe_budgets: AccessDeniedException: not authorized to budgets:ViewBudget"
    )


def test_an_endpoint_without_the_subscribers_call_still_reports_no_changes(
    aws: str, example: Path, cli: Cli
) -> None:
    """A plain moto server (no DescribeSubscribersForNotification): the second run says so, once."""
    add(example, "staging", STAGING)
    assert cli("--root", example, "budgets", "ensure")[0] == 0
    code, out, err = cli("--root", example, "budgets", "ensure")
    assert (code, err) == (0, "")
    assert out.splitlines()[2:] == [
        "warning: the endpoint can't list an alert's subscribers (DescribeSubscribersForNotification "
        "failed); subscribers were not compared",
        "no changes",
    ]
