from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from betcycle import formats
from betcycle.cli import find_root
from betcycle.model.findings import Finding, json_path, sort_findings

FINDINGS = [
    Finding(
        severity="error",
        rule="policy/BC001",
        message="Images are pinned: tag 'latest'",
        hint="set image.tag",
        env="prod",
        app="hello",
        source="environments/prod/apps/hello.yaml",
        line=3,
        resource="Deployment/hello/hello",
        path="spec.template.spec.containers[0].image",
        manifest="environments/prod/manifests/hello/deployment-hello.yaml",
    ),
    Finding(severity="warning", rule="crossref/target-port", message="50%, a: b\nnext", env="dev"),
]


def test_github_annotations_escape_and_locate() -> None:
    out = io.StringIO()
    formats.write("github", FINDINGS, out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("::error file=environments/prod/apps/hello.yaml,line=3,title=policy/BC001::")
    assert "%0Afix: set image.tag" in lines[0]
    assert lines[1] == "::warning title=crossref/target-port::dev: 50%25, a: b%0Anext"


def test_sarif_rules_results_and_locations() -> None:
    out = io.StringIO()
    meta = {"policy/BC001": {"title": "Images are pinned", "rationale": "why", "severity": "error"}}
    formats.write("sarif", FINDINGS, out, rules=meta)
    run = json.loads(out.getvalue())["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert rules["policy/BC001"]["shortDescription"]["text"] == "Images are pinned"
    assert rules["policy/BC001"]["defaultConfiguration"]["level"] == "error"
    first = run["results"][0]
    assert first["ruleId"] == "policy/BC001"
    assert run["tool"]["driver"]["rules"][first["ruleIndex"]]["id"] == "policy/BC001"
    loc = first["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "environments/prod/apps/hello.yaml"
    assert loc["region"]["startLine"] == 3
    assert "locations" not in run["results"][1]


def test_text_groups_and_colours(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    formats.write("text", FINDINGS, out, checked=2)
    text = out.getvalue()
    assert "prod / hello: environments/prod/apps/hello.yaml" in text
    assert "    at environments/prod/apps/hello.yaml:3" in text
    assert "    fix: set image.tag" in text
    assert text.rstrip().endswith("2 resource(s), 2 validated against a schema: 1 error(s), 1 warning(s)")
    assert "\033[" not in text
    monkeypatch.setenv("FORCE_COLOR", "1")
    out = io.StringIO()
    formats.write("text", FINDINGS, out)
    assert "\033[31merror" in out.getvalue()


def test_json_summary() -> None:
    out = io.StringIO()
    formats.write("json", FINDINGS, out, checked=5)
    doc = json.loads(out.getvalue())
    assert doc["summary"] == {"errors": 1, "warnings": 1, "checked": 5}
    assert doc["findings"][1] == {
        "severity": "warning",
        "rule": "crossref/target-port",
        "message": "50%, a: b\nnext",
        "env": "dev",
    }


def test_sorting_dedupes() -> None:
    assert sort_findings([*FINDINGS, FINDINGS[0]]) == [FINDINGS[1], FINDINGS[0]]


def test_json_path() -> None:
    assert json_path(["spec", "containers", 0, "image"]) == "spec.containers[0].image"
    assert (
        json_path(["metadata", "labels", "app.kubernetes.io/name"])
        == "metadata.labels['app.kubernetes.io/name']"
    )
    assert json_path([]) == ""


def test_usage_errors_exit_2(cli) -> None:
    code, _, err = cli("frobnicate")
    assert code == 2 and "invalid choice" in err
    code, _, _ = cli("--version")
    assert code == 0


def test_internal_errors_are_reported_without_traceback(example: Path, cli, monkeypatch) -> None:
    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr("betcycle.commands.render_cmd.run", boom)
    code, _, err = cli("--root", example, "render")
    assert code == 3
    assert err.startswith("betcycle: internal error (this is a bug")
    assert "Traceback" not in err
    code, _, err = cli("--debug", "--root", example, "render")
    assert code == 3 and "Traceback" in err


def test_policy_list_and_test(example: Path, cli) -> None:
    code, out, _ = cli("--root", example, "policy", "list")
    assert code == 0 and "FX001" in out and out.rstrip().endswith("2 policies")
    code, out, _ = cli("--root", example, "policy", "test")
    assert code == 0, out


def test_latest_tag_is_a_policy_finding_on_the_values_line(example: Path, cli) -> None:
    env_app = example / "environments/prod/apps/hello.yaml"
    env_app.write_text(env_app.read_text().replace('tag: "1.3.2"', "tag: latest"))
    assert cli("--root", example, "render")[0] == 0
    code, out, _ = cli("--root", example, "validate", "--format", "json")
    assert code == 1
    hits = [f for f in json.loads(out)["findings"] if f["rule"] == "policy/FX001"]
    assert hits and hits[0]["source"] == "environments/prod/apps/hello.yaml"
    assert hits[0]["line"] == 3


def test_find_root_walks_up(example: Path) -> None:
    deep = example / "environments/prod/apps"
    assert find_root(deep) == example


def test_console_script_smoke(example: Path) -> None:
    exe = Path(sys.executable).with_name("betcycle")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "betcycle"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.run(
        [*cmd, "render", "--check"], cwd=example, capture_output=True, text=True, check=False, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("render is up to date")
