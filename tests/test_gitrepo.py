"""gitrepo: reading committed trees without a checkout."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from betcycle.diff import gitrepo
from betcycle.errors import UserError
from tests.conftest import git, write_tree


@pytest.fixture
def history(tmp_path: Path, git_env: None) -> Path:
    root = write_tree(
        tmp_path / "repo", {"environments/dev/manifests/a/x.yaml": "a: 1\n", "other.txt": "x\n"}
    )
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "one")
    return root


@pytest.mark.parametrize("filters", [True, False], ids=["extraction-filters", "python-3.11.2"])
def test_export_tree_writes_only_the_named_paths(
    history: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filters: bool
) -> None:
    if not filters:  # Debian 12's Python 3.11.2 predates tarfile's extraction filters (3.11.4)
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    dest = tmp_path / "out"
    gitrepo.export_tree(history, "HEAD", dest, ["environments", "missing"])
    assert (dest / "environments/dev/manifests/a/x.yaml").read_text() == "a: 1\n"
    assert not (dest / "other.txt").exists()


@pytest.mark.parametrize("filters", [True, False], ids=["extraction-filters", "python-3.11.2"])
def test_a_committed_symlink_is_refused(
    history: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filters: bool
) -> None:
    if not filters:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    os.symlink("/etc/passwd", history / "environments/dev/manifests/a/link.yaml")
    git(history, "add", "-A")
    git(history, "commit", "-qm", "link")
    with pytest.raises(UserError, match="only plain files inside the tree are read"):
        gitrepo.export_tree(history, "HEAD", tmp_path / "out", ["environments"])
    assert not (tmp_path / "out/environments/dev/manifests/a/link.yaml").exists()
