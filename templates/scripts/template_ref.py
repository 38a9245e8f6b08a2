"""Which commit the service template comes from, and what changed in it since a service's `_commit`.

`python3 templates/scripts/template_ref.py` prints that commit, for `copier copy|update --vcs-ref`; the nox
template sessions (noxfile.py) and tests/test_templates.py import this file. The rule
(docs/templates.md#which-commit-the-template-comes-from):

- the template is taken from the last commit that changed it (`SERVICE_TEMPLATE`) among the commits already on
  main: at or before `git merge-base HEAD origin/main` when there is an origin/main, else at or before HEAD;
- that commit is what stamped and updated services record as `_commit`.

Why: `copier update` needs `_commit` later, and a commit on main survives any merge strategy, while a branch's
own commits are gone after a squash merge. And the last template change rather than the merge base itself:
`_commit` then stays the same until the template changes, so an update with nothing new is a no-op. Always a
full commit, never the name `HEAD`: from a local `HEAD` Copier also takes uncommitted changes, through a
throw-away commit that a later `copier update` could never find.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# What the service template is made of: a change to any of these is a new template version.
SERVICE_TEMPLATE = ("copier.yml", "templates/service", "templates/scripts")
MAIN = "refs/remotes/origin/main"


class RefError(Exception):
    """The repository cannot say which template commit to use; the message is one line saying why."""


def git(root: Path, *args: str, ok: tuple[int, ...] = (0,)) -> str:
    result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    if result.returncode not in ok:
        raise RefError(f"git {' '.join(args)}: {result.stderr.strip() or f'exit code {result.returncode}'}")
    return result.stdout.strip()


def template_commit(root: Path) -> tuple[str, str | None]:
    """The template's commit (full hash) and, when the working tree's template differs from it, a warning."""
    main = git(root, "for-each-ref", "--format=%(objectname)", MAIN)
    base = git(root, "merge-base", "HEAD", main, ok=(0, 1)) if main else "HEAD"
    if not base:
        raise RefError("HEAD shares no history with origin/main: start the branch from origin/main")
    where = "origin/main" if main else "HEAD"
    commit = git(root, "log", "-1", "--format=%H", base, "--", *SERVICE_TEMPLATE)
    if not commit:
        raise RefError(f"no commit up to {where} has the service template ({', '.join(SERVICE_TEMPLATE)})")
    changed = git(root, "diff", "--name-only", commit, "--", *SERVICE_TEMPLATE)
    untracked = git(root, "ls-files", "--others", "--exclude-standard", "--", *SERVICE_TEMPLATE)
    warning = None
    if changed or untracked:
        warning = (
            f"the service template here differs from {where}'s ({commit[:12]}): those changes are left out. "
            "Merge them first, or pass --vcs-ref=COMMIT to take another commit (docs/templates.md)"
        )
    return commit, warning


def changes_since(root: Path, recorded: str, commit: str) -> list[str]:
    """The template's files that differ between a service's `_commit` and `commit` (none: nothing to update)."""
    if not recorded or not git(root, "rev-parse", "--verify", "--quiet", f"{recorded}^{{commit}}", ok=(0, 1)):
        raise RefError(
            f"_commit {recorded or '(missing)'} is not in this repository's history (a squash-merged branch's "
            "commit?): set it to the commit on main the service was last stamped or updated from "
            "(docs/templates.md#when-_commit-cannot-be-found)"
        )
    return git(root, "diff", "--name-only", recorded, commit, "--", *SERVICE_TEMPLATE).splitlines()


def main(argv: list[str]) -> int:
    if argv:
        print("usage: python3 templates/scripts/template_ref.py  (prints the service template's commit)")
        return 2
    try:
        commit, warning = template_commit(Path(git(Path.cwd(), "rev-parse", "--show-toplevel")))
    except RefError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    print(commit)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
