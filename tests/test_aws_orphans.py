"""aws/orphans.py and `betcycle cost orphans`, against the moto server over HTTP."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from betcycle.aws import orphans
from betcycle.aws.session import Aws

Cli = Callable[..., tuple[int, str, str]]
TAGS = [{"Key": "environment", "Value": "staging"}, {"Key": "owner", "Value": "team-a"}]


@pytest.fixture(autouse=True)
def _no_default_amis(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's thousand-odd default AMIs come with as many snapshots that every scan would page through."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # read when moto (re)builds its EC2 state
    request = urllib.request.Request(f"{aws}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
        response.read()


def _ec2() -> Any:
    return boto3.client("ec2")


AMI = "ami-0abcdef1234567890"  # moto does not check that the image exists (ENABLE_AMI_VALIDATION is off)


def _instance(ec2: Any) -> str:
    return str(ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"])


def _plant(ec2: Any) -> dict[str, str]:
    """An unattached tagged volume, an unused Elastic IP, and an attached volume + associated IP (in use)."""
    loose = ec2.create_volume(
        Size=100,
        AvailabilityZone="eu-west-1a",
        VolumeType="gp3",
        TagSpecifications=[{"ResourceType": "volume", "Tags": TAGS}],
    )["VolumeId"]
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    instance = _instance(ec2)
    attached = ec2.create_volume(Size=8, AvailabilityZone="eu-west-1a")["VolumeId"]
    ec2.attach_volume(VolumeId=attached, InstanceId=instance, Device="/dev/sdf")
    used_eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=used_eip, InstanceId=instance)
    return {"loose": loose, "eip": eip, "attached": attached, "used_eip": used_eip, "instance": instance}


def test_finds_the_unattached_volume_and_unused_ip_not_the_ones_in_use(
    aws: str, example: Path, cli: Cli
) -> None:
    ids = _plant(_ec2())
    code, out, err = cli("--root", example, "cost", "orphans")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert (
        f"ebs-volume {ids['loose']}: 100 GiB gp3, attached to no instance; est. 8.00 USD/month; "
        "tags: environment=staging, owner=team-a"
    ) in lines
    assert any(line.startswith(f"elastic-ip {ids['eip']}: ") and "3.65 USD/month" in line for line in lines)
    assert ids["attached"] not in out
    assert ids["used_eip"] not in out
    # the instance's own root volume is attached too: only the two orphans are listed
    assert "2 orphaned resource(s) in eu-west-1, est. 11.65 USD/month" in out


def test_output_is_deterministic_and_json_carries_the_same(aws: str, example: Path, cli: Cli) -> None:
    ids = _plant(_ec2())
    first = cli("--root", example, "cost", "orphans")
    assert cli("--root", example, "cost", "orphans") == first
    code, out, _ = cli("--root", example, "cost", "orphans", "--format", "json")
    doc = json.loads(out)
    assert code == 0
    assert [(o["kind"], o["id"]) for o in doc["orphans"]] == [
        ("ebs-volume", ids["loose"]),
        ("elastic-ip", ids["eip"]),
    ]
    assert doc["orphans"][0]["tags"] == {"environment": "staging", "owner": "team-a"}
    assert doc["totalMonthlyUSD"] == "11.65"
    assert doc["region"] == "eu-west-1"


def test_delete_alone_deletes_nothing_and_asks_for_yes(aws: str, example: Path, cli: Cli) -> None:
    ec2 = _ec2()
    ids = _plant(ec2)
    code, out, err = cli("--root", example, "cost", "orphans", "--delete")
    assert code == 2
    assert ids["loose"] in out
    assert err.splitlines()[0] == "error: --delete would delete the 2 resource(s) above; nothing was deleted"
    assert ec2.describe_volumes(VolumeIds=[ids["loose"]])["Volumes"][0]["State"] == "available"
    assert len(ec2.describe_addresses()["Addresses"]) == 2


def test_yes_without_delete_is_a_usage_error(aws: str, example: Path, cli: Cli) -> None:
    code, _, err = cli("--root", example, "cost", "orphans", "--yes")
    assert code == 2
    assert err.splitlines()[0] == "error: --yes only confirms --delete"


def test_delete_yes_deletes_each_orphan_and_nothing_else(aws: str, example: Path, cli: Cli) -> None:
    ec2 = _ec2()
    ids = _plant(ec2)
    code, out, err = cli("--root", example, "cost", "orphans", "--delete", "--yes")
    assert (code, err) == (0, "")
    assert f"deleted ebs-volume {ids['loose']}" in out.splitlines()
    assert f"deleted elastic-ip {ids['eip']}" in out.splitlines()
    assert out.splitlines()[-1] == "deleted 2 resource(s)"
    volumes = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
    assert ids["loose"] not in volumes and ids["attached"] in volumes
    assert [a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]] == [ids["used_eip"]]
    assert cli("--root", example, "cost", "orphans") == (0, "no orphaned resources in eu-west-1\n", "")


def test_a_failed_deletion_is_reported_and_the_others_go_on(aws: str) -> None:
    ec2 = _ec2()
    real = ec2.create_volume(Size=1, AvailabilityZone="eu-west-1a")["VolumeId"]
    gone = orphans.Orphan(
        "ebs-volume", "vol-0123456789abcdef0", "", Decimal(0), (), (("VolumeId", "vol-0123456789abcdef0"),)
    )
    kept = orphans.Orphan("ebs-volume", real, "", Decimal(0), (), (("VolumeId", real),))
    log: list[str] = []

    class Out:
        def write(self, s: str) -> None:
            log.append(s)

    errors = orphans.delete(Aws(), [gone, kept], Out())  # type: ignore[arg-type]
    assert [str(e).splitlines()[0] for e in errors] == [
        "deleting ebs-volume vol-0123456789abcdef0: InvalidVolume.NotFound: "
        "The volume 'vol-0123456789abcdef0' does not exist."
    ]
    assert log == ["failed  ebs-volume vol-0123456789abcdef0\n", f"deleted ebs-volume {real}\n"]
    assert ec2.describe_volumes()["Volumes"] == []


def test_snapshots_whose_ami_is_gone_and_old_enough(aws: str, example: Path, cli: Cli) -> None:
    ec2 = _ec2()
    instance = _instance(ec2)
    kept_ami = ec2.create_image(InstanceId=instance, Name="kept")["ImageId"]
    gone_ami = ec2.create_image(InstanceId=instance, Name="gone")["ImageId"]
    ec2.deregister_image(ImageId=gone_ami)
    volume = ec2.create_volume(Size=5, AvailabilityZone="eu-west-1a")["VolumeId"]
    ec2.attach_volume(VolumeId=volume, InstanceId=instance, Device="/dev/sdg")
    backup = ec2.create_snapshot(VolumeId=volume, Description="nightly backup")["SnapshotId"]
    by_description = {s["Description"]: s for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    left = next(s for d, s in by_description.items() if gone_ami in d)

    code, out, _ = cli("--root", example, "cost", "orphans", "--older-than", "0")
    snapshot_lines = [line for line in out.splitlines() if line.startswith("snapshot ")]
    assert code == 0
    assert len(snapshot_lines) == 1
    assert snapshot_lines[0].startswith(f"snapshot {left['SnapshotId']}: ")
    assert f"its AMI {gone_ami} is gone" in snapshot_lines[0]
    assert backup not in out and kept_ami not in out
    # younger than --older-than (default 30 days): not listed
    assert "snapshot " not in cli("--root", example, "cost", "orphans")[1]


def test_load_balancers_without_healthy_targets(aws: str, example: Path, cli: Cli) -> None:
    ec2, elb = _ec2(), boto3.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"eu-west-1{z}")["Subnet"][
            "SubnetId"
        ]
        for i, z in enumerate("ab")
    ]
    idle = elb.create_load_balancer(Name="idle", Subnets=subnets, Tags=TAGS)["LoadBalancers"][0]
    busy = elb.create_load_balancer(Name="busy", Subnets=subnets)["LoadBalancers"][0]
    for lb in (idle, busy):
        tg = elb.create_target_group(Name=f"tg-{lb['LoadBalancerName']}", Protocol="HTTP", Port=80, VpcId=vpc)
        arn = tg["TargetGroups"][0]["TargetGroupArn"]
        elb.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"],
            Protocol="HTTP",
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}],
        )
        if lb is busy:
            instance = ec2.run_instances(
                ImageId=AMI,
                MinCount=1,
                MaxCount=1,
                SubnetId=subnets[0],
            )["Instances"][0]["InstanceId"]
            elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": instance}])
    code, out, _ = cli("--root", example, "cost", "orphans")
    lb_lines = [line for line in out.splitlines() if line.startswith("load-balancer ")]
    assert code == 0
    assert lb_lines == [
        f"load-balancer {idle['LoadBalancerArn']}: application load balancer idle: no targets registered; "
        "est. 16.43 USD/month; tags: environment=staging, owner=team-a"
    ]


def _push(ecr: Any, repo: str, tag: str) -> str:
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1,
                "digest": f"sha256:{tag}",
            },
            "layers": [],
        }
    )
    return str(
        ecr.put_image(repositoryName=repo, imageManifest=manifest, imageTag=tag)["image"]["imageId"][
            "imageDigest"
        ]
    )


def test_ecr_images_no_rendered_manifest_references(aws: str, example: Path, cli: Cli) -> None:
    used = sorted({i.split(":")[-1] for i in _images(example) if "/hello:" in i})
    assert used  # the fixture's rendered manifests run registry.example.com/hello:<tag>
    ecr = boto3.client("ecr")
    ecr.create_repository(repositoryName="hello", tags=TAGS)
    for tag in used:
        _push(ecr, "hello", tag)
    stale = _push(ecr, "hello", "0.0.1")
    code, out, _ = cli("--root", example, "cost", "orphans", "--older-than", "0")
    image_lines = [line for line in out.splitlines() if line.startswith("ecr-image ")]
    assert code == 0
    assert len(image_lines) == 1
    assert image_lines[0].startswith(f"ecr-image hello@{stale}: tags 0.0.1, ")
    assert image_lines[0].endswith("tags: environment=staging, owner=team-a")
    # just pushed: younger than the default 30 days, so left for CD to use
    assert "ecr-image" not in cli("--root", example, "cost", "orphans")[1]


def _images(root: Path) -> set[str]:
    from betcycle.validate.manifests import load_env_manifests

    refs: set[str] = set()
    for env in ("dev", "staging", "prod"):
        for r in load_env_manifests(root, env, f"environments/{env}/manifests"):
            for c in r.doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                refs.add(c["image"])
    return refs


def test_without_rendered_manifests_ecr_images_are_not_checked(aws: str, tmp_path: Path, cli: Cli) -> None:
    ecr = boto3.client("ecr")
    ecr.create_repository(repositoryName="hello")
    _push(ecr, "hello", "1.0.0")
    code, out, _ = cli("--root", tmp_path, "cost", "orphans", "--older-than", "0")
    assert code == 0
    assert "ecr-image" not in out
    assert "ECR images not checked" in out


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("registry.example.com/hello:1.4.0", {("hello", "1.4.0")}),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/api@sha256:ab", {("team/api", "sha256:ab")}),
        ("localhost:5000/x:2@sha256:cd", {("x", "sha256:cd"), ("x", "2")}),
        ("nginx", {("nginx", "latest")}),
        ("library/nginx:1.27", {("library/nginx", "1.27")}),
    ],
)
def test_image_references_drop_the_registry_host(ref: str, expected: set[tuple[str, str]]) -> None:
    assert orphans._parse_image(ref) == expected


def test_an_aws_error_is_one_line_exit_2(
    aws: str, example: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookup: no network
    code, out, err = cli("--root", example, "cost", "orphans")
    assert (code, out) == (2, "")
    assert err.splitlines()[0] == "error: ec2 describe_volumes: no AWS credentials found"
    assert "Traceback" not in err


def test_json_delete_keeps_stdout_a_json_document(aws: str, example: Path, cli: Cli) -> None:
    ids = _plant(_ec2())
    code, out, err = cli("--root", example, "cost", "orphans", "--delete", "--yes", "--format", "json")
    assert code == 0
    assert [o["id"] for o in json.loads(out)["orphans"]] == [ids["loose"], ids["eip"]]
    assert err.splitlines() == [
        f"deleted ebs-volume {ids['loose']}",
        f"deleted elastic-ip {ids['eip']}",
        "deleted 2 resource(s)",
    ]
