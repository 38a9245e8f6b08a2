"""End-to-end `betcycle diff` on real git repositories built in tmp_path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import git

PROD = "environments/prod/apps/hello.yaml"


def commit_all(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def test_no_changes(repo_git: Path, cli) -> None:
    code, out, _ = cli("--root", repo_git, "diff", "--exit-code")
    assert code == 0
    assert "no changes" in out.lower()
    code, out, _ = cli("--root", repo_git, "diff", "--format", "markdown")
    assert code == 0 and "No changes" in out


def test_prod_replicas_change_in_markdown(repo_git: Path, cli) -> None:
    p = repo_git / PROD
    p.write_text(p.read_text().replace("replicas: 3", "replicas: 5"))
    code, out, err = cli("--root", repo_git, "diff", "--format", "markdown", "--exit-code")
    assert code == 1, err
    assert out.startswith("<!-- betcycle-diff -->")
    assert "prod" in out
    assert "Deployment" in out
    assert "spec.replicas" in out and "3" in out and "5" in out
    # 2 more replicas x (250m, 256Mi) at the prod price table
    assert "0.5" in out  # CPU delta in cores
    assert "USD" in out


def test_working_tree_is_never_touched(repo_git: Path, cli) -> None:
    p = repo_git / PROD
    p.write_text(p.read_text().replace("replicas: 3", "replicas: 5"))
    status = git(repo_git, "status", "--porcelain")
    cli("--root", repo_git, "diff")
    assert git(repo_git, "status", "--porcelain") == status


def test_secret_values_never_leak(repo_git: Path, cli) -> None:
    secret = repo_git / "charts/service/templates/secret.yaml.j2"
    secret.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ app.name }}-demo\n  namespace: {{ namespace }}\n"
        "stringData:\n  password: hunter2-old\n"
    )
    assert cli("--root", repo_git, "render")[0] == 0
    commit_all(repo_git, "add a secret")
    secret.write_text(secret.read_text().replace("hunter2-old", "hunter2-new"))
    assert cli("--root", repo_git, "render")[0] == 0
    for fmt in ("text", "markdown", "json"):
        code, out, err = cli("--root", repo_git, "diff", "--base", "HEAD", "--format", fmt)
        assert code == 0, err
        assert "hunter2" not in out, fmt
        assert "redacted hmac:" in out, fmt


def test_base_with_no_manifests_yet(example: Path, git_env: None, cli) -> None:
    manifests = sorted(example.glob("environments/*/manifests"))
    for m in manifests:
        shutil.rmtree(m)
    git(example, "init", "-q", "-b", "main")
    commit_all(example, "inputs only")
    code, out, err = cli("--root", example, "diff", "--format", "json", "--exit-code")
    assert code == 1, err
    doc = json.loads(out)
    assert doc  # everything is added
    assert "Deployment" in out and "added" in out


def test_removed_environment(repo_git: Path, cli) -> None:
    shutil.rmtree(repo_git / "environments/dev")
    staging = repo_git / "environments/staging/environment.yaml"
    staging.write_text(staging.read_text().replace("promotion:\n  from: dev\n", ""))
    code, out, err = cli("--root", repo_git, "diff", "--format", "json")
    assert code == 0, err
    assert "removed" in out and "dev" in out


def test_head_revision(repo_git: Path, cli) -> None:
    p = repo_git / PROD
    git(repo_git, "switch", "-q", "-c", "feature")
    p.write_text(p.read_text().replace("replicas: 3", "replicas: 4"))
    commit_all(repo_git, "prod to 4")
    git(repo_git, "switch", "-q", "main")
    code, out, err = cli(
        "--root", repo_git, "diff", "--base", "main", "--head", "feature", "--format", "json"
    )
    assert code == 0, err
    assert "spec.replicas" in out
    assert git(repo_git, "status", "--porcelain") == ""


def test_chart_change_reaches_every_environment(repo_git: Path, cli) -> None:
    values = repo_git / "charts/service/values.yaml"
    values.write_text(values.read_text().replace("periodSeconds: 10", "periodSeconds: 15"))
    code, out, err = cli("--root", repo_git, "diff", "--format", "json")
    assert code == 0, err
    for env in ("dev", "staging", "prod"):
        assert f'"{env}"' in out


def test_full_render_agrees_with_selective(repo_git: Path, cli) -> None:
    # a second app in prod that the change does not touch still counts toward prod's totals
    shutil.copytree(repo_git / "apps/hello", repo_git / "apps/other")
    app = repo_git / "apps/other/app.yaml"
    app.write_text(app.read_text().replace("name: hello", "name: other"))
    shutil.copy(repo_git / PROD, repo_git / "environments/prod/apps/other.yaml")
    assert cli("--root", repo_git, "render")[0] == 0
    commit_all(repo_git, "second app")
    p = repo_git / PROD
    p.write_text(p.read_text().replace("replicas: 3", "replicas: 5"))
    _, selective, _ = cli("--root", repo_git, "diff", "--format", "json")
    _, full, _ = cli("--root", repo_git, "diff", "--format", "json", "--full")
    assert json.loads(selective) == json.loads(full)


def test_unknown_base_and_not_a_repo(repo_git: Path, tmp_path: Path, cli) -> None:
    code, _, err = cli("--root", repo_git, "diff", "--base", "nope")
    assert code == 2 and "unknown revision 'nope'" in err
    (tmp_path / "plain" / "environments").mkdir(parents=True)
    code, _, err = cli("--root", tmp_path / "plain", "diff")
    assert code == 2 and "not a git repository" in err
