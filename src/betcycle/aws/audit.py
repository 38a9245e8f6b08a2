"""`betcycle audit`: a live compliance scan of the account, against the rules the Terraform policies enforce.

The Terraform policies (`policies/`, evaluated on `terraform/**/*.tf` by `betcycle validate`) check what the
code declares; this scan checks what the account holds, so a resource created by hand or drifted after an
apply is caught too. `RULES` is the one table of what is checked, with the same intent as those policies
(the policy files are JSON Schema over Terraform blocks, which an API answer does not have the shape of, so
the checks here are code). Every finding's subject is the resource's ARN; its environment is the
resource's `environment` tag when it has one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from betcycle.aws.session import Aws, aws_errors
from betcycle.model.findings import Finding, sort_findings

REQUIRED_TAGS = ("environment", "owner", "cost-center", "managed-by")
#: security-group ingress from anywhere is allowed on these ports only (a public load balancer's)
OPEN_PORTS = frozenset({80, 443})
_EVERYONE = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)


@dataclass(frozen=True)
class Rule:
    #: the Terraform policy with the same intent (policies/<id>.yaml)
    policy: str
    title: str
    hint: str
    severity: str = "error"


# The same intent as the Terraform policies policies/TF001.yaml … TF009.yaml (each rule names its policy):
# required tags, S3 encryption and public access, ECR scanning and immutable tags, EBS/RDS encryption, private
# EKS endpoints in prod, no 0.0.0.0/0 ingress but 80/443, CloudTrail on. Keep the two lists in step.
RULES: dict[str, Rule] = {
    "audit/required-tags": Rule(
        "TF003",
        "taggable resources carry the environment, owner, cost-center and managed-by tags",
        "tag it (Terraform: the provider's default_tags); untagged spend can't be attributed in cost report",
    ),
    "audit/s3-encryption": Rule(
        "TF001",
        "S3 buckets have default encryption",
        "set a server-side encryption configuration (SSE-S3 or SSE-KMS) on the bucket",
    ),
    "audit/s3-public-access-block": Rule(
        "TF002",
        "S3 buckets block public access (all four settings, on the bucket or the account)",
        "put a public access block with all four settings true on the bucket, or on the account",
    ),
    "audit/s3-public": Rule(
        "TF002",
        "no S3 bucket policy or ACL grants access to everyone",
        'remove the statement with Principal "*" (or the AllUsers grant); serve public files through CloudFront',
    ),
    "audit/ecr-scan-on-push": Rule(
        "TF006", "ECR repositories scan images on push", "set imageScanningConfiguration scanOnPush=true"
    ),
    "audit/ecr-immutable-tags": Rule(
        "TF006",
        "ECR repositories have immutable tags",
        "set imageTagMutability IMMUTABLE so a tag always names the image that was reviewed",
    ),
    "audit/ebs-encryption": Rule(
        "TF008",
        "EBS volumes are encrypted",
        "snapshot it, copy the snapshot encrypted, restore; turn on EBS encryption by default in the region",
    ),
    "audit/rds-encryption": Rule(
        "TF007",
        "RDS instances and clusters have encrypted storage",
        "restore from an encrypted snapshot copy (storage encryption can't be turned on in place)",
    ),
    "audit/eks-public-endpoint": Rule(
        "TF005",
        "the API endpoint of production (environment=prod*) EKS clusters is not public",
        "set endpointPublicAccess=false (endpointPrivateAccess=true) and reach it through the VPC",
    ),
    "audit/sg-open-ingress": Rule(
        "TF004",
        "no security group allows ingress from 0.0.0.0/0 or ::/0 except on ports 80 and 443",
        "narrow the source to known CIDRs or a security group; reach hosts through SSM Session Manager",
    ),
    "audit/cloudtrail": Rule(
        "TF009",
        "a multi-region CloudTrail trail is logging",
        "create a multi-region trail (is_multi_region_trail = true) and start logging",
    ),
}


def sarif_rules() -> dict[str, dict[str, str]]:
    """The table in the shape formats/sarif.py documents its rules with."""
    return {
        rid: {"title": r.title, "severity": r.severity, "rationale": f"the live twin of policy {r.policy}"}
        for rid, r in RULES.items()
    }


def _finding(rule: str, arn: str, message: str, tags: dict[str, str] | None = None) -> Finding:
    r = RULES[rule]
    env = (tags or {}).get("environment") or None
    return Finding(severity=r.severity, rule=rule, message=message, hint=r.hint, env=env, resource=arn)


def _tag_map(
    items: Iterable[dict[str, Any]] | None, key: str = "Key", value: str = "Value"
) -> dict[str, str]:
    return {str(t.get(key)): str(t.get(value, "")) for t in items or []}


def _missing_tags(arn: str, tags: dict[str, str]) -> Iterator[Finding]:
    missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
    if missing:
        yield _finding("audit/required-tags", arn, f"missing tag(s): {', '.join(missing)}", tags)


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


class _Scan:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        with aws_errors("sts get_caller_identity"):
            self.account = str(aws.client("sts").get_caller_identity()["Account"])
        self.region = aws.region_name

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{self.account}:{resource}"

    def _optional(self, service: str, operation: str, absent: str, **kwargs: Any) -> dict[str, Any] | None:
        """The answer of `operation`, or None when AWS answers with the error code `absent` (not set)."""
        from botocore.exceptions import ClientError

        with aws_errors(f"{service} {operation}"):
            try:
                result: dict[str, Any] = getattr(self.aws.client(service), operation)(**kwargs)
            except ClientError as exc:
                if _code(exc) == absent:
                    return None
                raise
        return result

    def _account_host_prefix_off(self) -> None:
        """S3 Control puts the account id in front of the host (`123456789012.s3-control…`): right for AWS,
        unresolvable for an explicit endpoint such as `http://127.0.0.1:PORT`, which gets the plain URL."""
        client = self.aws.client("s3control")
        if not (self.aws.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")):
            return

        def plain_host(request: Any, **_: Any) -> None:
            request.url = request.url.replace(f"://{self.account}.", "://", 1)

        client.meta.events.register("before-send.s3-control", plain_host, unique_id="betcycle-plain-host")

    def s3(self) -> Iterator[Finding]:
        self._account_host_prefix_off()
        account_block = self._optional(
            "s3control",
            "get_public_access_block",
            "NoSuchPublicAccessBlockConfiguration",
            AccountId=self.account,
        )
        account_blocks = _all_blocked((account_block or {}).get("PublicAccessBlockConfiguration"))
        for bucket in self.aws.paginate("s3", "list_buckets", "Buckets"):
            name = bucket["Name"]
            arn = f"arn:aws:s3:::{name}"
            tagging = self._optional("s3", "get_bucket_tagging", "NoSuchTagSet", Bucket=name)
            tags = _tag_map((tagging or {}).get("TagSet"))
            yield from _missing_tags(arn, tags)
            if not self._optional(
                "s3", "get_bucket_encryption", "ServerSideEncryptionConfigurationNotFoundError", Bucket=name
            ):
                yield _finding("audit/s3-encryption", arn, "no default encryption", tags)
            block = self._optional(
                "s3", "get_public_access_block", "NoSuchPublicAccessBlockConfiguration", Bucket=name
            )
            if not account_blocks and not _all_blocked((block or {}).get("PublicAccessBlockConfiguration")):
                yield _finding(
                    "audit/s3-public-access-block",
                    arn,
                    "public access is not blocked (bucket or account public access block incomplete)",
                    tags,
                )
            policy = self._optional("s3", "get_bucket_policy", "NoSuchBucketPolicy", Bucket=name)
            public = _public_statements((policy or {}).get("Policy"))
            if public:
                yield _finding(
                    "audit/s3-public", arn, f"the bucket policy grants everyone access ({public})", tags
                )
            with aws_errors(f"s3 get_bucket_acl {name}"):
                grants = self.aws.client("s3").get_bucket_acl(Bucket=name).get("Grants", [])
            for g in grants:
                if g.get("Grantee", {}).get("URI") in _EVERYONE:
                    who = str(g["Grantee"]["URI"]).rsplit("/", 1)[-1]
                    yield _finding(
                        "audit/s3-public", arn, f"the bucket ACL grants {g.get('Permission')} to {who}", tags
                    )

    def ecr(self) -> Iterator[Finding]:
        ecr = self.aws.client("ecr")
        for repo in self.aws.paginate("ecr", "describe_repositories", "repositories"):
            arn = repo["repositoryArn"]
            with aws_errors(f"ecr list_tags_for_resource {repo['repositoryName']}"):
                tags = _tag_map(ecr.list_tags_for_resource(resourceArn=arn).get("tags"))
            yield from _missing_tags(arn, tags)
            if not repo.get("imageScanningConfiguration", {}).get("scanOnPush"):
                yield _finding("audit/ecr-scan-on-push", arn, "images are not scanned on push", tags)
            if not str(repo.get("imageTagMutability", "MUTABLE")).startswith("IMMUTABLE"):
                yield _finding("audit/ecr-immutable-tags", arn, "image tags are mutable", tags)

    def ec2(self) -> Iterator[Finding]:
        for v in self.aws.paginate("ec2", "describe_volumes", "Volumes"):
            arn = self.arn("ec2", f"volume/{v['VolumeId']}")
            tags = _tag_map(v.get("Tags"))
            yield from _missing_tags(arn, tags)
            if not v.get("Encrypted"):
                yield _finding("audit/ebs-encryption", arn, "the volume is not encrypted", tags)
        for sg in self.aws.paginate("ec2", "describe_security_groups", "SecurityGroups"):
            arn = self.arn("ec2", f"security-group/{sg['GroupId']}")
            tags = _tag_map(sg.get("Tags"))
            for perm in sg.get("IpPermissions", []):
                sources = [r.get("CidrIp") for r in perm.get("IpRanges", [])]
                sources += [r.get("CidrIpv6") for r in perm.get("Ipv6Ranges", [])]
                opened = [s for s in sources if s in ("0.0.0.0/0", "::/0")]
                if opened and not _web_only(perm):
                    yield _finding(
                        "audit/sg-open-ingress",
                        arn,
                        f"{sg.get('GroupName')}: ingress {_ports(perm)} from {', '.join(sorted(opened))}",
                        tags,
                    )

    def rds(self) -> Iterator[Finding]:
        for db in self.aws.paginate("rds", "describe_db_instances", "DBInstances"):
            tags = _tag_map(db.get("TagList"))
            yield from _missing_tags(db["DBInstanceArn"], tags)
            if not db.get("StorageEncrypted") and not db.get("DBClusterIdentifier"):
                yield _finding("audit/rds-encryption", db["DBInstanceArn"], "storage is not encrypted", tags)
        for cluster in self.aws.paginate("rds", "describe_db_clusters", "DBClusters"):
            tags = _tag_map(cluster.get("TagList"))
            yield from _missing_tags(cluster["DBClusterArn"], tags)
            if not cluster.get("StorageEncrypted"):
                yield _finding(
                    "audit/rds-encryption", cluster["DBClusterArn"], "cluster storage is not encrypted", tags
                )

    def eks(self) -> Iterator[Finding]:
        eks = self.aws.client("eks")
        for name in self.aws.paginate("eks", "list_clusters", "clusters"):
            with aws_errors(f"eks describe_cluster {name}"):
                cluster = eks.describe_cluster(name=name)["cluster"]
            tags = {str(k): str(v) for k, v in (cluster.get("tags") or {}).items()}
            yield from _missing_tags(cluster["arn"], tags)
            vpc = cluster.get("resourcesVpcConfig", {})
            if tags.get("environment", "").startswith("prod") and vpc.get("endpointPublicAccess", True):
                cidrs = ", ".join(vpc.get("publicAccessCidrs") or ["0.0.0.0/0"])
                yield _finding(
                    "audit/eks-public-endpoint", cluster["arn"], f"the API endpoint is public ({cidrs})", tags
                )

    def elb(self) -> Iterator[Finding]:
        arns = [
            lb["LoadBalancerArn"]
            for lb in self.aws.paginate("elbv2", "describe_load_balancers", "LoadBalancers")
        ]
        for i in range(0, len(arns), 20):  # DescribeTags takes at most 20 ARNs a call
            with aws_errors("elbv2 describe_tags"):
                found = self.aws.client("elbv2").describe_tags(ResourceArns=arns[i : i + 20])
            for d in found.get("TagDescriptions", []):
                yield from _missing_tags(d["ResourceArn"], _tag_map(d.get("Tags")))

    def cloudtrail(self) -> Iterator[Finding]:
        ct = self.aws.client("cloudtrail")
        with aws_errors("cloudtrail describe_trails"):  # not paginated: one call returns every trail
            trails = ct.describe_trails(includeShadowTrails=True).get("trailList", [])
        for t in trails:
            if t.get("IsMultiRegionTrail"):
                with aws_errors(f"cloudtrail get_trail_status {t.get('Name')}"):
                    if ct.get_trail_status(Name=t.get("TrailARN") or t["Name"]).get("IsLogging"):
                        return
        yield _finding(
            "audit/cloudtrail",
            f"arn:aws:iam::{self.account}:root",
            "no multi-region CloudTrail trail is logging in this account",
        )


def _all_blocked(config: dict[str, Any] | None) -> bool:
    keys = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    return bool(config) and all((config or {}).get(k) is True for k in keys)


def _public_statements(policy: str | None) -> str:
    """The Sids (or indexes) of Allow statements with Principal * and no Condition, comma-separated."""
    if not policy:
        return ""
    try:
        doc = json.loads(policy)
    except ValueError:
        return ""
    statements = doc.get("Statement", []) if isinstance(doc, dict) else []
    statements = [statements] if isinstance(statements, dict) else statements
    found = []
    for i, s in enumerate(statements if isinstance(statements, list) else []):
        if not isinstance(s, dict) or s.get("Effect") != "Allow" or s.get("Condition"):
            continue
        principal = s.get("Principal")
        aws_principal = principal.get("AWS") if isinstance(principal, dict) else None
        if (
            principal == "*"
            or aws_principal == "*"
            or (isinstance(aws_principal, list) and "*" in aws_principal)
        ):
            found.append(str(s.get("Sid") or f"statement {i}"))
    return ", ".join(found)


def _web_only(perm: dict[str, Any]) -> bool:
    """True when the permission is TCP on exactly port 80 or 443."""
    return (
        str(perm.get("IpProtocol")) in ("tcp", "6")
        and perm.get("FromPort") == perm.get("ToPort")
        and perm.get("FromPort") in OPEN_PORTS
    )


def _ports(perm: dict[str, Any]) -> str:
    proto = str(perm.get("IpProtocol"))
    if proto == "-1":
        return "on every port and protocol"
    lo, hi = perm.get("FromPort"), perm.get("ToPort")
    return f"{proto} port {lo}" if lo == hi else f"{proto} ports {lo}-{hi}"


SCANS = ("s3", "ecr", "ec2", "rds", "eks", "elb", "cloudtrail")


def scan(aws: Aws) -> tuple[str, str, list[Finding]]:
    """(account, region, every finding of every rule sorted: environment tag, then ARN)."""
    s = _Scan(aws)
    findings: list[Finding] = []
    for name in SCANS:
        findings += getattr(s, name)()
    return s.account, s.region, sort_findings(findings)
