"""`betcycle audit`: the live compliance scan of the account, written in a findings format."""

from __future__ import annotations

from typing import TextIO

from betcycle import formats
from betcycle.aws import audit
from betcycle.aws.session import Aws
from betcycle.model.findings import has_errors


def run(aws: Aws, *, fmt: str, out: TextIO) -> int:
    """Exit 1 when any finding is an error, else 0."""
    account, region, findings = audit.scan(aws)
    if fmt == "text":
        out.write(f"audit of AWS account {account} in {region}: {len(audit.RULES)} rules\n\n")
    formats.write(fmt, findings, out, rules=audit.sarif_rules(), account=account, region=region)
    return 1 if has_errors(findings) else 0
