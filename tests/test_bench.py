"""benchmarks/bench.py runs at a tiny size and writes the JSON it documents. No timing is asserted: the bench
prints numbers (`nox -s bench`), tests only check that it works."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench.py"
STEPS = {
    "startup",
    "cold_render",
    "validate",
    "render_no_change",
    "render_one_change",
    "diff",
    "validate_dumped",
}

pytestmark = pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="the bench samples Linux /proc")


@pytest.fixture(scope="module")
def pycache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bench byte-compiles before timing: into a folder of the tests', shared by them, not the sources'."""
    return tmp_path_factory.mktemp("pycache")


def run_bench(tmp_path: Path, pycache: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "out.json"
    env = dict(os.environ)
    env["TMPDIR"] = str(tmp_path)  # the bench's temporary repository lands in tmp_path
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    proc = subprocess.run(
        [sys.executable, str(BENCH), *args, "--json", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "step" in proc.stdout and "1. render, cold" in proc.stdout
    assert "byte-compiled" in proc.stdout
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def check_size(size: dict[str, Any], apps: int) -> None:
    assert size["apps"] == apps
    assert size["environments"] == ["dev", "prod", "staging"]
    assert size["pairs"] == apps * 3
    assert size["resources"] > size["app_resources"] > 0
    assert set(size["steps"]) == STEPS
    for name, step in size["steps"].items():
        assert step["seconds"] > 0, name
        assert step["peak_rss_mib"] >= step["maxrss_mib"] > 0, name
        assert step["cpu_seconds"] > 0, name
        assert step["runs"] >= 1
    assert size["steps"]["validate"]["resources"] == size["resources"]
    assert size["steps"]["validate_dumped"]["resources"] == size["app_resources"]
    assert size["steps"]["validate"]["resources_per_second"] > 0
    names = {t["name"] for t in size["targets"]}
    assert {
        "render_no_change",
        "one_change_render_plus_diff",
        "validate_rate",
        "validate_dumped_rate",
    } <= names
    for target in size["targets"]:
        assert set(target) == {"name", "target", "value", "ok"}
        assert isinstance(target["ok"], bool)
    assert size["ratios"]["cold_render_plus_validate_seconds"] > 0


def test_bench_without_kustomize(tmp_path: Path, pycache: Path) -> None:
    report = run_bench(tmp_path, pycache, "--apps", "1,2", "--no-kustomize")
    assert {"cpus", "cpu_model", "python", "kubectl"} <= set(report["machine"])
    assert report["machine"]["cpus"] >= 1
    assert [s["apps"] for s in report["sizes"]] == [1, 2]
    for size, apps in zip(report["sizes"], [1, 2], strict=True):
        check_size(size, apps)
        assert size["kustomize"] is None
        assert "kustomize_ratio" not in {t["name"] for t in size["targets"]}
    [scaling] = report["scaling"]
    assert (scaling["from"], scaling["to"], scaling["app_ratio"]) == (1, 2, 2.0)
    assert scaling["time_ratio"]["cold_render_plus_validate"] > 0
    assert set(scaling["cpu_ratio"]) == set(scaling["time_ratio"])


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")
def test_bench_with_kustomize(tmp_path: Path, pycache: Path) -> None:
    report = run_bench(tmp_path, pycache, "--apps", "1")
    [size] = report["sizes"]
    check_size(size, 1)
    kustomize = size["kustomize"]
    assert kustomize["builds"] == 3  # one per (environment, app)
    assert kustomize["cpu_seconds"] > 0 and kustomize["peak_rss_mib"] > 0
    assert kustomize["failures"] == 0
    # the generated layout is equivalent: kustomize builds exactly the resources BetCycle rendered
    assert kustomize["resources"] == kustomize["betcycle_resources"] == size["app_resources"]
    assert size["ratios"]["kustomize_over_render_validate"] > 0
    assert report["scaling"] == []


def test_peak_rss_sums_the_process_tree(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import procmon

    # a parent that waits for a child holding 64 MiB: the tree's sum exceeds the largest single process
    child = "import time; b = bytearray(64 << 20); time.sleep(0.6)"
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}], check=True)"
    measured = procmon.run([sys.executable, "-c", parent], cwd=tmp_path)
    assert measured.returncode == 0
    assert measured.maxrss >= 64 << 20  # wait4's ru_maxrss covers the waited-for child
    # the child's 64 MiB + the parent's own interpreter (not maxrss + ...: a process forked from a big one,
    # like this test run, starts with the forker's maxrss until it execs)
    assert measured.peak_rss >= (64 << 20) + (4 << 20)
    assert measured.processes == 2


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")
def test_kustomize_layout_builds_what_betcycle_renders(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench
    import kustomize

    repo = tmp_path / "repo"
    envs = bench.generate(repo, 2)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), BETCYCLE_CACHE_DIR=str(tmp_path / "cache"))
    subprocess.run(
        [sys.executable, "-m", "betcycle", "render"], cwd=repo, env=env, check=True, capture_output=True
    )
    overlays, expected = kustomize.build_layout(repo, tmp_path / "layout", envs)
    assert len(overlays) == 6
    assert not list((tmp_path / "layout/overlays/dev/svc000").glob("patch-*"))  # the base environment's
    built = 0
    for overlay in overlays:
        out = subprocess.run(
            [str(shutil.which("kubectl")), "kustomize", str(overlay)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        theirs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out)}
        rendered = repo / "environments" / overlay.parent.name / "manifests" / overlay.name
        ours = {(d["kind"], d["metadata"]["name"]): d for d in kustomize.load_app(rendered)}
        assert theirs == ours, overlay
        built += len(theirs)
    assert built == expected
