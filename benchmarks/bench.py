"""Benchmarks (`nox -s bench`): BetCycle side by side with `kubectl kustomize`. Numbers are printed, never
asserted (tests/test_bench.py only checks that the bench runs and what its JSON holds).

A synthetic monorepo is generated in a temporary folder: N apps (`--apps`, default 300; several sizes may be
given), each a copy of the seed app (apps/hello) with a few differences (an env var, replicas), in every
environment of the example (dev, staging, prod). Each step is one whole `python -m betcycle ...` process
(start-up included), timed from spawn to exit, with the peak RSS of its process tree (sampled every 20 ms,
summed over the process and its workers) and the main process's ru_maxrss:

1. cold render (empty cache, no manifests)          5. diff --format markdown after that change
2. validate the rendered tree (--no-cache)          6. validate the same resources dumped by PyYAML (path mode)
3. render with nothing changed (warm cache)         7. kubectl kustomize, one build per (env, app), CPUs at once
4. render after a one-app change (prod env var)

Usage: python benchmarks/bench.py [--apps 300 --apps 1000 | --apps 300,1000] [--repeat K] [--json FILE]
[--no-kustomize] [--jobs N] [--extras]. Targets are printed with pass/fail; they never fail the process.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kustomize
import procmon
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"  # the betcycle the bench measures: this checkout's, whatever the venv has installed
if (SRC / "betcycle").is_dir():
    sys.path.insert(0, str(SRC))
SEED_APP = "hello"  # the app whose files every generated app copies (any app of the service chart would do)
MIB = 1024 * 1024
GIB = 1024 * MIB
# Markers written once into the seed files with a round-trip edit, then replaced per generated app.
INDEX_MARK, PROD_MARK, STAGING_MARK = "bench-index-marker", 987651, 987652


# --- the synthetic repository -------------------------------------------------------------------------------


def copy_example(dest: Path, seed: str = SEED_APP, *, with_seed: bool = True) -> None:
    """The repository settings, charts, policies and environments (+ the seed app when `with_seed`).

    Only the seed app is taken, so the bench runs whatever else the working tree holds (new apps, work in
    progress in other apps' files).
    """
    if not (ROOT / f"apps/{seed}/app.yaml").is_file():
        raise SystemExit(f"bench: apps/{seed}/app.yaml is missing; the bench copies that app N times")
    parts = ["betcycle.yaml", "charts", "policies", "schemas", "crds.lock.yaml"]
    parts += [p.relative_to(ROOT).as_posix() for p in sorted(ROOT.glob("environments/*/environment.yaml"))]
    if with_seed:
        parts += [f"apps/{seed}/app.yaml"]
        parts += [
            p.relative_to(ROOT).as_posix() for p in sorted(ROOT.glob(f"environments/*/apps/{seed}.yaml"))
        ]
    for part in parts:
        src = ROOT / part
        target = dest / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, target)


def _set_value(text: str, keys: list[str], value: Any) -> str:
    """`text` with keys[0].keys[1]... = value, by a round-trip edit (comments and layout kept)."""
    from betcycle.model import yamledit

    return yamledit.set_value(text, "<bench>", keys, value)[0]


def _set_env_var(path: Path, name: str, value: str) -> None:
    """Add `env.NAME: value` to a values file with a round-trip edit (comments and layout kept)."""
    path.write_text(_set_value(path.read_text(), ["env", name], value))


def generate(dest: Path, apps: int, seed: str = SEED_APP) -> list[str]:
    """N apps named svc000... in every environment of the example; returns the environments.

    Each app differs a little from the others (a BENCH_INDEX env var everywhere, replicas in staging and prod),
    so no two rendered resources are byte-identical copies. The seed app itself is not deployed.
    """
    copy_example(dest, seed, with_seed=False)
    app = _set_value(
        (ROOT / f"apps/{seed}/app.yaml").read_text(), ["values", "env", "BENCH_INDEX"], INDEX_MARK
    )
    envs = {}
    for path in sorted(ROOT.glob(f"environments/*/apps/{seed}.yaml")):
        text = path.read_text()
        mark = {"prod": PROD_MARK, "staging": STAGING_MARK}.get(path.parents[1].name)
        envs[path.parents[1].name] = _set_value(text, ["replicas"], mark) if mark else text
    for i in range(apps):
        name = f"svc{i:03d}"
        (dest / f"apps/{name}").mkdir(parents=True)
        text = app.replace(f"name: {seed}", f"name: {name}").replace(f"/{seed}\n", f"/{name}\n")
        (dest / f"apps/{name}/app.yaml").write_text(text.replace(INDEX_MARK, f"index-{i}"))
        for env, text in envs.items():
            text = text.replace(str(PROD_MARK), str(2 + i % 3)).replace(str(STAGING_MARK), str(2 + i % 2))
            target = dest / f"environments/{env}/apps/{name}.yaml"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    return sorted(envs)


def _git(repo: Path, *args: str) -> None:
    git = shutil.which("git") or "git"
    identity = [
        "-c",
        "user.name=bench",
        "-c",
        "user.email=bench@example.invalid",
        "-c",
        "commit.gpgsign=false",
    ]
    subprocess.run([git, *identity, *args], cwd=repo, check=True, capture_output=True)


def rendered_files(repo: Path) -> list[Path]:
    return sorted(repo.glob("environments/*/manifests/**/*.yaml"))


def dump_tree(repo: Path, dest: Path, envs: list[str]) -> int:
    """Every rendered app resource as another tool would write it: PyYAML's safe dumper, default settings.

    One multi-document file per (environment, app), BetCycle's header gone, and one namespace per environment
    (bench-<env>) so the three environments fit in one folder without clashing names. The Argo CD objects are
    left out (they belong to BetCycle's layout, and kustomize builds none either). Returns the resource count.
    """
    count = 0
    for env in envs:
        manifests = repo / "environments" / env / "manifests"
        for folder in sorted(p for p in manifests.iterdir() if p.is_dir() and p.name != "argocd"):
            docs = kustomize.load_app(folder)
            for doc in docs:
                if "namespace" in doc.get("metadata", {}):
                    doc["metadata"]["namespace"] = f"bench-{env}"
            target = dest / env / f"{folder.name}.yaml"
            target.parent.mkdir(parents=True, exist_ok=True)
            # yaml.safe_dump_all's defaults, with the C emitter when PyYAML has it (same output, faster)
            with target.open("w", encoding="utf-8") as handle:
                yaml.dump_all(docs, handle, Dumper=kustomize.Dumper)
            count += len(docs)
    return count


# --- running betcycle ---------------------------------------------------------------------------------------


@dataclass
class Runner:
    """Runs `python -m betcycle` in one repository with the bench's environment, dropping unknown flags."""

    env: dict[str, str]
    flags: dict[str, set[str]] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)

    def supports(self, command: str, flag: str) -> bool:
        if command not in self.flags:
            proc = subprocess.run(
                [sys.executable, "-m", "betcycle", command, "--help"],
                capture_output=True,
                text=True,
                env=self.env,
                check=False,
            )
            self.flags[command] = set(re.findall(r"(--[a-z][a-z0-9-]*)", proc.stdout))
        return flag in self.flags[command]

    def opt(self, command: str, flag: str, *value: str) -> list[str]:
        """[flag, *value] when `betcycle <command>` knows the flag, else [] (remembered for the report)."""
        if self.supports(command, flag):
            return [flag, *value]
        self.dropped.add(f"{command} {flag}")
        return []

    def run(self, *args: str, cwd: Path) -> procmon.Measured:
        return procmon.run([sys.executable, "-m", "betcycle", *args], cwd=cwd, env=self.env)


def _check(measured: procmon.Measured, what: str, codes: tuple[int, ...] = (0,)) -> procmon.Measured:
    if measured.returncode not in codes:  # a benchmark of a failing command measures the wrong thing
        print(measured.stdout[-3000:], measured.stderr[-3000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"bench: {what} exited {measured.returncode}")
    return measured


def best(runs: list[procmon.Measured]) -> procmon.Measured:
    """The fastest run; its peak memory is the highest of all runs (memory is not best-of)."""
    fastest = min(runs, key=lambda m: m.seconds)
    return procmon.Measured(
        seconds=fastest.seconds,
        peak_rss=max(m.peak_rss for m in runs),
        maxrss=max(m.maxrss for m in runs),
        cpu=fastest.cpu,
        returncode=fastest.returncode,
        stdout=fastest.stdout,
        stderr=fastest.stderr,
        processes=max(m.processes for m in runs),
    )


def _summary(measured: procmon.Measured, what: str) -> dict[str, Any]:
    try:
        summary: dict[str, Any] = json.loads(measured.stdout)["summary"]
    except (ValueError, KeyError) as error:
        raise SystemExit(f"bench: {what}: no JSON summary ({error}): {measured.stderr[-500:]}") from None
    if summary.get("errors"):
        findings = json.loads(measured.stdout).get("findings", [])
        for finding in [f for f in findings if f.get("severity") == "error"][:10]:
            print(
                f"  {finding.get('resource')}: {finding.get('rule')}: {finding.get('message')}",
                file=sys.stderr,
            )
        raise SystemExit(f"bench: {what} reported {summary['errors']} error(s)")
    return summary


def byte_compile(env: dict[str, str]) -> str:
    """Compile betcycle and the modules it imports, so PYTHONDONTWRITEBYTECODE=1 doesn't time compilation."""
    script = (
        "import compileall, importlib, importlib.util, os, pkgutil, py_compile, sys\n"
        "import betcycle\n"
        "pkg = os.path.dirname(betcycle.__file__)\n"
        "compileall.compile_dir(pkg, quiet=1)\n"
        "for m in pkgutil.walk_packages(betcycle.__path__, 'betcycle.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        try: importlib.import_module(m.name)\n"
        "        except Exception: pass\n"
        "n = 0\n"
        "for mod in list(sys.modules.values()):\n"
        "    f = getattr(mod, '__file__', None) or ''\n"
        "    if not f.endswith('.py') or f.startswith(pkg):\n"
        "        continue\n"
        "    pyc = importlib.util.cache_from_source(f)\n"
        "    if os.path.exists(pyc) and os.path.getmtime(pyc) >= os.path.getmtime(f):\n"
        "        continue\n"
        "    try: py_compile.compile(f, doraise=True); n += 1\n"
        "    except (OSError, py_compile.PyCompileError): pass\n"
        "print(pkg, n)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode:
        return f"byte-compiling failed ({proc.stderr.strip()[-200:]}); timings include compilation"
    pkg, _, deps = proc.stdout.strip().rpartition(" ")
    return f"byte-compiled {pkg} before timing, and {deps} modules it imports that had no up-to-date bytecode"


# --- one size -----------------------------------------------------------------------------------------------


def _step(measured: procmon.Measured, what: str, runs: int, resources: int | None = None) -> dict[str, Any]:
    step: dict[str, Any] = {
        "what": what,
        "runs": runs,
        "seconds": round(measured.seconds, 4),
        "peak_rss_mib": round(measured.peak_rss / MIB, 1),
        "maxrss_mib": round(measured.maxrss / MIB, 1),
        "cpu_seconds": round(measured.cpu, 3),
        "processes": measured.processes,
        "resources": resources,
        "resources_per_second": round(resources / measured.seconds) if resources else None,
    }
    return step


def bench_size(apps: int, args: argparse.Namespace, tmp: Path, runner: Runner) -> dict[str, Any]:
    repo = tmp / f"repo-{apps}"
    repo.mkdir()
    envs = generate(repo, apps)
    cache = Path(runner.env["BETCYCLE_CACHE_DIR"])
    repeat = args.repeat
    jobs = runner.opt("render", "--jobs", str(args.jobs)) if args.jobs else []
    vjobs = runner.opt("validate", "--jobs", str(args.jobs)) if args.jobs else []
    no_cache = runner.opt("validate", "--no-cache")
    validate_name = "validate --no-cache" if no_cache else "validate (this betcycle has no --no-cache)"
    steps: dict[str, dict[str, Any]] = {}

    trash = tmp / f"trash-{apps}"

    def reset() -> None:  # truly cold: no cache, no manifests
        # moved aside, not deleted: on a file system without a journal (ext4 as some VMs mount it), files
        # created within about 30 s of deleting thousands each scan past the freed inodes (ext4's
        # recently_deleted check), which made a cold render up to twice as slow; the trash goes with tmp
        for folder in [cache, *repo.glob("environments/*/manifests")]:
            if folder.exists():
                trash.mkdir(exist_ok=True)
                os.replace(folder, trash / f"{len(list(trash.iterdir()))}")

    def cold() -> procmon.Measured:
        reset()
        return _check(runner.run("render", *jobs, cwd=repo), "cold render")

    m = best([cold() for _ in range(repeat)])
    resources = len(rendered_files(repo))
    app_resources = resources - len(list(repo.glob("environments/*/manifests/argocd/*.yaml")))
    steps["cold_render"] = _step(m, "render, empty cache and no manifests", repeat, resources)

    validate = ["validate", *no_cache, *vjobs, "--format", "json"]
    runs = [_check(runner.run(*validate, cwd=repo), "validate", (0, 1)) for _ in range(repeat)]
    checked = _summary(runs[0], "validate").get("checked", resources)
    steps["validate"] = _step(best(runs), f"{validate_name} of the rendered tree", repeat, checked)

    runs = [_check(runner.run("render", *jobs, cwd=repo), "render") for _ in range(repeat)]
    steps["render_no_change"] = _step(
        best(runs), "render again, nothing changed (warm cache)", repeat, resources
    )

    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "bench")
    changed = repo / "environments/prod/apps/svc000.yaml"
    original = changed.read_text()
    runs = []
    for k in range(repeat):  # a different value each time, so every run is a one-app change
        changed.write_text(original)
        _set_env_var(changed, "BENCH_CHANGE", str(k + 1))
        runs.append(_check(runner.run("render", *jobs, cwd=repo), "render after a change"))
    steps["render_one_change"] = _step(
        best(runs), "render after one app's prod values changed (an env var)", repeat, resources
    )
    runs = [_check(runner.run("diff", "--format", "markdown", cwd=repo), "diff") for _ in range(repeat)]
    steps["diff"] = _step(best(runs), "diff --format markdown of that change against the commit", repeat)
    if args.extras:
        runs = [_check(runner.run("diff", "--full", "--format", "markdown", cwd=repo), "diff --full")]
        steps["diff_full"] = _step(best(runs), "diff --full (renders every app) of the same change", 1)

    dumped = tmp / f"dumped-{apps}"
    dumped_count = dump_tree(repo, dumped, envs)
    validate = ["validate", *no_cache, *vjobs, "--format", "json", str(dumped)]
    runs = [
        _check(runner.run(*validate, cwd=repo), "validate of the dumped tree", (0, 1)) for _ in range(repeat)
    ]
    summary = _summary(runs[0], "validate of the dumped tree")
    steps["validate_dumped"] = _step(
        best(runs),
        f"{validate_name} DIR: app resources re-dumped by PyYAML, bench-<env> namespaces, no Argo CD objects",
        repeat,
        summary.get("checked", dumped_count),
    )
    steps["validate_dumped"]["warnings"] = summary.get("warnings", 0)
    steps["validate_dumped"]["what"] += f" ({summary.get('warnings', 0)} warnings, 0 errors)"

    result: dict[str, Any] = {
        "apps": apps,
        "environments": envs,
        "pairs": apps * len(envs),
        "resources": resources,
        "app_resources": app_resources,
        "steps": steps,
        "kustomize": None,
    }
    kubectl = shutil.which("kubectl")
    if kubectl and not args.no_kustomize:
        layout = tmp / f"kustomize-{apps}"
        overlays, expected = kustomize.build_layout(repo, layout, envs)
        workers = os.cpu_count() or 1
        kruns = [kustomize.run_builds(kubectl, layout, overlays, workers) for _ in range(repeat)]
        fastest = min(kruns, key=lambda r: r.seconds)
        if fastest.failures:
            print("\n".join(fastest.failures[:5]), file=sys.stderr)
        result["kustomize"] = {
            "what": f"kubectl kustomize overlays/<env>/<app>, {fastest.builds} builds, {workers} at a time",
            "runs": repeat,
            "seconds": round(fastest.seconds, 4),
            "peak_rss_mib": round(max(r.peak_rss for r in kruns) / MIB, 1),
            "maxrss_mib": round(max(r.maxrss for r in kruns) / MIB, 1),
            "cpu_seconds": round(fastest.cpu, 3),
            "builds": fastest.builds,
            "workers": workers,
            "resources": fastest.resources,
            "betcycle_resources": expected,
            "resources_per_second": round(fastest.resources / fastest.seconds) if fastest.seconds else None,
            "failures": len(fastest.failures),
        }
    result["ratios"], result["targets"] = _targets(result)
    return result


def _targets(result: dict[str, Any]) -> tuple[dict[str, float | None], list[dict[str, Any]]]:
    steps = result["steps"]
    render_validate = steps["cold_render"]["seconds"] + steps["validate"]["seconds"]
    change = steps["render_one_change"]["seconds"] + steps["diff"]["seconds"]
    peak = max(s["peak_rss_mib"] for s in steps.values()) / 1024
    ratios: dict[str, float | None] = {
        "cold_render_plus_validate_seconds": round(render_validate, 4),
        "one_change_render_plus_diff_seconds": round(change, 4),
        "kustomize_over_render_validate": None,
        "kustomize_cpu_over_render_validate_cpu": None,
        "peak_rss_gib": round(peak, 3),
    }
    targets = []

    def target(name: str, goal: str, value: float | None, ok: bool | None) -> None:
        targets.append({"name": name, "target": goal, "value": value, "ok": ok})

    k = result["kustomize"]
    if k:
        ratio = k["seconds"] / render_validate
        ratios["kustomize_over_render_validate"] = round(ratio, 2)
        cpu = steps["cold_render"]["cpu_seconds"] + steps["validate"]["cpu_seconds"]
        ratios["kustomize_cpu_over_render_validate_cpu"] = round(k["cpu_seconds"] / cpu, 2) if cpu else None
        target("kustomize_ratio", ">= 20x (aim 50x)", round(ratio, 2), ratio >= 20)
        close = abs(k["resources"] - k["betcycle_resources"]) <= 0.02 * max(k["betcycle_resources"], 1)
        target("kustomize_resources_match", "within 2%", k["resources"], close and not k["failures"])
    if result["apps"] <= 300:  # the issue sets these two for 300 apps; a bigger tree just takes longer
        target(
            "render_no_change",
            "<= 1 s",
            steps["render_no_change"]["seconds"],
            steps["render_no_change"]["seconds"] <= 1,
        )
        target("one_change_render_plus_diff", "<= 2 s", round(change, 4), change <= 2)
    for name in ("validate", "validate_dumped"):
        rate = steps[name]["resources_per_second"]
        target(f"{name}_rate", ">= 10,000 resources/s", rate, rate is not None and rate >= 10_000)
    if result["apps"] == 1000:
        target(
            "render_validate_1000", "<= 15 s at 1,000 apps", round(render_validate, 4), render_validate <= 15
        )
        target("peak_memory_1000", "<= 1 GiB at 1,000 apps", round(peak, 3), peak <= 1)
    return ratios, targets


# --- output -------------------------------------------------------------------------------------------------

LABELS = {
    "startup": "0. start-up (betcycle --version)",
    "cold_render": "1. render, cold",
    "validate": "2. validate rendered tree",
    "render_no_change": "3. render, no change",
    "render_one_change": "4. render, one-app change",
    "diff": "5. diff --format markdown",
    "diff_full": "   diff --full (extra)",
    "validate_dumped": "6. validate PyYAML-dumped tree",
    "cold_render_plus_validate": "   1 + 2: cold render + validate",
    "kustomize": "7. kubectl kustomize",
}
TARGET_ROWS = {
    "render_no_change": "render_no_change",
    "validate": "validate_rate",
    "validate_dumped": "validate_dumped_rate",
}


def _fmt(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def _ok(ok: bool | None) -> str:
    return "-" if ok is None else ("pass" if ok else "FAIL")


def print_size(result: dict[str, Any]) -> None:
    targets = {t["name"]: t for t in result["targets"]}
    ratios = result["ratios"]
    k = result["kustomize"]
    print(
        f"\n{result['apps']} apps x {len(result['environments'])} environments ({result['pairs']} pairs): "
        f"{result['resources']:,} rendered resources ({result['app_resources']:,} without Argo CD objects)"
    )
    columns = ("seconds", "CPU s", "peak RSS MiB", "main MiB", "resources/s")
    widths = [max(len(c), 7) for c in columns]
    header = f"{'step':<34} | " + " | ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))
    header += f" | {'target':<22} | ok?"
    print(header)
    print("-" * len(header))

    def row(label: str, values: dict[str, Any], target: str = "") -> None:
        t = targets.get(target)
        cells = [
            _fmt(values.get("seconds"), ".2f"),
            _fmt(values.get("cpu_seconds"), ".2f"),
            _fmt(values.get("peak_rss_mib"), ".0f"),
            _fmt(values.get("maxrss_mib"), ".0f"),
            _fmt(values.get("resources_per_second"), ","),
        ]
        goal, ok = (t["target"], _ok(t["ok"])) if t else ("", "")
        line = " | ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True))
        print(f"{label:<34} | {line} | {goal:<22} | {ok}")

    for name, step in result["steps"].items():
        row(LABELS.get(name, name), step, TARGET_ROWS.get(name, ""))
    row(
        "   1 + 2: cold render + validate",
        {"seconds": ratios["cold_render_plus_validate_seconds"]},
        "render_validate_1000",
    )
    row(
        "   4 + 5: change render + diff",
        {"seconds": ratios["one_change_render_plus_diff_seconds"]},
        "one_change_render_plus_diff",
    )
    row("   peak memory of steps 1-6", {"peak_rss_mib": ratios["peak_rss_gib"] * 1024}, "peak_memory_1000")
    if not k:
        print("7. kubectl kustomize: skipped (--no-kustomize, or kubectl not on PATH)")
        return
    row(f"7. kubectl kustomize x{k['builds']}", k, "kustomize_ratio")
    steps = result["steps"]
    cpu = steps["cold_render"]["cpu_seconds"] + steps["validate"]["cpu_seconds"]
    print(
        f"   ratio kustomize / (cold render + validate): wall {k['seconds']:.2f} / "
        f"{ratios['cold_render_plus_validate_seconds']:.2f} = {ratios['kustomize_over_render_validate']:.1f}x; "
        f"CPU {k['cpu_seconds']:.1f} / {cpu:.1f} = {k['cpu_seconds'] / cpu if cpu else 0:.1f}x"
    )
    m = targets["kustomize_resources_match"]
    print(
        f"   resources: kustomize {k['resources']:,}, betcycle {k['betcycle_resources']:,} "
        f"(same apps and environments, no Argo CD objects; {k['failures']} failed builds): {_ok(m['ok'])}"
    )


def print_legend(result: dict[str, Any]) -> None:
    repeat = result["steps"]["cold_render"]["runs"]
    print(
        f"\nseconds: wall time of the whole process, spawn to exit (start-up included), best of {repeat}.\n"
        "CPU s: user + system seconds of the process and its workers (kustomize: all builds); steadier than\n"
        "  wall time on a busy machine.\n"
        f"peak RSS MiB: the process and its workers summed, sampled every {procmon.INTERVAL * 1000:.0f} ms, "
        "highest of the runs\n  (kustomize: the concurrent kubectl processes). main MiB: ru_maxrss from wait4, "
        "the largest single process.\n"
        "resources/s: the step's resources / seconds."
    )
    for name, step in result["steps"].items():
        runs = f" (best of {step['runs']})" if step["runs"] != repeat else ""
        print(f"   {LABELS.get(name, name).strip():<34} {step['what']}{runs}")
    if result["kustomize"]:
        print(f"   {'7. kubectl kustomize':<34} {result['kustomize']['what']}")


def print_scaling(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Time ratios between consecutive sizes, wall and CPU (CPU moves less with the machine's other load)."""
    scaling = []
    for small, large in itertools.pairwise(results):
        app_ratio = large["apps"] / small["apps"]
        rows: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
            name: (small["steps"][name], step)
            for name, step in large["steps"].items()
            if name != "startup" and name in small["steps"]
        }
        if large["kustomize"] and small["kustomize"]:
            rows["kustomize"] = (small["kustomize"], large["kustomize"])
        wall = {n: _ratio(b["seconds"], a["seconds"]) for n, (a, b) in rows.items()}
        cpu = {n: _ratio(b["cpu_seconds"], a["cpu_seconds"]) for n, (a, b) in rows.items()}
        a, b = (r["steps"] for r in (small, large))
        wall["cold_render_plus_validate"] = _ratio(
            b["cold_render"]["seconds"] + b["validate"]["seconds"],
            a["cold_render"]["seconds"] + a["validate"]["seconds"],
        )
        cpu["cold_render_plus_validate"] = _ratio(
            b["cold_render"]["cpu_seconds"] + b["validate"]["cpu_seconds"],
            a["cold_render"]["cpu_seconds"] + a["validate"]["cpu_seconds"],
        )
        scaling.append(
            {
                "from": small["apps"],
                "to": large["apps"],
                "app_ratio": round(app_ratio, 2),
                "time_ratio": wall,
                "cpu_ratio": cpu,
            }
        )
        print(
            f"\nscaling {small['apps']:,} -> {large['apps']:,} apps (linear = {app_ratio:.2f}x):   wall    CPU"
        )
        for name, ratio in wall.items():
            print(f"   {LABELS.get(name, name):<34} {_fmt(ratio, '6.2f')}x {_fmt(cpu.get(name), '6.2f')}x")
    return scaling


def _ratio(large: float, small: float) -> float | None:
    return round(large / small, 2) if small else None


def machine(env: dict[str, str]) -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    kubectl = shutil.which("kubectl")
    version = None
    if kubectl:
        proc = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True, check=False)
        version = " / ".join(line.strip() for line in proc.stdout.splitlines() if line.strip()) or None
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kubectl": version,
        "pythondontwritebytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
        "loadavg_at_start": _loadavg(),
    }


def _loadavg() -> list[float] | None:
    """Other work on the machine skews every number (a shared 2-CPU box especially): the JSON records it."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


def _sizes(values: list[str]) -> list[int]:
    sizes = [int(v) for value in values for v in value.split(",") if v.strip()]
    if not sizes or min(sizes) < 1:
        raise SystemExit(
            "bench: --apps takes positive numbers, e.g. --apps 300 --apps 1000 or --apps 300,1000"
        )
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--apps", action="append", help="generated apps (x3 environments); repeatable or 300,1000"
    )
    parser.add_argument("--repeat", type=int, default=1, help="best of K runs for every step (default 1)")
    parser.add_argument("--json", type=Path, help="write every number to this file")
    parser.add_argument("--no-kustomize", action="store_true", help="skip step 7")
    parser.add_argument("--jobs", type=int, help="pass --jobs N to render and validate (when they have it)")
    parser.add_argument("--extras", action="store_true", help="also time diff --full (renders every app)")
    args = parser.parse_args(argv)
    sizes = _sizes(args.apps or ["300"])
    args.repeat = max(args.repeat, 1)
    with tempfile.TemporaryDirectory(prefix="betcycle-bench-") as name:
        tmp = Path(name)
        env = dict(os.environ)
        env["NO_COLOR"] = "1"
        if (SRC / "betcycle").is_dir():
            env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
        env["BETCYCLE_CACHE_DIR"] = str(tmp / "cache")
        # custom resources are validated against the repository's vendored CRD schemas, as in CI
        env["BETCYCLE_SCHEMA_CACHE"] = str(tmp / "schema-cache")
        runner = Runner(env)
        info = machine(env)
        compiled = byte_compile(env)
        print(
            f"{info['cpus']} CPUs ({info['cpu_model'] or 'unknown model'}), Python {info['python']}, "
            f"kubectl: {info['kubectl'] or 'not on PATH'}; load average {info['loadavg_at_start']}"
        )
        print(f"{compiled} (PYTHONDONTWRITEBYTECODE={'1' if info['pythondontwritebytecode'] else 'unset'})")
        example = tmp / "example"
        example.mkdir()
        copy_example(example)
        startup = best([_check(runner.run("--version", cwd=example), "--version") for _ in range(3)])
        results = []
        for apps in sizes:
            start = time.perf_counter()
            result = bench_size(apps, args, tmp, runner)
            result["steps"] = {
                "startup": _step(startup, "python -m betcycle --version", 3),
                **result["steps"],
            }
            results.append(result)
            print_size(result)
            result["loadavg_after"] = _loadavg()
            print(
                f"   (this size took {time.perf_counter() - start:.0f} s in all; load average {result['loadavg_after']})"
            )
        if results:
            print_legend(results[-1])
        if runner.dropped:
            print(f"\nflags this betcycle lacks, dropped: {', '.join(sorted(runner.dropped))}")
        scaling = print_scaling(results)
        if args.json:
            report = {
                "machine": info,
                "byte_compile": compiled,
                "repeat": args.repeat,
                "dropped_flags": sorted(runner.dropped),
                "sizes": results,
                "scaling": scaling,
            }
            args.json.write_text(json.dumps(report, indent=2) + "\n")
            print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
