"""validate at scale: --jobs and --shard give exactly the findings of one plain run; `findings merge`."""

from __future__ import annotations

import hashlib
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


def _validate_cache(tmp_path: Path) -> Path:
    return Path(os.environ["BETCYCLE_CACHE_DIR"]) / "validate"


def test_an_unchanged_environment_is_not_validated_again(flawed: Path, cli, tmp_path: Path) -> None:
    first = cli("--root", flawed, "validate", "--format", "json")
    assert "Deployment/svc03/svc03" in first[1]
    entries = sorted(_validate_cache(tmp_path).rglob("*.json"))
    assert len(entries) == 3, "one entry per environment"
    before = {e: e.stat().st_mtime_ns for e in entries}
    assert cli("--root", flawed, "validate", "--format", "json") == first
    assert cli("--root", flawed, "validate", "--no-cache", "--format", "json") == first
    # a fix in one environment: only that one is validated again, and the fix shows
    dep = flawed / "environments/prod/manifests/svc03/deployment-svc03.yaml"
    dep.write_text(dep.read_text().replace("  bogus: 1\n", "", 1))
    code, out, _ = cli("--root", flawed, "validate", "--format", "json")
    assert "Deployment/svc03/svc03" not in out and code == 1
    assert out == cli("--root", flawed, "validate", "--no-cache", "--format", "json")[1]
    assert len(sorted(_validate_cache(tmp_path).rglob("*.json"))) == 4
    assert all(e.exists() for e in before)


@pytest.mark.parametrize(
    "change",
    [
        # a policy, a values file findings point into, the options, the day (waivers expire)
        lambda r: (r / "policies/FX001.yaml").write_text(
            (r / "policies/FX001.yaml").read_text().replace("severity: error", "severity: warning")
        ),
        lambda r: (r / "environments/staging/apps/svc06.yaml").write_text(
            "# moved down a line\n" + (r / "environments/staging/apps/svc06.yaml").read_text()
        ),
    ],
)
def test_what_findings_depend_on_is_in_the_key(flawed: Path, cli, change) -> None:
    cli("--root", flawed, "validate", "--format", "json")
    change(flawed)
    got = cli("--root", flawed, "validate", "--format", "json")
    assert got == cli("--root", flawed, "validate", "--no-cache", "--format", "json")


def test_a_damaged_validate_entry_is_redone(flawed: Path, cli, tmp_path: Path) -> None:
    first = cli("--root", flawed, "validate")
    for entry in _validate_cache(tmp_path).rglob("*.json"):
        entry.write_bytes(entry.read_bytes()[:-5])
    assert cli("--root", flawed, "validate") == first
    for entry in _validate_cache(tmp_path).rglob("*.json"):  # intact JSON, checksum fixed, wrong shape
        body = json.dumps({"key": entry.stem, "data": {"findings": 1}}, separators=(",", ":"))
        entry.write_text(hashlib.sha256(body.encode()).hexdigest() + "\n" + body)
    assert cli("--root", flawed, "validate") == first


@pytest.mark.parametrize(
    ("apps", "shards"),
    [(0, 1), (1, 1), (150, 1), (151, 2), (450, 3), (451, 4), (100_000, 8)],
)
def test_the_ci_matrix_grows_with_the_apps_past_the_threshold(apps: int, shards: int) -> None:
    from betcycle.commands.shards_cmd import plan

    assert plan(apps) == [f"{i}/{shards}" for i in range(1, shards + 1)]


def test_shards_prints_the_matrix(many: Path, cli) -> None:
    code, out, _ = cli("--root", many, "shards", "--format", "json", "--apps-per-shard", "4")
    assert code == 0 and json.loads(out) == ["1/3", "2/3", "3/3"]  # hello + 8 copies
    code, _, err = cli("--root", many, "shards", "--max", "0")
    assert code == 2 and err.startswith("error: --apps-per-shard and --max must be at least 1")


def test_files_are_parsed_in_the_pool_with_the_same_report(many: Path, tmp_path: Path) -> None:
    """validate PATH… parses the files in worker processes: the same report, and the same first error."""
    folder = tmp_path / "loose"
    for env_dir in sorted(many.glob("environments/*/manifests")):
        for f in sorted(env_dir.rglob("*.yaml")):
            target = folder / env_dir.parent.name / f.relative_to(env_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f.read_text().split("\n", 3)[3])  # without the header: anyone's files
    runs = [betcycle(many, "validate", "--format", "json", "--jobs", j, str(folder)) for j in ("1", "2")]
    assert runs[0].returncode == runs[1].returncode
    assert runs[0].stdout == runs[1].stdout and json.loads(runs[0].stdout)["summary"]["checked"] > 150
    (folder / "dev/svc02/zz-bad.yaml").write_text("a: [1\n")
    (folder / "prod/svc05/zz-bad.yaml").write_text("b: {\n")
    bad = [betcycle(many, "validate", "--jobs", j, str(folder)) for j in ("1", "2")]
    assert [b.returncode for b in bad] == [2, 2]
    assert bad[0].stderr == bad[1].stderr and "dev/svc02/zz-bad.yaml" in bad[0].stderr


def test_files_checked_in_the_pool_report_what_one_check_of_all_of_them_reports(
    flawed: Path, tmp_path: Path
) -> None:
    """validate PATH… checks schemas file by file where each is parsed: the findings (in their order),
    counts and skipped kinds of one validate_schemas over every resource, whatever --jobs."""
    from betcycle.commands.validate_cmd import _add_report, _schema_part
    from betcycle.model.schemas import supported_versions
    from betcycle.validate.crd import CrdSchemaStore, SchemaDir
    from betcycle.validate.engine import SchemaReport, validate_schemas

    folder = tmp_path / "loose"
    for f in sorted(flawed.glob("environments/*/manifests/**/*.yaml")):
        target = folder / f.relative_to(flawed / "environments")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f.read_text())
    (folder / "dev/manifests/svc02/widget.yaml").write_text(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: 1}\n"
    )
    (folder / "prod/manifests/svc04/widget.yaml").write_text(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {generateName: w-}\n"
    )
    for fmt in ("text", "json", "sarif"):
        runs = [betcycle(flawed, "validate", "--format", fmt, "--jobs", j, str(folder)) for j in ("1", "2")]
        assert runs[0].returncode == runs[1].returncode == 1, runs[0].stderr
        assert runs[0].stdout == runs[1].stdout
    assert "Widget" in runs[0].stdout and "bogus" in runs[0].stdout

    per_file = [manifests_of(f) for f in manifest_files(folder)]
    versions: dict[str | None, str] = {None: supported_versions()[-1]}
    crds = CrdSchemaStore(SchemaDir(Path(os.environ["BETCYCLE_SCHEMA_CACHE"])))
    whole = validate_schemas([r for rs in per_file for r in rs], versions, crds)
    parts, compiled = SchemaReport(), {}
    for resources in per_file:
        _add_report(parts, _schema_part(versions, crds, True, compiled, resources))
    assert whole.findings and whole.skipped_kinds == {"example.com/v1 Widget": 2}
    assert parts == whole


def manifest_files(folder: Path) -> list[Path]:
    from betcycle.validate.manifests import files_under

    return files_under(folder)


def manifests_of(path: Path) -> list:
    from betcycle.validate.manifests import parse

    return parse(path.read_text(), str(path))
