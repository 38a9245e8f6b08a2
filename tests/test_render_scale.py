"""render at scale: a process pool (--jobs), the incremental cache and --shard never change the output."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from betcycle.errors import UserError, UserErrors
from betcycle.model.repo import load_repo
from betcycle.model.yamlio import DuplicateKeyError
from betcycle.render import engine as render
from betcycle.render import parallel
from betcycle.render.cache import RenderCache
from betcycle.render.shard import Shard
from tests.conftest import MANY_APPS as APPS


def manifests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.glob("environments/*/manifests/**/*"))
        if p.is_file()
    }


def betcycle(root: Path, *args: str, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    """A real process: the pool forks it (never the test process, which may hold threads)."""
    env = dict(os.environ)
    if cache is not None:
        env["BETCYCLE_CACHE_DIR"] = str(cache)
    return subprocess.run(
        [sys.executable, "-m", "betcycle", "--root", str(root), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def test_the_pool_writes_the_same_bytes_as_one_process(many: Path, tmp_path: Path) -> None:
    expected = manifests(many)
    for jobs in ("2", "1", "3"):
        for path in many.glob("environments/*/manifests"):
            subprocess.run(["rm", "-rf", str(path)], check=True)
        proc = betcycle(many, "render", "--jobs", jobs, "--no-cache")
        assert proc.returncode == 0, proc.stderr
        assert manifests(many) == expected, f"--jobs {jobs}"


def test_errors_come_in_the_same_order_whatever_the_jobs(many: Path) -> None:
    for name in ("svc01", "svc06"):  # two broken apps, in different chunks of the pool
        p = many / f"environments/prod/apps/{name}.yaml"
        p.write_text(p.read_text() + "replicas: many\n")
    runs = [betcycle(many, "render", "--jobs", j, "--no-cache") for j in ("1", "2")]
    assert [r.returncode for r in runs] == [2, 2]
    assert runs[0].stderr == runs[1].stderr
    assert runs[0].stderr.index("svc01") < runs[0].stderr.index("svc06")
    assert "Traceback" not in runs[1].stderr


def test_a_cached_render_is_the_render(many: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    cold = RenderCache(cache_dir)
    first = render.render(load_repo(many), cache=cold)
    assert (cold.hits, cold.misses) == (0, 3 * (len(APPS) + 1))
    warm = RenderCache(cache_dir)
    second = render.render(load_repo(many), cache=warm)
    assert (warm.hits, warm.misses) == (3 * (len(APPS) + 1), 0)
    assert second.files == first.files
    # resources of cached pairs are parsed from the cached text on demand: the same objects
    assert [(r.env, r.app, r.source, r.output, r.doc) for r in second.resources] == [
        (r.env, r.app, r.source, r.output, r.doc) for r in first.resources
    ]
    assert render.compare(many, second) == []


def _resigned(body: bytes) -> bytes:
    return hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def _entries(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.rglob("*.json"))


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # truncated
        lambda b: b[:-10] + bytes([b[-10] ^ 1]) + b[-9:],  # one bit flipped: the checksum doesn't match
        lambda b: b"",  # empty
        lambda b: b"\xff\xfe not json",
        lambda b: b.split(b"\n", 1)[0] + b"\n{}",  # a checksum line and nothing it matches
        # signed again after the change (only the checksum's own check can't see these)
        lambda b: _resigned(b.split(b"\n", 1)[1][:-1]),  # the last text one byte short of its size
        lambda b: _resigned(b.split(b"\n", 1)[1].replace(b'"blobs":[', b'"blobs":[1,', 1)),  # one too many
        lambda b: _resigned(b.split(b"\n", 1)[1] + b"\xff"),  # bytes past the texts
    ],
)
def test_a_damaged_entry_is_rebuilt_never_trusted(many: Path, tmp_path: Path, damage) -> None:
    cache_dir = tmp_path / "cache"
    expected = render.render(load_repo(many), cache=RenderCache(cache_dir)).files
    for entry in _entries(cache_dir):
        entry.write_bytes(damage(entry.read_bytes()))
    cache = RenderCache(cache_dir)
    assert render.render(load_repo(many), cache=cache).files == expected
    assert cache.hits == 0 and cache.rebuilt == len(_entries(cache_dir))
    again = RenderCache(cache_dir)  # rewritten: the next run uses them
    assert render.render(load_repo(many), cache=again).files == expected
    assert again.hits == len(_entries(cache_dir))


def test_an_entry_under_another_key_is_not_used(many: Path, tmp_path: Path) -> None:
    """An intact entry copied over another pair's (a well-formed but wrong entry) is refused."""
    cache_dir = tmp_path / "cache"
    expected = render.render(load_repo(many), cache=RenderCache(cache_dir)).files
    entries = _entries(cache_dir)
    contents = [e.read_bytes() for e in entries]
    for entry, data in zip(entries, contents[1:] + contents[:1], strict=True):
        entry.write_bytes(data)  # each holds its neighbour's intact entry
    cache = RenderCache(cache_dir)
    assert render.render(load_repo(many), cache=cache).files == expected
    assert cache.hits == 0


def test_deleting_the_cache_or_no_cache_changes_nothing(many: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    assert betcycle(many, "render", cache=cache_dir).returncode == 0
    expected = manifests(many)
    subprocess.run(["rm", "-rf", str(cache_dir)], check=True)
    proc = betcycle(many, "render", "--check", cache=cache_dir)
    assert proc.returncode == 0 and proc.stdout.startswith("render is up to date"), proc.stdout
    other = tmp_path / "unused-cache"
    proc = betcycle(many, "render", "--no-cache", cache=other)
    assert proc.returncode == 0, proc.stderr
    assert not other.exists(), "--no-cache writes no entries"
    assert manifests(many) == expected


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("change", "rerendered"),
    [
        # one app in one environment: only that pair
        (lambda r: _edit(r / "environments/prod/apps/svc03.yaml", "INDEX: '3'", "INDEX: 'x'"), 1),
        # a comment moves the values' lines (findings name them): that pair again, output unchanged
        (lambda r: _edit(r / "apps/svc04/app.yaml", "name: svc04", "# moved\nname: svc04"), 3),
        # an environment: its pairs
        (lambda r: _edit(r / "environments/dev/environment.yaml", "\n", "\n# touched\n"), len(APPS) + 1),
        # a chart template, the repository settings: everything
        (
            lambda r: (r / "charts/service/templates/configmap.yaml.j2").write_text(
                (r / "charts/service/templates/configmap.yaml.j2").read_text() + "\n"
            ),
            3 * (len(APPS) + 1),
        ),
        (lambda r: _edit(r / "betcycle.yaml", "\n", "\n# touched\n"), 3 * (len(APPS) + 1)),
        # a new template file in the chart folder counts even if nothing includes it yet
        (lambda r: (r / "charts/service/templates/_unused.j2").write_text("{# soon #}\n"), 27),
    ],
)
def test_the_key_covers_every_input(many: Path, tmp_path: Path, change, rerendered: int) -> None:
    cache_dir = tmp_path / "cache"
    render.render(load_repo(many), cache=RenderCache(cache_dir))
    change(many)
    cache = RenderCache(cache_dir)
    result = render.render(load_repo(many), cache=cache)
    assert cache.misses == rerendered
    assert result.files == render.render(load_repo(many)).files  # what an uncached render gives


def test_shards_together_are_one_render(many: Path) -> None:
    repo = load_repo(many)
    whole = render.render(repo)
    parts = [render.render(repo, shard=Shard(i, 3)) for i in (1, 2, 3)]
    seen: dict[str, str] = {}
    for part in parts:
        assert not set(part.files) & set(seen), "each file is rendered by one shard"
        seen.update(part.files)
    assert seen == whole.files
    assert all(render.compare(many, part) == [] for part in parts)


def test_each_stale_or_extra_file_is_reported_by_exactly_one_shard(many: Path) -> None:
    _edit(many / "environments/staging/apps/svc05.yaml", "INDEX: '5'", "INDEX: 'five'")
    (many / "environments/prod/apps/svc02.yaml").unlink()  # its manifests are left over
    stray = many / "environments/dev/manifests/svc07/configmap-stray.yaml"
    stray.write_text("# Generated by betcycle render - do not edit\napiVersion: v1\nkind: ConfigMap\n")
    (many / "environments/dev/manifests/svc01/notes.yaml").write_text("hand: written\n")
    repo = load_repo(many)
    whole = render.compare(many, render.render(repo))
    found = []
    warned = []
    for i in (1, 2, 3):
        part = render.render(repo, shard=Shard(i, 3))
        found += render.compare(many, part)
        warned += render.hand_written(many, part)
    assert sorted((c.path, c.state) for c in found) == sorted((c.path, c.state) for c in whole)
    assert {c.state for c in whole} == {"stale", "extra"}
    assert warned == ["environments/dev/manifests/svc01/notes.yaml"]


@pytest.mark.parametrize(
    ("args", "first_line"),
    [
        (["--shard", "4/3"], "error: --shard '4/3' is not I/N with 1 <= I <= N"),
        (["--shard", "one"], "error: --shard 'one' is not I/N with 1 <= I <= N"),
        (["--jobs", "many"], "error: --jobs 'many' is not a number"),
        (["--jobs", "-1"], "error: --jobs -1 is negative"),
    ],
)
def test_bad_scale_options_are_usage_errors(example: Path, cli, args: list[str], first_line: str) -> None:
    code, _, err = cli("--root", example, "render", *args)
    assert code == 2
    assert err.splitlines()[0] == first_line


def test_jobs_auto_is_the_cpus_this_process_may_use() -> None:
    assert parallel.parse_jobs("auto") == parallel.default_jobs() == parallel.parse_jobs("0") >= 1
    assert parallel.parse_jobs("3") == 3


def test_user_errors_survive_the_trip_back_from_a_worker() -> None:
    errors = UserErrors(
        [
            UserError("bad value", path="a.yaml", line=3, hint="fix it"),
            DuplicateKeyError("replicas", 2, path="t.yaml.j2", line=5),
        ]
    )
    back = pickle.loads(pickle.dumps(errors))
    assert str(back) == str(errors)
    assert isinstance(back.errors[1], DuplicateKeyError) and back.errors[1].first_line == 2


def test_map_ordered_keeps_order_and_errors_in_place() -> None:
    got = parallel.map_ordered(_square_or_fail, list(range(40)), state=10, jobs=1)
    assert [g if isinstance(g, int) else str(g) for g in got] == [
        "7 is unlucky" if i == 7 else i * i + 10 for i in range(40)
    ]


def _square_or_fail(offset: int, i: int) -> int:
    if i == 7:
        raise UserError(f"{i} is unlucky")
    return i * i + offset


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _late_bad_value(root: Path) -> Path:
    """A value the chart's schema refuses, in the pair rendered last (after many pairs were written): the
    repository still loads (a duplicate key would stop it before anything is rendered)."""
    bad = root / "environments/staging/apps/svc07.yaml"
    text = bad.read_text()
    assert "replicas: 2\n" in text
    bad.write_text(text.replace("replicas: 2\n", "replicas: many\n"))
    return bad


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_files_written_while_others_render_are_put_back_when_one_fails(many: Path, jobs: str) -> None:
    """Render writes each pair's files as soon as it is ready; a later failure restores them all."""
    template = many / "charts/service/templates/configmap.yaml.j2"
    template.write_text(template.read_text() + "# every pair changes\n")
    bad = _late_bad_value(many)
    before = _tree(many)
    proc = betcycle(many, "render", "--jobs", jobs, "--no-cache")
    assert proc.returncode == 2
    assert "environments/staging/apps/svc07.yaml" in proc.stderr
    assert proc.stderr.endswith("input error(s); nothing was written\n"), proc.stderr
    assert _tree(many) == before
    bad.write_text(bad.read_text().replace("replicas: many", "replicas: 2"))
    assert betcycle(many, "render", "--jobs", jobs).returncode == 0
    assert betcycle(many, "render", "--check").stdout.startswith("render is up to date")


def test_a_special_file_in_the_cache_is_not_read(many: Path, tmp_path: Path) -> None:
    """A FIFO where an entry should be would block a read forever: it counts as a damaged entry."""
    cache_dir = tmp_path / "cache"
    expected = render.render(load_repo(many), cache=RenderCache(cache_dir)).files
    entry = _entries(cache_dir)[0]
    entry.unlink()
    os.mkfifo(entry)
    cache = RenderCache(cache_dir)
    assert render.render(load_repo(many), cache=cache).files == expected
    assert cache.rebuilt >= 1


def _folders(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir())


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_first_render_writes_new_folders_exactly_as_file_by_file(many: Path, jobs: str) -> None:
    """Pairs whose folder is missing are written without looking up each file: the same bytes, modes and
    report as pairs whose folder exists and whose files are missing one by one."""
    expected = manifests(many)
    assert expected
    modes = {p: (many / p).stat().st_mode for p in expected}
    removed = set(list(expected)[::2])
    for p in removed:  # half the files missing (their folders exist): file by file
        (many / p).unlink()
    # some whole pair folders gone, and an environment's Argo CD folder (written after the pairs)
    gone = [*sorted({p.rsplit("/", 1)[0] for p in expected})[::3], "environments/dev/manifests/argocd"]
    for folder in sorted(set(gone)):
        for f in (many / folder).iterdir():
            removed.add(f.relative_to(many).as_posix())
            f.unlink()
        (many / folder).rmdir()
    proc = betcycle(many, "render", "--jobs", jobs, "--no-cache")
    assert proc.returncode == 0, proc.stderr
    assert {line.removeprefix("created: ") for line in proc.stdout.splitlines()[:-1]} == removed
    assert f": {len(removed)} created, 0 updated, 0 deleted," in proc.stdout.splitlines()[-1]
    assert manifests(many) == expected
    assert {p: (many / p).stat().st_mode for p in expected} == modes
    assert not [p for p in many.rglob(".*.tmp")]
    assert betcycle(many, "render", "--check").stdout.startswith("render is up to date")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_failed_first_render_removes_the_folders_it_made(many: Path, jobs: str) -> None:
    for manifests_dir in many.glob("environments/*/manifests"):
        for child in manifests_dir.iterdir():  # dev's Argo CD objects too: written once dev's pairs are in
            for f in child.iterdir():
                f.unlink()
            child.rmdir()
    _late_bad_value(many)
    before, folders = _tree(many), _folders(many)
    proc = betcycle(many, "render", "--jobs", jobs, "--no-cache")
    assert proc.returncode == 2
    assert proc.stderr.endswith("input error(s); nothing was written\n"), proc.stderr
    assert _tree(many) == before
    assert _folders(many) == folders


def _without_manifests(root: Path) -> None:
    for manifests_dir in root.glob("environments/*/manifests"):
        for child in manifests_dir.iterdir():
            for f in child.iterdir():
                f.unlink()
            child.rmdir()


def test_ctrl_c_while_a_worker_fills_a_new_folder_removes_it_half_written(
    many: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pair's new folder is created and filled by the process that renders it; Ctrl-C in the middle of
    one (its files not reported yet) still leaves the tree as it was."""
    _without_manifests(many)
    before, folders = _tree(many), _folders(many)
    real = render.atomic_write
    count = {"n": 0}

    def interrupted(path: Path, data: str | bytes, **kwargs: object) -> None:
        count["n"] += 1
        if count["n"] == 40:  # a few pairs written, the fifth half-way
            raise KeyboardInterrupt
        real(path, data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(render, "atomic_write", interrupted)
    code, _, err = cli("--root", many, "render", "--no-cache")
    assert code == 130, err
    assert err.startswith("interrupted: nothing was changed")
    assert _tree(many) == before
    assert _folders(many) == folders
    monkeypatch.setattr(render, "atomic_write", real)
    assert cli("--root", many, "render", "--no-cache")[0] == 0
    assert cli("--root", many, "render", "--check")[1].startswith("render is up to date")


def test_a_folder_made_by_someone_else_meanwhile_is_written_file_by_file(
    many: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handed-out folder that exists when the worker gets to it (created in between) is not taken over:
    the worker leaves it, the parent writes its files one by one, and a file already there is kept track
    of like any other."""
    expected = manifests(many)
    _without_manifests(many)
    real = render._write_new_folder

    def someone_else_first(root: Path, folder: str, output: object) -> bool:
        (root / folder).mkdir()
        return real(root, folder, output)  # type: ignore[arg-type]

    monkeypatch.setattr(render, "_write_new_folder", someone_else_first)
    code, _, err = cli("--root", many, "render", "--no-cache")
    assert code == 0, err
    assert manifests(many) == expected
