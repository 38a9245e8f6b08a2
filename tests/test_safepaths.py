"""safepaths.py: output paths checked once per folder still refuse every link, file and shape they refused
one path at a time; scan_owned names files exactly as before."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from betcycle.errors import UserError
from betcycle.model import safepaths

INSIDE = "environments/dev/manifests"


def _inside(rel: str) -> str:
    return "/".join(rel.split("/")[:3])


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / INSIDE / "hello").mkdir(parents=True)
    (tmp_path / INSIDE / "hello" / "service-hello.yaml").write_text("x\n")
    (tmp_path / "outside").mkdir()
    return tmp_path


def test_paths_inside_the_manifests_folder_are_given_whether_or_not_they_exist(root: Path) -> None:
    check = safepaths.OutputPaths(root)
    for rel in (
        f"{INSIDE}/hello/service-hello.yaml",
        f"{INSIDE}/hello/new.yaml",
        f"{INSIDE}/new-app/deep/er/x.yaml",
        f"{INSIDE}/new-app/y.yaml",
        "environments/new-env/manifests/a/b.yaml",
    ):
        assert check(rel, _inside(rel)) == root / rel
        assert safepaths.output_path(root, rel, _inside(rel)) == root / rel


@pytest.mark.parametrize(
    "link",
    [
        "environments",
        "environments/dev",
        INSIDE,
        f"{INSIDE}/hello",
        f"{INSIDE}/hello/service-hello.yaml",
    ],
)
def test_a_link_anywhere_on_the_way_is_refused_even_after_its_siblings_passed(root: Path, link: str) -> None:
    rel = f"{INSIDE}/hello/service-hello.yaml"
    check = safepaths.OutputPaths(root)
    assert check(f"{INSIDE}/other/a.yaml", INSIDE) == root / INSIDE / "other/a.yaml"  # checks the parents
    real = root / "outside" / "moved"
    os.rename(root / link, real)
    (root / link).symlink_to(real)
    for checker in (safepaths.OutputPaths(root), lambda r, i: safepaths.output_path(root, r, i)):
        with pytest.raises(UserError, match="is a symbolic link") as e:
            checker(rel, INSIDE)
        assert e.value.path == link
    paths, errors = safepaths.output_paths(root, [rel, f"{INSIDE}/hello/b.yaml"], _inside)
    assert paths == {} or link == f"{INSIDE}/hello/service-hello.yaml"
    assert errors and all(err.path == link for err in errors)


def test_a_link_to_a_file_in_a_checked_folder_is_refused(root: Path) -> None:
    folder = root / INSIDE / "hello"
    check = safepaths.OutputPaths(root)
    assert check(f"{INSIDE}/hello/service-hello.yaml", INSIDE)
    (folder / "linked.yaml").symlink_to(root / "outside")
    (folder / "dangling.yaml").symlink_to(root / "nowhere")
    for name in ("linked.yaml", "dangling.yaml"):
        with pytest.raises(UserError, match="is a symbolic link"):
            check(f"{INSIDE}/hello/{name}", INSIDE)


def test_a_file_where_a_folder_must_be_is_a_user_error(root: Path) -> None:
    (root / INSIDE / "blocker").write_text("")
    for rel in (f"{INSIDE}/blocker/x.yaml", f"{INSIDE}/blocker/deeper/x.yaml"):
        with pytest.raises(UserError, match="is a file where the render needs a folder") as e:
            safepaths.OutputPaths(root)(rel, INSIDE)
        assert e.value.path == f"{INSIDE}/blocker"


@pytest.mark.parametrize(
    "rel",
    [
        f"{INSIDE}/../x.yaml",
        f"{INSIDE}/hello/../../x.yaml",
        f"{INSIDE}/./x.yaml",
        f"{INSIDE}//x.yaml",
        f"{INSIDE}/hello/",
        f"{INSIDE}/hello/..",
        f"{INSIDE}/hello/.",
        f"{INSIDE}/hello/a\\b.yaml",
        f"{INSIDE}/hello/a\0.yaml",
        f"/{INSIDE}/x.yaml",
        "environments/dev/other/x.yaml",
        f"{INSIDE}-x/y.yaml",
        "x.yaml",
    ],
)
def test_odd_shapes_are_refused_also_in_an_already_checked_folder(root: Path, rel: str) -> None:
    check = safepaths.OutputPaths(root)
    assert check(f"{INSIDE}/hello/ok.yaml", INSIDE)  # the folder is known from here on
    assert check(f"{INSIDE}/ok.yaml", INSIDE)
    with pytest.raises(UserError, match="refusing to write outside"):
        check(rel, INSIDE)


def test_the_same_folder_under_a_narrower_inside_is_checked_again(root: Path) -> None:
    check = safepaths.OutputPaths(root)
    assert check(f"{INSIDE}/hello/a.yaml", INSIDE)
    with pytest.raises(UserError, match="refusing to write outside environments/prod/manifests/"):
        check(f"{INSIDE}/hello/a.yaml", "environments/prod/manifests")


def test_the_resolve_guard_still_runs_once_per_folder(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.path.realpath
    monkeypatch.setattr(
        safepaths.os.path, "realpath", lambda p: "/elsewhere" + real(p) if "hello" in p else real(p)
    )
    with pytest.raises(UserError, match="resolves outside"):
        safepaths.OutputPaths(root)(f"{INSIDE}/hello/a.yaml", INSIDE)


def test_each_folder_is_looked_at_once_per_checker(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rels = [
        f"environments/{e}/manifests/app{a}/f{f}.yaml"
        for e in ("dev", "prod")
        for a in range(5)
        for f in range(4)
    ]
    for rel in rels[:20]:  # dev's files exist, prod's folders don't
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    seen: list[str] = []
    lstat, realpath = os.lstat, os.path.realpath
    resolving = []

    def counted_lstat(p: str) -> os.stat_result:
        if not resolving:  # realpath's own lstat calls are the guard's, counted below
            seen.append(os.fspath(p))
        return lstat(p)

    def counted_realpath(p: str) -> str:
        resolving.append(p)
        try:
            return realpath(p)
        finally:
            resolving.pop()

    monkeypatch.setattr(safepaths.os, "lstat", counted_lstat)
    monkeypatch.setattr(safepaths.os.path, "realpath", counted_realpath)
    paths, errors = safepaths.output_paths(root, rels, _inside)
    assert errors == []
    assert paths == {rel: root / rel for rel in rels}
    # environments, dev, dev/manifests, its 5 apps, and prod: missing, so nothing below it is looked at;
    # then each of dev's files once
    folders = 1 + 1 + 1 + 5 + 1
    assert len(seen) == folders + 20
    assert len(set(seen)) == len(seen)
    # a new checker looks again (a folder swapped for a link since the last pass is caught)
    seen.clear()
    safepaths.output_path(root, rels[0], INSIDE)
    assert len(seen) == 5


def test_output_paths_gives_every_good_path_and_every_refusal(root: Path) -> None:
    (root / INSIDE / "bad").symlink_to(root / "outside")
    rels = [f"{INSIDE}/hello/a.yaml", f"{INSIDE}/bad/a.yaml", f"{INSIDE}/bad/b.yaml", f"{INSIDE}/c.yaml"]
    paths, errors = safepaths.output_paths(root, rels, _inside)
    assert paths == {rel: root / rel for rel in (rels[0], rels[3])}
    assert [e.path for e in errors] == [f"{INSIDE}/bad", f"{INSIDE}/bad"]


HEADER = "# generated by betcycle"


def test_scan_owned_lists_generated_and_hand_written_files(root: Path) -> None:
    base = root / INSIDE
    (base / "hello" / "service-hello.yaml").write_text(f"{HEADER} - x\n")
    (base / "hello" / "notes.yaml").write_text("mine\n")
    (base / "hello" / "bad-utf8.yaml").write_bytes(HEADER.encode() + b"\xff\n")
    (base / "hello" / ".tmp-x").write_text(f"{HEADER}\n")
    (base / "hello" / "sub" / "deeper").mkdir(parents=True)
    (base / "hello" / "sub" / "deeper" / "x.yaml").write_text(f"{HEADER}\n")
    (base / "top.yaml").write_text(f"{HEADER}\n")
    for rel_dir in (INSIDE, f"{INSIDE}/", f"./{INSIDE}", "environments//dev/manifests"):
        scan = safepaths.scan_owned(root, rel_dir, HEADER)
        assert scan.generated == [
            f"{INSIDE}/hello/service-hello.yaml",
            f"{INSIDE}/hello/sub/deeper/x.yaml",
            f"{INSIDE}/top.yaml",
        ]
        assert scan.other == [f"{INSIDE}/hello/bad-utf8.yaml", f"{INSIDE}/hello/notes.yaml"]
    assert safepaths.scan_owned(root, f"{INSIDE}/missing", HEADER) == safepaths.Scan([], [])


def test_scan_owned_refuses_links_and_special_files(root: Path) -> None:
    base = root / INSIDE / "hello"
    (base / "sub").mkdir()
    (base / "sub" / "link").symlink_to(root / "outside")
    with pytest.raises(UserError, match="is a symbolic link") as e:
        safepaths.scan_owned(root, INSIDE, HEADER)
    assert e.value.path == f"{INSIDE}/hello/sub/link"
    (base / "sub" / "link").unlink()
    os.mkfifo(base / "sub" / "fifo")
    with pytest.raises(UserError, match="is not a regular file") as e:
        safepaths.scan_owned(root, INSIDE, HEADER)
    assert e.value.path == f"{INSIDE}/hello/sub/fifo"
