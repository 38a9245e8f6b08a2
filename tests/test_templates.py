"""The Copier templates: stamping services and environments, refusing bad answers, and `copier update`.

Each test builds a git repository in tmp_path from the tests' fixture repository (its environments and its one
app) plus the shipped toolkit the templates go with (the templates, the golden-path chart they write values
for, the policies, the lint settings), commits it with a pinned identity and an isolated git config, and
drives Copier through its Python API the way the documented commands do (`copier copy --trust --defaults
--data … . .` from the repository root, where the template and the destination are the same repository). The
stamped output then has to render, validate, lint and pass its own tests without edits. One test takes the
shipped apps/hello too: it checks that the example and the template it is stamped from agree.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import copier
import jsonschema
import pytest
import yaml

from tests.conftest import REPO, git, write_tree

# The shipped toolkit the templates are tested with, over the fixture repository: the templates, the
# golden-path chart whose values they write, the policies a stamped service must pass, and the ruff, pytest
# and yamllint settings its code is checked with. Never the live apps/ or environments/.
TOOLKIT = [".yamllint.yaml", "charts", "copier.yml", "policies", "pyproject.toml", "templates"]
SCRIPTS = REPO / "templates/scripts"
SCHEMAS = REPO / "src/betcycle/data/schemas"
LONGEST = "abcdefghij-klmnopqrst-uvwxyz0123-456789a"  # 40 characters, the most a service name may have

Cli = Callable[..., tuple[int, str, str]]


def head(repo: Path, *, short: bool = False) -> str:
    return git(repo, "rev-parse", *(["--short"] if short else []), "HEAD").strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--message", message)
    return head(repo)


def copy_in(dest: Path, *parts: str) -> None:
    """Copy files or folders of this repository into dest at the same paths, replacing what is there."""
    for part in parts:
        src, target = REPO / part, dest / part
        if target.is_dir():
            shutil.rmtree(target)
        if src.is_dir():
            # tools' caches a local run leaves in a service's folder are not part of it
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__", "*.py[co]", ".*_cache"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


@pytest.fixture
def repo(example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, git_env: None) -> Path:
    """The fixture repository with the toolkit, as a git repository with one commit (pinned identity)."""
    # Copier reads user settings (defaults, trusted templates) from the user's config folder: not here.
    settings = tmp_path / "copier-settings.yml"
    settings.write_text("{}\n", encoding="utf-8")
    monkeypatch.setenv("COPIER_SETTINGS_PATH", str(settings))
    copy_in(example, *TOOLKIT)
    # The fixture's manifests came from its own chart: render again with the shipped one, so the repository
    # starts consistent (as a user's does) and a stamp alone keeps it so.
    from betcycle.model.repo import load_repo
    from betcycle.render import engine as render

    render.write(example, render.render(load_repo(example)))
    git(example, "init", "--quiet", "--initial-branch=main")
    commit(example, "the fixture repository with the toolkit")
    return example


@pytest.fixture
def crds(crd_cache: Path) -> Path | None:
    """A schema folder with the repository's vendored CRD schemas, so validate runs --strict everywhere."""
    return crd_cache


def load_script(name: str) -> Any:
    """A script of templates/scripts/ as a module (they are files, not a package)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The rule for the template's commit that the nox sessions use (and the docs' plain commands).
template_ref = load_script("template_ref")


def stamp(repo: Path, vcs_ref: str = "HEAD", **data: Any) -> None:
    """`copier copy --trust --defaults --data K=V… . .` from the repository root, at HEAD (a clean tree).

    --trust runs the template's task, which renders the new service (with this Python's betcycle).
    """
    copier.run_copy(str(repo), repo, data=data, defaults=True, unsafe=True, vcs_ref=vcs_ref, quiet=True)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def render_and_validate(repo: Path, cli: Cli, crds: Path | None) -> None:
    code, out, err = cli("--root", repo, "render")
    assert code == 0, out + err
    code, out, err = cli("--root", repo, "render", "--check")
    assert code == 0, out + err
    strict = ["--strict", "--schema-cache", crds] if crds else []
    code, out, err = cli("--root", repo, "validate", *strict)
    assert code == 0, out + err
    assert "0 error(s), 0 warning(s)" in out


def test_a_stamped_service_renders_validates_and_passes_its_own_tests(
    repo: Path, cli: Cli, crds: Path | None
) -> None:
    stamp(repo, name="payments", owner="team-pay")
    app = repo / "apps/payments"
    # Rendered by the template's task (copier.yml `_tasks`), before anyone runs `betcycle render`.
    for env in ["dev", "staging", "prod"]:
        assert (repo / f"environments/{env}/manifests/payments/deployment-payments.yaml").is_file(), env
        assert (repo / f"environments/{env}/manifests/argocd/application-{env}-payments.yaml").is_file(), env
    code, out, err = cli("--root", repo, "render", "--check")
    assert code == 0, out + err
    for rel in [
        "app.yaml",
        "catalog-info.yaml",
        "Dockerfile",
        ".dockerignore",
        "README.md",
        ".copier-answers.yml",
        "src/payments/server.py",
        "tests/conftest.py",
        "tests/payments_testing.py",
        "tests/test_payments_server.py",
    ]:
        assert (app / rel).is_file(), rel
    # the template's maintainer files stay out of the repository
    assert not (repo / "README.md").exists()
    assert not (repo / "_macros").exists()

    manifest = load_yaml(app / "app.yaml")
    jsonschema.validate(manifest, json.loads((SCHEMAS / "app.schema.json").read_text(encoding="utf-8")))
    assert manifest["owner"] == "team-pay"
    assert manifest["chart"] == "service"
    assert (
        manifest["values"]["image"]["repository"] == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments"
    )
    assert load_yaml(app / "catalog-info.yaml")["spec"]["owner"] == "team-pay"
    for env in ["dev", "staging", "prod"]:
        values = load_yaml(repo / f"environments/{env}/apps/payments.yaml")
        assert values["image"] == {"tag": "0.1.0"}
        assert values.get("replicas") == (2 if env == "prod" else None)

    answers = load_yaml(app / ".copier-answers.yml")
    assert answers["_src_path"] == str(repo)
    assert answers["_commit"] == head(repo, short=True)
    assert answers["environments"] == ["dev", "staging", "prod"]
    assert "module" not in answers and "known_environments" not in answers  # computed, not answers

    render_and_validate(repo, cli, crds)
    assert (repo / "environments/prod/manifests/payments/poddisruptionbudget-payments.yaml").is_file()
    assert (repo / "environments/dev/manifests/argocd/application-dev-payments.yaml").is_file()

    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", "apps/payments"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout


def test_the_longest_and_shortest_names_with_every_option_pass_lint(
    repo: Path, cli: Cli, crds: Path | None
) -> None:
    stamp(repo, name=LONGEST, owner="team-pay", port=9090, public_ingress=True, database=True)
    commit(repo, "a service with a 40-character name")
    stamp(
        repo, name="ab", owner="t1", environments=["dev"], description='Says "hi": a 100% YAML-safe line #1'
    )
    module = LONGEST.replace("-", "_")
    assert (repo / f"apps/{LONGEST}/src/{module}/__main__.py").is_file()
    assert (repo / f"apps/{LONGEST}/tests/test_{module}_metrics.py").is_file()
    assert not (repo / "environments/staging/apps/ab.yaml").exists()

    app = load_yaml(repo / f"apps/{LONGEST}/app.yaml")["values"]
    assert app["port"] == 9090
    assert app["ingress"] == {"enabled": True, "host": f"{LONGEST}.example.com"}
    assert app["database"] == {"enabled": True}
    dev = load_yaml(repo / f"environments/dev/apps/{LONGEST}.yaml")
    assert dev["ingress"] == {"host": f"{LONGEST}.dev.example.com"}
    assert dev["database"] == {"remoteKey": f"dev/{LONGEST}/db"}
    assert "ingress" not in load_yaml(repo / f"environments/prod/apps/{LONGEST}.yaml")
    assert load_yaml(repo / "apps/ab/app.yaml")["description"] == 'Says "hi": a 100% YAML-safe line #1'

    render_and_validate(repo, cli, crds)
    assert (repo / f"environments/staging/manifests/{LONGEST}/externalsecret-{LONGEST}-db.yaml").is_file()
    assert (repo / f"environments/staging/manifests/{LONGEST}/ingress-{LONGEST}.yaml").is_file()

    # Lint the way `nox -s lint` does (ruff and yamllint are in the test dependency group for this).
    for tool in ("ruff", "yamllint"):
        if importlib.util.find_spec(tool) is None:
            pytest.skip(
                f"{tool} is not installed here; `nox -s lint` checks stamped services in the repository"
            )
    paths = ["apps", "environments"]
    for command in (
        ["ruff", "check", "--no-cache", *paths],
        ["ruff", "format", "--no-cache", "--check", *paths],
        ["yamllint", "--strict", "-c", ".yamllint.yaml", *paths],
    ):
        result = subprocess.run([sys.executable, "-m", *command], cwd=repo, capture_output=True, text=True)
        assert result.returncode == 0, " ".join(command) + "\n" + result.stdout + result.stderr


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"name": "Payments"},
            "Validation error for question 'name': 'Payments' is not a DNS-1123 label: lowercase letters, "
            "digits and '-', starting with a letter and not ending with '-' (e.g. payments)",
        ),
        (
            {"name": "a"},
            "Validation error for question 'name': 'a' is 1 character long; a service name has 2-40",
        ),
        (
            {"name": LONGEST + "b"},
            f"Validation error for question 'name': '{LONGEST}b' is 41 characters long; a service name has 2-40",
        ),
        (
            {"name": "hello"},
            "Validation error for question 'name': apps/hello/ already exists; pick another name",
        ),
        (
            {"name": "argocd"},
            "Validation error for question 'name': 'argocd' is reserved (a Kubernetes or Argo CD namespace, "
            "or a name BetCycle uses); pick another name",
        ),
        (
            {"name": "email"},
            "Validation error for question 'name': 'email' would make the Python package 'email', which "
            "shadows a module of that name; pick another name (e.g. email-service)",
        ),
        (
            {"name": "payments", "environments": ["dev", "qa"]},
            "Invalid choice for 'environments': 'qa' is not in ['dev', 'staging', 'prod']",
        ),
        (
            {"name": "payments", "owner": "Team Pay"},
            "Validation error for question 'owner': 'Team Pay' is not a team slug: lowercase letters, digits "
            "and '-', at most 63 characters (e.g. team-pay)",
        ),
        (
            {"name": "payments", "port": 80},
            "Validation error for question 'port': port 80 is out of range: 1024-65535 (a non-root container "
            "without capabilities cannot bind lower ports)",
        ),
    ],
    ids=[
        "uppercase",
        "too-short",
        "too-long",
        "existing",
        "reserved",
        "stdlib",
        "unknown-env",
        "owner",
        "port",
    ],
)
def test_bad_answers_are_refused_with_one_line_and_nothing_written(
    repo: Path, data: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        stamp(repo, **{"owner": "team-pay", **data})
    assert str(caught.value) == message
    assert "\n" not in message
    assert git(repo, "status", "--porcelain") == ""


def test_root_is_reserved_by_the_template_and_by_repository_loading(repo: Path, cli: Cli) -> None:
    # An app named root would have the Application <env>-root, the name of each environment's app-of-apps.
    with pytest.raises(ValueError) as caught:
        stamp(repo, name="root", owner="team-pay")
    assert str(caught.value).startswith("Validation error for question 'name': 'root' is reserved")
    assert git(repo, "status", "--porcelain") == ""
    # Written by hand instead, it is refused when the repository loads, before anything renders.
    write_tree(
        repo,
        {
            "apps/root/app.yaml": "name: root\nowner: team-x\nchart: service\n",
            "environments/dev/apps/root.yaml": "image:\n  tag: '1.0.0'\n",
        },
    )
    code, _, err = cli("--root", repo, "render")
    assert code == 2
    assert err.splitlines()[:2] == [
        "error: apps/root/app.yaml:1: app name 'root' is reserved",
        "  hint: its Application <env>-root would be the environment's root app-of-apps; rename the app",
    ]


def test_a_stamped_service_is_refused_as_existing_but_updatable(repo: Path) -> None:
    stamp(repo, name="payments", owner="team-pay")
    commit(repo, "stamp payments")
    with pytest.raises(ValueError, match=r"apps/payments/ already exists, stamped from this template"):
        stamp(repo, name="payments", owner="team-pay")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new), encoding="utf-8")


def update(repo: Path, name: str, **data: Any) -> None:
    """`copier update --trust --defaults --answers-file apps/NAME/.copier-answers.yml .` to the latest commit.

    The commit `nox -s update_services` passes (templates/scripts/template_ref.py: the last commit that changed
    the template). An explicit commit, not HEAD: while updating, Copier clones the template again after it has
    written into the destination, and this template *is* the destination, so a local `HEAD` would also take
    those writes as "dirty template changes" (with a DirtyLocalWarning).
    """
    copier.run_update(
        repo,
        data=data,
        answers_file=f"apps/{name}/.copier-answers.yml",
        vcs_ref=template_ref.template_commit(repo)[0],
        defaults=True,
        overwrite=True,
        unsafe=True,
        quiet=True,
    )


def test_copier_update_brings_a_template_change_and_keeps_the_services_edits(
    repo: Path, cli: Cli, crds: Path | None
) -> None:
    stamp(repo, name="payments", owner="team-pay", database=True)
    stamped_at = commit(repo, "stamp payments")
    # the team's own edits
    staging = repo / "environments/staging/apps/payments.yaml"
    edit(staging, 'tag: "0.1.0"', 'tag: "1.4.2"')
    server = repo / "apps/payments/src/payments/server.py"
    edit(server, '"message": f"{config.service_name} is running"', '"message": "payments takes payments"')
    edit(repo / "apps/payments/README.md", "## Endpoints", "Runbook: see the wiki.\n\n## Endpoints")
    commit(repo, "payments: a release in staging, a message, a runbook")
    # the template's change: a new probe default and a new file
    template = repo / "templates/service/apps/{{ name }}"
    edit(
        template / "app.yaml.jinja",
        "\nvalues:\n",
        "\nvalues:\n  probes:\n    readiness:\n      periodSeconds: 3\n",
    )
    (template / "OWNERS.jinja").write_text("{{ owner }}\n", encoding="utf-8")
    edit(template / "README.md.jinja", "## Endpoints", "## Routes")  # README: the team's, never updated
    commit(repo, "service template: readiness every 3s, an OWNERS file")

    update(repo, "payments")

    app = load_yaml(repo / "apps/payments/app.yaml")
    assert app["values"]["probes"] == {"readiness": {"periodSeconds": 3}}
    assert app["values"]["database"] == {"enabled": True}
    assert (repo / "apps/payments/OWNERS").read_text(encoding="utf-8") == "team-pay\n"
    assert load_yaml(staging)["image"]["tag"] == "1.4.2"
    assert '"message": "payments takes payments"' in server.read_text(encoding="utf-8")
    readme = (repo / "apps/payments/README.md").read_text(encoding="utf-8")
    assert "Runbook: see the wiki." in readme and "## Routes" not in readme
    answers = load_yaml(repo / "apps/payments/.copier-answers.yml")
    assert stamped_at != head(repo)
    assert answers["_commit"] == head(repo, short=True)
    assert "<<<<<<<" not in git(repo, "diff")
    render_and_validate(repo, cli, crds)


def test_a_tag_set_by_cd_merges_with_a_changed_answer(repo: Path, cli: Cli, crds: Path | None) -> None:
    # CD changes every environment file's tag; the template's additions below the tag must still merge.
    stamp(repo, name="payments", owner="team-pay", public_ingress=True)
    assert cli("--root", repo, "render")[0] == 0
    commit(repo, "stamp payments")
    code, out, err = cli("--root", repo, "set-image", "payments", "--env", "staging", "--tag", "abc1234")
    assert code == 0, out + err
    commit(repo, "payments abc1234 in staging")

    update(repo, "payments", database=True)  # `nox -s update_services -- payments --data=database=true`

    staging = load_yaml(repo / "environments/staging/apps/payments.yaml")
    assert staging == {
        "image": {"tag": "abc1234"},
        "ingress": {"host": "payments.staging.example.com"},
        "database": {"remoteKey": "staging/payments/db"},
    }
    assert load_yaml(repo / "apps/payments/.copier-answers.yml")["database"] is True
    assert "<<<<<<<" not in git(repo, "diff")
    render_and_validate(repo, cli, crds)


def test_copier_update_marks_conflicts_inline(repo: Path) -> None:
    stamp(repo, name="payments", owner="team-pay")
    commit(repo, "stamp payments")
    # Both sides rewrite the first line of app.yaml.
    app = repo / "apps/payments/app.yaml"
    first = app.read_text(encoding="utf-8").splitlines()[0]
    edit(app, first, "# payments: the team's words")
    commit(repo, "payments: our header")
    template = repo / "templates/service/apps/{{ name }}/app.yaml.jinja"
    edit(template, template.read_text(encoding="utf-8").splitlines()[0], "# the template's words")
    commit(repo, "service template: a new header")

    update(repo, "payments")

    text = app.read_text(encoding="utf-8")
    conflict = "<<<<<<< before updating\n# payments: the team's words\n=======\n# the template's words\n>>>>>>> after updating\n"
    assert text.startswith(conflict)
    assert git(repo, "status", "--porcelain", "--", "apps/payments/app.yaml") == "UU apps/payments/app.yaml\n"


def test_a_stamped_environment_renders_and_takes_services_before_it_is_committed(
    repo: Path, cli: Cli, crds: Path | None
) -> None:
    copier.run_copy(
        str(repo / "templates/environment"),
        repo,
        data={"name": "qa", "promotion_from": "staging", "namespace": "{app}-{env}"},
        defaults=True,
        unsafe=True,
        quiet=True,
    )
    env = load_yaml(repo / "environments/qa/environment.yaml")
    jsonschema.validate(env, json.loads((SCHEMAS / "environment.schema.json").read_text(encoding="utf-8")))
    assert env["kubernetesVersion"] == "1.31"
    assert env["argocd"] == {
        "project": "qa",
        "targetRevision": "main",
        "destination": {"server": "https://qa.k8s.example.com", "namespace": "{app}-{env}"},
    }
    assert env["promotion"] == {"from": "staging"}
    assert sorted(p.name for p in (repo / "environments/qa").iterdir()) == ["environment.yaml"]  # no apps yet
    code, out, err = cli("--root", repo, "render", "--env", "qa")
    assert code == 0, out + err
    assert (repo / "environments/qa/manifests/argocd/application-qa-root.yaml").is_file()

    # What `nox -s new_service` does, with qa not committed yet: it stamps from a commit (the template's last,
    # which has no qa) and passes the environments of the working tree, which the template takes as they are.
    assert git(repo, "status", "--porcelain", "--", "environments/qa")
    stamp(
        repo,
        vcs_ref=template_ref.template_commit(repo)[0],
        name="orders",
        owner="team-pay",
        known_environments=["dev", "prod", "qa", "staging"],
    )
    assert load_yaml(repo / "apps/orders/.copier-answers.yml")["environments"] == [
        "dev",
        "prod",
        "qa",
        "staging",
    ]
    assert load_yaml(repo / "environments/qa/apps/orders.yaml") == {"image": {"tag": "0.1.0"}}
    render_and_validate(repo, cli, crds)
    assert (repo / "environments/qa/manifests/orders/deployment-orders.yaml").is_file()
    # A plain `copier update` knows only the default candidates, and must keep qa anyway.
    commit(repo, "environment qa, orders")
    update(repo, "orders")
    environments = load_yaml(repo / "apps/orders/.copier-answers.yml")["environments"]
    assert environments == ["dev", "staging", "prod", "qa"]  # in the order of the choices


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"name": "QA"},
            "Validation error for question 'name': 'QA' is not a valid environment name: 1-32 lowercase "
            "letters, digits and '-', not starting or ending with '-'",
        ),
        (
            {"name": "qa", "kubernetes_version": "1.24"},
            "Validation error for question 'kubernetes_version': '1.24' is not a supported Kubernetes "
            'version: "1.25" to "1.37"',
        ),
        (
            {"name": "qa", "promotion_from": "qa"},
            "Validation error for question 'promotion_from': an environment cannot promote from itself",
        ),
        (
            {"name": "qa", "namespace": "shared"},
            "Validation error for question 'namespace': 'shared' is not a namespace rule: lowercase letters, "
            "digits, '-' and {app} (required) or {env}",
        ),
    ],
    ids=["name", "kubernetes-version", "promotion-from-itself", "namespace-rule"],
)
def test_bad_environment_answers_are_refused(repo: Path, data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        copier.run_copy(str(repo / "templates/environment"), repo, data=data, defaults=True, quiet=True)
    assert str(caught.value) == message
    assert git(repo, "status", "--porcelain") == ""


# --- The paths around the happy one: the render task, one-line refusals, the template's commit, updates -------


def run_script(
    repo: Path, python: list[str], script: str, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*python, str(SCRIPTS / script), *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )


def test_the_render_task_prefers_the_repositorys_venv_and_prints_the_command_without_betcycle(
    repo: Path, tmp_path: Path
) -> None:
    # Copier runs the task with its own Python, which may not have BetCycle (Copier from `uv tool`): here a
    # Python without site-packages (-I -S), and a PATH without betcycle.
    bare = [sys.executable, "-I", "-S"]
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    # The repository's .venv (what bootstrap.py creates), standing in as a wrapper that leaves a trace.
    venv_python = repo / ".venv/bin/python"
    venv_python.parent.mkdir(parents=True)
    trace = tmp_path / "venv-used"
    venv_python.write_text(
        f'#!/bin/sh\necho used >> "{trace}"\nexec "{sys.executable}" "$@"\n', encoding="utf-8"
    )
    venv_python.chmod(0o755)
    shutil.rmtree(repo / "environments/dev/manifests/hello")

    found = run_script(repo, bare, "render_new_service.py", "hello", PATH=str(empty))
    assert found.returncode == 0, found.stdout + found.stderr
    assert trace.read_text(encoding="utf-8").count("used") == 2  # the import probe, then the render
    assert (repo / "environments/dev/manifests/hello/deployment-hello.yaml").is_file()

    shutil.rmtree(repo / ".venv")
    shutil.rmtree(repo / "environments/dev/manifests/hello")
    missing = run_script(repo, bare, "render_new_service.py", "hello", PATH=str(empty))
    assert missing.returncode == 0  # the stamped files are fine: only the render is left to do
    assert missing.stderr.splitlines()[:2] == [
        "BetCycle is not installed where Copier runs, so hello is not rendered yet. From the repository root, run:",
        "  betcycle render --app hello",
    ]
    assert not (repo / "environments/dev/manifests/hello").exists()


def test_a_refused_answer_is_one_line_through_the_sessions_copier(repo: Path, tmp_path: Path) -> None:
    # Copier's own CLI prints a traceback for a refused --data answer; the nox sessions run it through
    # templates/scripts/copier_cli.py, which prints the message alone (exit 2)...
    args = ["copy", "--trust", "--defaults", f"--vcs-ref={head(repo)}", "--data=owner=team-pay"]
    message = "Validation error for question 'name': apps/hello/ already exists; pick another name"
    refused = run_script(repo, [sys.executable], "copier_cli.py", *args, "--data=name=hello", ".", ".")
    assert (refused.returncode, refused.stderr) == (2, message + "\n")
    # ...or hands it to the session, which aborts with it (`nox > Session new_service aborted: …`).
    target = tmp_path / "refused"
    missing = run_script(
        repo, [sys.executable], "copier_cli.py", *args[:-1], "--data=name=payments", ".", ".",
        BETCYCLE_COPIER_REFUSED=str(target),
    )  # fmt: skip
    assert missing.returncode == 0, missing.stderr
    assert target.read_text(encoding="utf-8") == 'Question "owner" is required\n'
    assert git(repo, "status", "--porcelain") == ""


def test_the_template_commit_is_the_last_template_change_on_main(repo: Path) -> None:
    stamped = head(repo)  # the commit that brought the template
    (repo / "apps/hello/README.md").write_text("# hello\n", encoding="utf-8")
    main = commit(repo, "hello: a README (not a template change)")
    git(repo, "update-ref", "refs/remotes/origin/main", main)
    assert template_ref.template_commit(repo) == (stamped, None)

    # A branch that changes the template: its commit is not taken (a squash merge would lose it), and the
    # sessions warn that the change is left out.
    git(repo, "switch", "--quiet", "--create", "feature")
    template = repo / "templates/service/apps/{{ name }}/app.yaml.jinja"
    edit(template, "chart: service", "chart: service  # the golden path")
    branch = commit(repo, "service template: a comment")
    commit_, warning = template_ref.template_commit(repo)
    assert commit_ == stamped
    assert warning is not None and warning.startswith(
        f"the service template here differs from origin/main's ({stamped[:12]}): those changes are left out."
    )
    # Squash-merged: main's new commit carries the change, the branch's commit is gone from main's history.
    git(repo, "switch", "--quiet", "main")
    git(repo, "merge", "--quiet", "--squash", "feature")
    squashed = commit(repo, "service template: a comment (#12)")
    git(repo, "update-ref", "refs/remotes/origin/main", squashed)
    git(repo, "branch", "--quiet", "-D", "feature")
    assert template_ref.template_commit(repo) == (squashed, None)
    assert template_ref.changes_since(repo, stamped, squashed) == [
        "templates/service/apps/{{ name }}/app.yaml.jinja"
    ]
    # A service stamped from the branch's commit, seen from a clone that never had it: one line saying so.
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "--quiet", "--prune=now")
    with pytest.raises(
        template_ref.RefError, match=rf"^_commit {branch[:7]} is not in this repository's history"
    ):
        template_ref.changes_since(repo, branch[:7], squashed)
    # No origin/main (a repository nobody cloned): HEAD's history.
    git(repo, "update-ref", "-d", "refs/remotes/origin/main")
    assert template_ref.template_commit(repo) == (squashed, None)


def test_an_update_with_no_template_change_changes_nothing(repo: Path) -> None:
    stamp(repo, name="payments", owner="team-pay")
    commit(repo, "stamp payments")
    edit(repo / "environments/staging/apps/payments.yaml", 'tag: "0.1.0"', 'tag: "1.0.0"')
    commit(repo, "payments 1.0.0 in staging")
    # What update_services checks first: the template has not changed since the service's _commit...
    recorded = load_yaml(repo / "apps/payments/.copier-answers.yml")["_commit"]
    assert template_ref.changes_since(repo, recorded, template_ref.template_commit(repo)[0]) == []
    # ...and Copier itself, taken to the same template commit, changes nothing either (not even `_commit`).
    update(repo, "payments")
    assert git(repo, "status", "--porcelain") == ""


# hello's own edits on top of the template (apps/hello/README.md says which). Anything else that differs
# from a fresh stamp with hello's answers is drift: change the template, or add the file here with a reason.
HELLO_OWN_EDITS = {
    "apps/hello/README.md",  # hello's own documentation (a README is the team's: _skip_if_exists)
    "apps/hello/app.yaml",  # GREETING_NAME
    "apps/hello/src/hello/config.py",  # GREETING_NAME
    "apps/hello/src/hello/server.py",  # the greeting
    "apps/hello/tests/test_hello_config.py",  # GREETING_NAME
    "apps/hello/tests/test_hello_server.py",  # the greeting
    "environments/dev/apps/hello.yaml",  # the tags, replicas and resources of each environment
    "environments/prod/apps/hello.yaml",
    "environments/staging/apps/hello.yaml",
}


def test_the_shipped_hello_is_the_template_plus_its_own_edits_and_updates_to_nothing(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shipped example, copied in (the live tree is only read): hello as committed in this repository.
    copy_in(
        repo, "apps/hello", *(f"environments/{env}/apps/hello.yaml" for env in ("dev", "staging", "prod"))
    )
    answers_file = repo / "apps/hello/.copier-answers.yml"
    # Its _commit names a commit of this repository's history; here, the commit that brought the template.
    text = answers_file.read_text(encoding="utf-8")
    answers_file.write_text(
        re.sub(r"(?m)^_commit: .*$", yaml.safe_dump({"_commit": head(repo, short=True)}).strip(), text),
        encoding="utf-8",
    )
    commit(repo, "the shipped hello")
    answers = load_yaml(answers_file)
    assert answers["_src_path"] == "."

    # One code base: a fresh stamp with hello's answers differs from hello only in hello's own edits.
    fresh = tmp_path / "fresh"
    copier.run_copy(
        str(repo),
        fresh,
        data={k: v for k, v in answers.items() if not k.startswith("_")},
        defaults=True,
        overwrite=True,  # hello exists in the template's copy of the repository: not a reason to refuse here
        vcs_ref=template_ref.template_commit(repo)[0],
        skip_tasks=True,
        quiet=True,
    )
    stamped = {p.relative_to(fresh).as_posix() for p in fresh.rglob("*") if p.is_file()}
    shipped = {
        p.relative_to(repo).as_posix()
        for p in [*repo.glob("apps/hello/**/*"), *repo.glob("environments/*/apps/hello.yaml")]
        if p.is_file() and "__pycache__" not in p.parts
    }
    answers_rel = "apps/hello/.copier-answers.yml"  # records where it came from: checked by the update below
    assert shipped - stamped == set(), "files in apps/hello that the template does not stamp"
    assert stamped - shipped == set(), "files the template stamps that apps/hello lacks"
    differing = {
        rel for rel in stamped - {answers_rel} if (fresh / rel).read_bytes() != (repo / rel).read_bytes()
    }
    assert differing == HELLO_OWN_EDITS

    # `copier update` on hello in a clean clone, to the template's commit, leaves `git status` clean.
    monkeypatch.chdir(repo)  # `_src_path: .` is the repository Copier runs in
    copier.run_update(
        repo,
        answers_file=answers_rel,
        vcs_ref=template_ref.template_commit(repo)[0],
        defaults=True,
        overwrite=True,
        unsafe=True,
        quiet=True,
    )
    assert git(repo, "status", "--porcelain") == ""
