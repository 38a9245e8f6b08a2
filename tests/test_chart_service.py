"""The shipped `service` chart (charts/service): what every service gets for observability and security.

These render a copy of the repository's own inputs (never the live manifests) and read the result."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

RUNBOOKS = REPO / "docs" / "runbooks"
ALERTS = {
    "errorRate": "ServiceErrorRateHigh",
    "latencyP99": "ServiceLatencyP99High",
    "podRestarts": "ServicePodRestarting",
    "replicasUnavailable": "ServiceReplicasUnavailable",
    "cpuNearLimit": "ServiceCPUNearLimit",
    "memoryNearLimit": "ServiceMemoryNearLimit",
}


def copy_inputs(dest: Path) -> Path:
    """What `render` and `validate` read (settings, apps, environments, charts, policies, CRD schemas)."""
    dest.mkdir()
    for name in ("betcycle.yaml", "crds.lock.yaml"):
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, dest / name)
    for app in sorted(REPO.glob("apps/*/app.yaml")):
        target = dest / app.relative_to(REPO)
        target.parent.mkdir(parents=True)
        shutil.copy2(app, target)
    for part in ("charts", "environments", "policies", "schemas"):
        if (REPO / part).is_dir():
            shutil.copytree(
                REPO / part, dest / part, ignore=shutil.ignore_patterns("manifests", "__pycache__")
            )
    return dest


def hello_objects(root: Path, env: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The rendered objects of hello in ENV, keyed by (kind, name)."""
    objects = {}
    for path in sorted((root / "environments" / env / "manifests" / "hello").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def alerts_of(objects: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    rule = objects[("PrometheusRule", "hello")]
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def dashboard_of(objects: dict[tuple[str, str], dict[str, Any]], env: str) -> dict[str, Any]:
    cm = objects[("ConfigMap", "hello-dashboard")]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    return json.loads(cm["data"][f"hello-{env}.json"])  # type: ignore[no-any-return]


def container_env(objects: dict[tuple[str, str], dict[str, Any]]) -> dict[str, str]:
    container = objects[("Deployment", "hello")]["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"]}


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from betcycle.cli import main

    root = copy_inputs(tmp_path_factory.mktemp("chart") / "repo")
    assert main(["--root", str(root), "render"]) == 0
    return root


def render_prod_with(root: Path, cli: Any, values: str) -> dict[tuple[str, str], dict[str, Any]]:
    """hello in prod, after appending VALUES to environments/prod/apps/hello.yaml."""
    env_file = root / "environments/prod/apps/hello.yaml"
    env_file.write_text(env_file.read_text() + values)
    code, out, err = cli("--root", root, "render", "--env", "prod", "--app", "hello")
    assert code == 0, out + err
    return hello_objects(root, "prod")


def test_prod_has_the_platform_objects_for_hello(shipped: Path) -> None:
    kinds = {kind for kind, _ in hello_objects(shipped, "prod")}
    assert {
        "ServiceMonitor",
        "PrometheusRule",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceAccount",
    } <= kinds
    assert "Secret" not in kinds


def test_the_rendered_example_validates_strictly(shipped: Path, cli: Any, crd_cache: Path) -> None:
    code, out, err = cli("--root", shipped, "validate", "--strict", "--schema-cache", crd_cache)
    assert code == 0, out + err
    assert " 0 error(s)" in out


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_alert_links_a_runbook_that_exists(shipped: Path, env: str) -> None:
    alerts = alerts_of(hello_objects(shipped, env))
    assert sorted(a["alert"] for a in alerts) == sorted(ALERTS.values())
    base = "https://github.com/example-org/platform/blob/main/docs/runbooks/"
    for alert in alerts:
        url = alert["annotations"]["runbook_url"]
        assert url.startswith(base), url
        page = RUNBOOKS / url.removeprefix(base)
        assert page.is_file(), f"{alert['alert']}: {url} names no file in docs/runbooks/"
        assert page.read_text().startswith(f"# {alert['alert']}\n")
        assert {"severity", "service", "namespace", "environment", "team"} <= set(alert["labels"])
        assert alert["labels"]["environment"] == env


def test_every_runbook_belongs_to_an_alert() -> None:
    pages = {p.name for p in RUNBOOKS.glob("*.md")} - {"README.md"}
    index = (RUNBOOKS / "README.md").read_text()
    assert len(pages) == len(ALERTS)
    for page in pages:
        assert f"]({page})" in index, f"docs/runbooks/README.md does not link {page}"


def test_alerts_use_the_metrics_the_service_template_exports(shipped: Path) -> None:
    server = next((REPO / "templates/service").rglob("server.py.jinja")).read_text()
    exported = set(re.findall(r'"(http_[a-z_]+)"', server))
    dashboard = json.dumps(dashboard_of(hello_objects(shipped, "prod"), "prod"))
    exprs = " ".join(a["expr"] for a in alerts_of(hello_objects(shipped, "prod"))) + dashboard
    used = {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"\b(http_[a-z_]+)\{", exprs)}
    assert used, "the alerts and dashboard read no service metric"
    assert used <= exported, f"not exported by the service template: {sorted(used - exported)}"
    assert 'code=~\\"5..\\"' in dashboard  # the status-labelled counter


def test_thresholds_come_from_the_values(tmp_path: Path, cli: Any) -> None:
    objects = render_prod_with(
        copy_inputs(tmp_path / "repo"),
        cli,
        "alerts:\n  errorRate: {threshold: 0.01, for: 2m, severity: warning}\n"
        "  latencyP99: {threshold: 1.25}\n",
    )
    alerts = {a["alert"]: a for a in alerts_of(objects)}
    error = alerts["ServiceErrorRateHigh"]
    assert error["expr"].endswith("> 0.01") and error["for"] == "2m"
    assert error["labels"]["severity"] == "warning"
    assert "1%" in error["annotations"]["summary"]
    assert alerts["ServiceLatencyP99High"]["expr"].endswith("> 1.25")


def test_the_dashboard_is_grafana_json_with_the_four_panels(shipped: Path) -> None:
    dashboard = dashboard_of(hello_objects(shipped, "prod"), "prod")
    assert dashboard["uid"] == "hello-prod" and len(dashboard["uid"]) <= 40
    assert dashboard["title"] == "hello (prod)"
    titles = [p["title"] for p in dashboard["panels"]]
    assert {"Requests", "Errors", "Latency", "Saturation"} <= set(titles)
    assert len({p["id"] for p in dashboard["panels"]}) == len(titles)
    for panel in dashboard["panels"]:
        assert panel["targets"] and all('namespace="hello"' in t["expr"] for t in panel["targets"])
    assert dashboard["templating"]["list"][0]["type"] == "datasource"


def test_the_container_gets_opentelemetry_settings(shipped: Path) -> None:
    env = container_env(hello_objects(shipped, "prod"))
    assert env["OTEL_SERVICE_NAME"] == "hello"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://opentelemetry-collector.")
    attributes = dict(kv.split("=", 1) for kv in env["OTEL_RESOURCE_ATTRIBUTES"].split(","))
    assert attributes["deployment.environment"] == "prod"
    assert attributes["service.namespace"] == "hello"


def test_env_replaces_an_opentelemetry_variable(tmp_path: Path, cli: Any) -> None:
    objects = render_prod_with(copy_inputs(tmp_path / "repo"), cli, "env:\n  OTEL_SERVICE_NAME: hello-api\n")
    container = objects[("Deployment", "hello")]["spec"]["template"]["spec"]["containers"][0]
    names = [e["name"] for e in container["env"]]
    assert names.count("OTEL_SERVICE_NAME") == 1
    assert container_env(objects)["OTEL_SERVICE_NAME"] == "hello-api"


def test_hardening_defaults(shipped: Path) -> None:
    objects = hello_objects(shipped, "prod")
    assert objects[("ServiceAccount", "hello")]["automountServiceAccountToken"] is False
    pod = objects[("Deployment", "hello")]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    assert container["imagePullPolicy"] == "Always"
    assert container["resources"]["limits"]["cpu"] == "500m"
    app = yaml.safe_load(
        (shipped / "environments/prod/manifests/argocd/application-prod-hello.yaml").read_text()
    )
    labels = app["spec"]["syncPolicy"]["managedNamespaceMetadata"]["labels"]
    assert labels == {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "audit", "warn")}


@pytest.mark.parametrize(
    ("values", "gone"),
    [
        ("metrics: {enabled: false}\n", ("ServiceMonitor", "hello")),
        ("alerts: {enabled: false}\n", ("PrometheusRule", "hello")),
        ("dashboard: {enabled: false}\n", ("ConfigMap", "hello-dashboard")),
        ("autoscaling: {enabled: false}\n", ("HorizontalPodAutoscaler", "hello")),
        ("podDisruptionBudget: {enabled: false}\n", ("PodDisruptionBudget", "hello")),
        ("networkPolicy: {enabled: false}\n", ("NetworkPolicy", "hello")),
        (
            "alerts:\n" + "".join(f"  {key}: {{enabled: false}}\n" for key in ALERTS),
            ("PrometheusRule", "hello"),
        ),
    ],
)
def test_switching_a_feature_off_removes_it(
    tmp_path: Path, cli: Any, values: str, gone: tuple[str, str]
) -> None:
    root = copy_inputs(tmp_path / "repo")
    assert gone in render_prod_with(root, cli, "")
    assert gone not in render_prod_with(root, cli, values)


@pytest.mark.parametrize("key", sorted(ALERTS))
def test_switching_one_alert_off_keeps_the_others(tmp_path: Path, cli: Any, key: str) -> None:
    root = copy_inputs(tmp_path / "repo")
    objects = render_prod_with(root, cli, f"alerts:\n  {key}: {{enabled: false}}\n")
    names = {a["alert"] for a in alerts_of(objects)}
    assert names == set(ALERTS.values()) - {ALERTS[key]}


def test_opentelemetry_off_removes_the_variables(tmp_path: Path, cli: Any) -> None:
    root = copy_inputs(tmp_path / "repo")
    env = container_env(render_prod_with(root, cli, "opentelemetry: {enabled: false}\n"))
    assert not [name for name in env if name.startswith("OTEL_")]
    assert env["SERVICE_NAME"] == "hello"


def test_a_bad_threshold_is_refused_at_its_line(tmp_path: Path, cli: Any) -> None:
    root = copy_inputs(tmp_path / "repo")
    env_file = root / "environments/prod/apps/hello.yaml"
    env_file.write_text(env_file.read_text() + "alerts:\n  errorRate: {threshold: 5}\n")
    code, out, err = cli("--root", root, "render", "--env", "prod")
    assert code == 2
    assert "environments/prod/apps/hello.yaml" in out + err
