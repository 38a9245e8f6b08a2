"""diff.py (the semantic engine) and diff_formats.py (text, Markdown, JSON), on Resources built inline."""

from __future__ import annotations

import copy
import datetime
import io
import json
import random
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from betcycle.diff.engine import (
    DiffReport,
    EnvInfo,
    Masker,
    compute,
    env_info,
    key_of,
    parse_quantity,
    short_tag,
)
from betcycle.diff.formats import MARKER, write_json, write_markdown, write_text
from betcycle.model.resources import Resource

PRICES = {"currency": "EUR", "cpuPerCoreMonth": 20.0, "memoryPerGiBMonth": 2.5}
ENVS = {
    "dev": EnvInfo("dev", False, dict(PRICES)),
    "prod": EnvInfo("prod", True, {"currency": "USD", "cpuPerCoreMonth": 31.0, "memoryPerGiBMonth": 4.1}),
    "qa": EnvInfo("qa", False, None),
}


def res(doc: dict[str, Any], env: str = "dev", app: str | None = "web") -> Resource:
    kind = doc.get("kind", "x").lower()
    return Resource(
        copy.deepcopy(doc),
        env=env,
        app=app,
        source=f"charts/service/templates/{kind}.yaml.j2",
        output=f"environments/{env}/manifests/{app or 'argocd'}/{kind}-{doc['metadata']['name']}.yaml",
    )


def deployment(
    name: str = "web",
    replicas: int | None = 2,
    image: str = "registry.example.com/web:1.0.0",
    env: list[dict[str, Any]] | None = None,
    cpu: str = "500m",
    memory: str = "1Gi",
    kind: str = "Deployment",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "containers": [
                    {
                        "name": name,
                        "image": image,
                        "env": env if env is not None else [{"name": "PORT", "value": "8080"}],
                        "resources": {
                            "requests": {"cpu": cpu, "memory": memory},
                            "limits": {"memory": "2Gi"},
                        },
                    }
                ]
            },
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "web"},
        "spec": spec,
    }


def obj(kind: str, name: str, api: str = "v1", ns: str = "web", **fields: Any) -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": ns}, **fields}


def outputs(report: DiffReport) -> dict[str, str]:
    out = {}
    for name, write in {
        "text": lambda o: write_text(report, o, colour=False),
        "colour": lambda o: write_text(report, o, colour=True),
        "markdown": lambda o: write_markdown(report, o),
        "json": lambda o: write_json(report, o),
    }.items():
        buf = io.StringIO()
        write(buf)
        out[name] = buf.getvalue()
    return out


def only_object(report: DiffReport) -> Any:
    (env,) = report.envs
    (app,) = env.apps
    (o,) = app.objects
    return o


# --- objects ----------------------------------------------------------------------------------------------


def test_key_of_uses_empty_app_for_argocd_objects() -> None:
    app = res(obj("Application", "prod-web", api="argoproj.io/v1alpha1", ns="argocd"), env="prod", app=None)
    assert key_of(app) == ("prod", "", "argoproj.io", "Application", "argocd", "prod-web")


def test_added_removed_changed_grouped_by_env_and_app() -> None:
    base = [
        res(deployment()),
        res(obj("ConfigMap", "old", data={"a": "1"})),
        res(deployment("api"), app="api"),
    ]
    head = [
        res(deployment(replicas=3)),
        res(obj("ConfigMap", "new", data={"a": "1"})),
        res(deployment("api"), app="api"),
    ]
    report = compute(base, head, ENVS)
    assert report.has_changes and report.envs_changed == ["dev"]
    assert report.counts == {"added": 1, "removed": 1, "changed": 1}
    (app,) = report.envs[0].apps  # api is identical: not reported
    assert app.app == "web"
    assert [(o.status, o.ident) for o in app.objects] == [
        ("added", "ConfigMap/web/new"),
        ("removed", "ConfigMap/web/old"),
        ("changed", "Deployment/web/web"),
    ]
    changed = app.objects[2]
    assert [(f.path, f.old, f.new) for f in changed.fields] == [("spec.replicas", 2, 3)]
    assert changed.manifest == "environments/dev/manifests/web/deployment-web.yaml"
    assert changed.hunk.splitlines()[:2] == [
        "--- a/dev/web/Deployment/web/web",
        "+++ b/dev/web/Deployment/web/web",
    ]
    assert "-  replicas: 2" in changed.hunk and "+  replicas: 3" in changed.hunk
    text = outputs(report)["text"]
    assert "  + ConfigMap/web/new\n" in text and "  - ConfigMap/web/old\n" in text
    assert "  ~ Deployment/web/web\n      spec.replicas: 2 → 3\n" in text


def test_hunk_has_two_lines_of_context() -> None:
    base = deployment()
    head = deployment(image="registry.example.com/web:2.0.0")
    hunk = only_object(compute([res(base)], [res(head)], ENVS)).hunk
    body = hunk.splitlines()[3:]
    changed_at = [i for i, line in enumerate(body) if line.startswith(("-", "+"))]
    assert len(changed_at) == 2 and changed_at[0] == 2  # exactly two context lines before the change
    assert len(body) == changed_at[-1] + 3


def test_reordered_maps_are_no_change() -> None:
    base = deployment()
    head = json.loads(json.dumps(base))
    head = dict(reversed(list(head.items())))
    head["spec"] = dict(reversed(list(head["spec"].items())))
    container = head["spec"]["template"]["spec"]["containers"][0]
    head["spec"]["template"]["spec"]["containers"][0] = dict(reversed(list(container.items())))
    assert not compute([res(base)], [res(head)], ENVS).has_changes
    # with a real change too, the hunk shows only that change, not the reordering
    head["spec"]["replicas"] = 5
    o = only_object(compute([res(base)], [res(head)], ENVS))
    assert [f.path for f in o.fields] == ["spec.replicas"]
    assert [line for line in o.hunk.splitlines()[3:] if line[:1] in "+-"] == [
        "-  replicas: 2",
        "+  replicas: 5",
    ]


def test_list_items_with_names_are_matched_by_name() -> None:
    names = ["A", "B", "C", "D"]
    base = deployment(env=[{"name": n, "value": n.lower()} for n in names])
    head = deployment(env=[{"name": n, "value": n.lower()} for n in ["A", "NEW", "B", "C", "D"]])
    head["spec"]["template"]["spec"]["containers"][0]["env"][4]["value"] = "changed"
    o = only_object(compute([res(base)], [res(head)], ENVS))
    env_path = "spec.template.spec.containers[0].env"
    assert [(f.op, f.path, f.where, f.old, f.new) for f in o.fields] == [
        ("added", f"{env_path}[1]", "web › NEW", None, {"name": "NEW", "value": "new"}),
        ("changed", f"{env_path}[4].value", "web › D", "d", "changed"),
    ]
    text = outputs(compute([res(base)], [res(head)], ENVS))["text"]
    assert f"      {env_path}[4].value (web › D): d → changed\n" in text


def test_removed_and_reordered_named_items() -> None:
    base = deployment(env=[{"name": n, "value": "x"} for n in "ABC"])
    head = deployment(env=[{"name": n, "value": "x"} for n in "CA"])
    o = only_object(compute([res(base)], [res(head)], ENVS))
    assert [(f.op, f.path, f.old, f.new) for f in o.fields] == [
        ("reordered", "spec.template.spec.containers[0].env", ["A", "C"], ["C", "A"]),
        ("removed", "spec.template.spec.containers[0].env[1]", {"name": "B", "value": "x"}, None),
    ]


def test_plain_lists_are_aligned_not_compared_index_by_index() -> None:
    base = obj("ConfigMap", "c", data={"a": "1"}, args=["--a", "--b", "--c"])
    head = obj("ConfigMap", "c", data={"a": "1"}, args=["--a", "--x", "--b", "--c"])
    o = only_object(compute([res(base)], [res(head)], ENVS))
    assert [(f.op, f.path, f.new) for f in o.fields] == [("added", "args[1]", "--x")]


def test_type_changes_are_changes() -> None:
    base = obj("ConfigMap", "c", flag=True, port="8080")
    head = obj("ConfigMap", "c", flag=1, port=8080)
    o = only_object(compute([res(base)], [res(head)], ENVS))
    assert [(f.path, f.old, f.new) for f in o.fields] == [("flag", True, 1), ("port", "8080", 8080)]
    assert 'port: "8080" → 8080' in outputs(compute([res(base)], [res(head)], ENVS))["text"]


# --- secrets ----------------------------------------------------------------------------------------------

SECRET_VALUES = ["hunter2-base64", "s3cr3t-string", "cm-db-password", "env-token-value", "helm-api-key"]


def secret_docs(suffix: str) -> list[dict[str, Any]]:
    s1, s2, s3, s4, s5 = (v + suffix for v in SECRET_VALUES)
    return [
        obj("Secret", "creds", data={"password": s1}, stringData={"token": s2}),
        obj("ConfigMap", "cfg", data={"DB_PASSWORD": s3, "LOG_LEVEL": "debug" + suffix}),
        deployment(env=[{"name": "API_TOKEN", "value": s4}, {"name": "MODE", "value": "m" + suffix}]),
        obj(
            "Application",
            "dev-web",
            api="argoproj.io/v1alpha1",
            ns="argocd",
            spec={"source": {"helm": {"parameters": [{"name": "auth.apiKey", "value": s5}]}}},
        ),
    ]


def test_secret_values_never_appear_in_any_output() -> None:
    base = [res(d, app=None if d["kind"] == "Application" else "web") for d in secret_docs("-old")]
    head = [res(d, app=None if d["kind"] == "Application" else "web") for d in secret_docs("-new")]
    masker = Masker(b"test key")
    changed = compute(base, head, ENVS, masker=masker)
    added = compute([], base, ENVS)
    removed = compute(head, [], ENVS)
    for report in (changed, added, removed):
        for fmt, text in outputs(report).items():
            for raw in SECRET_VALUES:
                assert raw not in text, (fmt, raw)
    text = outputs(changed)["text"]
    assert "LOG_LEVEL: debug-old → debug-new" in text  # not sensitive: shown
    assert "value (web › MODE): m-old → m-new" in text
    digests = re.findall(r"<redacted hmac:[0-9a-f]{12}>", text)
    assert len(digests) >= 10
    secret = next(o for a in changed.envs[0].apps for o in a.objects if o.kind == "Secret")
    (field,) = [f for f in secret.fields if f.path == "data.password"]
    assert field.old != field.new  # the digest shows THAT it changed
    assert field.old == masker.digest("hunter2-base64-old")


def test_unchanged_secret_is_not_reported_and_digests_are_stable_within_a_run() -> None:
    docs = secret_docs("")
    assert not compute([res(d) for d in docs], [res(d) for d in docs], ENVS).has_changes
    masker = Masker()
    assert masker.digest("x") == masker.digest("x") != masker.digest("y")
    assert re.fullmatch(r"<redacted hmac:[0-9a-f]{12}>", masker.digest("x"))
    original = secret_docs("")[0]
    masked = masker.mask(original)
    assert original["data"]["password"] == "hunter2-base64"  # masking works on a copy
    assert masked["data"]["password"] == masker.digest("hunter2-base64")


# --- risks ------------------------------------------------------------------------------------------------


def risk_messages(report: DiffReport, category: str) -> list[str]:
    return [r.message for r in report.risks if r.category == category]


def test_image_and_replica_risks_in_prod() -> None:
    base = deployment(replicas=2, image="123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1.3.2")
    head = deployment(replicas=3, image="123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1.4.0")
    report = compute([res(base, env="prod")], [res(head, env="prod")], ENVS)
    assert risk_messages(report, "image") == [
        "image web: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1.3.2 → "
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1.4.0 (1.3.2 → 1.4.0)"
    ]
    assert risk_messages(report, "replicas") == ["replicas Deployment/web/web: 2 → 3"]
    assert risk_messages(report, "prod") == ["production: 1 changed in 1 app(s): web"]
    assert all(r.prod for r in report.risks if r.category != "environments")
    out = outputs(report)
    assert "  ⚠ prod/web: replicas Deployment/web/web: 2 → 3\n" in out["text"]
    assert "- ⚠️ **prod/web**: replicas Deployment/web/web: 2 → 3\n" in out["markdown"]


def test_default_replicas_and_short_tags() -> None:
    report = compute([res(deployment(replicas=None))], [res(deployment(replicas=4))], ENVS)
    assert risk_messages(report, "replicas") == ["replicas Deployment/web/web: 1 (default) → 4"]
    assert not any(r.prod for r in report.risks)
    assert short_tag("reg:5000/team/app:1.2") == "1.2"
    assert short_tag("reg:5000/team/app") == "latest"
    assert short_tag("app@sha256:" + "a" * 64) == "@sha256:aaaaaaaaaaaa"


def test_deletion_rbac_network_policy_service_and_resources_risks() -> None:
    role = obj("Role", "reader", api="rbac.authorization.k8s.io/v1", rules=[{"verbs": ["get"]}])
    wider = obj("Role", "reader", api="rbac.authorization.k8s.io/v1", rules=[{"verbs": ["get", "delete"]}])
    policy = obj("NetworkPolicy", "web", api="networking.k8s.io/v1", spec={"podSelector": {}})
    svc = obj("Service", "web", spec={"ports": [{"port": 80}]})
    lb = obj("Service", "web", spec={"type": "LoadBalancer", "ports": [{"port": 80}]})
    base = [res(role), res(policy), res(svc), res(deployment()), res(obj("Namespace", "web", ns=""))]
    head = [res(wider), res(lb), res(deployment(cpu="1", memory="1Gi"))]
    report = compute(base, head, ENVS)
    assert risk_messages(report, "deletion") == [
        "deletes 2 object(s): Namespace/web, NetworkPolicy/web/web (deleting a Namespace deletes everything in it)"
    ]
    assert risk_messages(report, "rbac") == [
        "RBAC Role/web/reader changed: rules[0].verbs[1]: (none) → delete"
    ]
    assert risk_messages(report, "network-policy") == [
        "NetworkPolicy/web/web removed (traffic it restricted may be allowed again)"
    ]
    assert risk_messages(report, "service") == [
        "Service/web/web type ClusterIP → LoadBalancer: reachable from outside the cluster"
    ]
    assert risk_messages(report, "resources") == ["resources web (Deployment/web/web): requests.cpu 500m → 1"]
    assert [r.category for r in report.risks] == [
        "environments",
        "deletion",
        "rbac",
        "network-policy",
        "service",
        "resources",
    ]


def test_argocd_application_risks() -> None:
    def app(rev: str, finalizer: bool = True) -> Resource:
        doc = obj(
            "Application",
            "prod-web",
            api="argoproj.io/v1alpha1",
            ns="argocd",
            spec={
                "project": "prod",
                "source": {
                    "repoURL": "https://git.example/p.git",
                    "path": "environments/prod/manifests/web",
                    "targetRevision": rev,
                },
                "destination": {"server": "https://prod.k8s", "namespace": "web"},
            },
        )
        if finalizer:
            doc["metadata"]["finalizers"] = ["resources-finalizer.argocd.argoproj.io"]
        return res(doc, env="prod", app=None)

    changed = compute([app("main")], [app("v2")], ENVS)
    assert risk_messages(changed, "argocd") == [
        "Argo CD Application/argocd/prod-web changed: spec.source.targetRevision: main → v2"
    ]
    assert changed.envs[0].apps[0].label == "Argo CD"
    removed = compute([app("main")], [], ENVS)
    assert "makes Argo CD delete everything the app deployed" in risk_messages(removed, "argocd")[0]
    assert "left running, unmanaged" in risk_messages(compute([app("main", False)], [], ENVS), "argocd")[0]
    added = compute([], [app("main")], ENVS)
    assert risk_messages(added, "argocd") == [
        "Argo CD Application/argocd/prod-web added: syncs environments/prod/manifests/web@main "
        "to https://prod.k8s namespace web"
    ]


# --- quantities, requests and cost --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250m", "0.25"),
        ("1", "1"),
        (2, "2"),
        (0.5, "0.5"),
        ("1.5", "1.5"),
        (".5", "0.5"),
        ("5.", "5"),
        ("1e3", "1000"),
        ("1E3", "1000"),
        ("1.5e-3", "0.0015"),
        ("1k", "1000"),
        ("1M", "1000000"),
        ("1E", "1000000000000000000"),
        ("1Ki", "1024"),
        ("1.5Gi", str(3 * 2**29)),
        ("1Ei", str(2**60)),
        ("500u", "0.0005"),
        ("+100n", "0.0000001"),
    ],
)
def test_parse_quantity(text: Any, value: str) -> None:
    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize("bad", ["abc", "1K", "1.2.3", "", "Mi", "1e", "1 Gi x", True, None, [1]])
def test_parse_quantity_rejects(bad: Any) -> None:
    with pytest.raises(ValueError):
        parse_quantity(bad)


@given(st.integers(min_value=0, max_value=10**9))
def test_millicores_property(n: int) -> None:
    assert parse_quantity(f"{n}m") == Decimal(n) / 1000
    assert parse_quantity(f"{n}m") * 1000 == parse_quantity(str(n))


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]))
def test_binary_suffix_property(n: int, suffix: str) -> None:
    power = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].index(suffix) + 1
    assert parse_quantity(f"{n}{suffix}") == n * 2 ** (10 * power)
    assert parse_quantity(f"{n}{suffix}") == parse_quantity(f"{n * 1024}{suffix}") / 1024


@given(st.integers(min_value=-(10**6), max_value=10**6), st.integers(min_value=-12, max_value=18))
def test_decimal_exponent_property(n: int, exp: int) -> None:
    assert parse_quantity(f"{n}e{exp}") == Decimal(n).scaleb(exp)


def test_cost_with_pricing() -> None:
    # +1 replica of (0.5 core, 1 GiB): 0.5 × 20 + 1 × 2.5 = 12.50 EUR
    report = compute([res(deployment(replicas=2))], [res(deployment(replicas=3))], ENVS)
    (env,) = report.envs
    assert (env.cpu_base, env.cpu_head, env.mem_base, env.mem_head) == (1, Decimal("1.5"), 2, 3)
    assert env.cost_delta == Decimal("12.50")
    out = outputs(report)
    assert "  dev: CPU 1 → 1.5 cores (+0.5), memory 2 → 3 GiB (+1); est. +12.50 EUR/month\n" in out["text"]
    assert "| **dev** | 0 | 0 | 1 | +0.5 (1 → 1.5) | +1 (2 → 3) | +12.50 EUR |" in out["markdown"]
    cost = report.to_dict()["environments"][0]["monthly_cost"]
    assert cost == {"currency": "EUR", "base": 25.0, "head": 37.5, "delta": 12.5}


def test_cost_decrease_and_no_price_table() -> None:
    report = compute([res(deployment(replicas=3), env="qa")], [res(deployment(replicas=1), env="qa")], ENVS)
    out = outputs(report)
    assert "  qa: CPU 1.5 → 0.5 cores (-1), memory 3 → 1 GiB (-2); no price table\n" in out["text"]
    assert "| -1 (1.5 → 0.5) | -2 (3 → 1) | no price table |" in out["markdown"]
    assert report.to_dict()["environments"][0]["monthly_cost"] is None
    down = compute([res(deployment(replicas=3))], [res(deployment(replicas=1))], ENVS)
    assert down.envs[0].cost_delta == Decimal("-25.0")
    assert "est. -25.00 EUR/month" in outputs(down)["text"]


def test_hpa_min_replicas_sizes_the_workload() -> None:
    hpa = obj(
        "HorizontalPodAutoscaler",
        "web",
        api="autoscaling/v2",
        spec={
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 4,
        },
    )
    elsewhere = copy.deepcopy(hpa)
    elsewhere["metadata"]["namespace"] = "other"
    base = [res(deployment(replicas=2)), res(elsewhere)]
    head = [res(deployment(replicas=2)), res(hpa)]
    (env,) = compute(base, head, ENVS).envs
    assert env.cpu_base == 1  # the HPA in another namespace does not target it: 2 × 0.5
    assert env.cpu_head == 2  # minReplicas 4 × 0.5
    assert env.mem_head == 4


def test_requests_limits_init_containers_daemonsets_and_jobs() -> None:
    ds = deployment("agent", kind="DaemonSet", replicas=None, cpu="100m", memory="128Mi")
    pod = ds["spec"]["template"]["spec"]
    pod["initContainers"] = [
        {"name": "init", "resources": {"requests": {"cpu": "4", "memory": "4Gi"}}},
        {
            "name": "proxy",
            "restartPolicy": "Always",
            "resources": {"limits": {"cpu": "200m", "memory": "128Mi"}},
        },
    ]
    job = deployment("migrate", kind="Job", replicas=None, cpu="1", memory="512Mi")
    job["apiVersion"] = "batch/v1"
    job["spec"]["parallelism"] = 2
    (env,) = compute([], [res(ds), res(job)], ENVS).envs
    # DaemonSet: 100m + sidecar 200m (its limit is the request), init container not counted; Job: 2 × 1
    assert env.cpu_head == Decimal("2.3")
    assert env.mem_head == Decimal("1.25")
    assert env.notes == ("1 DaemonSet(s) counted as 1 replica: their requests apply per node",)
    assert "    note: 1 DaemonSet(s) counted as 1 replica" in outputs(compute([], [res(ds)], ENVS))["text"]


def test_bad_quantity_is_noted_not_fatal() -> None:
    (env,) = compute([], [res(deployment(cpu="lots"))], ENVS).envs
    assert env.cpu_head == Decimal("0")
    assert env.notes == ("Deployment/web/web: cpu 'lots' is not a Kubernetes quantity (counted as 0)",)


def test_env_info_from_environment_data() -> None:
    info = env_info("prod", {"name": "prod", "pricing": PRICES})
    assert info == EnvInfo("prod", True, PRICES)
    assert env_info("staging", {}) == EnvInfo("staging", False, None)


# --- environments -----------------------------------------------------------------------------------------


def test_removed_environment() -> None:
    base = [res(deployment(), env="qa"), res(obj("ConfigMap", "c", data={}), env="qa"), res(deployment())]
    report = compute(base, [res(deployment())], ENVS)
    (env,) = report.envs
    assert (env.name, env.status, env.count("removed")) == ("qa", "removed", 2)
    assert (env.cpu_base, env.cpu_head) == (1, 0)
    assert risk_messages(report, "environment") == ["environment removed: all 2 object(s) deleted"]
    assert risk_messages(report, "deletion") == []  # the environment line says it
    out = outputs(report)
    assert "  qa: CPU 1 → 0 cores (-1), memory 2 → 0 GiB (-2); no price table\n" in out["text"]
    assert "**qa** (removed)" in out["markdown"]


def test_new_environment_not_in_envs_defaults() -> None:
    report = compute([], [res(deployment(), env="prod-eu")], {})
    (env,) = report.envs
    assert env.status == "added" and env.info.is_prod and env.cost_delta is None
    assert risk_messages(report, "environment") == ["new environment: 1 object(s) created"]


def test_no_changes() -> None:
    docs = [res(deployment()), res(obj("ConfigMap", "c", data={"a": "b"}))]
    report = compute(docs, copy.deepcopy(docs), ENVS)
    assert not report.has_changes and report.envs_changed == [] and report.risks == ()
    out = outputs(report)
    assert out["text"] == out["colour"] == "no changes\n"
    assert out["markdown"].splitlines()[0] == MARKER and "No changes" in out["markdown"]
    assert json.loads(out["json"])["has_changes"] is False
    assert compute([], [], {}).to_dict()["environments"] == []


# --- formats ----------------------------------------------------------------------------------------------


def test_markdown_layout() -> None:
    base = [res(deployment(), env="prod"), res(deployment(), env="dev")]
    head = [res(deployment(replicas=5), env="prod"), res(deployment(image="r/web:2"), env="dev")]
    md = outputs(compute(base, head, ENVS))["markdown"]
    lines = md.splitlines()
    assert lines[0] == MARKER and lines[1] == "## BetCycle diff"
    assert lines[3] == "2 environments change (dev, ⚠️ prod): 2 changed"
    assert md.index("### Risks") < md.index("### Environments") < md.index("### dev") < md.index("### ⚠️ prod")
    assert md.count("<details><summary><b>web</b>: 1 changed</summary>") == 2
    assert md.count("```diff\n--- a/") == 2
    assert "| ~ `Deployment/web/web` | `spec.replicas` | `2` | `5` |" in md


def test_markdown_escapes_pipes_and_backticks() -> None:
    base = obj("ConfigMap", "c", data={"cmd": "a | b"})
    head = obj("ConfigMap", "c", data={"cmd": "echo `id` | tee"})
    md = outputs(compute([res(base)], [res(head)], ENVS))["markdown"]
    (row,) = [line for line in md.splitlines() if "`data.cmd`" in line]
    assert row == "| ~ `ConfigMap/web/c` | `data.cmd` | `a \\| b` | ``echo `id` \\| tee`` |"
    assert len(re.findall(r"(?<!\\)\|", row)) == 5  # only the cell separators are bare pipes
    fenced = obj("ConfigMap", "c", data={"doc": "```\ncode\n```\n"})
    md = outputs(compute([res(base)], [res(fenced)], ENVS))["markdown"]
    assert "````diff\n" in md  # the fence is longer than any run of backticks in the hunk


def test_markdown_escapes_risk_text() -> None:
    base = deployment(image="r/web:<b>1</b>")
    head = deployment(image="r/web:*2*")
    md = outputs(compute([res(base)], [res(head)], ENVS))["markdown"]
    assert "image web: r/web:\\<b\\>1\\</b\\> → r/web:\\*2\\*" in md


def test_markdown_truncation() -> None:
    big = "x" * 200
    base = [res(obj("ConfigMap", "c", data={"v": big + "a"}), app=f"app{i:02}") for i in range(40)]
    head = [res(obj("ConfigMap", "c", data={"v": big + "b"}), app=f"app{i:02}") for i in range(40)]
    report = compute(base, head, ENVS)
    full = io.StringIO()
    write_markdown(report, full)
    assert "truncated" not in full.getvalue()
    for limit in (3000, 6000, 20000):
        out = io.StringIO()
        write_markdown(report, out, max_chars=limit, artifact_hint="see the `betcycle-diff` artifact")
        text = out.getvalue()
        assert len(text) <= limit
        assert text.startswith(MARKER + "\n") and "| **dev** | 0 | 0 | 40 |" in text
        shown = text.count("<details>")
        assert 0 < shown < 40
        assert text.rstrip().endswith(
            f"⚠️ Diff truncated at {limit} characters: {shown} of 40 app sections shown; "
            "see the `betcycle-diff` artifact"
        )
        assert text.count("<details>") == text.count("</details>")


def test_markdown_truncation_keeps_within_limit_with_many_risks() -> None:
    base = [res(deployment(f"w{i}"), app=f"a{i:03}") for i in range(300)]
    head = [res(deployment(f"w{i}", image=f"r/w:{i}"), app=f"a{i:03}") for i in range(300)]
    out = io.StringIO()
    write_markdown(compute(base, head, ENVS), out, max_chars=5000)
    text = out.getvalue()
    assert len(text) <= 5000 and "more risk(s)" in text and "0 of 300 app sections shown" in text


def test_text_colour() -> None:
    report = compute([res(deployment())], [res(deployment(replicas=3))], ENVS)
    out = outputs(report)
    assert "\033[" not in out["text"]
    assert "\033[33m~ Deployment/web/web\033[0m" in out["colour"]
    assert "\033[32m+  replicas: 3\033[0m" in out["colour"]


def test_json_is_safe_and_complete() -> None:
    base = obj("ConfigMap", "c", data={"when": datetime.date(2024, 1, 1)})
    head = obj("ConfigMap", "c", data={"when": datetime.date(2024, 1, 2)})
    report = compute([res(base)], [res(head)], ENVS)
    doc = json.loads(outputs(report)["json"])
    (field,) = doc["environments"][0]["apps"][0]["objects"][0]["fields"]
    assert field == {
        "path": "data.when",
        "old": "2024-01-01",
        "new": "2024-01-02",
        "op": "changed",
        "where": "",
    }
    assert doc["summary"] == {"environments": ["dev"], "prod": [], "added": 0, "removed": 0, "changed": 1}
    assert doc["environments"][0]["requests"]["cpu_cores"] == {"base": 0.0, "head": 0.0, "delta": 0.0}


def test_deterministic() -> None:
    base = [res(deployment(), env=e, app=a) for e in ("dev", "prod", "qa") for a in ("x", "y", "z")]
    base += [res(d) for d in secret_docs("-1")]
    head = [
        res(deployment(replicas=4, image="r/web:9"), env=e, app=a)
        for e in ("dev", "prod")
        for a in ("y", "z", "w")
    ]
    head += [res(d) for d in secret_docs("-2")]
    key = Masker(b"one run")  # deterministic for one key; every run draws its own
    first = outputs(compute(base, head, ENVS, masker=key))
    rng = random.Random(7)
    shuffled_base, shuffled_head = base[:], head[:]
    rng.shuffle(shuffled_base)
    rng.shuffle(shuffled_head)
    assert outputs(compute(shuffled_base, shuffled_head, ENVS, masker=key)) == first
    assert outputs(compute(base, head, ENVS, masker=key)) == first
    # two runs differ only in their digests: numbered by first appearance, they are the same report
    run1, run2 = outputs(compute(base, head, ENVS)), outputs(compute(base, head, ENVS))
    assert run1 != run2
    assert {k: numbered_digests(v) for k, v in run1.items()} == {
        k: numbered_digests(v) for k, v in first.items()
    }
    assert {k: numbered_digests(v) for k, v in run2.items()} == {
        k: numbered_digests(v) for k, v in first.items()
    }


def numbered_digests(text: str) -> str:
    seen: dict[str, str] = {}
    return re.sub(r"redacted hmac:[0-9a-f]{12}", lambda m: seen.setdefault(m[0], f"#{len(seen)}"), text)
