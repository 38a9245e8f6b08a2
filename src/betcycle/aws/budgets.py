"""`budgets ensure`: one AWS Budget per environment, from the `budget:` section of its environment.yaml.

The budget is a monthly COST budget filtered on the `environment` cost-allocation tag (the tag every
Terraform resource gets through `default_tags`), so it tracks what that environment spends. Each alert is a
notification at a percentage of the limit, on ACTUAL or FORECASTED spend, sent to every subscriber (email
or SNS topic). Running it again changes only what differs: the limit (update_budget), alerts added or
removed, and an alert whose subscribers changed (recreated with the new list). Budgets of environments that
are gone are reported and left alone; nothing else in the account is touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TextIO

from betcycle.aws.session import Aws, aws_errors
from betcycle.errors import UserError, UserErrors
from betcycle.model.repo import Environment, Repo

#: a notification as AWS keys it: (ACTUAL|FORECASTED, threshold in percent)
AlertKey = tuple[str, Decimal]


@dataclass(frozen=True)
class Wanted:
    env: str
    name: str
    amount: Decimal
    unit: str
    alerts: tuple[AlertKey, ...]
    subscribers: tuple[tuple[str, str], ...]  # (EMAIL|SNS, address), sorted

    def budget(self) -> dict[str, Any]:
        return {
            "BudgetName": self.name,
            "BudgetLimit": {"Amount": _amount(self.amount), "Unit": self.unit},
            "TimeUnit": "MONTHLY",
            "BudgetType": "COST",
            "CostFilters": {"TagKeyValue": [f"user:environment${self.env}"]},
        }


def _amount(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if "." in text else f"{text}.0"


def _notification(key: AlertKey) -> dict[str, Any]:
    return {
        "NotificationType": key[0],
        "ComparisonOperator": "GREATER_THAN",
        "Threshold": float(key[1]),
        "ThresholdType": "PERCENTAGE",
    }


def _subscriber(address: str) -> tuple[str, str]:
    return ("SNS" if address.startswith("arn:") else "EMAIL", address)


def project_name(repo: Repo) -> str:
    """The repository's name from its repoURL (…/platform.git → platform), else its folder's name."""
    tail = repo.repo_url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    tail = tail.removesuffix(".git")
    return tail or repo.root.name


def wanted(repo: Repo) -> tuple[list[Wanted], list[Environment]]:
    """The budget each environment asks for, and the environments without `budget:`."""
    out: list[Wanted] = []
    skipped: list[Environment] = []
    errors: list[UserError] = []
    project = project_name(repo)
    for name in sorted(repo.envs):
        env = repo.envs[name]
        spec = env.data.get("budget")
        if not spec:
            skipped.append(env)
            continue
        alerts = tuple(
            sorted(
                {(str(a.get("type", "ACTUAL")), Decimal(str(a["threshold"]))) for a in spec.get("alerts", [])}
            )
        )
        subscribers = tuple(sorted(_subscriber(s) for s in spec.get("subscribers", [])))
        if alerts and not subscribers:
            errors.append(
                UserError(
                    "budget.alerts has no one to alert",
                    path=env.file,
                    line=env.line("budget", "alerts"),
                    hint="add budget.subscribers: [an email address or an SNS topic ARN]",
                )
            )
        if sum(1 for kind, _ in subscribers if kind == "SNS") > 1 or len(subscribers) > 11:
            errors.append(
                UserError(
                    "budget.subscribers: AWS allows at most 10 email addresses and 1 SNS topic per alert",
                    path=env.file,
                    line=env.line("budget", "subscribers"),
                    hint="send the alerts to one SNS topic and subscribe the rest there",
                )
            )
        out.append(
            Wanted(
                env=name,
                name=str(spec.get("name") or f"{project}-{name}"),
                amount=Decimal(str(spec["monthly"])),
                unit=str(spec.get("currency", "USD")),
                alerts=alerts,
                subscribers=subscribers,
            )
        )
    seen: dict[str, str] = {}
    for w in out:
        if w.name in seen:
            errors.append(
                UserError(
                    f"budget name {w.name!r} is also {seen[w.name]}'s",
                    path=repo.envs[w.env].file,
                    line=repo.envs[w.env].line("budget", "name"),
                    hint="give each environment its own budget.name",
                )
            )
        seen[w.name] = w.env
    if errors:
        raise UserErrors(errors)
    return out, skipped


def _alerts_of(aws: Aws, account: str, name: str) -> dict[AlertKey, dict[str, Any]]:
    found: dict[AlertKey, dict[str, Any]] = {}
    for n in aws.paginate(
        "budgets", "describe_notifications_for_budget", "Notifications", AccountId=account, BudgetName=name
    ):
        if (
            n.get("ComparisonOperator") == "GREATER_THAN"
            and n.get("ThresholdType", "PERCENTAGE") == "PERCENTAGE"
        ):
            found[(str(n["NotificationType"]), Decimal(str(n["Threshold"])))] = n
        else:  # an alert someone added by hand in another shape: ours can't match it, so it is removed
            found[(f"{n['NotificationType']} {n['ComparisonOperator']}", Decimal(str(n["Threshold"])))] = n
    return found


def _subscribers_of(
    aws: Aws, account: str, name: str, notification: dict[str, Any]
) -> tuple[tuple[str, str], ...] | None:
    """The alert's subscribers, or None when the endpoint can't say (moto 5.2.5 has no such call)."""
    from botocore.exceptions import ClientError

    doing = f"reading the subscribers of an alert of budget {name}"
    with aws_errors(doing):
        paginator = aws.client("budgets").get_paginator("describe_subscribers_for_notification")
        try:
            pages = paginator.paginate(AccountId=account, BudgetName=name, Notification=notification)
            subs = [s for page in pages for s in page.get("Subscribers", [])]
        except ClientError as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if status >= 500 or exc.response.get("Error", {}).get("Code") == "NotImplemented":
                return None
            raise
    return tuple(sorted((str(s["SubscriptionType"]), str(s["Address"])) for s in subs))


def _describe(key: AlertKey) -> str:
    return f"{key[0]} > {_amount(key[1]).removesuffix('.0')}%"


def ensure(aws: Aws, repo: Repo, out: TextIO) -> int:
    """Create or update each environment's budget; print every change, or "no changes"."""
    budgets, skipped = wanted(repo)
    changes = 0

    def say(line: str) -> None:
        nonlocal changes
        changes += 1
        out.write(line + "\n")

    for env in skipped:
        out.write(f"{env.name}: skipped (no budget: in {env.file})\n")
    if not budgets:
        out.write("no changes\n")
        return 0
    with aws_errors("reading the AWS account id (sts get-caller-identity)"):
        account = str(aws.client("sts").get_caller_identity()["Account"])
    client = aws.client("budgets")
    existing = {
        str(b["BudgetName"]): b
        for b in aws.paginate("budgets", "describe_budgets", "Budgets", AccountId=account)
    }
    readable = True  # whether the endpoint answers DescribeSubscribersForNotification
    for w in budgets:
        subscribers = [{"SubscriptionType": k, "Address": a} for k, a in w.subscribers]
        have = existing.get(w.name)
        if have is None:
            with aws_errors(f"creating budget {w.name}"):
                client.create_budget(
                    AccountId=account,
                    Budget=w.budget(),
                    NotificationsWithSubscribers=[
                        {"Notification": _notification(k), "Subscribers": subscribers} for k in w.alerts
                    ],
                )
            alerts = ", ".join(_describe(k) for k in w.alerts) or "no alerts"
            say(f"{w.env}: created budget {w.name} ({_amount(w.amount)} {w.unit}/month; {alerts})")
            continue
        limit = have.get("BudgetLimit", {})
        old = (Decimal(str(limit.get("Amount", "0"))), str(limit.get("Unit", "")))
        filters = have.get("CostFilters", {})
        if (
            old != (w.amount, w.unit)
            or filters != w.budget()["CostFilters"]
            or have.get("TimeUnit") != "MONTHLY"
        ):
            with aws_errors(f"updating budget {w.name}"):
                client.update_budget(AccountId=account, NewBudget=w.budget())
            if old != (w.amount, w.unit):
                say(
                    f"{w.env}: budget {w.name} limit {_amount(old[0])} {old[1]} → {_amount(w.amount)} {w.unit}"
                )
            else:
                say(f"{w.env}: budget {w.name} filter/period set to the environment tag, monthly")
        present = _alerts_of(aws, account, w.name)
        for key, notification in sorted(present.items()):
            if key not in w.alerts:
                with aws_errors(f"removing an alert of budget {w.name}"):
                    client.delete_notification(
                        AccountId=account, BudgetName=w.name, Notification=notification
                    )
                say(f"{w.env}: budget {w.name} alert {_describe(key)} removed")
        for key in w.alerts:
            if key in present:
                current = _subscribers_of(aws, account, w.name, present[key]) if readable else None
                if current is None and readable:
                    readable = False
                    out.write(
                        "warning: the endpoint can't list an alert's subscribers "
                        "(DescribeSubscribersForNotification failed); subscribers were not compared\n"
                    )
                if current is None or current == w.subscribers:
                    continue
                # recreating the alert is the one way to change all of its subscribers in two calls
                with aws_errors(f"replacing an alert of budget {w.name}"):
                    client.delete_notification(
                        AccountId=account, BudgetName=w.name, Notification=present[key]
                    )
                    client.create_notification(
                        AccountId=account,
                        BudgetName=w.name,
                        Notification=_notification(key),
                        Subscribers=subscribers,
                    )
                say(
                    f"{w.env}: budget {w.name} alert {_describe(key)} subscribers → {', '.join(a for _, a in w.subscribers)}"
                )
                continue
            with aws_errors(f"adding an alert to budget {w.name}"):
                client.create_notification(
                    AccountId=account,
                    BudgetName=w.name,
                    Notification=_notification(key),
                    Subscribers=subscribers,
                )
            say(f"{w.env}: budget {w.name} alert {_describe(key)} added")
    prefix = f"{project_name(repo)}-"
    ours = {w.name for w in budgets}
    for name in sorted(existing):
        if name.startswith(prefix) and name not in ours and name.removeprefix(prefix) not in repo.envs:
            out.write(f"{name}: not in environments/: left alone\n")
    if not changes:
        out.write("no changes\n")
    return 0
