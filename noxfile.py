"""BetCycle's tasks. `nox` alone runs lint, test, render --check and validate (what CI runs).

Sessions reuse their virtualenvs and use uv when it is installed, so warm runs take seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "test", "render_check", "validate"]

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml("pyproject.toml")


def install(session: nox.Session, *groups: str) -> None:
    """The project (editable) plus dependency groups from pyproject.toml."""
    session.install("-e", ".")
    for group in groups:
        session.install(*nox.project.dependency_groups(PYPROJECT, group))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, mypy, yamllint and JSON Schema checks of the declarative files and workflows."""
    install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("yamllint", "--strict", ".")
    schemas = ROOT / "src/betcycle/data/schemas"
    checks = {
        "environment": sorted(ROOT.glob("environments/*/environment.yaml")),
        "app": sorted(ROOT.glob("apps/*/app.yaml")),
        "chart": sorted(ROOT.glob("charts/*/chart.yaml")),
        "repository": [ROOT / "betcycle.yaml"],
        "policy": sorted(p for p in ROOT.glob("policies/*.yaml") if p.name != "waivers.yaml"),
        "waivers": [ROOT / "policies/waivers.yaml"],
    }
    for name, files in checks.items():
        files = [f for f in files if f.exists()]
        if files and (schemas / f"{name}.schema.json").exists():
            session.run(
                "check-jsonschema", "--schemafile", str(schemas / f"{name}.schema.json"), *map(str, files)
            )
    workflows = sorted(ROOT.glob(".github/workflows/*.y*ml"))
    if workflows:
        session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, workflows))
    # the policies' own examples must behave as they say
    session.run("betcycle", "policy", "test")


@nox.session
def test(session: nox.Session) -> None:
    """pytest with a coverage report (fails under the threshold in pyproject.toml)."""
    install(session, "test")
    session.run(
        "pytest",
        "--cov",
        "--cov-report=term",
        "--cov-report=xml:build/coverage.xml",
        *session.posargs,
    )


@nox.session
def render(session: nox.Session) -> None:
    """Render environments/<env>/manifests (pass --env/--app/--check after --)."""
    install(session)
    session.run("betcycle", "render", *session.posargs)


@nox.session(name="render_check")
def render_check(session: nox.Session) -> None:
    """Fail when the committed manifests differ from a fresh render."""
    install(session)
    session.run("betcycle", "render", "--check", *session.posargs)


@nox.session
def validate(session: nox.Session) -> None:
    """Validate rendered manifests: Kubernetes and CRD schemas, cross-resource checks, policies.

    Set BETCYCLE_CRDS_DIR to a folder of CRDs to import first (offline CI). Otherwise fill the schema cache
    once with `nox -s schemas` (downloads the CRDs pinned in crds.lock.yaml); custom resources without a
    schema are reported as skipped.
    """
    install(session)
    crds = os.environ.get("BETCYCLE_CRDS_DIR")
    if crds:
        session.run("betcycle", "schemas", "import", crds, silent=True)
    session.run("betcycle", "validate", *session.posargs)


@nox.session
def diff(session: nox.Session) -> None:
    """Semantic diff against the merge base with origin/main (`-- --format markdown`, `-- --base REV`)."""
    install(session)
    session.run("betcycle", "diff", *session.posargs)


@nox.session
def promote(session: nox.Session) -> None:
    """Promote a release: `nox -s promote -- APP --from staging --to prod [--commit]`."""
    install(session)
    session.run("betcycle", "promote", *session.posargs)


@nox.session(name="set_image")
def set_image(session: nox.Session) -> None:
    """Set an image tag: `nox -s set_image -- APP --env ENV --tag TAG [--commit]`."""
    install(session)
    session.run("betcycle", "set-image", *session.posargs)


@nox.session
def rollback(session: nox.Session) -> None:
    """Roll back to the previous tag: `nox -s rollback -- APP --env ENV [--to TAG] [--commit]`."""
    install(session)
    session.run("betcycle", "rollback", *session.posargs)


@nox.session
def schemas(session: nox.Session) -> None:
    """Manage the CRD schema cache: `nox -s schemas -- import DIR` or `-- fetch`."""
    install(session)
    session.run("betcycle", "schemas", *(session.posargs or ["fetch"]))


@nox.session
def policy(session: nox.Session) -> None:
    """Policy catalogue and self-test: `nox -s policy -- list` or `-- test`."""
    install(session)
    session.run("betcycle", "policy", *(session.posargs or ["list"]))


@nox.session
def dev(session: nox.Session) -> None:
    """Run the hello service locally on $PORT (default 8080); Ctrl-C stops it."""
    session.run(
        "python",
        "-m",
        "hello",
        env={"PYTHONPATH": str(ROOT / "apps/hello/src"), "PORT": os.environ.get("PORT", "8080")},
        external=True,
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: validation throughput on thousands of resources, render time of the example repo."""
    install(session)
    session.run("python", "benchmarks/bench.py", *session.posargs)
