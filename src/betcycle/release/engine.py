"""`set-image`, `promote` and `rollback`: change one app's image tag (or promotable values) in one
environment by editing its values file in place (comments and layout kept), re-render that app, and
optionally commit the result on a branch with a PR body that carries the diff summary.

Every path is all-or-nothing: the options are checked before any file is touched, and any failure after the
edit (the re-render, a manifest or PR-body write, the commit, Ctrl-C) puts back every file it touched (values
file, manifests, PR body) and undoes the branch and staging, so a retry behaves like the first try.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from betcycle.aws import registry
from betcycle.aws.session import Aws
from betcycle.diff import gitrepo
from betcycle.errors import UserError
from betcycle.model import safepaths, yamledit
from betcycle.model.repo import EnvApp, Repo, load_repo, unknown_name
from betcycle.render import engine as render
from betcycle.render import transaction

#: values keys `promote --all-values` copies besides image.tag (charts may narrow this in chart.yaml)
DEFAULT_PROMOTABLE = ("image", "env", "config")


@dataclass
class Edit:
    env: str
    app: str
    file: str
    summary: str


def _deployed(repo: Repo, app: str, env: str) -> EnvApp:
    if env not in repo.envs:
        raise unknown_name("environment", env, sorted(repo.envs))
    if app not in repo.apps:
        raise unknown_name("app", app, sorted(repo.apps))
    deployed = repo.env_apps.get(env, {})
    if app not in deployed:
        where = [e for e in sorted(repo.env_apps) if app in repo.env_apps[e]]
        raise UserError(
            f"{app} is not deployed to {env} (no environments/{env}/apps/{app}.yaml)",
            hint=f"it is deployed to: {', '.join(where[:5])}{', …' if len(where) > 5 else ''}"
            if where
            else f"it is deployed nowhere yet: add environments/{env}/apps/{app}.yaml to deploy it",
        )
    return deployed[app]


def _current_tag(repo: Repo, env: str, app: str) -> str | None:
    vals, _, _ = render.merged_values(repo, repo.envs[env], app)
    image = vals.get("image")
    tag = image.get("tag") if isinstance(image, dict) else None
    return str(tag) if tag else None


def _apply(
    root: Path, ea: EnvApp, edits: list[tuple[list[str], Any]], txn: transaction.Transaction, out: TextIO
) -> None:
    """Write the edited values file and re-render the app in that env, both inside `txn`."""
    safepaths.check_no_links(root, ea.file)  # edited in place, so never through a link (issue 8)
    path = root / ea.file
    text = path.read_text(encoding="utf-8")
    for keys, value in edits:
        text, _ = yamledit.set_value(text, ea.file, keys, value)
    txn.write(path, text)
    repo = load_repo(root)
    result = render.render(repo, [ea.env], [ea.app])
    for change in render.write(root, result, txn=txn):
        verb = {"missing": "created", "stale": "updated", "extra": "deleted"}[change.state]
        out.write(f"{verb}: {change.path}\n")


def _release(
    root: Path,
    ea: EnvApp,
    edits: list[tuple[list[str], Any]],
    edit: Edit,
    *,
    commit: bool,
    branch: str | None,
    pr_body: Path | None,
    out: TextIO,
) -> int:
    """Check the paths may be committed, apply the edits and re-render, then report/commit: all or nothing.

    What it did is printed only once everything succeeded; a failure says what was put back instead.
    """
    base_rev = _precheck_commit(root, ea, commit)
    log = io.StringIO()
    with (
        transaction.lock(root, "betcycle " + edit.summary.split("(", 1)[0]),
        transaction.all_or_nothing(root) as txn,
    ):
        _apply(root, ea, edits, txn, log)
        _finish(root, edit, txn, commit=commit, branch=branch, pr_body=pr_body, out=log, base_rev=base_rev)
    out.write(log.getvalue())
    return 0


def _finish(
    root: Path,
    edit: Edit,
    txn: transaction.Transaction,
    *,
    commit: bool,
    branch: str | None,
    pr_body: Path | None,
    out: TextIO,
    base_rev: str | None,
) -> None:
    out.write(edit.summary + "\n")
    if not (pr_body or commit):
        return
    body = _pr_body(root, edit, base_rev)
    if pr_body:
        txn.write(pr_body, body)
        out.write(f"PR body written to {pr_body}\n")
    if commit:
        paths = [edit.file, f"environments/{edit.env}/manifests"]
        where = branch or gitrepo.git(root, "rev-parse", "--abbrev-ref", "HEAD").strip()
        sha = _commit(root, txn, branch, paths, f"{edit.summary}\n\n{_short_diff(body)}")
        out.write(f"committed {sha[:12]} on {where}\n")


def _commit(
    root: Path, txn: transaction.Transaction, branch: str | None, paths: list[str], message: str
) -> str:
    """Commit `paths` (on a new `branch`); on any failure switch back, drop the branch and unstage, so the
    transaction's rollback leaves `git status` as it was. Once the commit exists, the files are final."""
    head = gitrepo.resolve(root, "HEAD")
    start = gitrepo.git(root, "rev-parse", "--abbrev-ref", "HEAD").strip()
    try:
        sha = gitrepo.commit_paths(root, branch, paths, message)
    except BaseException as exc:
        if isinstance(exc, UserError):
            exc.hint = (
                "fix what git says (a hook, the branch, git's identity), then run the same command again"
            )
        if head is not None and gitrepo.resolve(root, "HEAD") != head:
            txn.keep()  # the commit was made (Ctrl-C after it): keep it and its files
            raise
        if branch and gitrepo.git(root, "rev-parse", "--abbrev-ref", "HEAD", check=False).strip() != start:
            gitrepo.git(root, "switch", "-q", start, check=False)
        if branch and branch != start:
            gitrepo.git(root, "branch", "-q", "-D", branch, check=False)
        gitrepo.git(root, "reset", "-q", "--", *paths, check=False)
        raise
    txn.keep()
    return sha


def _pr_body(root: Path, edit: Edit, base_rev: str | None) -> str:
    """The PR description: what changed and the semantic diff of the rendered manifests (markdown)."""
    from betcycle.diff import changes
    from betcycle.diff import engine as diff
    from betcycle.diff import formats as diff_formats

    buf = io.StringIO()
    buf.write(f"## {edit.summary}\n\n")
    buf.write(f"Values file: `{edit.file}`. Generated by `betcycle`; Argo CD syncs it after merge.\n\n")
    if base_rev and gitrepo.is_repo(root):
        comparison = changes.compare(root, base=base_rev, head=None, envs=[edit.env], apps=[edit.app])
        report = diff.compute(comparison.base, comparison.head, comparison.envs, comparison.context)
        diff_formats.write_markdown(report, buf, max_chars=50_000)
    return buf.getvalue()


def _short_diff(body: str) -> str:
    """The risk summary of the PR body, for the commit message."""
    lines, inside = [], False
    for line in body.splitlines():
        if line.startswith("### "):
            inside = line == "### Risks"
        elif inside and line.startswith("- "):
            lines.append(line.replace("**", "").replace("⚠️ ", "").replace("\\", ""))
    return "\n".join(lines[:20])


def _check_options(root: Path, *, commit: bool, branch: str | None, pr_body: Path | None) -> None:
    """Refuse bad --branch/--pr-body/--commit combinations before any file is touched (a retry starts clean)."""
    if branch and not commit:
        raise UserError("--branch needs --commit", hint=f"add --commit to commit on {branch}")
    if branch:
        if not gitrepo.is_repo(root):
            raise UserError("--commit needs a git repository", path=str(root))
        if not gitrepo.valid_branch_name(root, branch):
            raise UserError(
                f"{branch!r} is not a valid branch name",
                hint="see `git check-ref-format --help`: no spaces, '..', '~', '^', ':', '?', '*', '[' or '\\'",
            )
        current = gitrepo.git(root, "rev-parse", "--abbrev-ref", "HEAD").strip()
        if current != branch and gitrepo.resolve(root, f"refs/heads/{branch}"):
            raise UserError(f"branch {branch!r} already exists", hint="pass another --branch, or delete it")
    if pr_body is not None:
        parent = (pr_body if pr_body.is_absolute() else Path.cwd() / pr_body).parent
        if pr_body.is_dir() or not parent.is_dir():
            raise UserError(
                f"cannot write the PR body to {pr_body}: "
                + ("it is a folder" if pr_body.is_dir() else f"folder {parent} does not exist"),
                hint="pass a file path in an existing folder, e.g. --pr-body build/pr.md after mkdir -p build",
            )


def _precheck_commit(root: Path, ea: EnvApp, commit: bool) -> str | None:
    """With --commit the touched paths must be clean, so the commit holds exactly this change."""
    if not gitrepo.is_repo(root):
        if commit:
            raise UserError("--commit needs a git repository", path=str(root))
        return None
    if commit and not gitrepo.is_clean(root, _release_paths(ea)):
        raise UserError(
            f"{ea.file} or environments/{ea.env}/manifests has uncommitted changes",
            hint="commit or stash them first, so the release commit holds only this change",
        )
    return gitrepo.resolve(root, "HEAD")


def _release_paths(ea: EnvApp) -> list[str]:
    return [ea.file, f"environments/{ea.env}/manifests"]


def _nothing_to_do(root: Path, ea: EnvApp, state: str, *, commit: bool, out: TextIO) -> int:
    """The tag is already there. Say so, and refuse --commit when 'already' is an uncommitted edit."""
    if commit and gitrepo.is_repo(root) and not gitrepo.is_clean(root, _release_paths(ea)):
        raise UserError(
            f"{state}, but not in a commit: {ea.file} or environments/{ea.env}/manifests has uncommitted "
            "changes, so --commit has nothing of its own to commit",
            path=ea.file,
            hint=f"commit them yourself (git add {ea.file} environments/{ea.env}/manifests && git commit), "
            f"or discard them (git checkout -- {ea.file} environments/{ea.env}/manifests) and run this again",
        )
    out.write(f"{state}; nothing to do: no file changed" + (", nothing committed" if commit else "") + "\n")
    return 0


def set_image(
    root: Path,
    app: str,
    env: str,
    tag: str,
    *,
    commit: bool = False,
    branch: str | None = None,
    pr_body: Path | None = None,
    out: TextIO,
    verb: str = "set-image",
) -> int:
    _check_options(root, commit=commit, branch=branch, pr_body=pr_body)
    repo = load_repo(root)
    ea = _deployed(repo, app, env)
    old = _current_tag(repo, env, app)
    if old == tag:
        return _nothing_to_do(root, ea, f"{app} in {env} already runs {tag}", commit=commit, out=out)
    summary = f"{verb}({env}): {app} {old or '(unset)'} → {tag}"
    edit = Edit(env, app, ea.file, summary)
    return _release(
        root, ea, [(["image", "tag"], tag)], edit, commit=commit, branch=branch, pr_body=pr_body, out=out
    )


def promote(
    root: Path,
    app: str,
    source: str,
    target: str,
    *,
    all_values: bool = False,
    commit: bool = False,
    branch: str | None = None,
    pr_body: Path | None = None,
    out: TextIO,
    aws: Aws | None = None,
    require_gate: bool = False,
) -> int:
    _check_options(root, commit=commit, branch=branch, pr_body=pr_body)
    repo = load_repo(root)
    if target not in repo.envs:
        raise unknown_name("environment", target, sorted(repo.envs))
    allowed = repo.envs[target].promotion_from
    if allowed != source:
        raise UserError(
            f"{target} does not promote from {source}"
            + (f": its promotion source is {allowed}" if allowed else ": it has no promotion source"),
            path=repo.envs[target].file,
            line=repo.envs[target].line("promotion", "from") or repo.envs[target].line("promotion"),
            hint=f"promote {source} → {allowed} first, then {allowed} → {target}"
            if allowed
            else "set promotion.from in its environment.yaml",
        )
    src = _deployed(repo, app, source)
    ea = _deployed(repo, app, target)
    tag = _current_tag(repo, source, app)
    if not tag:
        raise UserError(f"{app} has no image.tag in {source}", path=src.file, hint="set-image it there first")
    edits: list[tuple[list[str], Any]] = []
    old = _current_tag(repo, target, app)
    if all_values:
        promotable = repo.charts[repo.apps[app].chart].data.get("promote", list(DEFAULT_PROMOTABLE))
        for key in promotable:
            if key in src.values and key != "image":
                edits.append(([key], src.values[key]))
    if old != tag:
        edits.insert(0, (["image", "tag"], tag))
    if not edits:
        state = f"{app} in {target} already runs {tag} (as in {source})"
        return _nothing_to_do(root, ea, state, commit=commit, out=out)
    # an environment with promotion.requireImageScan takes only images whose ECR scan passes
    gate = registry.promotion_gate(repo, target, app, tag, aws=aws or Aws(), require=require_gate, out=out)
    if gate:
        return gate
    summary = f"promote({target}): {app} {old or '(unset)'} → {tag} from {source}"
    edit = Edit(target, app, ea.file, summary)
    return _release(root, ea, edits, edit, commit=commit, branch=branch, pr_body=pr_body, out=out)


def tag_history(root: Path, file: str, out: TextIO | None = None) -> list[tuple[str, str, str]]:
    """(tag, commit, date) for each committed version of `file` that sets image.tag, newest first.

    A version that is not valid YAML (it could never have rendered, so it never ran) is skipped with a note.
    """
    found: list[tuple[str, str, str]] = []
    for version in gitrepo.history(root, file):
        try:
            tag = yamledit.get_value(version.text, ["image", "tag"], file)
        except UserError as exc:  # named with its revision, on one line
            if out is not None:
                reason = exc.message.removeprefix("invalid YAML: ")
                out.write(
                    f"note: {exc.location()} at {version.commit[:12]} is not valid YAML; skipped ({reason})\n"
                )
            continue
        if tag is not None:
            found.append((str(tag), version.commit, version.date))
    return found


def previous_tag(root: Path, file: str, current: str | None) -> tuple[str, str, str] | None:
    """(tag, commit, date) of the newest version of `file` in git history whose image.tag differs."""
    return next((entry for entry in tag_history(root, file) if entry[0] != current), None)


def _check_ran_before(root: Path, ea: EnvApp, tag: str, out: TextIO) -> None:
    """`rollback --to TAG` goes back to something that ran in this environment, or needs --force."""
    if not gitrepo.is_repo(root):
        raise UserError(
            f"cannot check that {tag} ever ran in {ea.env}: not a git repository",
            hint=f"pass --force to set {tag} anyway (or use set-image)",
        )
    history = tag_history(root, ea.file, out)
    for ran, sha, date in history:
        if ran == tag:
            out.write(f"{tag} ran in {ea.env} before: {ea.file} at {sha[:12]} ({date})\n")
            return
    seen = list(dict.fromkeys(t for t, _, _ in history))
    raise UserError(
        f"{tag} never ran in {ea.env}: no committed version of {ea.file} sets image.tag to it",
        path=ea.file,
        hint=(
            f"tags in its history, newest first: {', '.join(seen[:5])}" if seen else "it has no tag history"
        )
        + f"; pass --force to roll to {tag} anyway, or use set-image for a new release",
    )


def rollback(
    root: Path,
    app: str,
    env: str,
    to: str | None = None,
    *,
    force: bool = False,
    commit: bool = False,
    branch: str | None = None,
    pr_body: Path | None = None,
    out: TextIO,
) -> int:
    _check_options(root, commit=commit, branch=branch, pr_body=pr_body)
    repo = load_repo(root)
    ea = _deployed(repo, app, env)
    current = _current_tag(repo, env, app)
    if to is None:
        if not gitrepo.is_repo(root):
            raise UserError("rollback without --to reads git history: this is not a git repository")
        found = previous_tag(root, ea.file, current)
        if found is None:
            raise UserError(
                f"no earlier image tag of {app} in {env} in the history of {ea.file}",
                hint="pass --to TAG",
            )
        to, sha, date = found
        out.write(f"previous tag of {app} in {env}: {to} (from {sha[:12]}, {date})\n")
    elif to != current and not force:
        _check_ran_before(root, ea, to, out)
    return set_image(
        root, app, env, to, commit=commit, branch=branch, pr_body=pr_body, out=out, verb="rollback"
    )
