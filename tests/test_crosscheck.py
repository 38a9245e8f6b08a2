from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from betcycle.model.resources import Resource
from betcycle.validate import manifests
from betcycle.validate.crosscheck import ExternalRef, check_environment, selector_matches

BASE = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, tier: front}}
    spec:
      serviceAccountName: web
      containers:
        - name: web
          image: nginx:1.27
          ports: [{name: http, containerPort: 8080}]
          envFrom: [{configMapRef: {name: web-config}}, {secretRef: {name: web-db}}]
          env:
            - name: X
              valueFrom: {secretKeyRef: {name: api-key, key: k, optional: true}}
      volumes:
        - name: c
          configMap: {name: web-config}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config, namespace: shop}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: web-db-es, namespace: shop}
spec: {target: {name: web-db}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"""


def rules(text: str, external: dict[str, list[str]] | None = None) -> list[tuple[str, str, str | None]]:
    res = manifests.parse(text, "m.yaml", env="prod")
    return sorted((f.rule, f.resource or "", f.path) for f in check_environment(res, external))


def test_consistent_set_is_clean() -> None:
    assert rules(BASE) == []


def test_duplicate_objects() -> None:
    dup = BASE + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-config, namespace: shop}\n"
    assert ("crossref/duplicate", "ConfigMap/shop/web-config", None) in rules(dup)


def test_service_selector_matching_no_pods() -> None:
    text = BASE.replace("selector: {app: web}", "selector: {app: wbe}")
    assert rules(text) == [("crossref/service-selector", "Service/shop/web", "spec.selector")]


def test_service_in_other_namespace_does_not_match() -> None:
    text = BASE.replace(
        "kind: Service\nmetadata: {name: web, namespace: shop}",
        "kind: Service\nmetadata: {name: web, namespace: other}",
    )
    assert ("crossref/service-selector", "Service/other/web", "spec.selector") in rules(text)


def test_target_port_name_missing() -> None:
    text = BASE.replace("targetPort: http", "targetPort: web")
    assert rules(text) == [("crossref/target-port", "Service/shop/web", "spec.ports[0].targetPort")]


def test_numeric_target_port_mismatch_is_a_warning() -> None:
    res = manifests.parse(BASE.replace("targetPort: http", "targetPort: 9090"), "m.yaml")
    found = check_environment(res)
    assert [(f.severity, f.rule) for f in found] == [("warning", "crossref/target-port")]


def test_missing_references_and_external_declarations() -> None:
    text = BASE.replace("name: web-config, namespace: shop}\n---", "name: other, namespace: shop}\n---")
    text = text.replace(
        "kind: ServiceAccount\nmetadata: {name: web", "kind: ServiceAccount\nmetadata: {name: nope"
    )
    found = rules(text)
    assert (
        "crossref/missing-reference",
        "Deployment/shop/web",
        "spec.template.spec.serviceAccountName",
    ) in found
    assert (
        "crossref/missing-reference",
        "Deployment/shop/web",
        "spec.template.spec.containers[0].envFrom[0].configMapRef.name",
    ) in found
    assert (
        "crossref/missing-reference",
        "Deployment/shop/web",
        "spec.template.spec.volumes[0].configMap.name",
    ) in found
    assert rules(text, {"configMaps": ["shop/web-config"], "serviceAccounts": ["web"]}) == []


def test_hpa_and_pdb_targets() -> None:
    extra = """---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: shop}
spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: wbe}, maxReplicas: 3}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: shop}
spec: {maxUnavailable: 1, selector: {matchLabels: {app: nope}}}
"""
    found = rules(BASE + extra)
    assert ("crossref/hpa-target", "HorizontalPodAutoscaler/shop/web", "spec.scaleTargetRef") in found
    assert ("crossref/pdb-selector", "PodDisruptionBudget/shop/web", "spec.selector") in found
    ok = extra.replace("name: wbe", "name: web").replace("app: nope", "app: web")
    assert rules(BASE + ok) == []


def test_ingress_backend() -> None:
    ing = """---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  rules:
    - host: a.example.com
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: web, port: {name: grpc}}}}
          - {path: /x, pathType: Prefix, backend: {service: {name: gone, port: {number: 80}}}}
"""
    found = rules(BASE + ing)
    assert (
        "crossref/ingress-backend",
        "Ingress/shop/web",
        "spec.rules[0].http.paths[0].backend.service.port.name",
    ) in found
    assert (
        "crossref/ingress-backend",
        "Ingress/shop/web",
        "spec.rules[0].http.paths[1].backend.service.name",
    ) in found


def test_cronjob_pod_template_is_found() -> None:
    cron = """apiVersion: batch/v1
kind: CronJob
metadata: {name: job, namespace: shop}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          serviceAccountName: missing
          containers: [{name: c, image: busybox:1}]
"""
    assert rules(cron) == [
        (
            "crossref/missing-reference",
            "CronJob/shop/job",
            "spec.jobTemplate.spec.template.spec.serviceAccountName",
        )
    ]


def test_selector_semantics() -> None:
    labels = {"app": "web", "tier": "front"}
    assert selector_matches({"app": "web"}, labels)
    assert selector_matches({}, labels)  # policy/v1: an empty selector selects every pod
    assert selector_matches(
        {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}, labels
    )
    assert not selector_matches(
        {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}, labels
    )
    assert selector_matches({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, labels)
    assert not selector_matches({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, labels)
    assert not selector_matches("nope", labels)


def test_malformed_shapes_do_not_crash() -> None:
    text = (
        BASE
        + "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: x, namespace: shop}\nspec:\n  rules: [foo]\n"
    )
    text += "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec:\n  containers: [{name: c, env: [{valueFrom: 1}], envFrom: [3]}]\n  volumes: [{projected: 5}]\n"
    assert rules(text) == []


def test_duplicate_env_var() -> None:
    text = BASE.replace("          env:\n", "          env:\n            - {name: X, value: a}\n")
    assert rules(text) == [
        ("crossref/duplicate-env", "Deployment/shop/web", "spec.template.spec.containers[0].env[1]")
    ]


def test_empty_pdb_selector_matches_all_pods() -> None:
    pdb = "---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: all, namespace: shop}\nspec: {maxUnavailable: 1, selector: {}}\n"
    assert rules(BASE + pdb) == []


ARGO = """\
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: prod-web, namespace: argocd}
spec:
  sourceRepos: [https://github.com/example/platform.git]
  destinations: [{server: https://prod.example.com, namespace: web}]
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: prod-web, namespace: argocd}
spec:
  project: prod-web
  source: {repoURL: https://github.com/example/platform.git, path: environments/prod/manifests/web}
  destination: {server: https://prod.example.com, namespace: web}
"""


def test_application_in_its_project_is_clean() -> None:
    assert rules(ARGO) == []
    # Argo CD compares repository URLs without case, a trailing slash or `.git`
    assert (
        rules(
            ARGO.replace(
                "repoURL: https://github.com/example/platform.git",
                "repoURL: https://GitHub.com/example/platform/",
            )
        )
        == []
    )


def test_application_naming_a_missing_project() -> None:
    text = ARGO.replace("  project: prod-web", "  project: prod")
    assert rules(text) == [("crossref/argocd-project", "Application/argocd/prod-web", "spec.project")]
    res = manifests.parse(text, "m.yaml", env="prod")
    [finding] = check_environment(res)
    assert finding.message == "spec.project 'prod' names no AppProject in namespace argocd"
    assert finding.hint == "did you mean 'prod-web'? Or render the AppProject"


def test_destination_and_source_outside_the_project() -> None:
    text = ARGO.replace(
        "destination: {server: https://prod.example.com, namespace: web}",
        "destination: {server: https://prod.example.com, namespace: kube-system}",
    )
    text = text.replace(
        "source: {repoURL: https://github.com/example/platform.git",
        "source: {repoURL: https://github.com/evil/fork.git",
    )
    assert rules(text) == [
        ("crossref/argocd-destination", "Application/argocd/prod-web", "spec.destination"),
        ("crossref/argocd-source", "Application/argocd/prod-web", "spec.source.repoURL"),
    ]


def test_project_globs_and_denials() -> None:
    wide = ARGO.replace(
        "destinations: [{server: https://prod.example.com, namespace: web}]",
        "destinations: [{server: '*', namespace: 'web*'}]",
    )
    assert rules(wide) == []
    denied = ARGO.replace(
        "destinations: [{server: https://prod.example.com, namespace: web}]",
        "destinations: [{server: '*', namespace: '*'}, {server: '*', namespace: '!web'}]",
    )
    assert rules(denied) == [
        ("crossref/argocd-destination", "Application/argocd/prod-web", "spec.destination")
    ]
    any_repo = ARGO.replace("sourceRepos: [https://github.com/example/platform.git]", "sourceRepos: ['*']")
    assert rules(any_repo.replace("example/platform.git, path", "other/repo.git, path")) == []


def test_project_checks_skip_what_they_cannot_decide() -> None:
    # a destination by cluster name against server-only entries needs Argo CD's cluster list
    by_name = ARGO.replace(
        "destination: {server: https://prod.example.com, namespace: web}",
        "destination: {name: prod, namespace: web}",
    )
    assert rules(by_name) == []
    # the default project exists in every Argo CD (BC014 keeps prod out of it)
    assert rules(ARGO.replace("  project: prod-web", "  project: default")) == []
    # no AppProject in the set at all (validating one file): the projects live elsewhere
    application_only = ARGO.split("---\n", 1)[1].replace("  project: prod-web", "  project: elsewhere")
    assert rules(application_only) == []


def test_persistent_volume_claims_are_references_too() -> None:
    text = BASE.replace(
        "      volumes:\n",
        "      volumes:\n        - name: data\n          persistentVolumeClaim: {claimName: data}\n",
    )
    path = "spec.template.spec.volumes[0].persistentVolumeClaim.claimName"
    assert rules(text) == [("crossref/missing-reference", "Deployment/shop/web", path)]
    res = manifests.parse(text, "m.yaml", env="prod")
    [finding] = check_environment(res)
    assert finding.severity == "error" and "external.persistentVolumeClaims" in finding.hint
    assert rules(text, {"persistentVolumeClaims": ["shop/data"]}) == []
    # outside an environment: a warning, unless declared
    [loose] = check_environment(res, complete=False)
    assert loose.severity == "warning" and "--external PersistentVolumeClaim/shop/data" in loose.hint
    assert (
        check_environment(res, declared=[ExternalRef("PersistentVolumeClaim", "data")], complete=False) == []
    )


# --- the selector index: the same findings, in the same order, as comparing every pair ------------------


def _workload(i: int, labels: dict[str, object], kind: str = "Deployment") -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": f"w{i}", "namespace": "bulk"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"name": f"p{i % 3}"}]}]},
            },
        },
    }


def _selector_set(seed: int, n: int) -> list[Resource]:
    """Many workloads and Services/PDBs in one namespace whose selectors match some, none or several pods:
    plain maps, matchLabels, matchExpressions, non-string values, empty and malformed selectors."""
    import random

    rnd = random.Random(seed)
    values: list[object] = ["a", "b", "c", 1, True, None]

    def labels() -> dict[str, object]:
        return {
            k: rnd.choice(values[:3]) for k in rnd.sample(["app", "tier", "team", "zone"], rnd.randint(0, 4))
        }

    def selector() -> object:
        shape = rnd.random()
        plain = {
            k: rnd.choice(values) for k in rnd.sample(["app", "tier", "team", "zone", "x"], rnd.randint(1, 3))
        }
        if shape < 0.05:
            return rnd.choice([[], "app=a", {"matchLabels": ["x"]}, {"matchExpressions": 5}])
        if shape < 0.45:
            return plain
        expressions = [
            {
                "key": rnd.choice(["app", "tier", "zone"]),
                "operator": op,
                "values": rnd.sample(["a", "b", "c"], 2),
            }
            for op in rnd.sample(["In", "NotIn", "Exists", "DoesNotExist"], rnd.randint(0, 2))
        ]
        out: dict[str, object] = {"matchLabels": plain} if rnd.random() < 0.7 else {}
        if expressions or not out:
            out["matchExpressions"] = expressions
        return out

    docs: list[dict[str, object]] = []
    for i in range(n):
        docs.append(_workload(i, labels(), rnd.choice(["Deployment", "StatefulSet", "Pod"])))
        if docs[-1]["kind"] == "Pod":
            tmpl = docs[-1]["spec"]["template"]  # type: ignore[index]
            docs[-1]["metadata"]["labels"] = tmpl["metadata"]["labels"]  # type: ignore[index]
            docs[-1]["spec"] = tmpl["spec"]  # type: ignore[index]
        kind = rnd.choice(["Service", "Service", "PodDisruptionBudget"])
        spec: dict[str, object] = {"selector": selector()}
        if kind == "Service":
            spec["ports"] = [{"port": 80, "targetPort": f"p{rnd.randint(0, 3)}"}]
            api = "v1"
        else:
            api = "policy/v1"
        docs.append(
            {
                "apiVersion": api,
                "kind": kind,
                "metadata": {"name": f"s{i}", "namespace": "bulk"},
                "spec": spec,
            }
        )
    return [Resource(d, env="prod") for d in docs]


def test_selector_index_finds_exactly_what_comparing_every_pair_finds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from betcycle.validate import crosscheck

    for seed, n in ((1, 400), (2, 60), (3, 60), (4, 5)):
        resources = _selector_set(seed, n)
        indexed = check_environment(resources)
        with monkeypatch.context() as m:
            m.setattr(crosscheck._PodIndex, "candidates", lambda self, selector: self.pods)
            every_pair = check_environment(resources)
        assert indexed == every_pair
        rules_found = {f.rule for f in indexed}
        # the set exercises matches and misses of both checks
        assert {
            "crossref/service-selector",
            "crossref/pdb-selector",
            "crossref/target-port",
        } <= rules_found or n < 60
        assert len([f for f in indexed if f.rule == "crossref/service-selector"]) < n  # some Services match


def test_selector_index_candidates() -> None:
    from betcycle.validate.crosscheck import _Pod, _PodIndex

    pods = [
        _Pod(Resource({"kind": "Pod"}), labels, {}, "spec")
        for labels in ({"app": "a", "tier": "x"}, {"app": "a"}, {"app": "b", "tier": "x"}, {"app": 1}, {})
    ]
    index = _PodIndex(pods)
    assert index.candidates({"app": "a"}) == pods[:2]
    assert index.candidates({"app": "a", "tier": "x"}) == pods[:1]
    assert index.candidates({"tier": "x"}) == [pods[0], pods[2]]
    assert index.candidates({"app": "c"}) == []
    assert index.candidates({"matchLabels": {"app": "b"}, "matchExpressions": []}) == [pods[2]]
    assert index.candidates({"matchExpressions": [{"key": "app", "operator": "Exists"}]}) == pods
    assert index.candidates({"app": 1}) == pods  # not a string: every pod, selector_matches decides
    assert index.candidates({"app": None}) == pods
    assert index.candidates("app=a") == []


@given(st.text(alphabet="ab*?[]!-\\.", max_size=6), st.text(alphabet="ab*?[]!-\\.", max_size=6))
def test_glob_match_is_fnmatchcase(value: str, pattern: str) -> None:
    import fnmatch

    from betcycle.validate.crosscheck import _glob_match

    assert _glob_match(value, pattern) == fnmatch.fnmatchcase(value, pattern)
