"""`registry ensure` and `registry gate`: one ECR repository per app, and the image scan gate.

`ensure` keeps, for every app in `apps/`, a repository named `<registry.prefix><app>` (betcycle.yaml) that
scans on push, has immutable tags, carries the tags `app` and `owner`, and has the lifecycle policy below,
the same settings as Terraform's `ecr` module, so neither undoes the other's work. `managed-by=betcycle` is
set only on a repository it creates (Terraform's `default_tags` say `terraform` once it adopts one). It
changes only what differs and never deletes: a repository with an `app` tag whose app is gone is reported and
left alone (its images may still run somewhere; deleting is Terraform's job).

`gate` reads the scan of one image and fails when the image is missing, the scan isn't complete, or a finding
is more severe than the threshold.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from betcycle.aws.session import Aws, aws_errors
from betcycle.errors import UserError
from betcycle.model.repo import SETTINGS_FILE, Repo, unknown_name
from betcycle.model.yamlio import load_with_lines, read_text

#: ECR's severities, most severe first
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED")
DEFAULT_MAX_SEVERITY = "HIGH"
MANAGED_BY = ("managed-by", "betcycle")


@dataclass(frozen=True)
class Settings:
    prefix: str = ""
    untagged_expire_days: int = 14
    keep_tagged: int = 100

    def repository(self, app: str) -> str:
        return f"{self.prefix}{app}"

    def lifecycle_policy(self) -> dict[str, Any]:
        return {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"expire untagged images after {self.untagged_expire_days} days",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": self.untagged_expire_days,
                    },
                    "action": {"type": "expire"},
                },
                {
                    "rulePriority": 2,
                    "description": f"keep the newest {self.keep_tagged} tagged images",
                    "selection": {
                        "tagStatus": "tagged",
                        "tagPatternList": ["*"],
                        "countType": "imageCountMoreThan",
                        "countNumber": self.keep_tagged,
                    },
                    "action": {"type": "expire"},
                },
            ]
        }


def settings(root: Path) -> Settings:
    """The `registry:` section of betcycle.yaml (load_repo has checked it against the schema)."""
    path = root / SETTINGS_FILE
    if not path.exists():
        return Settings()
    data, _ = load_with_lines(read_text(path, SETTINGS_FILE), SETTINGS_FILE)
    section = (data.get("registry") or {}) if isinstance(data, dict) else {}
    return Settings(
        prefix=str(section.get("prefix", "")),
        untagged_expire_days=int(section.get("untaggedExpireDays", 14)),
        keep_tagged=int(section.get("keepTagged", 100)),
    )


def _tags_of(aws: Aws, arn: str) -> dict[str, str]:
    with aws_errors(f"reading the tags of {arn}"):
        tags = aws.client("ecr").list_tags_for_resource(resourceArn=arn).get("tags", [])
    return {str(t["Key"]): str(t["Value"]) for t in tags}


def ensure(aws: Aws, repo: Repo, out: TextIO) -> int:
    """Create or fix one repository per app; print every change, or "no changes"."""
    conf = settings(repo.root)
    ecr = aws.client("ecr")
    existing = {
        str(r["repositoryName"]): r for r in aws.paginate("ecr", "describe_repositories", "repositories")
    }
    policy = conf.lifecycle_policy()
    changes = 0

    def say(line: str) -> None:
        nonlocal changes
        changes += 1
        out.write(line + "\n")

    wanted = {conf.repository(name): repo.apps[name] for name in sorted(repo.apps)}
    for name, app in wanted.items():
        tags = {"app": app.name, "owner": app.owner}
        have = existing.get(name)
        if have is None:
            with aws_errors(f"creating ECR repository {name}"):
                ecr.create_repository(
                    repositoryName=name,
                    imageTagMutability="IMMUTABLE",
                    imageScanningConfiguration={"scanOnPush": True},
                    encryptionConfiguration={"encryptionType": "AES256"},
                    tags=[{"Key": k, "Value": v} for k, v in {**tags, MANAGED_BY[0]: MANAGED_BY[1]}.items()],
                )
                ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=json.dumps(policy))
            say(f"{name}: created (scan on push, immutable tags, lifecycle policy)")
            continue
        if not have.get("imageScanningConfiguration", {}).get("scanOnPush"):
            with aws_errors(f"turning on scan on push for {name}"):
                ecr.put_image_scanning_configuration(
                    repositoryName=name, imageScanningConfiguration={"scanOnPush": True}
                )
            say(f"{name}: scan on push turned on")
        if have.get("imageTagMutability") != "IMMUTABLE":
            with aws_errors(f"making the tags of {name} immutable"):
                ecr.put_image_tag_mutability(repositoryName=name, imageTagMutability="IMMUTABLE")
            say(f"{name}: tags made immutable (was {have.get('imageTagMutability')})")
        current: Any = None
        try:
            with aws_errors(f"reading the lifecycle policy of {name}"):
                current = json.loads(ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"])
        except UserError as exc:
            if "LifecyclePolicyNotFoundException" not in exc.message:
                raise
        if current != policy:
            with aws_errors(f"setting the lifecycle policy of {name}"):
                ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=json.dumps(policy))
            say(f"{name}: lifecycle policy {'replaced' if current else 'set'}")
        have_tags = _tags_of(aws, str(have["repositoryArn"]))
        missing = {k: v for k, v in tags.items() if have_tags.get(k) != v}
        if missing:
            with aws_errors(f"tagging {name}"):
                ecr.tag_resource(
                    resourceArn=have["repositoryArn"],
                    tags=[{"Key": k, "Value": v} for k, v in missing.items()],
                )
            say(f"{name}: tagged {', '.join(f'{k}={v}' for k, v in sorted(missing.items()))}")
    for name in sorted(set(existing) - set(wanted)):
        if "app" in _tags_of(aws, str(existing[name]["repositoryArn"])):  # an app's, made by us or Terraform
            out.write(f"{name}: not in apps/: left alone\n")
    if not changes:
        out.write("no changes\n")
    return 0


# --- the gate ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scan:
    """What ECR says about one image's scan: its status and the count of findings per severity."""

    status: str  # COMPLETE, IN_PROGRESS, FAILED, … or MISSING (no such image)
    description: str
    counts: Mapping[str, int]


#: where the gate gets a scan from: (repository, tag) → Scan; ecr_scan below, or a fake in tests
ScanSource = Callable[[str, str], Scan]


def ecr_scan(aws: Aws) -> ScanSource:
    def read(repository: str, tag: str) -> Scan:
        from botocore.exceptions import ClientError

        ecr = aws.client("ecr")
        try:
            # the severity counts are totals over all findings, so the first page holds all of them
            found = ecr.describe_image_scan_findings(
                repositoryName=repository, imageId={"imageTag": tag}, maxResults=1
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("ImageNotFoundException", "RepositoryNotFoundException"):
                return Scan("MISSING", str(exc.response["Error"].get("Message", code)), {})
            if code == "ScanNotFoundException":
                return Scan("NOT_SCANNED", "the image has never been scanned", {})
            with aws_errors(f"reading the scan of {repository}:{tag}"):
                raise
        status = found.get("imageScanStatus", {})
        counts = found.get("imageScanFindings", {}).get("findingSeverityCounts", {}) or {}
        return Scan(
            str(status.get("status", "UNKNOWN")),
            str(status.get("description", "")),
            {str(k): int(v) for k, v in counts.items()},
        )

    return read


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str


def judge(repository: str, tag: str, scan: Scan, max_severity: str) -> Verdict:
    """Pass when the scan is complete and nothing is more severe than `max_severity`."""
    image = f"{repository}:{tag}"
    if scan.status == "MISSING":
        return Verdict(False, f"{image}: no such image in ECR ({scan.description})")
    if scan.status != "COMPLETE":
        detail = f": {scan.description}" if scan.description else ""
        return Verdict(False, f"{image}: the scan is not complete (status {scan.status}{detail})")
    allowed = SEVERITIES[SEVERITIES.index(max_severity) :]
    counts = ", ".join(f"{s} {scan.counts[s]}" for s in SEVERITIES if scan.counts.get(s))
    too_severe = {s: n for s, n in scan.counts.items() if n and s in SEVERITIES and s not in allowed}
    if too_severe:
        worst = ", ".join(
            f"{n} {s}" for s, n in sorted(too_severe.items(), key=lambda i: SEVERITIES.index(i[0]))
        )
        return Verdict(False, f"{image}: {worst} finding(s) above {max_severity} (all findings: {counts})")
    return Verdict(True, f"{image}: scan clean at {max_severity} ({counts or 'no findings'})")


def gate(repo: Repo, app: str, tag: str, max_severity: str, source: ScanSource, out: TextIO) -> int:
    """`registry gate`: exit 0 when the image passes, 1 when it doesn't (saying why)."""
    if app not in repo.apps:
        raise unknown_name("app", app, sorted(repo.apps))
    repository = settings(repo.root).repository(app)
    verdict = judge(repository, tag, source(repository, tag), max_severity)
    out.write(("ok: " if verdict.ok else "gate failed: ") + verdict.message + "\n")
    return 0 if verdict.ok else 1


def has_credentials(aws: Aws) -> str | None:
    """None when the usual chain finds credentials, else why not (for the 'skipped' message)."""
    with aws_errors("looking for AWS credentials"):
        found = aws.session().get_credentials()
    if found is None:
        return "none in the environment, the shared files, SSO or an instance role"
    return None


def promotion_gate(
    repo: Repo, target: str, app: str, tag: str, *, aws: Aws, require: bool, out: TextIO
) -> int:
    """What `promote` runs before changing anything: 0 to go on (gate passed, not required, or skipped
    without credentials and not --require-gate), 1 when the image fails the gate."""
    env = repo.envs[target]
    promotion = env.data.get("promotion") or {}
    if not promotion.get("requireImageScan"):
        return 0
    max_severity = str(promotion.get("maxSeverity", DEFAULT_MAX_SEVERITY))
    missing = has_credentials(aws)
    if missing:
        message = f"image scan gate skipped: no AWS credentials ({missing})"
        if require:
            raise UserError(
                message,
                path=env.file,
                line=env.line("promotion", "requireImageScan"),
                hint="configure AWS credentials (AWS_PROFILE, SSO, OIDC in CI), or promote without --require-gate",
            )
        out.write(f"{message}; {target} requires it, --require-gate makes this an error\n")
        return 0
    repository = settings(repo.root).repository(app)
    verdict = judge(repository, tag, ecr_scan(aws)(repository, tag), max_severity)
    if not verdict.ok:
        out.write(
            f"image scan gate failed ({env.file} requires it): {verdict.message}; nothing was changed\n"
        )
        return 1
    out.write(f"image scan gate: {verdict.message}\n")
    return 0
