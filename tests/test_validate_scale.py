"""validate at scale: --jobs and --shard give exactly the findings of one plain run; `findings merge`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SHARDS = 3


@pytest.fixture(autouse=True)
def _schemas(crd_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixture repository vendors no CRD schemas: use the copy of the real ones."""
    monkeypatch.setenv("BETCYCLE_SCHEMA_CACHE", str(crd_cache))


@pytest.fixture
def flawed(many: Path) -> Path:
    """`many` with findings in several apps and environments: schema, cross-resource and policy ones."""
    dep = many / "environments/prod/manifests/svc03/deployment-svc03.yaml"
    dep.write_text(dep.read_text().replace("spec:\n", "spec:\n  bogus: 1\n", 1))  # unknown field
    (many / "environments/dev/manifests/svc05/deployment-svc05.yaml").unlink()  # its Service selects nothing
    dep = many / "environments/staging/manifests/svc06/deployment-svc06.yaml"
    dep.write_text(dep.read_text().replace(":1.4.0", ":latest"))  # policy FX001
    root_app = many / "environments/staging/manifests/argocd/application-staging-root.yaml"
    root_app.write_text(root_app.read_text().replace("spec:\n", "spec:\n  bogus: 1\n", 1))  # the env's own
    return many


def betcycle(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A real process (the pool forks it, never the test process)."""
    return subprocess.run(
        [sys.executable, "-m", "betcycle", "--root", str(root), *args],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, NO_COLOR="1"),
        cwd=root,
    )


def report(root: Path, *args: str) -> tuple[int, dict]:
    proc = betcycle(root, "validate", "--format", "json", *args)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_the_pool_reports_what_one_process_reports(flawed: Path) -> None:
    one = betcycle(flawed, "validate", "--jobs", "1")
    two = betcycle(flawed, "validate", "--jobs", "2")
    assert one.returncode == two.returncode == 1
    assert one.stdout == two.stdout
    assert "bogus" in one.stdout


def test_shards_together_report_exactly_one_run(flawed: Path, tmp_path: Path) -> None:
    code, whole = report(flawed)
    assert code == 1
    assert {(f.get("env"), f.get("app")) for f in whole["findings"]} >= {
        ("prod", "svc03"),
        ("dev", "svc05"),
        ("staging", "svc06"),
        ("staging", None),
    }, "findings spread over pairs and an environment's own objects"
    parts = []
    for i in range(1, SHARDS + 1):
        out = tmp_path / f"shard-{i}.json"
        proc = betcycle(flawed, "validate", "--shard", f"{i}/{SHARDS}", "--format", "json", "-o", str(out))
        assert proc.returncode in (0, 1), proc.stderr
        parts.append(json.loads(out.read_text()))
        assert parts[-1]["summary"]["shard"] == f"{i}/{SHARDS}"
    found = [json.dumps(f, sort_keys=True) for p in parts for f in p["findings"]]
    assert sorted(found) == sorted(json.dumps(f, sort_keys=True) for f in whole["findings"])
    assert len(found) == len(set(found)), "no finding is reported by two shards"
    assert sum(p["summary"]["checked"] for p in parts) == whole["summary"]["checked"]

    merged = betcycle(
        flawed,
        "findings",
        "merge",
        *(str(tmp_path / f"shard-{i}.json") for i in (3, 1, 2)),
        "--format",
        "json",
    )
    assert merged.returncode == 1, merged.stderr
    doc = json.loads(merged.stdout)
    assert doc["findings"] == whole["findings"]
    assert {k: v for k, v in doc["summary"].items()} == whole["summary"]
    text = betcycle(flawed, "findings", "merge", *(str(tmp_path / f"shard-{i}.json") for i in (1, 2, 3)))
    assert text.stdout == betcycle(flawed, "validate").stdout
    sarif = betcycle(
        flawed, "findings", "merge", *map(str, sorted(tmp_path.glob("shard-*.json"))), "--format", "sarif"
    )
    assert sarif.returncode == 1
    assert len(json.loads(sarif.stdout)["runs"][0]["results"]) == len(whole["findings"])


def _shard_reports(root: Path, tmp_path: Path) -> list[Path]:
    files = []
    for i in range(1, SHARDS + 1):
        out = tmp_path / f"shard-{i}.json"
        betcycle(root, "validate", "--shard", f"{i}/{SHARDS}", "--format", "json", "-o", str(out))
        files.append(out)
    return files


def test_a_clean_tree_merges_to_exit_0(many: Path, tmp_path: Path) -> None:
    proc = betcycle(many, "findings", "merge", *map(str, _shard_reports(many, tmp_path)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 error(s)" in proc.stdout


@pytest.mark.parametrize(
    ("pick", "first_line"),
    [
        (lambda f: f[:2], "error: no report for shard 3/3: that share of the repository was not validated"),
        (lambda f: [f[0], f[0], f[1], f[2]], "is also in"),
    ],
)
def test_a_missing_or_repeated_shard_is_bad_input(many: Path, tmp_path: Path, pick, first_line: str) -> None:
    proc = betcycle(many, "findings", "merge", *map(str, pick(_shard_reports(many, tmp_path))))
    assert proc.returncode == 2
    assert first_line in proc.stderr.splitlines()[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ('{"findings": []}', "not a betcycle JSON report"),
        ('{"summary": {}, "findings": [{"severity": "error"}]}', "finding 1 is not one betcycle writes"),
    ],
)
def test_a_file_that_is_not_a_report_is_bad_input(example: Path, tmp_path: Path, cli, text, message) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    code, _, err = cli("--root", example, "findings", "merge", bad)
    assert code == 2
    assert err.startswith(f"error: {bad}") and message in err


def test_shard_is_for_repository_runs(example: Path, cli) -> None:
    code, _, err = cli("--root", example, "validate", "--shard", "1/2", "environments/dev/manifests")
    assert code == 2
    assert "--shard splits a repository's environments and apps" in err
