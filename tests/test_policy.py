"""Policies as code: loading (with line-numbered errors), evaluation, waivers and the list/test verbs."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from betcycle.errors import UserError, UserErrors
from betcycle.model.resources import Resource
from betcycle.policy.engine import (
    PolicySet,
    count_waived,
    find_origin,
    load_policies,
    run_list,
    run_test,
    selector_matches,
)
from tests.conftest import write_tree

REPO = Path(__file__).resolve().parents[1]
TODAY = dt.date(2025, 6, 1)


def shipped_catalogue(tmp_path: Path) -> Path:
    """A root holding a copy of the shipped policies/*.yaml without waivers.yaml (the team's own data)."""
    (tmp_path / "policies").mkdir()
    for f in sorted((REPO / "policies").glob("*.yaml")):
        if f.name != "waivers.yaml":
            shutil.copy2(f, tmp_path / "policies" / f.name)
    return tmp_path


def policy_text(
    pid: str = "TT001",
    *,
    kinds: str = "[Deployment, CronJob, Pod, Job]",
    subject: str = "resource",
    schema: str = "{type: object}",
    match_extra: str = "",
    extra: str = "",
    severity: str = "error",
) -> str:
    """A valid policy file; `schema` is a one-line flow mapping, `match_extra`/`extra` are raw lines."""
    return (
        f"id: {pid}\n"
        f"name: test-{pid.lower()}\n"
        f"title: Test policy {pid}\n"
        f"severity: {severity}\n"
        "rationale: because\n"
        "hint: fix it\n"
        "match:\n"
        f"  kinds: {kinds}\n"
        f"{match_extra}"
        f"subject: {subject}\n"
        f"schema: {schema}\n"
        f"{extra}"
    )


def load(tmp_path: Path, files: dict[str, str]) -> PolicySet:
    write_tree(tmp_path, files)
    return load_policies(tmp_path)


def load_errors(tmp_path: Path, files: dict[str, str]) -> list[UserError]:
    write_tree(tmp_path, files)
    with pytest.raises(UserErrors) as info:
        load_policies(tmp_path)
    return info.value.errors


def deployment(
    name: str = "api",
    *,
    namespace: str = "shop",
    containers: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
    replicas: int = 2,
    pod_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    pod: dict[str, Any] = {"containers": containers or [{"name": "app", "image": "app:1.0"}]}
    if init is not None:
        pod["initContainers"] = init
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {
            "replicas": replicas,
            "template": {"metadata": {"labels": pod_labels or {"app": name}}, "spec": pod},
        },
    }


def pdb(name: str = "api", *, namespace: str = "shop", selector: Any = None) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {"app": name}} if selector is None else selector,
        },
    }


def res(doc: dict[str, Any], env: str | None = "dev", app: str | None = "api", **kw: Any) -> Resource:
    return Resource(doc=doc, env=env, app=app, source="charts/service/templates/x.yaml.j2", line=1, **kw)


IMAGE_SCHEMA = (
    "{type: object, required: [image], properties: {image: {type: string, not: {pattern: ':latest$'}}}}"
)


# --- the shipped catalogue -----------------------------------------------------------------------------


def test_shipped_policies_pass_their_own_examples(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run_test(shipped_catalogue(tmp_path), out) == 0, out.getvalue()
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"ok BC001 image-pinned \(\d+ pass, \d+ fail\)", lines[0]), lines[0]
    assert all(line.startswith("ok ") for line in lines[:-1])
    assert lines[-1].endswith(" 0 failed")


def test_shipped_catalogue_covers_the_required_rules(tmp_path: Path) -> None:
    ps = load_policies(shipped_catalogue(tmp_path))
    assert len(ps) >= 14
    for p in ps.policies:
        assert p.pass_examples and p.fail_examples, p.id
        assert p.source == f"policies/{p.id}.yaml"
    names = {p.name for p in ps.policies}
    assert {
        "image-pinned",
        "prod-pdb",
        "no-plaintext-secrets",
        "argocd-prod-tracks-main",
        "no-node-port",
    } <= names
    pdb_policy = next(p for p in ps.policies if p.name == "prod-pdb")
    assert pdb_policy.requires and pdb_policy.environments == {"prod"}


# The shipped example passing every shipped policy: test_render.test_shipped_example_renders_and_validates.


def test_system_namespaces_policy_reserves_the_repositorys_argocd_namespace() -> None:
    # a policy can't read betcycle.yaml: BC020 lists the namespace itself, and this keeps the two in step
    import yaml

    settings = yaml.safe_load((REPO / "betcycle.yaml").read_text(encoding="utf-8"))
    bc020 = yaml.safe_load((REPO / "policies/BC020.yaml").read_text(encoding="utf-8"))
    reserved = bc020["schema"]["$defs"]["reserved"]["enum"]
    assert settings["argocd"]["namespace"] in reserved
    assert {"kube-system", "kube-public", "kube-node-lease"} <= set(reserved)


def test_an_app_deployed_into_kube_system_is_refused_unless_waived(
    example: Path, cli, crd_cache: Path
) -> None:
    # an app named kube-system and a destination rule of "{app}": the render puts everything in kube-system
    shutil.copy2(REPO / "policies/BC020.yaml", example / "policies/BC020.yaml")
    env_file = example / "environments/dev/environment.yaml"
    env_file.write_text(env_file.read_text().replace('namespace: "{app}-dev"', 'namespace: "{app}"'))
    app = (example / "apps/hello/app.yaml").read_text().replace("name: hello", "name: kube-system")
    write_tree(
        example,
        {
            "apps/kube-system/app.yaml": app,
            "environments/dev/apps/kube-system.yaml": 'image:\n  tag: "1.0.0"\n',
        },
    )
    assert cli("--root", example, "render")[0] == 0
    code, out, err = cli("--root", example, "validate", "--env", "dev", "--schema-cache", crd_cache)
    assert code == 1, out + err
    findings = [line.strip() for line in out.splitlines() if "[policy/BC020]" in line]
    assert (
        "error [policy/BC020] Application/argocd/dev-kube-system spec.destination.namespace: Apps stay out of "
        "the cluster's and Argo CD's own namespaces: destination namespace \"kube-system\" belongs to the "
        "cluster or to Argo CD"
    ) in findings
    assert any(
        f.startswith("error [policy/BC020] Deployment/kube-system/kube-system metadata.namespace:")
        for f in findings
    )
    assert not any("hello" in f for f in findings)
    (example / "policies/waivers.yaml").write_text(
        "waivers:\n"
        "  - policy: BC020\n"
        "    scope: {env: dev, app: kube-system}\n"
        "    reason: a cluster add-on, reviewed by platform\n"
        "    owner: team-platform\n"
        '    expires: "2999-12-31"\n'
    )
    code, out, err = cli("--root", example, "validate", "--env", "dev", "--schema-cache", crd_cache)
    assert code == 0, out + err
    assert "info [policy/BC020] Application/argocd/dev-kube-system spec.destination.namespace: waived:" in out


def test_a_plaintext_secret_added_by_hand_to_the_manifests_is_refused(
    example: Path, cli, crd_cache: Path
) -> None:
    # secrets reach the cluster through ExternalSecrets; a Secret committed under manifests/ is plaintext in git
    shutil.copy2(REPO / "policies/BC012.yaml", example / "policies/BC012.yaml")
    assert cli("--root", example, "validate", "--env", "dev", "--schema-cache", crd_cache)[0] == 0
    write_tree(
        example,
        {
            "environments/dev/manifests/hello/secret-hello-db.yaml": """\
                apiVersion: v1
                kind: Secret
                metadata:
                  name: hello-db
                  namespace: hello-dev
                stringData:
                  password: hunter2
            """
        },
    )
    code, out, err = cli("--root", example, "validate", "--env", "dev", "--schema-cache", crd_cache)
    assert code == 1, out + err
    lines = [line.strip() for line in out.splitlines()]
    at = lines.index(
        "error [policy/BC012] Secret/hello-dev/hello-db stringData: Secrets are not committed in plain text: "
        "the Secret has stringData in plain text"
    )
    assert lines[at + 1].startswith("at environments/dev/manifests/hello/secret-hello-db.yaml:")
    assert lines[at + 2].startswith("fix: Delete the Secret") and "ExternalSecret" in lines[at + 2]


def test_fixture_manifests_pass_the_fixture_policies(example: Path) -> None:
    from betcycle.validate import manifests

    resources: list[Resource] = []
    for env in ("dev", "staging", "prod"):
        resources += manifests.load_env_manifests(example, env, f"environments/{env}/manifests")
    assert {r.kind for r in resources} >= {"Deployment", "PodDisruptionBudget"}
    ps = load_policies(example)
    assert [p.id for p in ps.policies] == ["FX001", "FX002"]
    assert ps.evaluate(resources, today=TODAY) == []
    without_prod_pdb = [r for r in resources if (r.kind, r.env) != ("PodDisruptionBudget", "prod")]
    assert [f.rule for f in ps.evaluate(without_prod_pdb, today=TODAY)] == ["policy/FX002"]


def test_rules_meta_is_keyed_by_rule_id(tmp_path: Path) -> None:
    meta = load_policies(shipped_catalogue(tmp_path)).rules_meta()
    assert meta["policy/BC001"]["severity"] == "error"
    assert meta["policy/BC001"]["title"].startswith("Images are pinned")
    assert meta["policy/BC001"]["rationale"]
    assert meta["policy/waiver-expired"]["severity"] == "error"


def test_run_list_text_and_json(tmp_path: Path) -> None:
    load(tmp_path, {"policies/TT001.yaml": policy_text(match_extra="  environments: [prod]\n")})
    out = io.StringIO()
    assert run_list(tmp_path, out) == 0
    head, row = out.getvalue().splitlines()[:2]
    assert head.split() == ["ID", "SEVERITY", "SUBJECT", "KINDS", "ENVS", "TITLE"]
    assert row.split()[:5] == ["TT001", "error", "resource", "CronJob,Deployment,Job,Pod", "prod"]
    out = io.StringIO()
    assert run_list(tmp_path, out, "json") == 0
    (entry,) = json.loads(out.getvalue())
    assert entry["id"] == "TT001" and entry["environments"] == ["prod"] and entry["rule"] == "policy/TT001"
    with pytest.raises(UserError, match="unknown format"):
        run_list(tmp_path, io.StringIO(), "yaml")


def test_no_policies_folder_means_no_policies(tmp_path: Path) -> None:
    ps = load_policies(tmp_path)
    assert len(ps) == 0
    assert ps.evaluate([res(deployment())]) == []


# --- subjects and paths --------------------------------------------------------------------------------


def test_subject_containers_checks_every_container_and_init_container_with_full_paths(tmp_path: Path) -> None:
    ps = load(tmp_path, {"policies/TT001.yaml": policy_text(subject="containers", schema=IMAGE_SCHEMA)})
    doc = deployment(
        containers=[{"name": "ok", "image": "a:1"}, {"name": "bad", "image": "a:latest"}],
        init=[{"name": "init"}],
    )
    findings = ps.evaluate([res(doc)])
    assert [f.path for f in findings] == [
        "spec.template.spec.containers[1].image",
        "spec.template.spec.initContainers[0].image",
    ]
    first = findings[0]
    assert first.rule == "policy/TT001" and first.severity == "error" and first.hint == "fix it"
    assert first.resource == "Deployment/shop/api" and first.env == "dev" and first.app == "api"
    assert first.message == 'Test policy TT001: "a:latest" is not allowed'
    assert findings[1].message == "Test policy TT001: image is not set"
    assert first.source == "charts/service/templates/x.yaml.j2"


def test_subject_paths_for_cronjob_and_pod(tmp_path: Path) -> None:
    ps = load(tmp_path, {"policies/TT001.yaml": policy_text(subject="containers", schema=IMAGE_SCHEMA)})
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"image": "x:latest"}]}}}}},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"image": "x"}]},
    }
    paths = {f.resource: f.path for f in ps.evaluate([res(cron), res(pod)])}
    assert paths == {
        "CronJob/nightly": "spec.jobTemplate.spec.template.spec.containers[0].image",
    }
    assert ps.evaluate([res({**pod, "spec": {"containers": [{"image": "x:latest"}]}})])[0].path == (
        "spec.containers[0].image"
    )


def test_subject_pod_spec_and_resource(tmp_path: Path) -> None:
    ps = load(
        tmp_path,
        {
            "policies/TT001.yaml": policy_text(
                subject="podSpec", schema="{properties: {hostNetwork: {const: false}}}"
            ),
            "policies/TT002.yaml": policy_text(
                "TT002", kinds='["*"]', schema="{properties: {metadata: {required: [labels]}}}"
            ),
        },
    )
    doc = deployment()
    doc["spec"]["template"]["spec"]["hostNetwork"] = True
    del doc["metadata"]["labels"]
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"}}
    found = {(f.rule, f.resource, f.path, f.message) for f in ps.evaluate([res(doc), res(svc)])}
    assert found == {
        (
            "policy/TT001",
            "Deployment/shop/api",
            "spec.template.spec.hostNetwork",
            "Test policy TT001: must be false, found true",
        ),
        ("policy/TT002", "Deployment/shop/api", "metadata.labels", "Test policy TT002: labels is not set"),
        ("policy/TT002", "Service/api", "metadata.labels", "Test policy TT002: labels is not set"),
    }


def test_pod_subjects_skip_resources_without_a_pod_spec(tmp_path: Path) -> None:
    ps = load(
        tmp_path,
        {"policies/TT001.yaml": policy_text(kinds='["*"]', subject="podSpec", schema="{required: [nope]}")},
    )
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"}}
    broken = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"template": 3},
    }
    assert ps.evaluate([res(svc), res(broken)]) == []


def test_x_message_replaces_the_message_and_fills_in_the_value(tmp_path: Path) -> None:
    schema = "{properties: {image: {x-message: 'image {value} is floating', not: {pattern: ':latest$'}}}}"
    ps = load(tmp_path, {"policies/TT001.yaml": policy_text(subject="containers", schema=schema)})
    (f,) = ps.evaluate([res(deployment(containers=[{"image": "a:latest"}]))])
    assert f.message == 'Test policy TT001: image "a:latest" is floating'


def test_yaml_dates_in_resources_do_not_break_evaluation(tmp_path: Path) -> None:
    ps = load(tmp_path, {"policies/TT001.yaml": policy_text(schema="{properties: {x: {type: integer}}}")})
    doc = {**deployment(), "x": dt.date(2024, 1, 1)}
    (f,) = ps.evaluate([res(doc)])
    assert f.path == "x" and f.message == "Test policy TT001: must be an integer, found a string"


# --- match: kinds, environments, selectors, when ------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchLabels": {"a": "1"}}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {"a": "3"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "2"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"b": "1"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"b": "1"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "1"}, False),
        (
            {"matchLabels": {"t": "x"}, "matchExpressions": [{"key": "a", "operator": "Exists"}]},
            {"t": "x", "a": "1"},
            True,
        ),
        (
            {"matchLabels": {"t": "x"}, "matchExpressions": [{"key": "a", "operator": "Exists"}]},
            {"a": "1"},
            False,
        ),
        (None, {"a": "1"}, False),
    ],
)
def test_selector_matches(selector: Any, labels: dict[str, str], expected: bool) -> None:
    assert selector_matches(selector, labels) is expected


def test_policy_selector_filters_resources(tmp_path: Path) -> None:
    match_extra = (
        "  selector:\n"
        "    matchLabels: {tier: web}\n"
        "    matchExpressions:\n"
        "      - {key: team, operator: In, values: [a, b]}\n"
        "      - {key: legacy, operator: DoesNotExist}\n"
    )
    ps = load(
        tmp_path, {"policies/TT001.yaml": policy_text(schema="{required: [nope]}", match_extra=match_extra)}
    )
    hit = deployment("hit", labels={"tier": "web", "team": "a"})
    miss = [
        deployment("m1", labels={"tier": "db", "team": "a"}),
        deployment("m2", labels={"tier": "web", "team": "c"}),
        deployment("m3", labels={"tier": "web", "team": "a", "legacy": "yes"}),
    ]
    assert [f.resource for f in ps.evaluate([res(d) for d in [hit, *miss]])] == ["Deployment/shop/hit"]


def test_environments_filter(tmp_path: Path) -> None:
    ps = load(
        tmp_path,
        {
            "policies/TT001.yaml": policy_text(
                schema="{properties: {spec: {properties: {replicas: {minimum: 2}}}}}",
                match_extra="  environments: [prod, staging]\n",
            )
        },
    )
    one = deployment(replicas=1)
    found = ps.evaluate([res(one, env="dev"), res(one, env="prod"), res(one, env=None)])
    assert [(f.env, f.path, f.message) for f in found] == [
        ("prod", "spec.replicas", "Test policy TT001: must be at least 2, found 1")
    ]


def test_kinds_filter_and_wildcard(tmp_path: Path) -> None:
    ps = load(
        tmp_path,
        {
            "policies/TT001.yaml": policy_text(kinds="[Service]", schema="{required: [nope]}"),
            "policies/TT002.yaml": policy_text("TT002", kinds='["*"]', schema="{required: [nope]}"),
        },
    )
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}
    found = sorted((f.rule, f.resource) for f in ps.evaluate([res(svc), res(deployment())]))
    assert found == [
        ("policy/TT001", "Service/s"),
        ("policy/TT002", "Deployment/shop/api"),
        ("policy/TT002", "Service/s"),
    ]


def test_match_when_limits_the_policy(tmp_path: Path) -> None:
    match_extra = "  when: {properties: {spec: {properties: {replicas: {minimum: 3}}}}}\n"
    ps = load(
        tmp_path, {"policies/TT001.yaml": policy_text(schema="{required: [nope]}", match_extra=match_extra)}
    )
    found = ps.evaluate([res(deployment("small", replicas=2)), res(deployment("big", replicas=3))])
    assert [f.resource for f in found] == ["Deployment/shop/big"]


# --- requires ------------------------------------------------------------------------------------------

REQUIRES = policy_text(
    kinds="[Deployment]",
    schema="{}",
    match_extra="  environments: [prod]\n",
    extra="requires:\n  - {kind: PodDisruptionBudget, selects: podTemplate}\n",
).replace("schema: {}\n", "")


def test_requires_rule_with_and_without_pdb(tmp_path: Path) -> None:
    ps = load(tmp_path, {"policies/TT001.yaml": REQUIRES})
    dep = deployment(pod_labels={"app": "api", "tier": "web"})
    assert ps.evaluate([res(dep, env="prod"), res(pdb(), env="prod")]) == []
    (f,) = ps.evaluate([res(dep, env="prod")])
    assert f.path == "spec.template.metadata.labels" and f.rule == "policy/TT001"
    assert f.message == (
        "Test policy TT001: no PodDisruptionBudget in namespace shop selects the pod template labels "
        "(app=api, tier=web)"
    )


def test_requires_rule_looks_only_in_the_same_env_and_namespace(tmp_path: Path) -> None:
    ps = load(tmp_path, {"policies/TT001.yaml": REQUIRES})
    dep = deployment()
    others = [
        res(pdb(), env="staging"),  # other env
        res(pdb(namespace="other"), env="prod"),  # other namespace
        res(pdb(selector={"matchLabels": {"app": "web"}}), env="prod"),  # selects other pods
    ]
    assert len(ps.evaluate([res(dep, env="prod"), *others])) == 1
    selector = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["api", "web"]}]}
    assert ps.evaluate([res(dep, env="prod"), res(pdb(selector=selector), env="prod")]) == []
    assert ps.evaluate([res(dep, env="prod"), res(pdb(selector={}), env="prod")]) == []  # {} selects all


def test_requires_rule_for_a_cronjob_uses_its_pod_template(tmp_path: Path) -> None:
    ps = load(tmp_path, {"policies/TT001.yaml": REQUIRES.replace("[Deployment]", "[CronJob]")})
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "c", "namespace": "shop"},
        "spec": {"jobTemplate": {"spec": {"template": {"metadata": {"labels": {"app": "c"}}}}}},
    }
    (f,) = ps.evaluate([res(cron, env="prod")])
    assert f.path == "spec.jobTemplate.spec.template.metadata.labels"


# --- waivers -------------------------------------------------------------------------------------------


def waiver_files(waivers: str) -> dict[str, str]:
    return {
        "policies/TT001.yaml": policy_text(subject="containers", schema=IMAGE_SCHEMA),
        "policies/waivers.yaml": "waivers:\n" + textwrap.indent(textwrap.dedent(waivers), "  "),
    }


BAD = deployment("legacy-api", containers=[{"name": "a", "image": "a:latest"}])


def test_waiver_matches_and_downgrades_to_info(tmp_path: Path) -> None:
    ps = load(
        tmp_path,
        waiver_files(
            """\
            - policy: TT001
              scope: {env: dev, app: api, resource: Deployment/legacy-api}
              reason: being replaced by v2
              owner: team-a
              expires: 2025-12-31
            """
        ),
    )
    (f,) = ps.evaluate([res(BAD)], today=TODAY)
    assert f.severity == "info" and f.rule == "policy/TT001"
    assert f.message.startswith("waived: Test policy TT001: ")
    assert (
        "[waiver policies/waivers.yaml:2, owner team-a, expires 2025-12-31: being replaced by v2]"
        in f.message
    )
    assert count_waived([f]) == 1
    # the waiver is valid through its expires day
    assert ps.evaluate([res(BAD)], today=dt.date(2025, 12, 31))[0].severity == "info"


@pytest.mark.parametrize(
    "scope",
    [
        "{env: prod}",
        "{app: web}",
        "{resource: Deployment/other}",
        "{resource: Service/legacy-api}",
        "{resource: Deployment/other-ns/legacy-api}",
        "{env: dev, app: web}",
    ],
)
def test_waiver_that_does_not_match_keeps_the_finding(tmp_path: Path, scope: str) -> None:
    files = waiver_files(f"- {{policy: TT001, scope: {scope}, reason: r, owner: o, expires: 2030-01-01}}\n")
    ps = load(tmp_path, files)
    (f,) = ps.evaluate([res(BAD)], today=TODAY)
    assert f.severity == "error"


@pytest.mark.parametrize(
    "pattern", ["Deployment/legacy-*", "Deployment/shop/legacy-*", "*/shop/*", "Deploy*/legacy-ap?"]
)
def test_waiver_resource_globs(tmp_path: Path, pattern: str) -> None:
    files = waiver_files(
        f"- {{policy: TT001, scope: {{resource: '{pattern}', env: 'd*'}}, reason: r, owner: o,"
        " expires: 2030-01-01}\n"
    )
    ps = load(tmp_path, files)
    assert [f.severity for f in ps.evaluate([res(BAD)], today=TODAY)] == ["info"]


def test_expired_waiver_is_an_error_and_no_longer_waives(tmp_path: Path) -> None:
    ps = load(
        tmp_path,
        waiver_files(
            """\
            - policy: TT001
              scope: {app: other}
              reason: r
              owner: o
              expires: 2030-01-01
            - policy: TT001
              scope: {resource: Deployment/legacy-*}
              reason: r
              owner: team-a
              expires: 2025-05-31
            """
        ),
    )
    found = ps.evaluate([res(BAD)], today=TODAY)
    expired = [f for f in found if f.rule == "policy/waiver-expired"]
    assert len(expired) == 1
    (e,) = expired
    assert (e.severity, e.source, e.line) == ("error", "policies/waivers.yaml", 7)
    assert e.message == "waiver for TT001 (resource=Deployment/legacy-*) expired on 2025-05-31"
    assert [f.severity for f in found if f.rule == "policy/TT001"] == ["error"]


def test_waiver_for_unknown_policy_is_a_user_error(tmp_path: Path) -> None:
    errors = load_errors(
        tmp_path,
        waiver_files(
            """\
            - policy: TT01
              scope: {env: dev}
              reason: r
              owner: o
              expires: 2030-01-01
            """
        ),
    )
    (e,) = errors
    assert (e.path, e.line) == ("policies/waivers.yaml", 2)
    assert e.message == "waivers[0].policy: unknown policy 'TT01'"
    assert e.hint and "did you mean 'TT001'?" in e.hint


def test_waiver_file_schema_errors(tmp_path: Path) -> None:
    errors = load_errors(
        tmp_path,
        waiver_files(
            """\
            - policy: TT001
              scope: {}
              reason: r
              ownr: o
              expires: someday
            """
        ),
    )
    by_message = {e.message: e for e in errors}
    assert set(by_message) == {
        "waivers[0].scope: scope needs at least one of env, app, resource; to waive a policy everywhere, "
        "change the policy instead",
        "unknown key 'ownr' in waivers[0]",
        'waivers[0].expires: expires must be a date written YYYY-MM-DD; found "someday"',
    }
    assert by_message["unknown key 'ownr' in waivers[0]"].line == 5
    assert by_message["unknown key 'ownr' in waivers[0]"].hint.startswith("did you mean 'owner'?")
    assert all(e.path == "policies/waivers.yaml" for e in errors)


def test_waiver_with_impossible_date(tmp_path: Path) -> None:
    files = waiver_files("- {policy: TT001, scope: {env: dev}, reason: r, owner: o, expires: '2025-02-30'}\n")
    (e,) = load_errors(tmp_path, files)
    assert (e.path, e.line) == ("policies/waivers.yaml", 2)
    assert "not a valid date" in e.message


def test_empty_waivers_file_is_fine(tmp_path: Path) -> None:
    ps = load(tmp_path, {"policies/TT001.yaml": policy_text(), "policies/waivers.yaml": "# none yet\n"})
    assert ps.waivers == []


# --- bad policy files ----------------------------------------------------------------------------------


def test_typo_key_names_file_line_and_suggests(tmp_path: Path) -> None:
    text = policy_text().replace("severity: error", "sevrity: error")
    errors = load_errors(tmp_path, {"policies/x.yaml": text})
    by_message = {e.message: e for e in errors}
    typo = by_message["unknown key 'sevrity'"]
    assert (typo.path, typo.line) == ("policies/x.yaml", 4)
    assert str(typo).splitlines()[0] == "policies/x.yaml:4: unknown key 'sevrity'"
    assert typo.hint and typo.hint.startswith("did you mean 'severity'? allowed keys: ")
    assert "match" in typo.hint
    assert list(by_message) == ["unknown key 'sevrity'"]  # no second error for the missing 'severity'


def test_missing_required_key(tmp_path: Path) -> None:
    (e,) = load_errors(tmp_path, {"policies/x.yaml": policy_text().replace("hint: fix it\n", "")})
    assert (e.line, e.message) == (1, "missing required key 'hint'")
    assert e.hint == "How to fix a finding; shown with every finding of this policy."


def test_nested_typo_and_bad_severity(tmp_path: Path) -> None:
    text = policy_text(severity="fatal", match_extra="  enviroments: [prod]\n")
    errors = load_errors(tmp_path, {"policies/x.yaml": text})
    assert [(e.line, e.message) for e in errors] == [
        (4, 'severity: must be one of "error", "warning"; found "fatal"'),
        (9, "unknown key 'enviroments' in match"),
    ]
    assert errors[0].hint == "error fails the run (exit 1); warning is reported but does not fail it."
    assert errors[1].hint and errors[1].hint.startswith("did you mean 'environments'?")


def test_broken_json_schema_names_the_line(tmp_path: Path) -> None:
    text = policy_text(schema="\n  type: object\n  properties:\n    image: {type: strin}")
    (e,) = load_errors(tmp_path, {"policies/x.yaml": text})
    assert (e.path, e.line) == ("policies/x.yaml", 13)
    assert e.message.startswith("schema.properties.image.type: not a valid JSON Schema: ")


def test_schema_that_cannot_compile(tmp_path: Path) -> None:
    text = policy_text(schema="{$ref: 'https://example.com/s.json'}")
    (e,) = load_errors(tmp_path, {"policies/x.yaml": text})
    assert (e.path, e.line) == ("policies/x.yaml", 10)
    assert e.message.startswith("schema: cannot compile the JSON Schema: ")
    assert "remote $ref" in e.message


def test_malformed_yaml(tmp_path: Path) -> None:
    (e,) = load_errors(tmp_path, {"policies/x.yaml": "id: TT001\nmatch: [unclosed\n"})
    assert e.path == "policies/x.yaml" and e.line is not None and e.message.startswith("invalid YAML")


def test_not_a_mapping(tmp_path: Path) -> None:
    (e,) = load_errors(tmp_path, {"policies/x.yaml": "- just\n- a list\n"})
    assert (e.path, e.line) == ("policies/x.yaml", 1)


def test_duplicate_id(tmp_path: Path) -> None:
    (e,) = load_errors(tmp_path, {"policies/a.yaml": policy_text(), "policies/b.yaml": policy_text()})
    assert (e.path, e.line, e.message) == ("policies/b.yaml", 1, "duplicate policy id 'TT001'")
    assert e.hint and "policies/a.yaml:1" in e.hint


def test_policy_without_schema_or_requires(tmp_path: Path) -> None:
    text = policy_text().replace("schema: {type: object}\n", "")
    (e,) = load_errors(tmp_path, {"policies/x.yaml": text})
    assert e.message == "a policy needs a schema, a requires list, or both"


def test_bad_selector_operator_and_values(tmp_path: Path) -> None:
    match_extra = (
        "  selector:\n"
        "    matchExpressions:\n"
        "      - {key: a, operator: Exists, values: [x]}\n"
        "      - {key: b, operator: In}\n"
    )
    errors = load_errors(tmp_path, {"policies/x.yaml": policy_text(match_extra=match_extra)})
    assert [(e.line, e.message) for e in errors] == [
        (11, "match.selector.matchExpressions[0]: Exists and DoesNotExist take no values"),
        (12, "missing required key 'values' in match.selector.matchExpressions[1]"),
    ]


def test_example_wrapper_typo(tmp_path: Path) -> None:
    extra = (
        "examples:\n"
        "  pass:\n"
        "    - envv: prod\n"
        "      resource: {apiVersion: v1, kind: Service, metadata: {name: s}}\n"
    )
    (e,) = load_errors(tmp_path, {"policies/x.yaml": policy_text(extra=extra)})
    assert (e.line, e.message) == (13, "unknown key 'envv' in examples.pass[0]")
    assert e.hint and e.hint.startswith("did you mean 'env'?")


def test_every_bad_file_is_reported_at_once(tmp_path: Path) -> None:
    errors = load_errors(
        tmp_path,
        {
            "policies/a.yaml": policy_text("TT001", severity="fatal"),
            "policies/b.yaml": "id: [\n",
            "policies/c.yaml": policy_text("TT003"),
        },
    )
    assert sorted(e.path or "" for e in errors) == ["policies/a.yaml", "policies/b.yaml"]


# --- origin attribution --------------------------------------------------------------------------------


def test_origin_points_at_the_values_line(tmp_path: Path) -> None:
    ps = load(tmp_path, {"policies/TT001.yaml": policy_text(subject="containers", schema=IMAGE_SCHEMA)})
    origins = {
        "image.repository": ("charts/service/values.yaml", 3, "ghcr.io/acme/api"),
        "image.tag": ("environments/dev/apps/api.yaml", 7, "latest"),
        "name": ("apps/api/app.yaml", 1, "api"),
    }
    doc = deployment(containers=[{"name": "api", "image": "ghcr.io/acme/api:latest"}])
    (f,) = ps.evaluate([res(doc, origins=origins)])
    assert (f.source, f.line) == ("environments/dev/apps/api.yaml", 7)  # the most specific layer wins
    (f,) = ps.evaluate([res(deployment(containers=[{"name": "api"}]), origins=origins)])
    assert (f.source, f.line) == ("charts/service/templates/x.yaml.j2", 1)  # missing → no value to trace


def test_find_origin_rules() -> None:
    origins: dict[str, tuple[str, int, Any]] = {
        "a": ("base.yaml", 1, "latest"),
        "b": ("env.yaml", 2, "latest"),
        "c": ("base.yaml", 3, "ab"),
        "d": ("base.yaml", 4, 1),
        "e": ("env.yaml", 5, True),
        "f": ("env.yaml", 6, 1),
    }
    assert find_origin(origins, "img:latest") == ("env.yaml", 2)  # tie → last inserted
    assert find_origin(origins, "xaby") is None  # "ab" is too short to be matched inside
    assert find_origin(origins, "ab") == ("base.yaml", 3)  # ... but an exact match counts
    assert find_origin(origins, 1) == ("env.yaml", 6)
    assert find_origin(origins, True) == ("env.yaml", 5)  # booleans are not integers
    assert find_origin(origins, {"x": 1}) is None
    assert find_origin({}, "latest") is None


# --- policy test ---------------------------------------------------------------------------------------


def test_run_test_reports_failing_examples(tmp_path: Path) -> None:
    examples = (
        "examples:\n"
        "  pass:\n"
        "    - {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{image: 'a:latest'}]}}\n"
        "  fail:\n"
        "    - {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{image: 'a:1'}]}}\n"
    )
    prod_only = (
        "examples:\n"
        "  pass:\n"
        "    - {apiVersion: v1, kind: Pod, metadata: {name: p}}\n"
        "  fail:\n"
        "    - {apiVersion: v1, kind: Pod, metadata: {name: p}}\n"
        "    - env: prod\n"
        "      resource: {apiVersion: v1, kind: Pod, metadata: {name: p}}\n"
    )
    write_tree(
        tmp_path,
        {
            "policies/TT001.yaml": policy_text(subject="containers", schema=IMAGE_SCHEMA, extra=examples),
            "policies/TT002.yaml": policy_text("TT002"),
            "policies/TT003.yaml": policy_text(
                "TT003", schema="{required: [nope]}", match_extra="  environments: [prod]\n", extra=prod_only
            ),
        },
    )
    out = io.StringIO()
    assert run_test(tmp_path, out) == 1
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "FAIL TT001 test-tt001: pass example 1 (policies/TT001.yaml:13) produced 1 finding(s), first: "
        'spec.containers[0].image: Test policy TT001: "a:latest" is not allowed; '
        "fail example 1 (policies/TT001.yaml:15) produced no finding (no env given)"
    )
    assert lines[1] == "FAIL TT002 test-tt002: no pass examples; no fail examples"
    assert lines[2] == (
        "FAIL TT003 test-tt003: fail example 1 (policies/TT003.yaml:16) produced no finding (no env given)"
    )
    assert lines[3] == "3 policies, 3 failed"


def test_run_test_ignores_findings_on_context_resources(tmp_path: Path) -> None:
    extra = (
        "examples:\n"
        "  pass:\n"
        "    - resource: {apiVersion: v1, kind: Service, metadata: {name: ok, labels: {a: b}}}\n"
        "      context:\n"
        "        - {apiVersion: v1, kind: Service, metadata: {name: other}}\n"
        "  fail:\n"
        "    - {apiVersion: v1, kind: Service, metadata: {name: bad}}\n"
    )
    schema = "{properties: {metadata: {required: [labels]}}}"
    write_tree(tmp_path, {"policies/TT001.yaml": policy_text(kinds="[Service]", schema=schema, extra=extra)})
    out = io.StringIO()
    assert run_test(tmp_path, out) == 0
    assert out.getvalue().splitlines()[0] == "ok TT001 test-tt001 (1 pass, 1 fail)"
