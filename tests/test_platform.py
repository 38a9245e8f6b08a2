"""Platform applications (render/platform.py): environments/<env>/platform.yaml to Argo CD Helm Applications."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from betcycle.diff.changes import scope_of
from betcycle.model.repo import load_repo
from betcycle.render import engine as render
from tests.conftest import git, write_tree

REPO = Path(__file__).resolve().parents[1]
ARGO = "environments/dev/manifests/argocd"
PLATFORM = "environments/dev/platform.yaml"
SETTINGS = """\
repoURL: https://github.com/example-org/platform.git
argocd:
  namespace: argocd
platform:
  allowedChartRepositories:
    - https://charts.jetstack.io
    - https://grafana.github.io/helm-charts
"""
COMPONENTS = """\
components:
  - name: cert-manager
    chart:
      repoURL: https://charts.jetstack.io
      chart: cert-manager
      targetRevision: v1.18.2
    namespace: cert-manager
    syncWave: -9
    values:
      crds:
        enabled: true
  - name: loki
    chart:
      repoURL: https://grafana.github.io/helm-charts
      chart: loki
      targetRevision: 6.6.4
    namespace: observability
    valuesFiles:
      - platform/loki.yaml
    values:
      singleBinary:
        replicas: 2
"""
LOKI_VALUES = """\
deploymentMode: SingleBinary
singleBinary:
  replicas: 1
  persistence:
    size: 10Gi
"""


def with_platform(root: Path, components: str = COMPONENTS, settings: str = SETTINGS) -> Path:
    return write_tree(
        root,
        {
            "betcycle.yaml": settings,
            PLATFORM: components,
            "environments/dev/platform/loki.yaml": LOKI_VALUES,
        },
    )


def load(root: Path, rel: str) -> dict:
    doc = yaml.safe_load((root / rel).read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def first_error(err: str) -> str:
    return err.strip().splitlines()[0].removeprefix("error: ")


def test_the_feature_is_optional(example: Path, cli) -> None:
    assert not (example / PLATFORM).exists()
    assert not list((example / ARGO).glob("*platform*"))
    code, out, err = cli("--root", example, "render", "--check")
    assert code == 0, out + err


def test_components_render_to_helm_applications_and_a_platform_project(example: Path, cli) -> None:
    with_platform(example)
    code, out, err = cli("--root", example, "render", "--env", "dev")
    assert code == 0, out + err
    app = load(example, f"{ARGO}/application-dev-platform-loki.yaml")
    assert app["spec"]["project"] == "dev-platform"
    assert app["spec"]["source"] == {
        "repoURL": "https://grafana.github.io/helm-charts",
        "chart": "loki",
        "targetRevision": "6.6.4",
        "helm": {
            "releaseName": "loki",
            # the values file, then the inline values on top (maps merge, scalars replace)
            "valuesObject": {
                "deploymentMode": "SingleBinary",
                "singleBinary": {"replicas": 2, "persistence": {"size": "10Gi"}},
            },
        },
    }
    assert app["spec"]["destination"] == {
        "server": "https://kubernetes.default.svc",
        "namespace": "observability",
    }
    assert app["metadata"]["annotations"] == {"argocd.argoproj.io/sync-wave": "-5"}  # the default wave
    assert "CreateNamespace=true" in app["spec"]["syncPolicy"]["syncOptions"]
    text = (example / f"{ARGO}/application-dev-platform-loki.yaml").read_text(encoding="utf-8")
    assert text.splitlines()[1:3] == [
        "# template: betcycle/platform.py",
        "# values: environments/dev/environment.yaml, betcycle.yaml, environments/dev/platform.yaml, "
        "environments/dev/platform/loki.yaml",
    ]
    cert = load(example, f"{ARGO}/application-dev-platform-cert-manager.yaml")
    assert cert["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "-9"
    assert cert["spec"]["source"]["helm"]["valuesObject"] == {"crds": {"enabled": True}}

    project = load(example, f"{ARGO}/appproject-dev-platform.yaml")
    assert project["spec"]["sourceRepos"] == [
        "https://charts.jetstack.io",
        "https://grafana.github.io/helm-charts",
    ]
    assert [d["namespace"] for d in project["spec"]["destinations"]] == ["cert-manager", "observability"]
    # the project exists before any component syncs
    assert int(project["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) < -9


def test_rendered_platform_validates_strictly_against_the_argocd_crds(
    example: Path, cli, crd_cache: Path
) -> None:
    with_platform(example)
    for policy in ("BC013", "BC030", "BC031"):
        shutil.copy2(REPO / f"policies/{policy}.yaml", example / f"policies/{policy}.yaml")
    assert cli("--root", example, "render")[0] == 0
    code, out, err = cli("--root", example, "validate", "--env", "dev", "--schema-cache", crd_cache)
    assert code == 0, out + err
    assert "0 error(s)" in out


def test_render_is_deterministic(example: Path, cli) -> None:
    with_platform(example)
    first = render.render(load_repo(example), ["dev"]).files
    second = render.render(load_repo(example), ["dev"]).files
    assert first == second
    assert cli("--root", example, "render")[0] == 0
    code, out, err = cli("--root", example, "render", "--check")
    assert code == 0, out + err


@pytest.mark.parametrize("version", ["^1.18.0", "1.18.*", "*", "latest", "HEAD", "1.18", ">=1.0.0", "1.18.x"])
def test_an_unpinned_chart_version_is_refused_at_its_line(example: Path, cli, version: str) -> None:
    with_platform(example, COMPONENTS.replace("targetRevision: v1.18.2", f'targetRevision: "{version}"'))
    code, _, err = cli("--root", example, "render")
    assert code == 2
    assert first_error(err) == (
        f'{PLATFORM}:6: components[0].chart.targetRevision: chart version "{version}" is not one exact version'
    )
    assert "no ranges" in err
    assert not (example / f"{ARGO}/application-dev-platform-cert-manager.yaml").exists()


def test_schema_errors_name_the_file_and_line(example: Path, cli) -> None:
    with_platform(example, COMPONENTS.replace("    syncWave: -9\n", "    syncWave: -9\n    sync_wave: 1\n"))
    code, _, err = cli("--root", example, "render")
    assert code == 2
    assert first_error(err) == f"{PLATFORM}:9: unknown key 'components[0].sync_wave'"
    with_platform(example, "components:\n  - name: Loki!\n    namespace: observability\n")
    code, _, err = cli("--root", example, "render")
    assert code == 2
    assert f"{PLATFORM}:2: " in err and "chart" in err
    assert "Traceback" not in err


def test_a_chart_repository_outside_the_allow_list_is_refused(example: Path, cli) -> None:
    with_platform(example, COMPONENTS.replace("https://charts.jetstack.io", "https://charts.example.net"))
    code, _, err = cli("--root", example, "render")
    assert code == 2
    assert first_error(err) == (
        f"{PLATFORM}:4: chart repository https://charts.example.net of component 'cert-manager' is not in "
        "betcycle.yaml platform.allowedChartRepositories"
    )
    assert "add the repository to the allow-list" in err
    assert not (example / f"{ARGO}/appproject-dev-platform.yaml").exists()  # nothing written


def test_without_an_allow_list_every_chart_repository_is_refused(example: Path, cli) -> None:
    with_platform(example, settings=SETTINGS.split("platform:")[0])
    code, _, err = cli("--root", example, "render")
    assert code == 2
    assert f"{PLATFORM}:4: chart repository https://charts.jetstack.io" in err
    assert f"{PLATFORM}:14: chart repository https://grafana.github.io/helm-charts" in err


def test_missing_values_file_and_repeated_names(example: Path, cli) -> None:
    with_platform(example)
    (example / "environments/dev/platform/loki.yaml").unlink()
    code, _, err = cli("--root", example, "render")
    assert code == 2
    assert first_error(err).startswith(f"{PLATFORM}:19: values file 'platform/loki.yaml' of component 'loki'")
    with_platform(example, COMPONENTS.replace("name: loki", "name: cert-manager"))
    code, _, err = cli("--root", example, "render")
    assert code == 2
    assert f"{PLATFORM}:12: component 'cert-manager' is declared twice (first on line 2)" in err


def test_values_file_must_be_a_mapping(example: Path, cli) -> None:
    with_platform(example)
    (example / "environments/dev/platform/loki.yaml").write_text("- a\n- b\n", encoding="utf-8")
    code, _, err = cli("--root", example, "render")
    assert code == 2
    assert first_error(err) == (
        "environments/dev/platform/loki.yaml:1: expected a mapping of Helm values at the top of the file"
    )


def test_platform_changes_select_the_environments_argocd_objects() -> None:
    for path in (PLATFORM, "environments/dev/platform/loki.yaml"):
        scope = scope_of([path], {}, None)
        assert scope.covers("dev", "argocd") and not scope.covers("dev", "hello")
        assert not scope.covers("prod", "argocd")


def test_diff_shows_a_chart_version_bump(repo_git: Path, cli) -> None:
    with_platform(repo_git)
    assert cli("--root", repo_git, "render")[0] == 0
    git(repo_git, "add", "-A")
    git(repo_git, "commit", "-q", "-m", "platform")
    p = repo_git / PLATFORM
    p.write_text(p.read_text().replace("targetRevision: 6.6.4", "targetRevision: 6.7.0"), encoding="utf-8")
    code, out, err = cli("--root", repo_git, "diff", "--base", "HEAD", "--format", "json", "--exit-code")
    assert code == 1, out + err
    report = json.loads(out)
    text = json.dumps(report)
    assert "dev-platform-loki" in text and "6.7.0" in text
    assert "dev-platform-cert-manager" not in text
