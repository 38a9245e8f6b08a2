"""aws/registry.py: `registry ensure` (one ECR repository per app), `registry gate` and promote's scan gate."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from betcycle.aws.registry import Scan, judge
from betcycle.aws.session import Aws

Cli = Callable[..., tuple[int, str, str]]


def push(repository: str, tag: str) -> None:
    """An image of its own per tag (moto keys images by manifest digest)."""
    import hashlib

    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "digest": "sha256:" + hashlib.sha256(tag.encode()).hexdigest(),
            "size": 1,
            "mediaType": "application/vnd.docker.container.image.v1+json",
        },
        "layers": [],
    }
    Aws().client("ecr").put_image(repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag)


def seed_scan(
    endpoint: str, repository: str, tag: str, counts: dict[str, int], status: str = "COMPLETE"
) -> None:
    """moto's documented way to set what describe_image_scan_findings returns for one image (moto answers
    with it only for an image that was scanned, so this starts the scan scanOnPush would have started)."""
    Aws().client("ecr").start_image_scan(repositoryName=repository, imageId={"imageTag": tag})
    result = {
        "registryId": "123456789012",
        "repositoryName": repository,
        "imageId": {"imageTag": tag},
        "imageScanStatus": {"status": status, "description": f"seeded {status}"},
        "imageScanFindings": {"findings": [], "findingSeverityCounts": counts},
    }
    body = json.dumps({"results": [result], "region": "eu-west-1"}).encode()
    request = urllib.request.Request(
        f"{endpoint}/moto-api/static/ecr/scan-finding-results",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
        response.read()


def test_ensure_creates_hellos_repository_then_reports_no_changes(aws: str, example: Path, cli: Cli) -> None:
    code, out, err = cli("--root", example, "registry", "ensure", "--endpoint-url", aws)
    assert (code, out, err) == (0, "hello: created (scan on push, immutable tags, lifecycle policy)\n", "")
    ecr = Aws().client("ecr")
    (repo,) = ecr.describe_repositories(repositoryNames=["hello"])["repositories"]
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["imageTagMutability"] == "IMMUTABLE"
    rules = json.loads(ecr.get_lifecycle_policy(repositoryName="hello")["lifecyclePolicyText"])["rules"]
    assert [r["selection"]["tagStatus"] for r in rules] == ["untagged", "tagged"]
    assert rules[0]["selection"]["countNumber"] == 14
    tags = {
        t["Key"]: t["Value"] for t in ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]
    }
    assert tags == {"app": "hello", "owner": "team-platform", "managed-by": "betcycle"}

    assert cli("--root", example, "registry", "ensure") == (0, "no changes\n", "")


def test_ensure_fixes_drift_and_leaves_removed_apps_alone(aws: str, example: Path, cli: Cli) -> None:
    ecr = Aws().client("ecr")
    terraforms = [{"Key": "managed-by", "Value": "terraform"}]  # adopted by Terraform's ecr module
    ecr.create_repository(repositoryName="hello", imageTagMutability="MUTABLE", tags=terraforms)
    ecr.create_repository(repositoryName="gone", tags=[{"Key": "app", "Value": "gone"}])
    ecr.create_repository(repositoryName="someone-elses")
    code, out, _ = cli("--root", example, "registry", "ensure")
    assert code == 0
    assert out.splitlines() == [
        "hello: scan on push turned on",
        "hello: tags made immutable (was MUTABLE)",
        "hello: lifecycle policy set",
        "hello: tagged app=hello, owner=team-platform",
        "gone: not in apps/: left alone",
    ]
    names = {r["repositoryName"] for r in ecr.describe_repositories()["repositories"]}
    assert names == {"hello", "gone", "someone-elses"}
    arn = ecr.describe_repositories(repositoryNames=["hello"])["repositories"][0]["repositoryArn"]
    tags = {t["Key"]: t["Value"] for t in ecr.list_tags_for_resource(resourceArn=arn)["tags"]}
    assert tags == {"managed-by": "terraform", "app": "hello", "owner": "team-platform"}
    assert cli("--root", example, "registry", "ensure")[1] == "gone: not in apps/: left alone\nno changes\n"


def test_registry_settings_prefix_and_lifecycle(aws: str, example: Path, cli: Cli) -> None:
    settings = (example / "betcycle.yaml").read_text()
    (example / "betcycle.yaml").write_text(
        settings + "registry:\n  prefix: platform/\n  untaggedExpireDays: 3\n  keepTagged: 20\n"
    )
    assert cli("--root", example, "registry", "ensure")[1].startswith("platform/hello: created")
    rules = json.loads(
        Aws().client("ecr").get_lifecycle_policy(repositoryName="platform/hello")["lifecyclePolicyText"]
    )["rules"]
    assert [r["selection"]["countNumber"] for r in rules] == [3, 20]
    (example / "betcycle.yaml").write_text(settings + "registry:\n  keepTagged: 20\n")
    # a new prefix makes new repositories; the old ones keep their images and are only reported
    assert cli("--root", example, "registry", "ensure")[1] == (
        "hello: created (scan on push, immutable tags, lifecycle policy)\n"
        "platform/hello: not in apps/: left alone\n"
    )
    (example / "betcycle.yaml").write_text(settings + "registry:\n  keepTagged: 0\n")
    code, _, err = cli("--root", example, "registry", "ensure")
    assert code == 2
    assert err.startswith("error: betcycle.yaml:")
    assert "keepTagged" in err


# --- the gate ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "max_severity", "ok"),
    [
        ({}, "HIGH", True),
        ({"HIGH": 3, "LOW": 1}, "HIGH", True),
        ({"CRITICAL": 1}, "HIGH", False),
        ({"MEDIUM": 1}, "LOW", False),
        ({"INFORMATIONAL": 2}, "LOW", True),
        ({"INFORMATIONAL": 2}, "UNDEFINED", False),
        ({"UNDEFINED": 2}, "INFORMATIONAL", True),
        ({"CRITICAL": 5}, "CRITICAL", True),
        ({"UNDEFINED": 1}, "UNDEFINED", True),
    ],
)
def test_threshold(counts: dict[str, int], max_severity: str, ok: bool) -> None:
    assert judge("hello", "1", Scan("COMPLETE", "", counts), max_severity).ok is ok


def test_a_failing_verdict_names_the_counts() -> None:
    verdict = judge("hello", "1.2.0", Scan("COMPLETE", "", {"LOW": 4, "CRITICAL": 1, "HIGH": 2}), "MEDIUM")
    assert verdict.message == (
        "hello:1.2.0: 1 CRITICAL, 2 HIGH finding(s) above MEDIUM (all findings: CRITICAL 1, HIGH 2, LOW 4)"
    )


def test_gate_against_the_endpoint(aws: str, example: Path, cli: Cli) -> None:
    cli("--root", example, "registry", "ensure")
    code, out, _ = cli("--root", example, "registry", "gate", "hello", "--tag", "1.0.0")
    assert code == 1
    assert out.startswith("gate failed: hello:1.0.0: no such image in ECR (")

    push("hello", "1.0.0")
    code, out, _ = cli("--root", example, "registry", "gate", "hello", "--tag", "1.0.0")
    assert (code, out) == (
        1,
        "gate failed: hello:1.0.0: the scan is not complete (status NOT_SCANNED: the image has never been scanned)\n",
    )

    seed_scan(aws, "hello", "1.0.0", {"CRITICAL": 2, "LOW": 1})
    code, out, _ = cli("--root", example, "registry", "gate", "hello", "--tag", "1.0.0")
    assert (code, out) == (
        1,
        "gate failed: hello:1.0.0: 2 CRITICAL finding(s) above HIGH (all findings: CRITICAL 2, LOW 1)\n",
    )
    code, out, _ = cli(
        "--root", example, "registry", "gate", "hello", "--tag", "1.0.0", "--max-severity", "CRITICAL"
    )
    assert (code, out) == (0, "ok: hello:1.0.0: scan clean at CRITICAL (CRITICAL 2, LOW 1)\n")

    push("hello", "1.1.0")
    seed_scan(aws, "hello", "1.1.0", {}, status="IN_PROGRESS")
    code, out, _ = cli("--root", example, "registry", "gate", "hello", "--tag", "1.1.0")
    assert (code, out) == (
        1,
        "gate failed: hello:1.1.0: the scan is not complete (status IN_PROGRESS: seeded IN_PROGRESS)\n",
    )


def test_gate_unknown_app(aws: str, example: Path, cli: Cli) -> None:
    code, out, err = cli("--root", example, "registry", "gate", "helo", "--tag", "1")
    assert (code, out) == (2, "")
    assert err.splitlines()[0] == "error: unknown app 'helo'"


# --- promote runs the gate where environment.yaml asks for it ----------------------------------------------


def require_scan(root: Path, env: str, extra: str = "") -> None:
    path = root / "environments" / env / "environment.yaml"
    text = path.read_text()
    assert "promotion:\n" in text
    path.write_text(text.replace("promotion:\n", f"promotion:\n  requireImageScan: true\n{extra}", 1))


def _promote(cli: Cli, root: Path, *extra: str) -> tuple[int, str, str]:
    return cli("--root", root, "promote", "hello", "--from", "staging", "--to", "prod", *extra)


def _staging_tag(root: Path) -> str:
    from betcycle.model.repo import load_repo
    from betcycle.release.engine import _current_tag

    tag = _current_tag(load_repo(root), "staging", "hello")
    assert tag
    return tag


def test_promote_fails_on_a_bad_scan_and_passes_a_clean_one(aws: str, example: Path, cli: Cli) -> None:
    require_scan(example, "prod")
    cli("--root", example, "registry", "ensure")
    tag = _staging_tag(example)
    prod_file = example / "environments/prod/apps/hello.yaml"
    before = prod_file.read_text()
    code, out, _ = _promote(cli, example)
    assert code == 1
    assert out.startswith(
        f"image scan gate failed (environments/prod/environment.yaml requires it): hello:{tag}: no such image"
    )
    assert out.rstrip().endswith("nothing was changed")
    assert prod_file.read_text() == before

    push("hello", tag)
    seed_scan(aws, "hello", tag, {"MEDIUM": 1})
    code, out, err = _promote(cli, example)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"image scan gate: hello:{tag}: scan clean at HIGH (MEDIUM 1)"
    assert prod_file.read_text() != before


def test_promote_max_severity_from_environment(aws: str, example: Path, cli: Cli) -> None:
    require_scan(example, "prod", "  maxSeverity: LOW\n")
    cli("--root", example, "registry", "ensure")
    tag = _staging_tag(example)
    push("hello", tag)
    seed_scan(aws, "hello", tag, {"MEDIUM": 1})
    code, out, _ = _promote(cli, example)
    assert code == 1
    assert f"hello:{tag}: 1 MEDIUM finding(s) above LOW" in out


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing may be called


def test_promote_without_credentials_skips_and_says_so(no_credentials: None, example: Path, cli: Cli) -> None:
    require_scan(example, "prod")
    code, out, err = _promote(cli, example)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == (
        "image scan gate skipped: no AWS credentials (none in the environment, the shared files, SSO or an "
        "instance role); prod requires it, --require-gate makes this an error"
    )


def test_promote_require_gate_makes_the_skip_an_error(no_credentials: None, example: Path, cli: Cli) -> None:
    require_scan(example, "prod")
    before = (example / "environments/prod/apps/hello.yaml").read_text()
    code, out, err = _promote(cli, example, "--require-gate")
    assert (code, out) == (2, "")
    assert err.startswith("error: environments/prod/environment.yaml:")
    assert "image scan gate skipped: no AWS credentials" in err.splitlines()[0]
    assert (example / "environments/prod/apps/hello.yaml").read_text() == before


def test_promote_without_the_field_never_asks_aws(no_credentials: None, example: Path, cli: Cli) -> None:
    code, out, _ = _promote(cli, example, "--require-gate")
    assert code == 0
    assert "gate" not in out


def test_schema_refuses_a_bad_max_severity(example: Path, cli: Cli) -> None:
    require_scan(example, "prod", "  maxSeverity: SEVERE\n")
    code, _, err = _promote(cli, example)
    assert code == 2
    assert err.startswith("error: environments/prod/environment.yaml:")
    assert "SEVERE" in err
