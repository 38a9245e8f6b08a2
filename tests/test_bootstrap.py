"""bootstrap.py (the Quickstart's first step): pins, the no-op rerun, and one-line errors.

The real install (a venv from Debian's PEP 668 system Python, packages from the index) runs in `.ci/run`,
exactly as the README's Quickstart says; these tests cover the decisions around it without the network.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def bootstrap() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bootstrap", REPO / "bootstrap.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _project(root: Path, group: str = '["nox==1.0", "uv==0.1"]') -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        textwrap.dedent(f"""\
            [project]
            name = "x"
            [dependency-groups]
            bootstrap = {group}
            """),
        encoding="utf-8",
    )
    return root


def _fake_venv(env: Path) -> None:
    """A folder whose `python` runs (a symlink to this interpreter), as a venv's would."""
    bindir = env / ("Scripts" if sys.platform == "win32" else "bin")
    bindir.mkdir(parents=True)
    (bindir / "python").symlink_to(sys.executable)


def test_the_shipped_pins_name_nox_and_uv(bootstrap: ModuleType) -> None:
    pins = bootstrap.read_pins(REPO / "pyproject.toml")
    assert {p.split("==")[0] for p in pins} == {"nox", "uv"}
    assert all("==" in p for p in pins), "bootstrap pins are exact versions"


@pytest.mark.parametrize("group", ['"nox"', "[]", "[1, 2]"])
def test_a_malformed_bootstrap_group_is_one_message(
    bootstrap: ModuleType, tmp_path: Path, group: str
) -> None:
    root = _project(tmp_path, group)
    with pytest.raises(bootstrap.BootstrapError, match="needs a `bootstrap` list"):
        bootstrap.read_pins(root / "pyproject.toml")


def test_a_current_venv_is_left_alone_and_a_pin_change_reinstalls(
    bootstrap: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, env = _project(tmp_path / "repo"), tmp_path / "repo/.venv"
    _fake_venv(env)
    installs: list[list[str]] = []
    monkeypatch.setattr(bootstrap, "install", lambda env, pins, extras, root: installs.append(pins))
    assert bootstrap.bootstrap(env, root=root) is True
    assert bootstrap.bootstrap(env, root=root) is False, "a second run with nothing changed does nothing"
    assert installs == [["nox==1.0", "uv==0.1"]]
    _project(root, '["nox==2.0", "uv==0.1"]')
    assert bootstrap.bootstrap(env, root=root) is True
    assert installs[-1] == ["nox==2.0", "uv==0.1"]
    assert bootstrap.bootstrap(env, root=root, force=True) is True


def test_a_failed_install_leaves_no_stamp_so_the_next_run_retries(
    bootstrap: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, env = _project(tmp_path / "repo"), tmp_path / "repo/.venv"
    _fake_venv(env)

    def fail(*_: object) -> None:
        raise subprocess.CalledProcessError(1, ["uv", "pip", "install", "nox"])

    monkeypatch.setattr(bootstrap, "install", fail)
    with pytest.raises(bootstrap.BootstrapError, match=r"installing into \.venv failed"):
        bootstrap.bootstrap(env, root=root)
    assert not (env / bootstrap.STAMP).exists()


def test_no_venv_module_says_which_package_to_install(
    bootstrap: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Debian without python3-venv: ensurepip is missing and EnvBuilder fails; one line says what to do."""
    _project(tmp_path / "repo")

    def no_ensurepip(self: object, env_dir: object) -> None:
        Path(str(env_dir)).mkdir(parents=True)
        raise subprocess.CalledProcessError(1, ["python3", "-m", "ensurepip"])

    monkeypatch.setattr(bootstrap, "ROOT", tmp_path / "repo")
    monkeypatch.setattr(bootstrap.venv.EnvBuilder, "create", no_ensurepip)
    assert bootstrap.main(["--venv", str(tmp_path / "repo/.venv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("bootstrap: error: ") and "apt-get install python3-venv" in err
    assert not (tmp_path / "repo/.venv").exists(), "a half-made venv is removed"


def test_a_broken_venv_is_recreated(
    bootstrap: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / ".venv"
    (env / "bin").mkdir(parents=True)
    (env / "bin/python").symlink_to(tmp_path / "gone")  # e.g. the Python it was made with was removed
    created: list[Path] = []
    monkeypatch.setattr(bootstrap.venv.EnvBuilder, "create", lambda self, d: created.append(Path(d)))
    bootstrap.create_venv(env)
    assert created == [env]
