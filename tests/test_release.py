from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import git

PROD = "environments/prod/apps/hello.yaml"


def test_set_image_edits_only_the_tag_line_and_rerenders(repo_git: Path, cli) -> None:
    before = (repo_git / "environments/staging/apps/hello.yaml").read_text()
    code, out, err = cli("--root", repo_git, "set-image", "hello", "--env", "staging", "--tag", "1.5.0")
    assert code == 0, err
    assert "set-image(staging): hello 1.4.0 → 1.5.0" in out
    after = (repo_git / "environments/staging/apps/hello.yaml").read_text()
    assert after == before.replace('tag: "1.4.0"', 'tag: "1.5.0"')
    assert (
        "hello:1.5.0" in (repo_git / "environments/staging/manifests/hello/deployment-hello.yaml").read_text()
    )
    assert cli("--root", repo_git, "render", "--check")[0] == 0


def test_promote_copies_the_tag_keeping_comments_and_layout(repo_git: Path, cli) -> None:
    before = (repo_git / PROD).read_text()
    code, _out, err = cli("--root", repo_git, "promote", "hello", "--from", "staging", "--to", "prod")
    assert code == 0, err
    after = (repo_git / PROD).read_text()
    assert after == before.replace('tag: "1.3.2"', 'tag: "1.4.0"')
    changed = git(repo_git, "status", "--porcelain").split("\n")
    changed_paths = sorted(line[3:] for line in changed if line)
    assert changed_paths == [
        PROD,
        "environments/prod/manifests/hello/deployment-hello.yaml",
        "environments/prod/manifests/hello/poddisruptionbudget-hello.yaml",
        "environments/prod/manifests/hello/service-hello.yaml",
        "environments/prod/manifests/hello/serviceaccount-hello.yaml",
        "environments/prod/manifests/hello/servicemonitor-hello.yaml",
    ]


def test_promote_refuses_a_source_that_is_not_the_declared_one(repo_git: Path, cli) -> None:
    before = (repo_git / PROD).read_text()
    code, _, err = cli("--root", repo_git, "promote", "hello", "--from", "dev", "--to", "prod")
    assert code == 2
    assert "environments/prod/environment.yaml:" in err
    assert "prod does not promote from dev: its promotion source is staging" in err
    assert (repo_git / PROD).read_text() == before


def test_promote_refuses_apps_not_deployed(repo_git: Path, cli) -> None:
    (repo_git / "environments/staging/apps/hello.yaml").unlink()
    code, _, err = cli("--root", repo_git, "promote", "hello", "--from", "staging", "--to", "prod")
    assert code == 2 and "hello is not deployed to staging" in err
    code, _, err = cli("--root", repo_git, "promote", "nope", "--from", "staging", "--to", "prod")
    assert code == 2 and "unknown app 'nope'" in err


def test_promote_all_values_copies_env_and_config(repo_git: Path, cli) -> None:
    staging = repo_git / "environments/staging/apps/hello.yaml"
    staging.write_text(staging.read_text() + "env:\n  FEATURE_X: 'on'\n")
    code, _, err = cli(
        "--root", repo_git, "promote", "hello", "--from", "staging", "--to", "prod", "--all-values"
    )
    assert code == 0, err
    prod = (repo_git / PROD).read_text()
    assert "FEATURE_X" in prod and "replicas: 3" in prod


def test_promote_with_nothing_to_do(repo_git: Path, cli) -> None:
    assert cli("--root", repo_git, "promote", "hello", "--from", "staging", "--to", "prod")[0] == 0
    code, out, _ = cli("--root", repo_git, "promote", "hello", "--from", "staging", "--to", "prod")
    assert code == 0 and "nothing to do" in out


def test_invalid_tag_restores_the_values_file(repo_git: Path, cli) -> None:
    before = (repo_git / PROD).read_text()
    code, _, err = cli("--root", repo_git, "set-image", "hello", "--env", "prod", "--tag", "bad tag!")
    assert code == 2
    assert "image.tag" in err
    assert (repo_git / PROD).read_text() == before
    assert git(repo_git, "status", "--porcelain") == ""


def test_commit_creates_branch_commit_and_pr_body(repo_git: Path, cli, tmp_path: Path) -> None:
    body = tmp_path / "pr.md"
    code, _out, err = cli(
        "--root",
        repo_git,
        "set-image",
        "hello",
        "--env",
        "prod",
        "--tag",
        "2.0.0",
        "--commit",
        "--branch",
        "deploy/hello-2.0.0",
        "--pr-body",
        body,
    )
    assert code == 0, err
    assert git(repo_git, "rev-parse", "--abbrev-ref", "HEAD").strip() == "deploy/hello-2.0.0"
    message = git(repo_git, "log", "-1", "--format=%B")
    assert message.startswith("set-image(prod): hello 1.3.2 → 2.0.0")
    assert git(repo_git, "status", "--porcelain") == ""
    text = body.read_text()
    assert "set-image(prod): hello 1.3.2 → 2.0.0" in text
    assert "<!-- betcycle-diff -->" in text
    assert "2.0.0" in text


def test_commit_refuses_dirty_paths(repo_git: Path, cli) -> None:
    (repo_git / PROD).write_text((repo_git / PROD).read_text() + "# local edit\n")
    code, _, err = cli(
        "--root", repo_git, "set-image", "hello", "--env", "prod", "--tag", "2.0.0", "--commit"
    )
    assert code == 2 and "uncommitted changes" in err


def test_rollback_after_two_set_image_commits_restores_the_first_tag(repo_git: Path, cli) -> None:
    assert (
        cli("--root", repo_git, "set-image", "hello", "--env", "prod", "--tag", "2.0.0", "--commit")[0] == 0
    )
    assert (
        cli("--root", repo_git, "set-image", "hello", "--env", "prod", "--tag", "2.1.0", "--commit")[0] == 0
    )
    code, out, err = cli("--root", repo_git, "rollback", "hello", "--env", "prod", "--commit")
    assert code == 0, err
    assert "previous tag of hello in prod: 2.0.0" in out
    assert 'tag: "2.0.0"' in (repo_git / PROD).read_text()
    assert git(repo_git, "log", "-1", "--format=%s").startswith("rollback(prod): hello 2.1.0 → 2.0.0")


def test_rollback_to_an_explicit_tag_that_never_ran_needs_force(repo_git: Path, cli) -> None:
    code, _, err = cli("--root", repo_git, "rollback", "hello", "--env", "prod", "--to", "1.0.0")
    assert code == 2 and "1.0.0 never ran in prod" in err
    code, _, err = cli("--root", repo_git, "rollback", "hello", "--env", "prod", "--to", "1.0.0", "--force")
    assert code == 0, err
    assert 'tag: "1.0.0"' in (repo_git / PROD).read_text()


def test_rollback_with_no_earlier_tag(repo_git: Path, cli) -> None:
    code, _, err = cli("--root", repo_git, "rollback", "hello", "--env", "prod")
    assert code == 2 and "no earlier image tag" in err


@pytest.mark.parametrize("verb", ["set-image", "rollback"])
def test_unknown_environment(repo_git: Path, cli, verb: str) -> None:
    args = ["--tag", "1"] if verb == "set-image" else []
    code, _, err = cli("--root", repo_git, verb, "hello", "--env", "prd", *args)
    assert code == 2 and "unknown environment 'prd'" in err
