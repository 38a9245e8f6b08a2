"""set-image/promote/rollback refuse what they can't do before touching a file, and say what they did."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from betcycle.render import transaction
from tests.conftest import git, read_only_even_for_root

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


# ---- a failure after the edit puts every file back (issue 8.4) -------------------------------------------


def _branches(repo: Path) -> str:
    return git(repo, "branch", "--format=%(refname:short)")


def _set_image(cli, repo: Path, *options: str) -> tuple[int, str, str]:
    return cli("--root", repo, "set-image", "hello", "--env", "prod", "--tag", "8.0.0", *options)


def _assert_untouched(repo: Path, branches: str) -> None:
    assert _status(repo) == "", "values file, manifests and PR body are all put back"
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert _branches(repo) == branches, "a branch made for the commit is removed again"


def test_a_branch_git_refuses_after_the_edit_leaves_nothing_behind(repo_git: Path, cli) -> None:
    git(repo_git, "branch", "deploy/x")  # `deploy` passes check-ref-format, but git can't create it now
    branches = _branches(repo_git)
    code, out, err = _set_image(cli, repo_git, "--commit", "--branch", "deploy")
    assert code == 2 and out == ""
    assert err.startswith("error: git switch failed: fatal: cannot lock ref 'refs/heads/deploy'")
    assert "; nothing was changed (the " in err and "files already written were put back)" in err
    _assert_untouched(repo_git, branches)
    code, out, err = _set_image(cli, repo_git, "--commit", "--branch", "deploy-8")
    assert code == 0, err
    assert "committed " in out and _status(repo_git) == ""


def test_a_failing_commit_is_undone_and_the_retry_commits(repo_git: Path, cli, tmp_path: Path) -> None:
    hook = repo_git / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\necho 'hook says no' >&2\nexit 1\n")
    hook.chmod(0o755)
    body = tmp_path / "pr.md"
    branches = _branches(repo_git)
    code, out, err = _set_image(cli, repo_git, "--commit", "--branch", "deploy/hello-8", "--pr-body", body)
    assert code == 2 and out == ""
    assert err.startswith("error: git commit failed: hook says no; nothing was changed (the ")
    _assert_untouched(repo_git, branches)
    assert not body.exists(), "the PR body written for the failed commit is removed"
    hook.unlink()
    code, out, err = _set_image(cli, repo_git, "--commit", "--branch", "deploy/hello-8", "--pr-body", body)
    assert code == 0, err
    assert out.endswith("committed " + git(repo_git, "rev-parse", "HEAD")[:12] + " on deploy/hello-8\n")
    assert body.is_file() and _status(repo_git) == ""


def test_a_pr_body_that_cannot_be_written_restores_the_values_and_manifests(
    repo_git: Path, cli, tmp_path: Path
) -> None:
    body = tmp_path / "pr.md"
    os.mkfifo(body)  # passes the up-front check (a path in an existing folder), fails when written
    code, out, err = _set_image(cli, repo_git, "--pr-body", body)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {body}: cannot write: not a regular file; nothing was changed (the ")
    _assert_untouched(repo_git, _branches(repo_git))


def test_a_failing_manifest_write_restores_the_values_file(
    repo_git: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = transaction.atomic_write

    def writer(path: Path, data: str | bytes, *, mode: int | None = None) -> None:
        if path.name == "deployment-hello.yaml" and isinstance(data, str):
            raise OSError(28, "No space left on device", str(path))
        real(path, data, mode=mode)

    monkeypatch.setattr(transaction, "atomic_write", writer)
    code, out, err = _set_image(cli, repo_git, "--commit")
    assert code == 2 and out == ""
    assert err.startswith(
        "error: environments/prod/manifests/hello/deployment-hello.yaml: cannot write: No space left on device; "
        "nothing was changed (the "
    )
    _assert_untouched(repo_git, _branches(repo_git))
    monkeypatch.setattr(transaction, "atomic_write", real)
    code, out, err = _set_image(cli, repo_git, "--commit")
    assert code == 0 and "committed " in out, err


def test_a_read_only_manifests_folder_restores_the_values_file(
    repo_git: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = repo_git / "environments/prod/manifests/hello"
    read_only_even_for_root(monkeypatch, folder)
    try:
        code, out, err = _set_image(cli, repo_git)
    finally:
        folder.chmod(0o755)
    assert code == 2 and out == ""
    assert err.startswith("error: environments/prod/manifests/hello: folder is not writable")
    _assert_untouched(repo_git, _branches(repo_git))


def test_ctrl_c_during_a_release_puts_every_file_back(
    repo_git: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = transaction.atomic_write
    calls = {"n": 0}

    def writer(path: Path, data: str | bytes, *, mode: int | None = None) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # the values file and one manifest are written
            raise KeyboardInterrupt
        real(path, data, mode=mode)

    monkeypatch.setattr(transaction, "atomic_write", writer)
    code, out, err = _set_image(cli, repo_git, "--commit")
    assert (code, out) == (130, "")
    assert err == "interrupted: nothing was changed (the 2 files already written were put back)\n"
    _assert_untouched(repo_git, _branches(repo_git))


def test_a_symlinked_values_file_is_refused_before_it_is_edited(repo_git: Path, cli, tmp_path: Path) -> None:
    real = repo_git / "environments/prod/apps/real-hello.yaml.txt"
    (repo_git / PROD).rename(real)
    (repo_git / PROD).symlink_to(real.name)
    git(repo_git, "add", "-A")
    git(repo_git, "commit", "-qm", "a linked values file")
    before = real.read_text()
    code, out, err = _set_image(cli, repo_git)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {PROD}: is a symbolic link (to real-hello.yaml.txt); betcycle writes")
    assert (repo_git / PROD).is_symlink() and real.read_text() == before
    assert _status(repo_git) == ""


def test_a_missing_root_is_reported_by_loading_not_by_the_lock(tmp_path: Path, cli) -> None:
    code, _, err = cli("--root", tmp_path / "nowhere", "render")
    assert code == 2 and "lock" not in err
