"""`state bootstrap --env E`: the S3 bucket and DynamoDB lock table Terraform's remote state needs.

Terraform can't create the bucket its own state lives in, so this does, once per account, from the names the
root configuration `terraform/environments/<env>/` declares in its `backend "s3"` block (read, never
repeated). The bucket gets versioning (a bad apply can be rolled back to an earlier state), default
encryption (SSE-S3, or SSE-KMS when the backend names a `kms_key_id`), all four public access blocks and a
policy refusing requests without TLS; the table a `LockID` string hash key and on-demand billing. Every step
looks first and changes only what differs, so a second run prints "no changes".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from betcycle.aws.session import Aws, aws_errors
from betcycle.errors import UserError
from betcycle.iac import terraform
from betcycle.model.repo import unknown_name

ENVIRONMENTS_DIR = "terraform/environments"
TLS_SID = "DenyInsecureTransport"
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


@dataclass(frozen=True)
class Backend:
    env: str
    file: str  # the folder's .tf files, for messages
    bucket: str
    region: str | None
    table: str | None
    kms_key_id: str | None
    #: the root configuration's provider default_tags: the bucket and table get them too, so they are tagged
    #: like everything Terraform creates (and `betcycle audit`'s required-tags rule passes on them)
    tags: tuple[tuple[str, str], ...] = ()


def read_backend(root: Path, env: str) -> Backend:
    """The backend "s3" settings of terraform/environments/<env>/, or a UserError naming the folder."""
    folder = root / ENVIRONMENTS_DIR / env
    rel = f"{ENVIRONMENTS_DIR}/{env}"
    if not folder.is_dir():
        parent = root / ENVIRONMENTS_DIR
        known = sorted(p.name for p in parent.iterdir() if p.is_dir()) if parent.is_dir() else []
        err = unknown_name("Terraform environment", env, known, f"`ls {ENVIRONMENTS_DIR}/` lists them")
        err.message = f"no Terraform root configuration for {env!r} ({rel}/ does not exist)"
        err.path = ENVIRONMENTS_DIR
        raise err
    settings = terraform.backend(folder, root)
    where = f"{rel}/backend.tf" if (folder / "backend.tf").exists() else f"{rel}/"
    if not settings:
        raise UserError(
            'no backend "s3" block',
            path=where,
            hint='declare terraform { backend "s3" { bucket = "…", key = "…", region = "…", '
            'dynamodb_table = "…" } } (docs/infrastructure.md)',
        )

    def literal(key: str) -> str | None:
        value = settings.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or "${" in value or not value:
            raise UserError(
                f"backend {key} must be a literal string, got {value!r}",
                path=where,
                hint="Terraform reads backend settings before variables exist; write the name itself",
            )
        return value

    bucket = literal("bucket")
    if not bucket:
        raise UserError(
            'the backend "s3" block has no bucket', path=where, hint='add bucket = "<state bucket name>"'
        )
    tags = tuple(sorted(terraform.default_tags(folder, root).items()))
    return Backend(
        env, where, bucket, literal("region"), literal("dynamodb_table"), literal("kms_key_id"), tags
    )


def _missing(call: Any, not_found: tuple[str, ...], doing: str) -> Any:
    """`call()`, or None when AWS answers with one of the `not_found` error codes."""
    from botocore.exceptions import ClientError

    try:
        return call()
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code", "")) in not_found:
            return None
        with aws_errors(doing):
            raise


def _tls_statement(bucket: str) -> dict[str, Any]:
    return {
        "Sid": TLS_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _ensure_bucket(aws: Aws, b: Backend, region: str, say: Any) -> None:
    s3 = aws.client("s3")
    name = b.bucket
    head = _missing(
        lambda: s3.head_bucket(Bucket=name), ("404", "NoSuchBucket", "NotFound"), f"reading {name}"
    )
    if head is None:
        kwargs: dict[str, Any] = {"Bucket": name}
        if region != "us-east-1":  # us-east-1 refuses its own name as a LocationConstraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        with aws_errors(f"creating bucket {name}"):
            s3.create_bucket(**kwargs)
        say(f"bucket {name}: created in {region}")
    with aws_errors(f"reading the versioning of {name}"):
        versioning = s3.get_bucket_versioning(Bucket=name).get("Status")
    if versioning != "Enabled":
        with aws_errors(f"enabling versioning on {name}"):
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        say(f"bucket {name}: versioning enabled")

    want_kms = bool(b.kms_key_id)
    enc = _missing(
        lambda: s3.get_bucket_encryption(Bucket=name),
        ("ServerSideEncryptionConfigurationNotFoundError",),
        f"reading the encryption of {name}",
    )
    rules = (enc or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    defaults = [r.get("ApplyServerSideEncryptionByDefault", {}) for r in rules]
    algorithms = {d.get("SSEAlgorithm") for d in defaults}
    keys = {d.get("KMSMasterKeyID") for d in defaults}
    ok = (
        ("aws:kms" in algorithms and b.kms_key_id in keys)
        if want_kms
        else bool(algorithms & {"AES256", "aws:kms", "aws:kms:dsse"})
    )
    if not ok:
        default: dict[str, Any] = {"SSEAlgorithm": "aws:kms" if want_kms else "AES256"}
        if want_kms:
            default["KMSMasterKeyID"] = b.kms_key_id
        with aws_errors(f"setting the default encryption of {name}"):
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": want_kms}]
                },
            )
        say(f"bucket {name}: default encryption {default['SSEAlgorithm']}")

    block = _missing(
        lambda: s3.get_public_access_block(Bucket=name),
        ("NoSuchPublicAccessBlockConfiguration",),
        f"reading the public access block of {name}",
    )
    current = (block or {}).get("PublicAccessBlockConfiguration", {})
    if any(current.get(k) is not True for k in PUBLIC_ACCESS_BLOCK):
        with aws_errors(f"blocking public access to {name}"):
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=dict(PUBLIC_ACCESS_BLOCK))
        say(f"bucket {name}: public access blocked (all four settings)")

    found = _missing(
        lambda: s3.get_bucket_policy(Bucket=name), ("NoSuchBucketPolicy",), f"reading the policy of {name}"
    )
    policy: dict[str, Any] = (
        json.loads(found["Policy"]) if found else {"Version": "2012-10-17", "Statement": []}
    )
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    if not any(isinstance(s, dict) and s.get("Sid") == TLS_SID for s in statements):
        # added to whatever policy is there: someone else's statements stay
        policy["Statement"] = [*statements, _tls_statement(name)]
        with aws_errors(f"setting the policy of {name}"):
            s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
        say(f"bucket {name}: policy denies requests without TLS")


def _ensure_bucket_tags(aws: Aws, b: Backend, say: Any) -> None:
    """Add the root configuration's default tags the bucket lacks (other tags are kept)."""
    if not b.tags:
        return
    s3 = aws.client("s3")
    found = _missing(
        lambda: s3.get_bucket_tagging(Bucket=b.bucket), ("NoSuchTagSet",), f"reading the tags of {b.bucket}"
    )
    current = {t["Key"]: t["Value"] for t in (found or {}).get("TagSet", [])}
    wanted = {**current, **dict(b.tags)}
    if wanted != current:
        with aws_errors(f"tagging bucket {b.bucket}"):
            s3.put_bucket_tagging(
                Bucket=b.bucket,
                Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in sorted(wanted.items())]},
            )
        say(f"bucket {b.bucket}: tagged {', '.join(f'{k}={v}' for k, v in b.tags)}")


def _ensure_table_tags(aws: Aws, b: Backend, table: str, say: Any) -> None:
    if not b.tags:
        return
    ddb = aws.client("dynamodb")
    with aws_errors(f"reading the tags of table {table}"):
        arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
        current = {t["Key"]: t["Value"] for t in ddb.list_tags_of_resource(ResourceArn=arn).get("Tags", [])}
    missing = {k: v for k, v in b.tags if current.get(k) != v}
    if missing:
        with aws_errors(f"tagging table {table}"):
            ddb.tag_resource(
                ResourceArn=arn, Tags=[{"Key": k, "Value": v} for k, v in sorted(missing.items())]
            )
        say(f"table {table}: tagged {', '.join(f'{k}={v}' for k, v in sorted(missing.items()))}")


def _ensure_table(aws: Aws, table: str, say: Any) -> None:
    ddb = aws.client("dynamodb")
    found = _missing(
        lambda: ddb.describe_table(TableName=table), ("ResourceNotFoundException",), f"reading table {table}"
    )
    if found is None:
        with aws_errors(f"creating table {table}"):
            ddb.create_table(
                TableName=table,
                AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
            )
            ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 2, "MaxAttempts": 30})
        say(f"table {table}: created (LockID string hash key, on-demand)")
        return
    desc = found["Table"]
    keys = [(k["AttributeName"], k["KeyType"]) for k in desc.get("KeySchema", [])]
    types = {a["AttributeName"]: a["AttributeType"] for a in desc.get("AttributeDefinitions", [])}
    if keys != [("LockID", "HASH")] or types.get("LockID") != "S":
        raise UserError(
            f"table {table} exists but its key is {keys} (Terraform needs LockID, a string hash key)",
            hint="point dynamodb_table at another name, or recreate that table (a key can't be changed)",
        )
    billing = desc.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    if billing != "PAY_PER_REQUEST":
        with aws_errors(f"switching table {table} to on-demand billing"):
            ddb.update_table(TableName=table, BillingMode="PAY_PER_REQUEST")
        say(f"table {table}: billing switched from {billing} to on-demand")


def bootstrap(aws: Aws, root: Path, env: str, out: TextIO) -> int:
    """Create or fix the state bucket and lock table of one environment; print each change or "no changes"."""
    b = read_backend(root, env)
    if b.region and aws.region and aws.region != b.region:
        raise UserError(
            f"--region {aws.region} differs from the backend's region {b.region}",
            path=b.file,
            hint="leave out --region: the backend says where the state lives",
        )
    if b.region:
        aws.region = b.region  # before any client exists, so every client goes there
    region = aws.region_name
    changes = 0

    def say(line: str) -> None:
        nonlocal changes
        changes += 1
        out.write(line + "\n")

    _ensure_bucket(aws, b, region, say)
    _ensure_bucket_tags(aws, b, say)
    if b.table:
        _ensure_table(aws, b.table, say)
        _ensure_table_tags(aws, b, b.table, say)
    else:
        out.write(
            f"no dynamodb_table in {b.file}: no lock table (Terraform 1.10+ can lock with use_lockfile)\n"
        )
    if not changes:
        out.write(f"no changes (bucket {b.bucket}" + (f", table {b.table})" if b.table else ")") + "\n")
    return 0
