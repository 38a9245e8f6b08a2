"""Benchmarks (run with `nox -s bench`): numbers are printed, never asserted in tests.

1. validate throughput: a generated repository of N apps x 3 environments is rendered once, then
   `betcycle validate` is run as a whole process (start-up included) and resources/second reported.
2. render + validate of the example repository (work after start-up), best of several runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED_APP = "hello"  # the app whose files every generated app copies (any app of the service chart would do)


def copy_example(dest: Path, seed: str = SEED_APP) -> None:
    """The repository settings, charts, policies and environments, with only the seed app deployed.

    Only the seed app is copied, so the bench runs whatever else the working tree holds (new apps, work in
    progress in other apps' files).
    """
    parts = ["betcycle.yaml", "charts", "policies", "schemas", "crds.lock.yaml", f"apps/{seed}/app.yaml"]
    parts += [p.relative_to(ROOT).as_posix() for p in sorted(ROOT.glob("environments/*/environment.yaml"))]
    parts += [p.relative_to(ROOT).as_posix() for p in sorted(ROOT.glob(f"environments/*/apps/{seed}.yaml"))]
    if not (ROOT / f"apps/{seed}/app.yaml").is_file():
        raise SystemExit(f"bench: apps/{seed}/app.yaml is missing; the bench copies that app N times")
    for part in parts:
        src = ROOT / part
        target = dest / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, target)


def generate(dest: Path, apps: int, seed: str = SEED_APP) -> None:
    copy_example(dest, seed)
    app = (dest / f"apps/{seed}/app.yaml").read_text()
    for i in range(apps):
        name = f"svc{i:03d}"
        (dest / f"apps/{name}").mkdir(parents=True)
        (dest / f"apps/{name}/app.yaml").write_text(
            app.replace(f"name: {seed}", f"name: {name}").replace(f"/{seed}\n", f"/{name}\n")
        )
        for env_app in sorted(dest.glob(f"environments/*/apps/{seed}.yaml")):
            env_app.with_name(f"{name}.yaml").write_text(env_app.read_text())


def betcycle(*args: str, cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "betcycle", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    return time.perf_counter() - start, proc


def _set_env_var(path: Path, name: str, value: str) -> None:
    """Add `env.NAME: value` to a values file with a round-trip edit (comments and layout kept)."""
    from betcycle.model import yamledit

    text, _ = yamledit.set_value(path.read_text(), path.name, ["env", name], value)
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apps", type=int, default=300, help="generated apps (x3 environments)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # custom resources are validated against the repository's vendored CRD schemas, as in CI
        os.environ["BETCYCLE_SCHEMA_CACHE"] = str(Path(tmp) / "schema-cache")
        repo = Path(tmp) / "repo"
        repo.mkdir()
        generate(repo, args.apps)
        seconds, proc = betcycle("render", cwd=repo)
        if proc.returncode:
            print(proc.stdout, proc.stderr)
            return 1
        count = sum(1 for _ in repo.glob("environments/*/manifests/**/*.yaml"))
        print(f"render of {args.apps + 1} apps x 3 envs ({count} resources): {seconds:.2f} s whole process")
        best = min(betcycle("validate", cwd=repo)[0] for _ in range(args.repeat))
        _, proc = betcycle("validate", "--format", "json", cwd=repo)
        if proc.returncode:  # a benchmark of a failing validation measures the wrong thing
            print(proc.stdout[-2000:], proc.stderr[-2000:])
            return 1
        print(
            f"validate (schemas + cross-resource + policies) of {count} rendered resources: {best:.2f} s "
            f"whole process -> {count / best:,.0f} resources/s (target >= 2,500/s per core)"
        )
        best = min(betcycle("validate", "--no-policies", cwd=repo)[0] for _ in range(args.repeat))
        print(f"validate without policies: {best:.2f} s -> {count / best:,.0f} resources/s")

        # a one-app change in a repository of N apps x 3 environments: diff renders only that app
        git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
        subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True)
        subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
        subprocess.run([*git, "commit", "-q", "-m", "bench"], cwd=repo, check=True)
        target = repo / "environments/prod/apps/svc000.yaml"
        # a change every chart accepts: one more environment variable for one app in prod
        _set_env_var(target, "BENCH_CHANGE", "1")
        seconds = min(betcycle("diff", "--format", "markdown", cwd=repo)[0] for _ in range(args.repeat))
        print(f"diff of a one-app change among {args.apps + 1} apps x 3 envs: {seconds:.2f} s whole process")
        seconds, _ = betcycle("diff", "--full", "--format", "markdown", cwd=repo)
        print(f"diff --full (renders every app) of the same change: {seconds:.2f} s")

        example = Path(tmp) / "example"
        example.mkdir()
        copy_example(example)
        startup = min(betcycle("--version", cwd=example)[0] for _ in range(args.repeat))
        full = min(
            betcycle("render", cwd=example)[0] + betcycle("validate", cwd=example)[0]
            for _ in range(args.repeat)
        )
        print(
            f"example repo: render + validate {full:.2f} s in two processes; "
            f"start-up (python + imports) {startup:.2f} s each -> work after start-up {full - 2 * startup:.2f} s"
        )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("NO_COLOR", "1")
    sys.exit(main())
