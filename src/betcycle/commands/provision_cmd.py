"""`betcycle state bootstrap`, `registry ensure|gate` and `budgets ensure`: the AWS resources BetCycle keeps
itself (docs/aws.md). Each verb is a call into betcycle.aws.*; this module only wires arguments to them."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from betcycle.aws import budgets, registry, state
from betcycle.aws.session import Aws
from betcycle.model.repo import load_repo


def state_bootstrap(root: Path, aws: Aws, env: str, out: TextIO) -> int:
    return state.bootstrap(aws, root, env, out)


def registry_ensure(root: Path, aws: Aws, out: TextIO) -> int:
    return registry.ensure(aws, load_repo(root), out)


def registry_gate(root: Path, aws: Aws, app: str, tag: str, max_severity: str, out: TextIO) -> int:
    return registry.gate(load_repo(root), app, tag, max_severity, registry.ecr_scan(aws), out)


def budgets_ensure(root: Path, aws: Aws, out: TextIO) -> int:
    return budgets.ensure(aws, load_repo(root), out)
