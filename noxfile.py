"""BetCycle's tasks. `nox` alone runs lint, test, app_tests, render --check, validate and security (what CI runs).

Sessions reuse their virtualenvs and use uv when it is installed, so warm runs take seconds.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "test", "app_tests", "render_check", "validate", "security"]

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml("pyproject.toml")


def install(session: nox.Session, *groups: str) -> None:
    """The project (editable) plus dependency groups from pyproject.toml."""
    session.install("-e", ".")
    for group in groups:
        session.install(*nox.project.dependency_groups(PYPROJECT, group))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, mypy, yamllint, JSON Schema checks of the declarative files and workflows, terraform fmt."""
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
        "platform": sorted(ROOT.glob("environments/*/platform.yaml")),
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
    # `terraform fmt` needs no providers and no network; `terraform validate` does, so it runs only in
    # .github/workflows/terraform.yml (docs/infrastructure.md).
    import shutil

    if shutil.which("terraform"):
        session.run("terraform", "fmt", "-check", "-diff", "-recursive", "terraform/", external=True)
    else:
        session.warn("terraform is not on PATH: skipped `terraform fmt -check -recursive terraform/`")


@nox.session
def test(session: nox.Session) -> None:
    """The toolkit's tests (tests/) with a coverage report (fails under the threshold in pyproject.toml)."""
    install(session, "test")
    session.run(
        "pytest",
        "--cov",
        "--cov-report=term",
        "--cov-report=xml:build/coverage.xml",
        *session.posargs,
    )


@nox.session(name="app_tests")
def app_tests(session: nox.Session) -> None:
    """Each app's own tests (apps/NAME/tests), one app at a time: `-- [NAME…] [pytest options]`."""
    import re

    # Leading names pick the apps; from the first option on, everything goes to pytest (`-- hello -x -k slow`).
    first_option = next((i for i, a in enumerate(session.posargs) if a.startswith("-")), len(session.posargs))
    names, pytest_args = session.posargs[:first_option], session.posargs[first_option:]
    with_tests = sorted(p.parent.name for p in ROOT.glob("apps/*/tests") if p.is_dir())
    if unknown := sorted(set(names) - set(with_tests)):
        session.error(f"no apps/NAME/tests folder for: {', '.join(unknown)} (apps with tests: {with_tests})")
    names = names or with_tests
    if not names:
        session.skip("no app has a tests/ folder")
    # The apps need no betcycle, only the test runner: the pins of pytest and hypothesis in the test group.
    tools = [
        r
        for r in nox.project.dependency_groups(PYPROJECT, "test")
        if isinstance(r, str) and re.split(r"[\s=<>!~;\[]", r, maxsplit=1)[0] in ("pytest", "hypothesis")
    ]
    session.install(*tools)
    failed: list[str] = []
    for name in names:
        app = ROOT / "apps" / name
        # In isolation: the app's own src/ on the path and the app as pytest's rootdir, no toolkit conftest and
        # no coverage threshold. Strictness (warnings are errors, strict markers) comes from the nearest
        # pytest configuration: the app's own, or else the repository's pyproject.toml.
        session.log(f"apps/{name}: tests")
        try:
            session.run(
                "python", "-m", "pytest", f"--rootdir={app}", str(app / "tests"), *pytest_args,
                env={"PYTHONPATH": str(app / "src")},
            )  # fmt: skip
        except nox.command.CommandFailed:
            failed.append(name)
    if failed:
        session.error(f"tests failed for: {', '.join(failed)}")


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
    """Validate rendered manifests, strictly and offline: Kubernetes and CRD schemas, cross-resource, policies.

    Custom resources are checked against the vendored schemas in schemas/crds (first checked against
    crds.lock.yaml), so this needs no network and gives CI's result; one without a schema is an error.
    """
    install(session)
    session.run("betcycle", "schemas", "check")
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


@nox.session(name="bootstrap_state")
def bootstrap_state(session: nox.Session) -> None:
    """Create Terraform's state bucket and lock table: `nox -s bootstrap_state -- --env ENV` (docs/aws.md)."""
    install(session)
    session.run("betcycle", "state", "bootstrap", *session.posargs)


@nox.session
def registry(session: nox.Session) -> None:
    """ECR: `nox -s registry` (ensure, the default) or `nox -s registry -- gate APP --tag TAG`."""
    install(session)
    session.run("betcycle", "registry", *(session.posargs or ["ensure"]))


@nox.session
def budgets(session: nox.Session) -> None:
    """Keep each environment's AWS Budget: `nox -s budgets [-- --profile P]` (docs/aws.md)."""
    install(session)
    session.run("betcycle", "budgets", "ensure", *session.posargs)


@nox.session
def schemas(session: nox.Session) -> None:
    """Vendored CRD schemas: refresh (`fetch`, the default; online), `-- check`, `-- import --vendor DIR`."""
    install(session)
    session.run("betcycle", "schemas", *(session.posargs or ["fetch"]))


@nox.session
def policy(session: nox.Session) -> None:
    """Policy catalogue and self-test: `nox -s policy -- list` or `-- test`."""
    install(session)
    session.run("betcycle", "policy", *(session.posargs or ["list"]))


@nox.session
def dev(session: nox.Session) -> None:
    """Run a service locally: `nox -s dev [-- NAME]` (hello by default), on $PORT or its own port; Ctrl-C stops it."""
    # The services that can run: apps/<name>/src/<package>/__main__.py, the layout the service template stamps.
    runnable = {
        main.parents[2].name: main.parent.name
        for main in ROOT.glob("apps/*/src/*/__main__.py")
        if main.parent.name == main.parents[2].name.replace("-", "_")
    }
    if len(session.posargs) > 1:
        session.error("usage: nox -s dev [-- NAME]  (PORT=9000 nox -s dev -- NAME for another port)")
    name = session.posargs[0] if session.posargs else "hello"
    if name not in runnable:
        known = ", ".join(sorted(runnable)) or "none"
        session.error(f"no service '{name}' to run (apps/{name}/src/<package>/__main__.py); known: {known}")
    # PORT, when set, reaches the service with the rest of the environment; unset, it uses the port it was
    # stamped with (8080 unless `--data port=…` said otherwise).
    session.run(
        "python", "-m", runnable[name], env={"PYTHONPATH": str(ROOT / "apps" / name / "src")}, external=True
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: render, validate and diff time and memory on a generated monorepo, vs kustomize."""
    install(session)
    session.run("python", "benchmarks/bench.py", *session.posargs)


@nox.session
def security(session: nox.Session) -> None:
    """Scanners (docs/security.md): bandit rules, hadolint, zizmor, detect-secrets, checkov, pip-audit (online)."""
    import re
    import shutil
    import tempfile
    import urllib.request

    # The scanners only, without betcycle: checkov pins an older boto3 than the package (pyproject.toml).
    session.install(*nox.project.dependency_groups(PYPROJECT, "security"))
    session.run("ruff", "check", "--select", "S", "src", "apps", "templates", "benchmarks", "bootstrap.py")
    with tempfile.TemporaryDirectory(prefix="betcycle-security-") as tmp:
        # The service template's Dockerfile, rendered with sample answers (hadolint cannot parse `{{ }}`).
        template = ROOT / "templates/service/apps/{{ name }}/Dockerfile.jinja"
        rendered = Path(tmp, "Dockerfile")
        answers = {"{{ name }}": "example", "{{ module }}": "example", "{{ port }}": "8080"}
        text = template.read_text(encoding="utf-8")
        for placeholder, answer in answers.items():
            text = text.replace(placeholder, answer)
        if "{{" in text or "{%" in text:
            session.error(f"{template.relative_to(ROOT)}: a Jinja expression the security session can't fill")
        rendered.write_text(text, encoding="utf-8")
        dockerfiles = [*sorted(ROOT.glob("apps/*/Dockerfile")), ROOT / ".devcontainer/Dockerfile", rendered]
        session.run("hadolint", *map(str, dockerfiles))
        # hadolint accepts `curl … | sh` once pipefail is set; a downloaded script run unchecked is refused.
        piped = re.compile(r"\b(curl|wget)\b[^|\n]*\|\s*(sudo\s+)?(ba|z|da)?sh\b")
        for dockerfile in dockerfiles:
            for number, line in enumerate(dockerfile.read_text(encoding="utf-8").splitlines(), 1):
                if piped.search(line):
                    session.error(
                        f"{dockerfile}:{number}: a download piped to a shell; fetch, verify, then run"
                    )
        session.run("zizmor", "--offline", ".github/workflows")
        # The hook fails (1) on a secret the baseline doesn't list. It gets a copy, so that line moves don't
        # rewrite the committed .secrets.baseline; 3 means only that it updated the copy's line numbers.
        baseline = Path(tmp, "baseline.json")
        shutil.copyfile(ROOT / ".secrets.baseline", baseline)
        tracked = [f for f in _git(session, "ls-files", "-z").split("\0") if f and f != ".secrets.baseline"]
        session.run(
            "detect-secrets-hook",
            "--baseline",
            str(baseline),
            *tracked,
            success_codes=[0, 3],
        )
    manifests = [f"--directory={d.relative_to(ROOT)}" for d in sorted(ROOT.glob("environments/*/manifests"))]
    terraform = ["--directory=terraform"] if (ROOT / "terraform").is_dir() else []
    session.run(
        "checkov", "--config-file", ".checkov.yaml", "--framework", "terraform", "kubernetes",
        *terraform, *manifests, env={"BC_SKIP_MAPPING": "TRUE"},
    )  # fmt: skip
    # pip-audit asks PyPI's JSON API about each pinned version: offline, say so and pass (docs/security.md).
    try:
        urllib.request.urlopen("https://pypi.org/pypi/pip/json", timeout=5).close()
    except OSError as error:
        session.warn(f"pip-audit SKIPPED: PyPI is not reachable ({error}); the dependency audit did not run")
        return
    requirements = Path(session.create_tmp(), "requirements.txt")
    pins = list(PYPROJECT["project"]["dependencies"])
    for group in ("bootstrap", "test", "lint", "templates"):
        pins += [r for r in nox.project.dependency_groups(PYPROJECT, group) if isinstance(r, str)]
    requirements.write_text("\n".join(sorted(set(pins))) + "\n", encoding="utf-8")
    # Every pin of the package and of the groups CI installs, with what they pull in (pip-audit resolves).
    session.run("pip-audit", "--requirement", str(requirements), "--progress-spinner=off")


# --- Self-service: Copier templates (docs/new-service.md, docs/templates.md) ---------------------------------
# The service template is the root copier.yml rendering templates/service/; the environment template is
# templates/environment/. Copier reads the template from this repository, so these sessions need a git checkout.

# The rule for the template's commit, and the template's files (a script of its own, so that plain Copier
# commands and the tests use the same rule).
TEMPLATE_REF = ROOT / "templates/scripts/template_ref.py"
# Copier's CLI, printing a refused answer as one line instead of a traceback (the file says why).
COPIER_CLI = ROOT / "templates/scripts/copier_cli.py"


def _git(session: nox.Session, *args: str, repo: Path = ROOT) -> str:
    """The output of a git command in `repo`, as a value (not for display)."""
    return str(session.run("git", "-C", str(repo), *args, external=True, silent=True)).strip()


def _template_ref() -> ModuleType:
    """templates/scripts/template_ref.py as a module (it is not a package: loaded from its path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("template_ref", TEMPLATE_REF)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _template_commit(session: nox.Session) -> str:
    """The commit the service template is taken from, and that stamped and updated services record as `_commit`.

    The last commit that changed the template among those already on main (at or before the merge base with
    origin/main, else HEAD), so that `_commit` survives a squash merge and stays put until the template
    changes: templates/scripts/template_ref.py has the rule and why, docs/templates.md the user's side.
    """
    ref = _template_ref()
    try:
        commit, warning = ref.template_commit(ROOT)
    except ref.RefError as error:
        session.error(str(error))
    if warning:
        session.warn(warning)
    return str(commit)


def _copier(session: nox.Session, *args: str) -> None:
    """Run Copier's CLI; an answer it refuses aborts the session with Copier's one-line reason."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="betcycle-copier-") as tmp:
        refused = Path(tmp, "refused")
        session.run("python", str(COPIER_CLI), *args, env={"BETCYCLE_COPIER_REFUSED": str(refused)})
        if refused.exists():
            session.error(refused.read_text(encoding="utf-8").strip())


def _no_terminal_defaults(session: nox.Session, copier_args: list[str]) -> list[str]:
    """Add --defaults when stdin is not a terminal (CI, scripts, an agent): Copier cannot ask there."""
    import sys

    if sys.stdin.isatty() or {"-l", "--defaults"} & set(copier_args):
        return copier_args
    session.log("no terminal: the questions not answered with --data take their defaults (--defaults)")
    return ["--defaults", *copier_args]


@nox.session(name="new_service")
def new_service(session: nox.Session) -> None:
    """Stamp a service and render it: `nox -s new_service -- NAME [--owner TEAM] [copier copy options]`."""
    import argparse

    parser = argparse.ArgumentParser(prog="nox -s new_service --", allow_abbrev=False)
    parser.add_argument("name")
    parser.add_argument("--owner")
    args, copier_args = parser.parse_known_args(session.posargs)
    # Copier's validator reads the template's copy of the repository (the commit below), so an app that exists
    # only in this working tree, or was added after that commit, is caught here.
    if (ROOT / "apps" / args.name).exists():
        session.error(f"apps/{args.name}/ already exists; pick another name")
    # The environments that exist in the working tree, in the example's promotion order first (the menu and
    # default selection). The template takes them as they are, so an uncommitted new environment is offered.
    found = [p.parent.name for p in ROOT.glob("environments/*/environment.yaml")]
    order = ["dev", "staging", "prod"]
    environments = sorted(found, key=lambda env: (order.index(env) if env in order else len(order), env))
    data = [f"--data=name={args.name}", f"--data=known_environments=[{', '.join(environments)}]"]
    if args.owner:
        data.append(f"--data=owner={args.owner}")
    copier_args = _no_terminal_defaults(session, copier_args)
    owner_given = args.owner or any(a.startswith(("owner=", "--data=owner=")) for a in copier_args)
    if not owner_given and {"-l", "--defaults"} & set(copier_args):
        session.error("the owner has no default: pass --owner TEAM (the owning team's slug, e.g. team-pay)")
    given_ref = any(a in ("-r", "--vcs-ref") or a.startswith("--vcs-ref=") for a in copier_args)
    ref = [] if given_ref else [f"--vcs-ref={_template_commit(session)}"]
    install(session, "templates")
    # The template's task renders the new service (copier.yml `_tasks`), with this session's BetCycle.
    _copier(session, "copy", "--trust", *ref, *data, *copier_args, ".", ".")


@nox.session(name="update_services")
def update_services(session: nox.Session) -> None:
    """`copier update` the stamped services (all, or those named) and re-render: `-- [NAME…] [--option=value…]`."""
    import re
    import tempfile

    names = [a for a in session.posargs if not a.startswith("-")]
    copier_args = [a for a in session.posargs if a.startswith("-")]
    stamped = sorted(p.parent.name for p in ROOT.glob("apps/*/.copier-answers.yml"))
    if unknown := sorted(set(names) - set(stamped)):
        session.error(f"not stamped from the template (no .copier-answers.yml): {', '.join(unknown)}")
    names = names or stamped
    if not names:
        session.skip("no service was stamped from the service template")
    commit = _template_commit(session)
    ref = _template_ref()
    installed = False
    updated: list[str] = []
    conflicted: list[str] = []
    for name in names:
        answers = f"apps/{name}/.copier-answers.yml"
        text = (ROOT / answers).read_text(encoding="utf-8")
        source = re.search(r"^_src_path: (.*)$", text, re.MULTILINE)
        if not source or source[1].strip() != ".":
            session.error(f"{answers}: _src_path is not '.'; run copier update yourself (docs/templates.md)")
        if not _git(session, "ls-files", "--", answers):
            session.error(f"{answers} is not committed: commit the service first (updates start from HEAD)")
        recorded = re.search(r"^_commit: (.*)$", text, re.MULTILINE)
        try:
            changes = ref.changes_since(ROOT, recorded[1].strip().strip("'\"") if recorded else "", commit)
        except ref.RefError as error:
            session.error(f"{answers}: {error}")
        # Nothing to bring in: the template is the same at both commits and no answer changes. Copier would
        # still rewrite `_commit`, for nothing.
        if not copier_args and not changes:
            session.log(f"{name}: up to date with the service template ({commit[:12]}), nothing to update")
            continue
        if not installed:
            install(session, "templates")
            installed = True
        # `copier update` refuses a dirty repository, and after the first service this one would be dirty. So
        # each service is updated in a throw-away worktree of HEAD, and the result is applied here as a patch:
        # uncommitted work elsewhere is left alone, and several services update in one run.
        with tempfile.TemporaryDirectory(prefix="betcycle-update-") as tmp:
            worktree, patch = Path(tmp, "repo"), Path(tmp, "update.patch")
            _git(session, "worktree", "add", "--quiet", "--detach", str(worktree), "HEAD")
            try:
                with session.chdir(worktree):
                    _copier(
                        session, "update", "--trust", "--defaults", f"--vcs-ref={commit}",
                        f"--answers-file={answers}", *copier_args, ".",
                    )  # fmt: skip
                _git(session, "add", "--all", repo=worktree)
                _git(session, "diff", "--cached", "--binary", f"--output={patch}", "HEAD", repo=worktree)
                touched = _git(session, "diff", "--cached", "--name-only", "HEAD", repo=worktree).splitlines()
            finally:
                _git(session, "worktree", "remove", "--force", str(worktree))
            if patch.stat().st_size:
                _git(session, "apply", str(patch))
        files = [f for f in touched if f != answers]
        session.log(
            f"{name}: updated to the service template at {commit[:12]}: "
            + (f"{len(files)} file(s) changed besides {answers}" if files else f"only {answers} changed")
        )
        updated.append(name)
        marker = re.compile(rb"^<<<<<<< before updating", re.MULTILINE)
        for file in [*ROOT.glob(f"apps/{name}/**/*"), *ROOT.glob(f"environments/*/apps/{name}.yaml")]:
            if file.is_file() and marker.search(file.read_bytes()):
                conflicted.append(str(file.relative_to(ROOT)))
    if not updated:
        session.log("Nothing to update: every service named is at the current service template")
        return
    if conflicted:
        session.error(
            "resolve the conflicts (between '<<<<<<< before updating' and '>>>>>>> after updating') in "
            f"{', '.join(conflicted)}, then: nox -s render -- {' '.join(f'--app {n}' for n in updated)}"
        )
    session.run("betcycle", "render", *(f"--app={n}" for n in updated))


@nox.session(name="new_environment")
def new_environment(session: nox.Session) -> None:
    """Stamp environments/NAME/environment.yaml and render it: `nox -s new_environment -- NAME [copier options]`."""
    if not session.posargs or session.posargs[0].startswith("-"):
        session.error("usage: nox -s new_environment -- NAME [copier copy options]")
    name, *copier_args = session.posargs
    if (ROOT / "environments" / name).exists():
        session.error(f"environments/{name}/ already exists; pick another name")
    install(session, "templates")
    data = [f"--data=name={name}", *_no_terminal_defaults(session, copier_args)]
    _copier(session, "copy", "--trust", *data, "templates/environment", ".")
    session.run("betcycle", "render", "--env", name)
