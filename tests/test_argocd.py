"""The Argo CD layout: per-app files with per-file headers, so one app's change touches only that app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from betcycle.errors import UserError, UserErrors
from betcycle.model.repo import load_repo
from betcycle.render import argocd
from betcycle.render import engine as render
from betcycle.validate import crosscheck, manifests
from tests.conftest import git, write_tree

ENVS = ("dev", "staging", "prod")


def add_app(root: Path, name: str, envs: tuple[str, ...] = ENVS, tag: str = "1.0.0") -> None:
    """A new service deployed to `envs`, written the way a developer (or the Copier template) would."""
    files = {
        f"apps/{name}/app.yaml": f"""\
            name: {name}
            owner: team-{name}
            description: The {name} service.
            chart: service
            values:
              image:
                repository: registry.example.com/{name}
            """
    }
    files.update({f"environments/{env}/apps/{name}.yaml": f'image:\n  tag: "{tag}"\n' for env in envs})
    write_tree(root, files)


def rerender(root: Path) -> dict[str, str]:
    """Render everything and write it; returns what changed on disk, path -> created|updated|deleted."""
    changes = render.write(root, render.render(load_repo(root)))
    state = {"missing": "created", "stale": "updated", "extra": "deleted"}
    return {c.path: state[c.state] for c in changes}


def header(text: str) -> tuple[str, str]:
    lines = text.splitlines()
    return lines[1], lines[2]


def argo_files(root: Path, env: str) -> list[str]:
    return sorted(p.name for p in (root / f"environments/{env}/manifests/argocd").iterdir())


def own_files(env: str, app: str) -> tuple[str, str, str]:
    """(rendered folder, Application file, AppProject file) of `app` in `env` (project == env here)."""
    base = f"environments/{env}/manifests"
    return (
        f"{base}/{app}/",
        f"{base}/argocd/application-{env}-{app}.yaml",
        f"{base}/argocd/appproject-{env}-{app}.yaml",
    )


def belongs_to(path: str, env: str, app: str) -> bool:
    folder, application, project = own_files(env, app)
    return path.startswith(folder) or path in (application, project)


# --- layout -----------------------------------------------------------------------------------------------


def test_each_app_has_its_own_appproject_and_application(example: Path) -> None:
    add_app(example, "billing", envs=("dev",))
    rerender(example)
    assert argo_files(example, "dev") == [
        "application-dev-billing.yaml",
        "application-dev-hello.yaml",
        "application-dev-root.yaml",
        "appproject-dev-billing.yaml",
        "appproject-dev-hello.yaml",
        "appproject-dev.yaml",
    ]
    assert argo_files(example, "prod") == [
        "application-prod-hello.yaml",
        "application-prod-root.yaml",
        "appproject-prod-hello.yaml",
        "appproject-prod.yaml",
    ]


def test_app_project_admits_only_the_apps_namespace(example: Path) -> None:
    result = render.render(load_repo(example), ["prod"])
    docs = {r.output.rsplit("/", 1)[1]: r.doc for r in result.resources if r.app is None and r.output}
    project = docs["appproject-prod-hello.yaml"]
    assert project["metadata"]["name"] == "prod-hello"
    assert project["metadata"]["namespace"] == "argocd"
    assert project["metadata"]["annotations"] == {"argocd.argoproj.io/sync-wave": "-1"}
    assert project["metadata"]["labels"]["betcycle.io/owner"] == "team-platform"
    assert project["spec"]["sourceRepos"] == ["https://github.com/example-org/platform.git"]
    assert project["spec"]["destinations"] == [
        {"server": "https://prod.k8s.example.com", "namespace": "hello"}
    ]
    assert project["spec"]["clusterResourceWhitelist"] == [{"group": "", "kind": "Namespace"}]
    application = docs["application-prod-hello.yaml"]
    assert application["spec"]["project"] == "prod-hello"
    assert application["spec"]["destination"] == project["spec"]["destinations"][0]


def test_environment_project_admits_only_argocd_objects_in_argocds_namespace(example: Path) -> None:
    result = render.render(load_repo(example), ["prod"])
    docs = {r.output.rsplit("/", 1)[1]: r.doc for r in result.resources if r.app is None and r.output}
    project = docs["appproject-prod.yaml"]
    assert project["metadata"]["name"] == "prod"
    assert project["spec"]["destinations"] == [{"server": argocd.IN_CLUSTER, "namespace": "argocd"}], (
        "the environment's project must not list the apps' namespaces"
    )
    assert project["spec"]["clusterResourceWhitelist"] == []
    assert {(k["group"], k["kind"]) for k in project["spec"]["namespaceResourceWhitelist"]} == {
        ("argoproj.io", "AppProject"),
        ("argoproj.io", "Application"),
    }
    root = docs["application-prod-root.yaml"]
    assert root["spec"]["project"] == "prod"
    assert root["spec"]["source"]["path"] == "environments/prod/manifests/argocd"


def test_app_project_name_follows_the_environments_project(example: Path) -> None:
    env = example / "environments/staging/environment.yaml"
    env.write_text(env.read_text().replace("project: staging", "project: pre-prod"))
    rerender(example)
    assert argo_files(example, "staging") == [
        "application-staging-hello.yaml",
        "application-staging-root.yaml",
        "appproject-pre-prod-hello.yaml",
        "appproject-pre-prod.yaml",
    ]
    text = (example / "environments/staging/manifests/argocd/application-staging-hello.yaml").read_text()
    assert "  project: pre-prod-hello\n" in text


def test_an_app_named_root_is_refused(example: Path) -> None:
    """Its Application <env>-root would overwrite the root app-of-apps: refused when the repo loads."""
    add_app(example, "root", envs=("dev",))
    with pytest.raises((UserError, UserErrors)) as e:
        render.render(load_repo(example), ["dev"])
    errors = e.value.errors if isinstance(e.value, UserErrors) else [e.value]
    [err] = errors
    assert err.message == "app name 'root' is reserved"
    assert err.path == "apps/root/app.yaml"
    assert "root app-of-apps" in (err.hint or "")


# --- headers ----------------------------------------------------------------------------------------------


def test_headers_name_only_each_files_own_inputs(example: Path) -> None:
    add_app(example, "billing")
    rerender(example)
    argo = example / "environments/prod/manifests/argocd"
    env_inputs = "# values: environments/prod/environment.yaml, betcycle.yaml"
    app_inputs = (
        "# values: environments/prod/environment.yaml, betcycle.yaml, apps/billing/app.yaml, "
        "environments/prod/apps/billing.yaml"
    )
    for name in ("appproject-prod.yaml", "application-prod-root.yaml"):
        assert header((argo / name).read_text()) == ("# template: betcycle/argocd.py", env_inputs), name
    for name in ("appproject-prod-billing.yaml", "application-prod-billing.yaml"):
        assert header((argo / name).read_text()) == ("# template: betcycle/argocd.py", app_inputs), name
    chart_output = example / "environments/prod/manifests/billing/deployment-billing.yaml"
    assert header(chart_output.read_text()) == (
        "# template: charts/service/templates/deployment.yaml.j2",
        "# values: charts/service/values.yaml, apps/billing/app.yaml, environments/prod/environment.yaml, "
        "environments/prod/apps/billing.yaml",
    )


# --- one app's change touches only that app -----------------------------------------------------------------


def test_adding_an_app_only_creates_that_apps_files(example: Path) -> None:
    assert rerender(example) == {}, "the fixture starts rendered"
    add_app(example, "billing")
    changed = rerender(example)
    assert changed, "adding an app must create files"
    assert set(changed.values()) == {"created"}
    assert all(any(belongs_to(p, env, "billing") for env in ENVS) for p in changed), changed
    for env in ENVS:
        _, application, project = own_files(env, "billing")
        assert changed[application] == changed[project] == "created"


def test_changing_one_app_in_one_environment_changes_only_its_files(example: Path) -> None:
    add_app(example, "billing")
    rerender(example)
    # a new tag, and autoscaling, which also changes the app's Application (ignoreDifferences)
    (example / "environments/staging/apps/billing.yaml").write_text(
        'image:\n  tag: "1.1.0"\nautoscaling:\n  enabled: true\n'
    )
    changed = rerender(example)
    assert set(changed.values()) <= {"created", "updated"}
    assert all(belongs_to(p, "staging", "billing") for p in changed), changed
    _, application, project = own_files("staging", "billing")
    assert changed[application] == "updated"
    assert project not in changed
    assert "environments/staging/manifests/billing/horizontalpodautoscaler-billing.yaml" in changed


def test_removing_an_app_from_one_environment_deletes_only_its_files(example: Path) -> None:
    add_app(example, "billing")
    rerender(example)
    (example / "environments/dev/apps/billing.yaml").unlink()
    changed = rerender(example)
    assert set(changed.values()) == {"deleted"}
    assert all(belongs_to(p, "dev", "billing") for p in changed), changed
    _, application, project = own_files("dev", "billing")
    assert application in changed and project in changed
    assert not (example / "environments/dev/manifests/billing").exists()


def test_argocd_files_the_layout_no_longer_produces_are_deleted(example: Path) -> None:
    """E.g. a project renamed in environment.yaml, or a file of an earlier layout."""
    old = example / "environments/dev/manifests/argocd/appproject-legacy.yaml"
    old.write_text(
        render.HEADER_MARK
        + "\napiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata: {name: legacy}\n"
    )
    changed = rerender(example)
    assert changed == {"environments/dev/manifests/argocd/appproject-legacy.yaml": "deleted"}


# --- cross-checks on the rendered objects ----------------------------------------------------------------


def test_rendered_projects_admit_their_applications(example: Path) -> None:
    add_app(example, "billing")
    result = render.render(load_repo(example))
    for env in ENVS:
        found = crosscheck.check_environment(render.manifests_for(result, env))
        assert [f for f in found if f.rule.startswith("crossref/argocd")] == [], env


# --- two pull requests, each adding a service, merge cleanly ------------------------------------------------


def test_two_branches_adding_different_services_merge_without_conflict(
    example: Path, git_env: None, cli
) -> None:
    root = example
    rerender(root)  # the fixture is rendered; keep it that way if the fixture ever ships unrendered
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    touched: dict[str, list[str]] = {}
    for branch, service in (("add-payments", "payments"), ("add-billing", "billing")):
        git(root, "switch", "-q", "-c", branch, "main")
        add_app(root, service)
        assert cli("--root", root, "render")[0] == 0
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", f"add {service}")
        touched[service] = git(root, "diff", "--name-only", "main", branch).split()
    git(root, "switch", "-q", "main")
    git(root, "merge", "-q", "--no-edit", "add-payments")
    git(root, "merge", "-q", "--no-edit", "add-billing")  # check=True: a conflict fails here
    assert git(root, "status", "--porcelain") == ""
    for service, paths in touched.items():
        # each branch added files of its own service only: nothing else to conflict on
        assert all(service in p.split("/")[-1] or f"/{service}/" in p for p in paths), paths
    assert git(root, "diff", "--name-only", "--diff-filter=U") == ""
    code, out, err = cli("--root", root, "render", "--check")
    assert code == 0, out + err
    assert out.startswith("render is up to date")
    for env in ENVS:
        assert "application-" + env + "-payments.yaml" in argo_files(root, env)
        assert "appproject-" + env + "-billing.yaml" in argo_files(root, env)
    for env in ENVS:  # what validate's cross-checks see on disk: every project admits its Application
        on_disk = manifests.load_env_manifests(root, env, f"environments/{env}/manifests")
        assert crosscheck.check_environment(on_disk) == [], env


def test_selective_diff_of_a_new_service_shows_only_its_objects(example: Path, git_env: None, cli) -> None:
    root = example
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    git(root, "switch", "-q", "-c", "add-billing")
    add_app(root, "billing", envs=("dev",))
    assert cli("--root", root, "render")[0] == 0
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "add billing")
    code, out, err = cli(
        "--root", root, "diff", "--base", "main", "--head", "add-billing", "--format", "json"
    )
    assert code == 0, err
    text = json.dumps(json.loads(out))
    assert "AppProject/argocd/dev-billing" in text
    assert "Application/argocd/dev-billing" in text
    assert "hello" not in text
    _, full, _ = cli(
        "--root", root, "diff", "--base", "main", "--head", "add-billing", "--format", "json", "--full"
    )
    assert json.loads(full) == json.loads(out)
