"""`betcycle cost orphans`: resources that cost money and serve nothing, with an estimated monthly cost.

Five kinds, each a small scan over paginated AWS listings:

- EBS volumes in the `available` state (attached to no instance),
- Elastic IPs associated with nothing,
- snapshots older than `--older-than` days that no AMI uses and whose description names an AMI that is gone
  (what `CreateImage`/`CopyImage` leave behind when the image is deregistered; backups with no AMI in their
  description are left alone),
- ELBv2 load balancers none of whose target groups has a registered healthy target,
- ECR images older than `--older-than` days that no rendered manifest (`environments/*/manifests`)
  references by repository and tag or digest.

Costs are estimates from `PRICES`: list prices in USD, the same in every region (us-east-1's), without
traffic or request charges. Nothing is deleted unless the caller asks (`delete`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, TextIO

from betcycle.aws.session import Aws, aws_errors, error_message
from betcycle.diff.cost import format_money
from betcycle.errors import UserError
from betcycle.model.resources import Resource
from betcycle.validate.manifests import load_env_manifests

#: Estimated USD per month, region-independent (us-east-1 list prices; 730 hours a month, AWS's convention)
PRICES: dict[str, Decimal] = {
    "ebs-gp3": Decimal("0.08"),  # per GB-month; gp3 is also the price of a type not listed here
    "ebs-gp2": Decimal("0.10"),
    "ebs-io1": Decimal("0.125"),
    "ebs-io2": Decimal("0.125"),
    "ebs-st1": Decimal("0.045"),
    "ebs-sc1": Decimal("0.015"),
    "ebs-standard": Decimal("0.05"),
    "elastic-ip": Decimal("3.65"),  # per address-month: $0.005/hour for every public IPv4 address
    "snapshot": Decimal("0.05"),  # per GB-month of the source volume (a full copy: the upper bound)
    "load-balancer": Decimal("16.43"),  # per ALB/NLB-month: $0.0225/hour, without LCUs
    "ecr": Decimal("0.10"),  # per GB-month stored
}
KINDS = ("ebs-volume", "elastic-ip", "snapshot", "load-balancer", "ecr-image")
_GB = Decimal(10) ** 9
_AMI = re.compile(r"\bami-[0-9a-f]{8,17}\b")


@dataclass(frozen=True)
class Orphan:
    kind: str
    #: the id AWS knows it by: vol-…, eipalloc-…, snap-…, the load balancer's ARN, repository@digest
    id: str
    detail: str
    monthly: Decimal
    tags: tuple[tuple[str, str], ...] = ()
    #: what deleting it takes (operation arguments), not shown
    delete: tuple[tuple[str, Any], ...] = field(default=(), compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "detail": self.detail,
            "monthlyUSD": _money(self.monthly),
            "tags": dict(self.tags),
        }


def _money(amount: Decimal) -> str:
    return format(amount.quantize(Decimal("0.01"), ROUND_HALF_UP), "f")


def _tags(items: Iterable[dict[str, Any]] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(t.get("Key")), str(t.get("Value", ""))) for t in items or []))


def volumes(aws: Aws) -> Iterator[Orphan]:
    filters = [{"Name": "status", "Values": ["available"]}]
    for v in aws.paginate("ec2", "describe_volumes", "Volumes", Filters=filters):
        size, kind = int(v.get("Size", 0)), str(v.get("VolumeType", "gp3"))
        price = PRICES.get(f"ebs-{kind}", PRICES["ebs-gp3"])
        yield Orphan(
            "ebs-volume",
            v["VolumeId"],
            f"{size} GiB {kind}, attached to no instance",
            size * price,
            _tags(v.get("Tags")),
            (("VolumeId", v["VolumeId"]),),
        )


def addresses(aws: Aws) -> Iterator[Orphan]:
    with aws_errors("ec2 describe_addresses"):  # not paginated by AWS: one call returns every address
        found = aws.client("ec2").describe_addresses().get("Addresses", [])
    for a in found:
        if a.get("AssociationId") or a.get("InstanceId") or a.get("NetworkInterfaceId"):
            continue
        ident = a.get("AllocationId") or a.get("PublicIp")
        key = "AllocationId" if a.get("AllocationId") else "PublicIp"
        yield Orphan(
            "elastic-ip",
            str(ident),
            f"{a.get('PublicIp')}, associated with nothing",
            PRICES["elastic-ip"],
            _tags(a.get("Tags")),
            ((key, ident),),
        )


def snapshots(aws: Aws, older_than: int, now: datetime) -> Iterator[Orphan]:
    used: set[str] = set()
    for image in aws.paginate("ec2", "describe_images", "Images", Owners=["self"], IncludeDeprecated=True):
        for m in image.get("BlockDeviceMappings", []):
            if m.get("Ebs", {}).get("SnapshotId"):
                used.add(m["Ebs"]["SnapshotId"])
    cutoff = now - timedelta(days=older_than)
    candidates: list[tuple[dict[str, Any], list[str]]] = []
    for s in aws.paginate("ec2", "describe_snapshots", "Snapshots", OwnerIds=["self"]):
        started = s.get("StartTime")
        if s["SnapshotId"] in used or not isinstance(started, datetime) or started > cutoff:
            continue
        amis = sorted(set(_AMI.findall(str(s.get("Description", "")))))
        if amis:  # a backup that never belonged to an image is left alone
            candidates.append((s, amis))
    # the named AMIs that still exist, whoever owns them (a filter, unlike ImageIds, ignores missing ids)
    named = sorted({a for _, amis in candidates for a in amis})
    existing: set[str] = set()
    for i in range(0, len(named), 200):
        filters = [{"Name": "image-id", "Values": named[i : i + 200]}]
        for image in aws.paginate(
            "ec2", "describe_images", "Images", Filters=filters, IncludeDeprecated=True
        ):
            existing.add(str(image.get("ImageId")))
    for s, amis in candidates:
        if any(a in existing for a in amis):
            continue
        size = int(s.get("VolumeSize", 0))
        yield Orphan(
            "snapshot",
            s["SnapshotId"],
            f"{size} GiB, {(now - s['StartTime']).days} days old, its AMI {', '.join(amis)} is gone",
            size * PRICES["snapshot"],
            _tags(s.get("Tags")),
            (("SnapshotId", s["SnapshotId"]),),
        )


def load_balancers(aws: Aws) -> Iterator[Orphan]:
    idle: list[tuple[dict[str, Any], str]] = []
    elb = aws.client("elbv2")
    for lb in aws.paginate("elbv2", "describe_load_balancers", "LoadBalancers"):
        arn = lb["LoadBalancerArn"]
        groups = list(aws.paginate("elbv2", "describe_target_groups", "TargetGroups", LoadBalancerArn=arn))
        registered = healthy = 0
        for g in groups:
            with aws_errors("elbv2 describe_target_health"):  # not paginated: one call returns every target
                health = elb.describe_target_health(TargetGroupArn=g["TargetGroupArn"])
            for t in health.get("TargetHealthDescriptions", []):
                registered += 1
                healthy += t.get("TargetHealth", {}).get("State") == "healthy"
        if healthy:
            continue
        why = (
            "no target groups"
            if not groups
            else "no targets registered"
            if not registered
            else f"{registered} target(s) registered, none healthy"
        )
        idle.append((lb, why))
    tags: dict[str, tuple[tuple[str, str], ...]] = {}
    arns = [lb["LoadBalancerArn"] for lb, _ in idle]
    for i in range(0, len(arns), 20):  # DescribeTags takes at most 20 ARNs a call
        with aws_errors("elbv2 describe_tags"):
            for d in elb.describe_tags(ResourceArns=arns[i : i + 20]).get("TagDescriptions", []):
                tags[d["ResourceArn"]] = _tags(d.get("Tags"))
    for lb, why in idle:
        arn = lb["LoadBalancerArn"]
        yield Orphan(
            "load-balancer",
            arn,
            f"{lb.get('Type', 'application')} load balancer {lb.get('LoadBalancerName')}: {why}",
            PRICES["load-balancer"],
            tags.get(arn, ()),
            (("LoadBalancerArn", arn),),
        )


def image_references(resources: Iterable[Resource]) -> set[tuple[str, str]]:
    """(repository path, tag or digest) of every `image:` string in the manifests, registry host dropped."""
    refs: set[tuple[str, str]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "image" and isinstance(v, str):
                    refs.update(_parse_image(v))
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for r in resources:
        walk(r.doc)
    return refs


def _parse_image(ref: str) -> set[tuple[str, str]]:
    name, _, digest = ref.strip().partition("@")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        name = rest  # registry host (with its port) dropped: ECR repositories are matched by path
    path, tag = name, "latest"
    if ":" in name.rsplit("/", 1)[-1]:
        path, tag = name.rsplit(":", 1)
    out = {(path, tag)}
    if digest:
        out = {(path, digest)} | ({(path, tag)} if ":" in name.rsplit("/", 1)[-1] else set())
    return out


def ecr_images(aws: Aws, refs: set[tuple[str, str]], older_than: int, now: datetime) -> Iterator[Orphan]:
    ecr = aws.client("ecr")
    cutoff = now - timedelta(days=older_than)
    for repo in aws.paginate("ecr", "describe_repositories", "repositories"):
        name = repo["repositoryName"]
        with aws_errors(f"ecr list_tags_for_resource {name}"):
            tags = _tags(ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags"))
        for image in aws.paginate("ecr", "describe_images", "imageDetails", repositoryName=name):
            digest, image_tags = str(image.get("imageDigest")), sorted(image.get("imageTags") or [])
            pushed = image.get("imagePushedAt")
            if isinstance(pushed, datetime) and pushed > cutoff:
                continue  # just pushed: CD may be about to set it
            if (name, digest) in refs or any((name, t) in refs for t in image_tags):
                continue
            size = Decimal(int(image.get("imageSizeInBytes", 0))) / _GB
            label = f"tags {', '.join(image_tags)}" if image_tags else "untagged"
            yield Orphan(
                "ecr-image",
                f"{name}@{digest}",
                f"{label}, {format(size.quantize(Decimal('0.001'), ROUND_HALF_UP), 'f')} GB, "
                "referenced by no rendered manifest",
                size * PRICES["ecr"],
                tags,
                (("repositoryName", name), ("imageIds", [{"imageDigest": digest}])),
            )


def rendered_resources(root: Path) -> list[Resource]:
    """Every committed manifest of every environment folder (environments/*/manifests)."""
    base = root / "environments"
    out: list[Resource] = []
    for env in sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
        if not env.startswith("."):
            out += load_env_manifests(root, env, f"environments/{env}/manifests")
    return out


def find(aws: Aws, root: Path, older_than: int, now: datetime) -> tuple[list[Orphan], list[str]]:
    """Every orphan, sorted by kind and id, and notes on what was not checked."""
    found = [*volumes(aws), *addresses(aws), *snapshots(aws, older_than, now), *load_balancers(aws)]
    notes = []
    resources = rendered_resources(root)
    if resources:
        found += ecr_images(aws, image_references(resources), older_than, now)
    else:
        notes.append(
            f"no rendered manifests under {root / 'environments'}/*/manifests: ECR images not checked "
            "(every image would look unused)"
        )
    return sorted(found, key=lambda o: (KINDS.index(o.kind), o.id)), notes


_DELETE = {
    "ebs-volume": ("ec2", "delete_volume"),
    "elastic-ip": ("ec2", "release_address"),
    "snapshot": ("ec2", "delete_snapshot"),
    "load-balancer": ("elbv2", "delete_load_balancer"),
    "ecr-image": ("ecr", "batch_delete_image"),
}


def delete(aws: Aws, orphans: list[Orphan], out: TextIO) -> list[UserError]:
    """Delete each orphan, one line each; the failures, for the caller to report at the end."""
    from botocore import exceptions as bx

    errors: list[UserError] = []
    for o in orphans:
        service, operation = _DELETE[o.kind]
        doing = f"deleting {o.kind} {o.id}"
        try:
            result = getattr(aws.client(service), operation)(**dict(o.delete))
        except (bx.BotoCoreError, bx.ClientError) as exc:  # reported at the end; the other deletions go on
            errors.append(error_message(exc, doing))
            out.write(f"failed  {o.kind} {o.id}\n")
            continue
        failures = result.get("failures") if isinstance(result, dict) else None
        if failures:  # batch_delete_image reports per-image failures in its answer, not as an error
            reason = failures[0].get("failureReason") or failures[0].get("failureCode")
            errors.append(UserError(f"{doing}: {reason}"))
            out.write(f"failed  {o.kind} {o.id}\n")
            continue
        out.write(f"deleted {o.kind} {o.id}\n")
    return errors


def write_text(orphans: list[Orphan], notes: list[str], region: str, out: TextIO) -> None:
    if not orphans:
        out.write(f"no orphaned resources in {region}\n")
    for o in orphans:
        tags = ", ".join(f"{k}={v}" for k, v in o.tags) or "none"
        out.write(
            f"{o.kind} {o.id}: {o.detail}; est. {format_money(o.monthly, 'USD', signed=False)}/month; "
            f"tags: {tags}\n"
        )
    if orphans:
        total = sum((o.monthly for o in orphans), Decimal(0))
        out.write(
            f"\n{len(orphans)} orphaned resource(s) in {region}, est. "
            f"{format_money(total, 'USD', signed=False)}/month (list-price estimates, see docs/cost.md)\n"
        )
    for note in notes:
        out.write(f"note: {note}\n")


def write_json(orphans: list[Orphan], notes: list[str], region: str, out: TextIO) -> None:
    doc = {
        "region": region,
        "orphans": [o.to_dict() for o in orphans],
        "totalMonthlyUSD": _money(sum((o.monthly for o in orphans), Decimal(0))),
        "notes": notes,
    }
    json.dump(doc, out, indent=2, sort_keys=True)
    out.write("\n")
