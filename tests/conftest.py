"""Shared fixtures: build file trees in tmp_path, copy the fixture repository, run the CLI in-process."""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests check behaviour, not speed: a loaded CI machine must not fail them on hypothesis' deadline.
# No example database: it would write .hypothesis/ into the working tree (tests write only under tmp_path).
settings.register_profile("betcycle", deadline=None, database=None)
settings.load_profile("betcycle")

REPO = Path(__file__).resolve().parents[1]
# The repository's vendored CRD schemas (schemas/crds/, generated from crds.lock.yaml): data, not user work.
VENDORED_SCHEMAS = REPO / "schemas"
# The repository the end-to-end tests run on (tests/fixtures/README.md). Never the live apps/, environments/,
# charts/ or policies/: those hold the users' work in progress.
FIXTURE_REPO = Path(__file__).resolve().parent / "fixtures" / "repo"


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Create files (dedented) under root; returns root."""
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def _rendered_fixture_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/fixtures/repo, rendered once per session; read-only: tests get copies (`example`)."""
    from betcycle.model.repo import load_repo
    from betcycle.render import engine as render

    root = tmp_path_factory.mktemp("fixture") / "repo"
    shutil.copytree(FIXTURE_REPO, root)
    render.write(root, render.render(load_repo(root)))
    return root


@pytest.fixture
def example(_rendered_fixture_repo: Path, tmp_path: Path) -> Path:
    """The fixture repository with its manifests rendered (a consistent repo), in tmp_path/repo."""
    dest = tmp_path / "repo"
    shutil.copytree(_rendered_fixture_repo, dest)
    return dest


@pytest.fixture(scope="session")
def crd_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A schema folder (for `validate --schema-cache`) holding a copy of the repository's vendored CRD
    schemas, so a test repository without schemas/ validates strictly too, and no test can change the real
    ones."""
    cache = tmp_path_factory.mktemp("schema-cache")
    shutil.copytree(VENDORED_SCHEMAS / "crds", cache / "crds")
    return cache


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the user's real schema or render cache."""
    monkeypatch.setenv("BETCYCLE_SCHEMA_CACHE", str(tmp_path / "empty-schema-cache"))
    # beside tmp_path, not in it: tests compare tmp_path's tree before and after a failed render
    monkeypatch.setenv("BETCYCLE_CACHE_DIR", str(tmp_path.parent / f"{tmp_path.name}-betcycle-cache"))
    # in-process runs never fork the test process (it may hold threads, e.g. the moto server's); the pool is
    # tested in subprocesses with an explicit --jobs
    monkeypatch.setenv("BETCYCLE_JOBS", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run `betcycle ARGS` in-process; returns (exit code, stdout, stderr)."""
    from betcycle.cli import main

    def run(*args: str | Path) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def git(root: Path, *args: str) -> str:
    import subprocess

    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def git_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A pinned git identity and no user/system git config (pre-commit's and copier's habit)."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{var}_NAME", "BetCycle Test")
        monkeypatch.setenv(f"GIT_{var}_EMAIL", "test@example.invalid")
        monkeypatch.setenv(f"GIT_{var}_DATE", "2026-01-01T00:00:00Z")
    (tmp_path / "gitconfig").write_text("[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n")


@pytest.fixture
def repo_git(example: Path, git_env: None) -> Path:
    """The example repository as a git repository with one commit on main."""
    git(example, "init", "-q", "-b", "main")
    git(example, "add", "-A")
    git(example, "commit", "-q", "-m", "initial")
    return example


def read_only_even_for_root(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """chmod 0555 on `folder`, and os.access saying so even as root (CAP_DAC_OVERRIDE ignores modes)."""
    folder.chmod(0o555)
    real = os.access

    def access(path: object, mode: int, **kwargs: object) -> bool:
        if mode & os.W_OK and Path(str(path)).resolve() == folder.resolve():
            return False
        return real(path, mode, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", access)


# --- AWS: a real AWS-compatible HTTP endpoint (moto in server mode) on loopback ---------------------------


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's server on a free 127.0.0.1 port for the whole session; yields its URL.

    boto3 talks to it over HTTP exactly as to AWS (no in-process patching). `aws` below resets its state.
    """
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Fake credentials, a region, AWS_ENDPOINT_URL pointing at the moto server, and a fresh moto state."""
    import urllib.request

    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
        response.read()
    return moto_server


MANY_APPS = [f"svc{i:02d}" for i in range(8)]  # x 3 environments: more pairs than render.parallel.MIN_ITEMS


@pytest.fixture
def many(example: Path) -> Path:
    """The fixture repository with eight more copies of its app (each a little different), rendered."""
    from betcycle.model.repo import load_repo
    from betcycle.render import engine as render

    app = (example / "apps/hello/app.yaml").read_text()
    for i, name in enumerate(MANY_APPS):
        (example / f"apps/{name}").mkdir()
        (example / f"apps/{name}/app.yaml").write_text(app.replace("name: hello", f"name: {name}"))
        for env_app in sorted(example.glob("environments/*/apps/hello.yaml")):
            text = env_app.read_text()
            env_app.with_name(f"{name}.yaml").write_text(text + f"env:\n  INDEX: '{i}'\n")
    render.write(example, render.render(load_repo(example)))
    return example
