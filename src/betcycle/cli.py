"""The `betcycle` command: parses arguments and routes to one function per verb (betcycle.commands.*).

Exit codes: 0 ok, 1 findings at error severity / stale render / changes, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from betcycle import __version__
from betcycle.errors import UserError, UserErrors

if TYPE_CHECKING:
    from betcycle.aws.session import Aws

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
FORMATS = ("text", "json", "sarif", "github")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"betcycle: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def find_root(start: Path) -> Path:
    """The repository root: the nearest folder (from `start` up) with betcycle.yaml or environments/."""
    start = start.resolve()
    for p in (start, *start.parents):
        if (p / "betcycle.yaml").is_file() or (p / "environments").is_dir():
            return p
    return start


def aws_options(p: argparse.ArgumentParser) -> None:
    """The options every AWS command takes (credentials come from the usual AWS chain)."""
    p.add_argument("--region", help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / the profile's)")
    p.add_argument("--profile", help="AWS profile (default: AWS_PROFILE / the default chain)")
    p.add_argument(
        "--endpoint-url",
        help="an AWS-compatible endpoint, e.g. a local moto server (default: AWS_ENDPOINT_URL)",
    )


def aws_from_args(args: argparse.Namespace) -> Aws:
    from betcycle.aws.session import Aws

    return Aws(region=args.region, profile=args.profile, endpoint_url=args.endpoint_url)


def scale_options(p: argparse.ArgumentParser, verb: str, *, shard: bool = True) -> None:
    """--jobs, --no-cache and --shard (docs/performance.md)."""
    p.add_argument(
        "--jobs",
        "-j",
        metavar="N",
        help=f"{verb} in N processes (default: $BETCYCLE_JOBS, else one per CPU; 1: no pool); the output "
        "is the same for any N",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help=f"{verb} every (environment, app) pair, ignoring the cache ($BETCYCLE_CACHE_DIR, "
        "else ~/.cache/betcycle)",
    )
    if not shard:
        return
    p.add_argument(
        "--shard",
        metavar="I/N",
        help=f"{verb} only the I-th of N shares of the (environment, app) pairs (a CI matrix job)",
    )


def _jobs(args: argparse.Namespace) -> str:
    """--jobs, else $BETCYCLE_JOBS, else one per CPU (`auto`)."""
    return str(args.jobs or os.environ.get("BETCYCLE_JOBS") or "auto")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="betcycle", description="GitOps monorepo toolkit: render, validate, policy.")
    parser.add_argument("--version", action="version", version=f"betcycle {__version__}")
    parser.add_argument("--root", type=Path, help="repository root (default: found from the current folder)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("render", help="render charts + values into environments/<env>/manifests")
    p.add_argument("--env", action="append", default=[], help="only this environment (repeatable)")
    p.add_argument("--app", action="append", default=[], help="only this app (repeatable)")
    p.add_argument("--check", action="store_true", help="render in memory; exit 1 listing files that differ")
    scale_options(p, "render")

    p = sub.add_parser("validate", help="validate rendered environments (default) or any manifest files")
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to validate; - for stdin")
    p.add_argument("--env", action="append", default=[], help="only this environment (repeatable)")
    p.add_argument("--app", action="append", default=[], help="only this app (repeatable)")
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument("--output", "-o", type=Path, help="write the report to this file instead of stdout")
    p.add_argument(
        "--strict",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a custom resource without a schema is an error (the default); --no-strict only reports it",
    )
    p.add_argument(
        "--kubernetes-version", help="Kubernetes version for PATHs (default: the newest supported)"
    )
    p.add_argument(
        "--schema-cache",
        type=Path,
        help="extra CRD schemas, looked up after the repository's schemas/crds "
        "(default: $BETCYCLE_SCHEMA_CACHE, else ~/.cache/betcycle/schemas)",
    )
    p.add_argument(
        "--checks",
        metavar="LIST",
        help="the stages to run, comma-separated: schema, crossref, policy (default: all)",
    )
    p.add_argument(
        "--no-policies", action="store_true", help="skip the policies (same as leaving out policy)"
    )
    p.add_argument(
        "--external",
        action="append",
        default=[],
        metavar="KIND/[NAMESPACE/]NAME",
        help="an object that exists outside the files, e.g. ServiceAccount/web (repeatable)",
    )
    p.add_argument(
        "--external-file",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="a YAML list of such objects (KIND/[NAMESPACE/]NAME strings or kind/namespace/name mappings)",
    )
    scale_options(p, "validate")

    p = sub.add_parser(
        "diff", help="semantic diff of what each cluster will receive, against a base revision"
    )
    p.add_argument("--base", help="base revision (default: merge base with origin/main, else main)")
    p.add_argument("--head", help="head revision to render (default: the working tree)")
    p.add_argument("--env", action="append", default=[], help="only this environment (repeatable)")
    p.add_argument("--app", action="append", default=[], help="only this app (repeatable)")
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    p.add_argument("--output", "-o", type=Path, help="write the diff to this file instead of stdout")
    p.add_argument("--exit-code", action="store_true", help="exit 1 when there are changes")
    p.add_argument(
        "--full", action="store_true", help="render every app, not only those whose inputs changed"
    )
    p.add_argument(
        "--max-chars", type=int, default=60_000, help="markdown size cap (GitHub comments: 65,536)"
    )
    scale_options(p, "render the head", shard=False)

    for verb, help_text in (
        ("set-image", "set an app's image tag in one environment (what CD calls after a push)"),
        ("promote", "copy an app's release from its promotion source into the next environment"),
        ("rollback", "set an app's image tag back to the previous one (from git history) or --to TAG"),
    ):
        p = sub.add_parser(verb, help=help_text)
        p.add_argument("app")
        if verb == "promote":
            p.add_argument("--from", dest="source", required=True, help="source environment")
            p.add_argument("--to", dest="target", required=True, help="target environment")
            p.add_argument("--all-values", action="store_true", help="also copy env and config values")
            p.add_argument(
                "--require-gate",
                action="store_true",
                help="fail instead of skipping the image scan gate when there are no AWS credentials",
            )
            aws_options(p)
        else:
            p.add_argument("--env", required=True)
            if verb == "set-image":
                p.add_argument("--tag", required=True)
            else:
                p.add_argument("--to", dest="to", help="the tag to go back to (default: previous in history)")
                p.add_argument(
                    "--force", action="store_true", help="allow a --to tag that never ran in that environment"
                )
        p.add_argument("--commit", action="store_true", help="commit the change (on --branch if given)")
        p.add_argument("--branch", help="create this branch for the commit")
        p.add_argument("--pr-body", type=Path, help="write a pull-request description (markdown) here")

    p = sub.add_parser("findings", help="work with validation reports")
    fsub = p.add_subparsers(dest="findings_command", required=True, parser_class=_Parser)
    fm = fsub.add_parser(
        "merge", help="merge the JSON reports of `validate --shard I/N`; exit 1 on any error finding"
    )
    fm.add_argument("files", nargs="+", type=Path, metavar="REPORT.json")
    fm.add_argument("--format", choices=FORMATS, default="text")
    fm.add_argument("--output", "-o", type=Path, help="write the merged report to this file")

    p = sub.add_parser("shards", help="the --shard values for a CI matrix, from the number of apps")
    p.add_argument(
        "--apps-per-shard", type=int, default=150, metavar="N", help="one shard per N apps (default 150)"
    )
    p.add_argument("--max", type=int, default=8, metavar="M", help="at most M shards (default 8)")
    p.add_argument("--format", choices=("text", "json"), default="text")

    p = sub.add_parser("policy", help="the policy catalogue")
    psub = p.add_subparsers(dest="policy_command", required=True, parser_class=_Parser)
    pl = psub.add_parser("list", help="print every policy")
    pl.add_argument("--format", choices=("text", "json"), default="text")
    psub.add_parser("test", help="run every policy's pass/fail examples")

    p = sub.add_parser(
        "schemas", help="custom-resource schemas for validate: vendored (schemas/crds) or cached"
    )
    ssub = p.add_subparsers(dest="schemas_command", required=True, parser_class=_Parser)
    lock_help = "lock file (default: crds.lock.yaml at the repository root)"
    si = ssub.add_parser(
        "import", help="convert CRDs (files, folders, - for stdin) into your schema cache, or --vendor them"
    )
    si.add_argument("sources", nargs="+", metavar="CRD")
    into = si.add_mutually_exclusive_group()
    into.add_argument("--schema-cache", type=Path, help="cache folder (default: $BETCYCLE_SCHEMA_CACHE)")
    into.add_argument(
        "--vendor",
        action="store_true",
        help="write the repository's schemas/crds instead; each file must be pinned in crds.lock.yaml",
    )
    si.add_argument("--lock", type=Path, help=f"with --vendor: {lock_help}")
    sf = ssub.add_parser(
        "fetch", help="download the CRDs pinned in crds.lock.yaml and rewrite schemas/crds (needs network)"
    )
    sf.add_argument("--lock", type=Path, help=lock_help)
    sc = ssub.add_parser(
        "check", help="check schemas/crds against crds.lock.yaml (offline); exit 1 if it differs"
    )
    sc.add_argument("--lock", type=Path, help=lock_help)

    # AWS resources BetCycle keeps itself (docs/aws.md)
    p = sub.add_parser("state", help="Terraform's remote state: the S3 bucket and DynamoDB lock table")
    stsub = p.add_subparsers(dest="state_command", required=True, parser_class=_Parser)
    sb = stsub.add_parser(
        "bootstrap", help="create the state bucket and lock table terraform/environments/ENV's backend names"
    )
    sb.add_argument("--env", required=True, help="the root configuration terraform/environments/ENV")
    aws_options(sb)
    p = sub.add_parser("registry", help="ECR: one repository per app, and the image scan gate")
    rsub = p.add_subparsers(dest="registry_command", required=True, parser_class=_Parser)
    aws_options(rsub.add_parser("ensure", help="an ECR repository per app: scan on push, immutable tags"))
    rg = rsub.add_parser("gate", help="exit 1 if APP's image --tag is missing, unscanned or has findings")
    rg.add_argument("app")
    rg.add_argument("--tag", required=True)
    rg.add_argument(
        "--max-severity",
        choices=("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED"),
        default="HIGH",
        help="the most severe finding allowed (default: HIGH, so any CRITICAL fails)",
    )
    aws_options(rg)
    p = sub.add_parser("budgets", help="AWS Budgets: one per environment, from environment.yaml's budget:")
    bsub = p.add_subparsers(dest="budgets_command", required=True, parser_class=_Parser)
    aws_options(bsub.add_parser("ensure", help="create or update each environment's budget and alerts"))
    # AWS cost and compliance views (docs/cost.md)
    p = sub.add_parser("cost", help="AWS spend: Cost Explorer by environment and app, and orphaned resources")
    csub = p.add_subparsers(dest="cost_command", required=True, parser_class=_Parser)
    cr = csub.add_parser(
        "report", help="monthly spend per environment and app, against budgets and the Kubernetes estimate"
    )
    cr.add_argument("--env", action="append", default=[], help="only this environment (repeatable)")
    cr.add_argument(
        "--months", type=int, default=3, help="how many complete months, up to --to (default 3, at most 14)"
    )
    cr.add_argument("--to", metavar="YYYY-MM", help="the last month (default: the last complete one)")
    cr.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    cr.add_argument("--output", "-o", type=Path, help="write the report to this file instead of stdout")
    aws_options(cr)
    co = csub.add_parser(
        "orphans",
        help="unattached volumes, unused Elastic IPs, AMI-less snapshots, idle load balancers, unused images",
    )
    co.add_argument(
        "--older-than",
        type=int,
        default=30,
        metavar="DAYS",
        help="snapshots and ECR images younger than this are left out (default 30)",
    )
    co.add_argument("--delete", action="store_true", help="delete what is listed (only together with --yes)")
    co.add_argument("--yes", action="store_true", help="confirm --delete")
    co.add_argument("--format", choices=("text", "json"), default="text")
    aws_options(co)
    p = sub.add_parser(
        "audit", help="live compliance scan of the AWS account (the Terraform policies' rules)"
    )
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument("--output", "-o", type=Path, help="write the report to this file instead of stdout")
    aws_options(p)
    return parser


def _to_output(path: Path | None, run: Callable[[TextIO], int]) -> int:
    """Run a report-writing command into `path` atomically (or stdout)."""
    if path is None:
        return run(sys.stdout)
    from betcycle.model.yamlio import atomic_write

    buf = io.StringIO()
    code = run(buf)
    atomic_write(path, buf.getvalue())
    return code


def _dispatch(args: argparse.Namespace, root: Path) -> int:
    out = sys.stdout
    if args.command == "render":
        from betcycle.commands import render_cmd

        return render_cmd.run(
            root,
            args.env,
            args.app,
            check=args.check,
            out=out,
            jobs=_jobs(args),
            cache=not args.no_cache,
            shard=args.shard,
        )
    if args.command == "validate":
        from betcycle.commands import validate_cmd

        kwargs = dict(
            envs=args.env,
            apps=args.app,
            fmt=args.format,
            strict=args.strict,
            kubernetes_version=args.kubernetes_version,
            schema_cache=args.schema_cache,
            use_policies=not args.no_policies,
            checks=args.checks,
            external=args.external,
            external_files=args.external_file,
            cwd=Path.cwd(),
            jobs=_jobs(args),
            shard=args.shard,
            cache=not args.no_cache,
        )
        return _to_output(args.output, lambda o: validate_cmd.run(root, args.paths, out=o, **kwargs))
    if args.command == "diff":
        from betcycle.commands import diff_cmd

        kwargs = dict(
            base=args.base,
            head=args.head,
            envs=args.env,
            apps=args.app,
            fmt=args.format,
            full=args.full,
            exit_code=args.exit_code,
            max_chars=args.max_chars,
            jobs=_jobs(args),
            cache=not args.no_cache,
        )
        return _to_output(args.output, lambda o: diff_cmd.run(root, out=o, **kwargs))
    if args.command in ("set-image", "promote", "rollback"):
        from betcycle.release import engine as release

        common = dict(commit=args.commit, branch=args.branch, pr_body=args.pr_body, out=out)
        if args.command == "set-image":
            return release.set_image(root, args.app, args.env, args.tag, **common)
        if args.command == "promote":
            return release.promote(
                root,
                args.app,
                args.source,
                args.target,
                all_values=args.all_values,
                aws=aws_from_args(args),
                require_gate=args.require_gate,
                **common,
            )
        return release.rollback(root, args.app, args.env, args.to, force=args.force, **common)
    if args.command == "policy":
        from betcycle.policy import engine as policy

        if args.policy_command == "list":
            return policy.run_list(root, out, args.format)
        return policy.run_test(root, out)
    if args.command == "schemas":
        from betcycle.commands import schemas

        if args.schemas_command == "import":
            return schemas.run_import(
                args.sources, args.schema_cache, out, sys.stdin, vendor=args.vendor, root=root, lock=args.lock
            )
        if args.schemas_command == "check":
            return schemas.run_check(root, args.lock, out)
        return schemas.run_fetch(root, args.lock, out)
    if args.command in ("state", "registry", "budgets"):
        from betcycle.commands import provision_cmd

        aws = aws_from_args(args)
        if args.command == "state":
            return provision_cmd.state_bootstrap(root, aws, args.env, out)
        if args.command == "budgets":
            return provision_cmd.budgets_ensure(root, aws, out)
        if args.registry_command == "ensure":
            return provision_cmd.registry_ensure(root, aws, out)
        return provision_cmd.registry_gate(root, aws, args.app, args.tag, args.max_severity, out)
    if args.command == "cost":
        from betcycle.commands import cost_cmd

        aws = aws_from_args(args)
        if args.cost_command == "report":
            return _to_output(
                args.output,
                lambda o: cost_cmd.run_report(
                    aws, root, envs=args.env, months=args.months, last=args.to, fmt=args.format, out=o
                ),
            )
        return cost_cmd.run_orphans(
            aws, root, older_than=args.older_than, fmt=args.format, delete=args.delete, yes=args.yes, out=out
        )
    if args.command == "shards":
        from betcycle.commands import shards_cmd

        return shards_cmd.run(root, per_shard=args.apps_per_shard, most=args.max, fmt=args.format, out=out)
    if args.command == "findings":
        from betcycle.commands import findings_cmd

        return _to_output(
            args.output,
            lambda o: findings_cmd.merge(root, args.files, fmt=args.format, out=o, cwd=Path.cwd()),
        )
    if args.command == "audit":
        from betcycle.commands import audit_cmd

        aws = aws_from_args(args)
        return _to_output(args.output, lambda o: audit_cmd.run(aws, fmt=args.format, out=o))
    raise AssertionError(args.command)  # pragma: no cover


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else EXIT_USAGE
    root = args.root.resolve() if args.root else find_root(Path.cwd())
    try:
        from betcycle.model import limits  # caps on input size and template cost: betcycle.yaml's limits

        with limits.scope(limits.for_repository(root)):
            return _dispatch(args, root)
    except UserErrors as exc:
        for e in exc.errors:
            sys.stderr.write(f"error: {e}\n")
        tail = (
            "; nothing was written" if args.command in ("render", "promote", "set-image", "rollback") else ""
        )
        sys.stderr.write(f"{len(exc.errors)} input error(s){tail}\n")
        return EXIT_USAGE
    except UserError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except BrokenPipeError:  # `betcycle … | head`: the reader left, which is not an error
        return EXIT_OK
    except OSError as exc:  # a file we were asked to write (or read) that the OS refuses
        where = f"{exc.filename}: " if exc.filename else ""
        sys.stderr.write(f"error: {where}{exc.strerror or exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt as exc:  # writers raise transaction.Interrupted saying what was (not) changed
        detail = str(exc)
        sys.stderr.write(f"interrupted: {detail}\n" if detail else "interrupted\n")
        return 130
    except Exception:
        if args.debug or os.environ.get("BETCYCLE_DEBUG"):
            traceback.print_exc()
        else:
            sys.stderr.write(
                "betcycle: internal error (this is a bug, please report it with the output of --debug)\n"
                f"  {traceback.format_exc(limit=1).strip().splitlines()[-1]}\n"
            )
        return 3
