"""set-image/promote/rollback refuse what they can't do before touching a file, and say what they did."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import git

PROD = "environments/prod/apps/hello.yaml"


def _status(repo: Path) -> str:
    return git(repo, "status", "--porcelain")


def _release(cli, repo: Path, *tags: str) -> None:
    """Commit each tag to prod in turn, as CD would."""
    for tag in tags:
        code, _, err = cli("--root", repo, "set-image", "hello", "--env", "prod", "--tag", tag, "--commit")
        assert code == 0, err


def test_set_image_commit_refuses_when_the_tag_is_only_an_uncommitted_edit(repo_git: Path, cli) -> None:
    code, _, err = cli("--root", repo_git, "set-image", "hello", "--env", "prod", "--tag", "7.0.0")
    assert code == 0, err
    dirty = _status(repo_git)
    code, out, err = cli(
        "--root", repo_git, "set-image", "hello", "--env", "prod", "--tag", "7.0.0", "--commit"
    )
    assert code == 2
    assert err.startswith(f"error: {PROD}: hello in prod already runs 7.0.0, but not in a commit")
    assert "git add environments/prod/apps/hello.yaml environments/prod/manifests && git commit" in err
    assert _status(repo_git) == dirty, "nothing was touched"
    git(repo_git, "checkout", "--", ".")
    git(repo_git, "clean", "-fdq")
    _release(cli, repo_git, "7.0.0")
    code, out, err = cli(
        "--root", repo_git, "set-image", "hello", "--env", "prod", "--tag", "7.0.0", "--commit"
    )
    assert (code, err) == (0, "")
    assert out == "hello in prod already runs 7.0.0; nothing to do: no file changed, nothing committed\n"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--commit", "--branch", "bad name"], "error: 'bad name' is not a valid branch name"),
        (["--commit", "--branch=-x"], "error: '-x' is not a valid branch name"),
        (["--branch", "deploy/x"], "error: --branch needs --commit"),
        (["--pr-body", "no/such/folder/pr.md"], "error: cannot write the PR body to no/such/folder/pr.md"),
    ],
)
def test_bad_options_are_refused_before_any_file_changes(
    repo_git: Path, cli, options: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo_git)
    code, _, err = cli("--root", repo_git, "set-image", "hello", "--env", "prod", "--tag", "8.0.0", *options)
    assert code == 2
    assert err.startswith(message)
    assert _status(repo_git) == ""
    # the retry with good options does the whole job
    code, out, err = cli(
        "--root", repo_git, "set-image", "hello", "--env", "prod", "--tag", "8.0.0", "--commit"
    )
    assert code == 0, err
    assert "committed " in out and _status(repo_git) == ""


def test_an_existing_branch_is_refused_before_any_file_changes(repo_git: Path, cli) -> None:
    git(repo_git, "branch", "deploy/taken")
    args = ("--root", repo_git, "set-image", "hello", "--env", "prod", "--tag", "8.0.0")
    code, _, err = cli(*args, "--commit", "--branch", "deploy/taken")
    assert code == 2 and err.startswith("error: branch 'deploy/taken' already exists")
    assert _status(repo_git) == ""


def test_rollback_to_a_tag_that_never_ran_needs_force(repo_git: Path, cli) -> None:
    _release(cli, repo_git, "1.0.0", "2.0.0")
    code, _, err = cli("--root", repo_git, "rollback", "hello", "--env", "prod", "--to", "9.9.9")
    assert code == 2
    assert err.startswith(f"error: {PROD}: 9.9.9 never ran in prod")
    assert "tags in its history, newest first: 2.0.0, 1.0.0" in err
    assert _status(repo_git) == ""
    code, out, err = cli("--root", repo_git, "rollback", "hello", "--env", "prod", "--to", "1.0.0")
    assert code == 0, err
    assert out.startswith("1.0.0 ran in prod before: environments/prod/apps/hello.yaml at ")
    assert "rollback(prod): hello 2.0.0 → 1.0.0" in out
    code, out, err = cli("--root", repo_git, "rollback", "hello", "--env", "prod", "--to", "9.9.9", "--force")
    assert code == 0, err
    assert "rollback(prod): hello 1.0.0 → 9.9.9" in out


def test_rollback_skips_a_broken_version_in_history(repo_git: Path, cli) -> None:
    _release(cli, repo_git, "1.0.0")
    original = (repo_git / PROD).read_text()
    (repo_git / PROD).write_text("image: [unclosed\n")
    git(repo_git, "commit", "-qam", "broken")
    (repo_git / PROD).write_text(original.replace('"1.0.0"', '"3.0.0"').replace("1.0.0", "3.0.0"))
    git(repo_git, "commit", "-qam", "fixed")
    code, out, err = cli("--root", repo_git, "rollback", "hello", "--env", "prod", "--to", "1.0.0")
    assert code == 0, err
    assert "is not valid YAML; skipped" in out
    assert "rollback(prod): hello 3.0.0 → 1.0.0" in out
