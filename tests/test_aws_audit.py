"""aws/audit.py and `betcycle audit`, against the moto server over HTTP."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from betcycle.aws import audit

Cli = Callable[..., tuple[int, str, str]]
ACCOUNT = "123456789012"  # moto's
TAGS = [
    {"Key": "environment", "Value": "staging"},
    {"Key": "owner", "Value": "team-a"},
    {"Key": "cost-center", "Value": "cc-1"},
    {"Key": "managed-by", "Value": "terraform"},
]
REGION = {"LocationConstraint": "eu-west-1"}
PUBLIC_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "PublicRead",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::public-site/*",
        }
    ],
}


@pytest.fixture(autouse=True)
def _no_default_amis(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's default AMIs bring a thousand snapshots and nothing this scan looks at."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    request = urllib.request.Request(f"{aws}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
        response.read()


def _compliant_bucket(s3: Any, name: str) -> None:
    s3.create_bucket(Bucket=name, CreateBucketConfiguration=REGION)
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": TAGS})
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )


def _trail() -> None:
    s3 = boto3.client("s3")
    if "trail-logs" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket="trail-logs", CreateBucketConfiguration=REGION)
    ct = boto3.client("cloudtrail")
    ct.create_trail(Name="org", S3BucketName="trail-logs", IsMultiRegionTrail=True)
    ct.start_logging(Name="org")


def _plant() -> dict[str, str]:
    """A compliant bucket and volume, a public bucket, an untagged (unencrypted) volume."""
    s3, ec2 = boto3.client("s3"), boto3.client("ec2")
    _compliant_bucket(s3, "private-data")
    _compliant_bucket(s3, "public-site")
    s3.put_bucket_policy(Bucket="public-site", Policy=json.dumps(PUBLIC_POLICY))
    good = ec2.create_volume(
        Size=1,
        AvailabilityZone="eu-west-1a",
        Encrypted=True,
        TagSpecifications=[{"ResourceType": "volume", "Tags": TAGS}],
    )["VolumeId"]
    bare = ec2.create_volume(Size=1, AvailabilityZone="eu-west-1a", Encrypted=True)["VolumeId"]
    return {"good": good, "bare": bare}


def _subjects(out: str) -> list[tuple[str, str]]:
    return [(f["rule"], f["resource"]) for f in json.loads(out)["findings"]]


def test_flags_the_public_bucket_and_the_untagged_volume_exit_1(aws: str, cli: Cli) -> None:
    ids = _plant()
    # the trail's bucket is compliant too, so only the planted problems are left
    _compliant_bucket(boto3.client("s3"), "trail-logs")
    _trail()
    code, out, err = cli("audit", "--format", "json")
    assert (code, err) == (1, "")
    assert _subjects(out) == [
        ("audit/required-tags", f"arn:aws:ec2:eu-west-1:{ACCOUNT}:volume/{ids['bare']}"),
        ("audit/s3-public", "arn:aws:s3:::public-site"),
    ]
    public = json.loads(out)["findings"][1]
    assert public["message"] == "the bucket policy grants everyone access (PublicRead)"
    assert public["env"] == "staging"
    assert json.loads(out)["summary"] == {
        "errors": 2,
        "warnings": 0,
        "account": ACCOUNT,
        "region": "eu-west-1",
    }


def test_text_output_names_rule_arn_and_fix(aws: str, cli: Cli) -> None:
    ids = _plant()
    code, out, _ = cli("audit")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"audit of AWS account {ACCOUNT} in eu-west-1: {len(audit.RULES)} rules"
    assert (
        f"  error [audit/required-tags] arn:aws:ec2:eu-west-1:{ACCOUNT}:volume/{ids['bare']}: "
        "missing tag(s): environment, owner, cost-center, managed-by"
    ) in lines
    assert (
        "  error [audit/s3-public] arn:aws:s3:::public-site: the bucket policy grants everyone access (PublicRead)"
        in lines
    )
    assert (
        "  error [audit/cloudtrail] arn:aws:iam::123456789012:root: no multi-region CloudTrail trail is logging in this account"
        in lines
    )
    assert ids["good"] not in out
    assert "private-data" not in out
    assert cli("audit") == (code, out, "")  # deterministic


def test_sarif_and_github_formats(aws: str, cli: Cli, tmp_path: Path) -> None:
    _plant()
    code, _, _ = cli("audit", "--format", "sarif", "-o", tmp_path / "audit.sarif")
    sarif = json.loads((tmp_path / "audit.sarif").read_text())
    assert code == 1
    run = sarif["runs"][0]
    assert sorted(r["id"] for r in run["tool"]["driver"]["rules"]) == sorted(audit.RULES)
    assert {r["ruleId"] for r in run["results"]} >= {"audit/s3-public", "audit/required-tags"}
    code, out, _ = cli("audit", "--format", "github")
    assert code == 1
    assert "::error title=audit/s3-public::staging arn:aws:s3:::public-site: the bucket policy" in out


def test_each_rule_flags_what_it_should_and_passes_the_compliant_twin(aws: str, cli: Cli) -> None:
    s3, ec2, ecr = boto3.client("s3"), boto3.client("ec2"), boto3.client("ecr")
    s3.create_bucket(Bucket="plain", CreateBucketConfiguration=REGION)  # no encryption, no block, no tags
    s3.put_bucket_tagging(Bucket="plain", Tagging={"TagSet": TAGS})
    s3.put_bucket_acl(Bucket="plain", ACL="public-read")
    ec2.create_volume(
        Size=1, AvailabilityZone="eu-west-1a", TagSpecifications=[{"ResourceType": "volume", "Tags": TAGS}]
    )
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    open_sg = ec2.create_security_group(GroupName="ssh", Description="d", VpcId=vpc)["GroupId"]
    web_sg = ec2.create_security_group(GroupName="web", Description="d", VpcId=vpc)["GroupId"]
    anywhere = [{"CidrIp": "0.0.0.0/0"}]
    ec2.authorize_security_group_ingress(
        GroupId=open_sg,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": anywhere}],
    )
    ec2.authorize_security_group_ingress(
        GroupId=web_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "IpRanges": anywhere} for p in (80, 443)
        ],
    )
    ecr.create_repository(repositoryName="loose", tags=[{"Key": t["Key"], "Value": t["Value"]} for t in TAGS])
    ecr.create_repository(
        repositoryName="strict",
        tags=[{"Key": t["Key"], "Value": t["Value"]} for t in TAGS],
        imageTagMutability="IMMUTABLE",
        imageScanningConfiguration={"scanOnPush": True},
    )
    boto3.client("rds").create_db_instance(
        DBInstanceIdentifier="db",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="u",
        MasterUserPassword="password123",
        AllocatedStorage=20,
        Tags=TAGS,
    )
    boto3.client("eks").create_cluster(
        name="prod-eks",
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
        resourcesVpcConfig={"subnetIds": [], "endpointPublicAccess": True},
        tags={"environment": "prod", "owner": "t", "cost-center": "c", "managed-by": "terraform"},
    )
    _trail()
    code, out, _ = cli("audit", "--format", "json")
    found = _subjects(out)
    assert code == 1, out
    # everything planted is tagged but the trail's bucket
    assert [s for r, s in found if r == "audit/required-tags"] == ["arn:aws:s3:::trail-logs"]
    rules = {r for r, _ in found}
    assert rules == {
        "audit/required-tags",
        "audit/s3-encryption",
        "audit/s3-public-access-block",
        "audit/s3-public",
        "audit/ebs-encryption",
        "audit/sg-open-ingress",
        "audit/ecr-scan-on-push",
        "audit/ecr-immutable-tags",
        "audit/rds-encryption",
        "audit/eks-public-endpoint",
    }
    by_rule = {r: [s for rr, s in found if rr == r] for r in rules}
    assert by_rule["audit/sg-open-ingress"] == [f"arn:aws:ec2:eu-west-1:{ACCOUNT}:security-group/{open_sg}"]
    assert by_rule["audit/ecr-scan-on-push"] == [f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/loose"]
    assert by_rule["audit/eks-public-endpoint"] == [f"arn:aws:eks:eu-west-1:{ACCOUNT}:cluster/prod-eks"]
    assert "arn:aws:s3:::plain" in by_rule["audit/s3-public"]  # the public-read ACL
    # the trail bucket has no encryption/block either: it is flagged, the trail itself is on
    assert "arn:aws:s3:::trail-logs" in by_rule["audit/s3-encryption"]


def test_an_account_wide_public_access_block_covers_every_bucket(aws: str, cli: Cli) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="bucket-b", CreateBucketConfiguration=REGION)
    s3control = boto3.client("s3control")
    # S3 Control prefixes the host with the account id, which 127.0.0.1 can't take (audit.py does the same)
    s3control.meta.events.register(
        "before-send.s3-control",
        lambda request, **_: setattr(request, "url", request.url.replace(f"://{ACCOUNT}.", "://")),
    )
    s3control.put_public_access_block(
        AccountId=ACCOUNT,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    _, out, _ = cli("audit", "--format", "json")
    assert "audit/s3-public-access-block" not in {r for r, _ in _subjects(out)}


@pytest.mark.parametrize(
    ("statement", "public"),
    [
        ({"Effect": "Allow", "Principal": "*"}, True),
        ({"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::1:root", "*"]}}, True),
        (
            {"Effect": "Allow", "Principal": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
            False,
        ),
        ({"Effect": "Deny", "Principal": "*"}, False),
        ({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}}, False),
    ],
)
def test_public_statements(statement: dict[str, Any], public: bool) -> None:
    assert bool(audit._public_statements(json.dumps({"Statement": [statement]}))) is public


def test_an_aws_error_is_one_line_exit_2(aws: str, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookup: no network
    code, out, err = cli("audit")
    assert (code, out) == (2, "")
    assert err.splitlines()[0] == "error: sts get_caller_identity: no AWS credentials found"
