"""aws/state.py: `state bootstrap --env E` creates the backend's bucket and lock table once, from backend.tf."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from betcycle.aws.session import Aws
from tests.conftest import write_tree

Cli = Callable[..., tuple[int, str, str]]

BACKEND = """\
terraform {
  required_version = ">= 1.11"
  backend "s3" {
    bucket         = "acme-tfstate-staging"
    key            = "staging/terraform.tfstate"
    region         = "eu-west-1"
    dynamodb_table = "acme-tflock-staging"
    encrypt        = true
  }
}
"""


@pytest.fixture
def tf(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "repo", {"terraform/environments/staging/backend.tf": BACKEND})


def test_bootstrap_creates_bucket_and_table_then_reports_no_changes(aws: str, tf: Path, cli: Cli) -> None:
    code, out, err = cli("--root", tf, "state", "bootstrap", "--env", "staging", "--endpoint-url", aws)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "bucket acme-tfstate-staging: created in eu-west-1"
    assert "bucket acme-tfstate-staging: versioning enabled" in out
    assert "bucket acme-tfstate-staging: public access blocked (all four settings)" in out
    assert "bucket acme-tfstate-staging: policy denies requests without TLS" in out
    assert "table acme-tflock-staging: created (LockID string hash key, on-demand)" in out

    s3, ddb = Aws().client("s3"), Aws().client("dynamodb")
    assert s3.get_bucket_versioning(Bucket="acme-tfstate-staging")["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket="acme-tfstate-staging")["ServerSideEncryptionConfiguration"][
        "Rules"
    ]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    block = s3.get_public_access_block(Bucket="acme-tfstate-staging")["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    policy = json.loads(s3.get_bucket_policy(Bucket="acme-tfstate-staging")["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["DenyInsecureTransport"]
    table = ddb.describe_table(TableName="acme-tflock-staging")["Table"]
    assert table["KeySchema"] == [{"AttributeName": "LockID", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"

    code, out, err = cli("--root", tf, "state", "bootstrap", "--env", "staging")
    assert (code, out, err) == (
        0,
        "no changes (bucket acme-tfstate-staging, table acme-tflock-staging)\n",
        "",
    )


def test_bootstrap_fixes_only_what_differs_and_keeps_others_policy(aws: str, tf: Path, cli: Cli) -> None:
    s3 = Aws().client("s3")
    s3.create_bucket(
        Bucket="acme-tfstate-staging", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    theirs = {
        "Sid": "TheirRead",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::acme-tfstate-staging/*",
    }
    s3.put_bucket_policy(
        Bucket="acme-tfstate-staging", Policy=json.dumps({"Version": "2012-10-17", "Statement": [theirs]})
    )
    Aws().client("dynamodb").create_table(
        TableName="acme-tflock-staging",
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
    )
    code, out, _ = cli("--root", tf, "state", "bootstrap", "--env", "staging")
    assert code == 0
    assert "created" not in out
    assert "table acme-tflock-staging: billing switched from PROVISIONED to on-demand" in out
    statements = json.loads(s3.get_bucket_policy(Bucket="acme-tfstate-staging")["Policy"])["Statement"]
    assert [s["Sid"] for s in statements] == ["TheirRead", "DenyInsecureTransport"]
    assert cli("--root", tf, "state", "bootstrap", "--env", "staging")[1].startswith("no changes")


def test_a_lock_table_with_another_key_is_refused(aws: str, tf: Path, cli: Cli) -> None:
    Aws().client("dynamodb").create_table(
        TableName="acme-tflock-staging",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    code, _, err = cli("--root", tf, "state", "bootstrap", "--env", "staging")
    assert code == 2
    assert err.startswith("error: table acme-tflock-staging exists but its key is [('id', 'HASH')]")


def test_kms_key_in_the_backend_is_the_bucket_default(aws: str, tmp_path: Path, cli: Cli) -> None:
    key = Aws().client("kms").create_key()["KeyMetadata"]["Arn"]
    root = write_tree(
        tmp_path / "repo",
        {
            "terraform/environments/prod/backend.tf": 'terraform {\n  backend "s3" {\n'
            f'    bucket = "acme-state-prod"\n    key = "prod.tfstate"\n    kms_key_id = "{key}"\n'
            "    use_lockfile = true\n  }\n}\n"
        },
    )
    code, out, _ = cli("--root", root, "state", "bootstrap", "--env", "prod")
    assert code == 0
    assert "bucket acme-state-prod: default encryption aws:kms" in out
    assert "no dynamodb_table in terraform/environments/prod/backend.tf: no lock table" in out
    rule = Aws().client("s3").get_bucket_encryption(Bucket="acme-state-prod")
    default = rule["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    assert default == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}
    again = cli("--root", root, "state", "bootstrap", "--env", "prod")[1].splitlines()
    assert again[-1] == "no changes (bucket acme-state-prod)"


def test_unknown_environment_names_the_folder_and_the_known_ones(aws: str, tf: Path, cli: Cli) -> None:
    code, out, err = cli("--root", tf, "state", "bootstrap", "--env", "stagin")
    assert (code, out) == (2, "")
    first, hint = err.splitlines()[:2]
    assert first == (
        "error: terraform/environments: no Terraform root configuration for 'stagin' "
        "(terraform/environments/stagin/ does not exist)"
    )
    assert "staging" in hint


def test_a_configuration_without_backend_block_is_named(aws: str, tmp_path: Path, cli: Cli) -> None:
    root = write_tree(
        tmp_path / "repo",
        {"terraform/environments/staging/backend.tf": 'terraform {\n  required_version = ">= 1.11"\n}\n'},
    )
    code, _, err = cli("--root", root, "state", "bootstrap", "--env", "staging")
    assert code == 2
    assert err.splitlines()[0] == 'error: terraform/environments/staging/backend.tf: no backend "s3" block'


def test_a_variable_bucket_name_is_refused(aws: str, tmp_path: Path, cli: Cli) -> None:
    root = write_tree(
        tmp_path / "repo",
        {
            "terraform/environments/staging/main.tf": 'terraform {\n  backend "s3" {\n    bucket = var.b\n  }\n}\n'
        },
    )
    code, _, err = cli("--root", root, "state", "bootstrap", "--env", "staging")
    assert code == 2
    assert err.startswith("error: terraform/environments/staging/: backend bucket must be a literal string")


def test_a_region_other_than_the_backends_is_refused(aws: str, tf: Path, cli: Cli) -> None:
    code, _, err = cli("--root", tf, "state", "bootstrap", "--env", "staging", "--region", "us-east-1")
    assert code == 2
    assert err.splitlines()[0] == (
        "error: terraform/environments/staging/backend.tf: --region us-east-1 differs from the backend's "
        "region eu-west-1"
    )


def test_access_denied_is_one_line(monkeypatch: pytest.MonkeyPatch, aws: str, tf: Path, cli: Cli) -> None:
    """The server refusing (simulated: moto has no IAM enforcement here) ends as one line and exit 2."""
    from botocore.exceptions import ClientError

    def deny(**_: object) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "CreateBucket")

    real = Aws.client

    def client(self: Aws, service: str) -> object:
        made = real(self, service)
        made.meta.events.register("before-call.s3.CreateBucket", deny, unique_id="deny-create-bucket")
        return made

    monkeypatch.setattr(Aws, "client", client)
    code, out, err = cli("--root", tf, "state", "bootstrap", "--env", "staging")
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "error: creating bucket acme-tfstate-staging: AccessDenied: Access Denied",
        "  hint: the credentials in use lack this permission (see docs/infrastructure.md)",
    ]


PROVIDERS = """\
provider "aws" {
  region = "eu-west-1"
  default_tags {
    tags = {
      environment = "staging"
      owner       = "team-platform"
      cost-center = "platform"
      managed-by  = "terraform"
    }
  }
}
provider "aws" {
  alias  = "us"
  region = "us-east-1"
  default_tags {
    tags = { ignored = "an aliased provider's tags are not the configuration's" }
  }
}
"""


def test_bucket_and_table_get_the_configurations_default_tags(aws: str, tf: Path, cli: Cli) -> None:
    """So they are tagged like everything Terraform creates, and `betcycle audit` finds them compliant."""
    write_tree(tf, {"terraform/environments/staging/providers.tf": PROVIDERS})
    code, out, err = cli("--root", tf, "state", "bootstrap", "--env", "staging")
    assert (code, err) == (0, "")
    tags = "cost-center=platform, environment=staging, managed-by=terraform, owner=team-platform"
    assert f"bucket acme-tfstate-staging: tagged {tags}" in out
    assert f"table acme-tflock-staging: tagged {tags}" in out
    s3, ddb = Aws().client("s3"), Aws().client("dynamodb")
    s3.put_bucket_tagging(  # a tag someone else added is kept
        Bucket="acme-tfstate-staging",
        Tagging={
            "TagSet": [
                *s3.get_bucket_tagging(Bucket="acme-tfstate-staging")["TagSet"],
                {"Key": "x", "Value": "1"},
            ]
        },
    )
    bucket_tags = {
        t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket="acme-tfstate-staging")["TagSet"]
    }
    assert bucket_tags["environment"] == "staging" and "ignored" not in bucket_tags
    arn = ddb.describe_table(TableName="acme-tflock-staging")["Table"]["TableArn"]
    assert {t["Key"] for t in ddb.list_tags_of_resource(ResourceArn=arn)["Tags"]} == {
        "cost-center", "environment", "managed-by", "owner"
    }  # fmt: skip
    code, out, err = cli("--root", tf, "state", "bootstrap", "--env", "staging")
    assert (code, out) == (0, "no changes (bucket acme-tfstate-staging, table acme-tflock-staging)\n")
    assert {t["Key"] for t in s3.get_bucket_tagging(Bucket="acme-tfstate-staging")["TagSet"]} >= {"x"}
