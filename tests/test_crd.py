"""CRD → JSON schema conversion, the schema cache, and `schemas import` / `schemas fetch`."""

from __future__ import annotations

import copy
import functools
import hashlib
import http.server
import io
import json
import threading
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from betcycle import crd, crd_fetch
from betcycle.commands import schemas as schemas_cmd
from betcycle.errors import UserError, UserErrors

SHARED_CRDS = Path(__file__).resolve().parents[2] / "shared" / "crds"
LOCK_FILE = Path(__file__).resolve().parents[1] / "crds.lock.yaml"

needs_shared = pytest.mark.skipif(not SHARED_CRDS.is_dir(), reason="shared upstream CRDs not available")


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def make_crd(
    props: dict[str, Any],
    *,
    kind: str = "Widget",
    group: str = "example.com",
    versions: list[dict[str, Any]] | None = None,
    root_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    openapi = {
        "type": "object",
        "description": "A widget.",
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion ..."},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": props},
        },
        **(root_extra or {}),
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.lower()}s.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": f"{kind.lower()}s"},
            "scope": "Namespaced",
            "versions": versions
            or [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": openapi}}],
        },
    }


def widget(spec: Any, **top: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec, **top}


def one_schema(doc: dict[str, Any], **kw: Any) -> dict[str, Any]:
    (result,) = crd.convert_crd(doc, "test.yaml", **kw)
    return result.schema


def valid(schema: dict[str, Any], doc: Any) -> bool:
    return bool(jsonschema_rs.validator_for(schema).is_valid(doc))


# ---------------------------------------------------------------------------------------------- conversion


def test_int_or_string_becomes_string_or_integer() -> None:
    schema = one_schema(
        make_crd(
            {
                "port": {
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                    "x-kubernetes-int-or-string": True,
                    "format": "int-or-string",
                }
            }
        )
    )
    port = schema["properties"]["spec"]["properties"]["port"]
    assert port == {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    assert valid(schema, widget({"port": 8080}))
    assert valid(schema, widget({"port": "http"}))
    assert not valid(schema, widget({"port": 1.5}))
    assert not valid(schema, widget({"port": None}))


def test_nullable_adds_null_to_type_and_enum() -> None:
    schema = one_schema(
        make_crd(
            {
                "when": {"type": "string", "format": "date-time", "nullable": True},
                "mode": {"type": "string", "enum": ["a", "b"], "nullable": True},
                "size": {"x-kubernetes-int-or-string": True, "nullable": True},
                "plain": {"type": "string"},
            }
        )
    )
    props = schema["properties"]["spec"]["properties"]
    assert props["when"]["type"] == ["string", "null"]
    assert "nullable" not in props["when"]
    assert valid(schema, widget({"when": None, "mode": None, "size": None}))
    assert valid(schema, widget({"when": "2024-01-01T00:00:00Z", "mode": "a", "size": 3}))
    assert not valid(schema, widget({"mode": "c"}))
    assert not valid(schema, widget({"plain": None}))


def test_preserve_unknown_fields_allows_extra_properties() -> None:
    schema = one_schema(
        make_crd(
            {
                "values": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "known": {
                    "type": "object",
                    "properties": {"a": {"type": "string"}},
                    "x-kubernetes-preserve-unknown-fields": True,
                },
            }
        )
    )
    props = schema["properties"]["spec"]["properties"]
    assert "additionalProperties" not in props["known"]
    assert not any(k.startswith("x-kubernetes") for k in props["values"])
    assert valid(schema, widget({"values": {"anything": {"nested": [1]}}, "known": {"a": "x", "b": 2}}))
    assert not valid(schema, widget({"known": {"a": 1}}))


def test_strict_closes_every_object_with_properties() -> None:
    doc = make_crd(
        {
            "inner": {"type": "object", "properties": {"x": {"type": "integer"}}},
            "list": {
                "type": "array",
                "items": {"type": "object", "properties": {"name": {"type": "string"}}},
            },
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            # properties inside a junctor repeat fields declared outside: closing them would reject `b`
            "either": {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                "anyOf": [{"properties": {"a": {"type": "string"}}, "required": ["a"]}, {"required": ["b"]}],
            },
        }
    )
    schema = one_schema(doc)
    spec = schema["properties"]["spec"]
    assert spec["additionalProperties"] is False
    assert spec["properties"]["inner"]["additionalProperties"] is False
    assert spec["properties"]["list"]["items"]["additionalProperties"] is False
    assert spec["properties"]["labels"]["additionalProperties"] == {"type": "string"}
    assert "additionalProperties" not in spec["properties"]["either"]["anyOf"][0]
    ok = {"inner": {"x": 1}, "list": [{"name": "a"}], "labels": {"k": "v"}, "either": {"a": "1", "b": "2"}}
    assert valid(schema, widget(ok))
    assert not valid(schema, widget({"inner": {"x": 1, "y": 2}}))
    assert not valid(schema, widget({"list": [{"name": "a", "nmae": "b"}]}))
    assert not valid(schema, widget({"unknown": True}))
    assert not valid(schema, widget({"labels": {"k": 1}}))

    lax = one_schema(doc, strict=False)
    assert "additionalProperties" not in lax["properties"]["spec"]
    assert valid(lax, widget({"inner": {"x": 1, "y": 2}, "unknown": True}, extra="top"))


def test_top_level_wrapping() -> None:
    schema = one_schema(make_crd({"a": {"type": "string"}}))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["apiVersion"] == {"type": "string", "enum": ["example.com/v1"]}
    assert schema["properties"]["kind"] == {"type": "string", "enum": ["Widget"]}
    assert schema["additionalProperties"] is False
    assert valid(schema, widget({"a": "x"}))
    assert not valid(schema, {**widget({}), "apiVersion": "example.com/v2"})
    assert not valid(schema, {**widget({}), "kind": "Gadget"})
    assert not valid(schema, {"kind": "Widget", "spec": {}})  # apiVersion is required
    assert not valid(schema, widget({}, extra="top-level field"))
    # metadata is open (the API server fills in most of ObjectMeta) but its common fields are typed
    meta = {"name": "w", "uid": "1", "labels": {"a": "b"}, "ownerReferences": [], "x": {"y": 1}}
    assert valid(schema, {**widget({}), "metadata": meta})
    assert not valid(schema, {**widget({}), "metadata": {"labels": {"replicas": 3}}})
    assert not valid(schema, {**widget({}), "metadata": {"name": 5}})


def test_root_preserve_unknown_fields_keeps_top_level_open() -> None:
    schema = one_schema(make_crd({}, root_extra={"x-kubernetes-preserve-unknown-fields": True}))
    assert "additionalProperties" not in schema
    assert valid(schema, widget({}, extra="ok"))


def test_only_served_versions_and_descriptions_dropped() -> None:
    openapi = {"type": "object", "properties": {"spec": {"type": "object", "description": "d"}}}
    doc = make_crd(
        {},
        versions=[
            {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": openapi}},
            {"name": "v1beta1", "served": False, "storage": False, "schema": {"openAPIV3Schema": openapi}},
            {"name": "v2alpha1", "served": True, "storage": False, "schema": {"openAPIV3Schema": openapi}},
        ],
    )
    results = crd.convert_crd(doc, "test.yaml")
    assert [(r.group, r.version, r.kind) for r in results] == [
        ("example.com", "v1", "Widget"),
        ("example.com", "v2alpha1", "Widget"),
    ]
    assert "description" not in json.dumps(results[0].schema)


def test_fields_named_like_keywords_survive() -> None:
    schema = one_schema(
        make_crd(
            {
                "format": {"type": "string", "enum": ["json", "env"]},
                "description": {"type": "string"},
                "properties": {"type": "object", "additionalProperties": {"type": "string"}},
                "type": {"type": "string"},
            }
        )
    )
    props = schema["properties"]["spec"]["properties"]
    assert sorted(props) == ["description", "format", "properties", "type"]
    assert valid(schema, widget({"format": "env", "description": "x", "properties": {"a": "b"}, "type": "t"}))
    assert not valid(schema, widget({"format": "xml"}))


def test_openapi3_exclusive_bounds_and_yaml_timestamps() -> None:
    schema = one_schema(
        make_crd(
            {
                "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1},
                "since": {"type": "string", "default": yaml.safe_load("2024-01-01")},
            }
        )
    )
    props = schema["properties"]["spec"]["properties"]
    assert props["ratio"] == {"type": "number", "maximum": 1, "exclusiveMinimum": 0}
    assert props["since"]["default"] == "2024-01-01"
    assert valid(schema, widget({"ratio": 0.5}))
    assert not valid(schema, widget({"ratio": 0}))


def test_v1beta1_crd_with_spec_validation() -> None:
    doc = {
        "apiVersion": "apiextensions.k8s.io/v1beta1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "olds.example.com"},
        "spec": {
            "group": "example.com",
            "version": "v1alpha1",
            "names": {"kind": "Old", "plural": "olds"},
            "preserveUnknownFields": False,
            "validation": {
                "openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"properties": {"n": {"type": "integer"}}}},
                }
            },
        },
    }
    (result,) = crd.convert_crd(doc, "old.yaml")
    assert (result.group, result.version, result.kind) == ("example.com", "v1alpha1", "Old")
    base = {"apiVersion": "example.com/v1alpha1", "kind": "Old"}
    assert valid(result.schema, {**base, "spec": {"n": 1}})
    assert not valid(result.schema, {**base, "spec": {"n": 1, "m": 2}})
    # without preserveUnknownFields: false, v1beta1 keeps unknown fields: not strict
    del doc["spec"]["preserveUnknownFields"]
    (lax,) = crd.convert_crd(doc, "old.yaml")
    assert valid(lax.schema, {**base, "spec": {"n": 1, "m": 2}})


def test_convert_does_not_mutate_input() -> None:
    doc = make_crd({"p": {"x-kubernetes-int-or-string": True, "nullable": True}})
    before = copy.deepcopy(doc)
    crd.convert_crd(doc, "test.yaml")
    assert doc == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"group": "../../etc"}, "spec.group '../../etc' is not a DNS subdomain"),
        ({"names": {"kind": "a/b"}}, "spec.names.kind 'a/b' is not a valid kind"),
        ({"versions": []}, "spec.versions is empty"),
    ],
)
def test_bad_crd_is_a_user_error(change: dict[str, Any], message: str) -> None:
    doc = make_crd({})
    doc["spec"].update(change)
    with pytest.raises(UserError) as info:
        crd.convert_crd(doc, "bad.yaml", line=3)
    assert info.value.message == f"CustomResourceDefinition widgets.example.com: {message}"
    assert info.value.location() == "bad.yaml:3"


# ---------------------------------------------------------------------------------------- upstream CRDs

VALID = {
    "Application": """
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: payments-prod
  namespace: argocd
  labels: {app.kubernetes.io/part-of: payments, environment: prod}
  annotations: {argocd.argoproj.io/sync-wave: "5"}
  finalizers: [resources-finalizer.argocd.argoproj.io]
spec:
  project: payments
  source:
    repoURL: https://github.com/example/gitops.git
    targetRevision: main
    path: environments/prod/manifests/payments
    helm:
      releaseName: payments
      valuesObject: {replicaCount: 3, image: {tag: "1.4.2"}, ingress: {enabled: true}}
  destination: {server: "https://kubernetes.default.svc", namespace: payments}
  syncPolicy:
    automated: {prune: true, selfHeal: true}
    syncOptions: [CreateNamespace=true, ServerSideApply=true]
    retry: {limit: 5, backoff: {duration: 5s, factor: 2, maxDuration: 3m}}
  ignoreDifferences:
    - {group: apps, kind: Deployment, jsonPointers: [/spec/replicas]}
  revisionHistoryLimit: 10
""",
    "AppProject": """
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: payments, namespace: argocd}
spec:
  description: Payments team
  sourceRepos: [https://github.com/example/gitops.git]
  destinations:
    - {server: "https://kubernetes.default.svc", namespace: payments}
    - {name: prod-eu, namespace: "payments-*"}
  clusterResourceWhitelist: [{group: "", kind: Namespace}]
  namespaceResourceBlacklist: [{group: "", kind: ResourceQuota}]
  roles:
    - name: ci
      description: CI may sync
      policies: ["p, proj:payments:ci, applications, sync, payments/*, allow"]
      groups: [payments-ci]
  syncWindows:
    - {kind: deny, schedule: "0 22 * * *", duration: 8h, applications: ["*"], manualSync: true}
""",
    "ServiceMonitor": """
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: payments, namespace: payments, labels: {release: prometheus}}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: payments}}
  namespaceSelector: {matchNames: [payments]}
  endpoints:
    - {port: http-metrics, path: /metrics, interval: 30s, scrapeTimeout: 10s, honorLabels: true}
    - targetPort: 9102
      scheme: https
      tlsConfig: {insecureSkipVerify: false, serverName: payments.payments.svc}
      relabelings:
        - {sourceLabels: [__meta_kubernetes_pod_node_name], targetLabel: node, action: replace}
""",
    "PrometheusRule": """
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: payments, namespace: payments, labels: {release: prometheus}}
spec:
  groups:
    - name: payments.rules
      interval: 1m
      rules:
        - record: job:http_requests:rate5m
          expr: sum by (job) (rate(http_requests_total{job="payments"}[5m]))
        - alert: PaymentsHighErrorRate
          expr: |
            sum(rate(http_requests_total{job="payments",code=~"5.."}[5m]))
              / sum(rate(http_requests_total{job="payments"}[5m])) > 0.05
          for: 10m
          labels: {severity: critical, team: payments}
          annotations:
            summary: Payments error rate above 5%
            runbook_url: https://runbooks.example.com/payments/high-error-rate
""",
    "ExternalSecret": """
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: payments-db, namespace: payments}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: aws-secrets-manager, kind: ClusterSecretStore}
  target:
    name: payments-db
    creationPolicy: Owner
    template:
      type: Opaque
      data: {DATABASE_URL: "postgres://{{ .username }}:{{ .password }}@db:5432/payments"}
  data:
    - secretKey: username
      remoteRef: {key: prod/payments/db, property: username}
    - secretKey: password
      remoteRef: {key: prod/payments/db, property: password}
  dataFrom:
    - extract: {key: prod/payments/extra}
""",
}

# (kind, JSON pointer-ish path to set, value): each makes the valid document invalid
BROKEN = [
    ("Application", ("spec", "sourcee"), {"repoURL": "x"}),  # unknown field under spec
    ("Application", ("spec", "syncPolicy", "automated", "prune"), "yes"),  # wrong type
    ("Application", ("spec", "source", "helm", "valueObject"), {}),  # typo one level deeper
    ("AppProject", ("spec", "sourceRepo"), ["x"]),
    ("AppProject", ("spec", "sourceRepos"), "https://github.com/example/gitops.git"),
    ("ServiceMonitor", ("spec", "endpoint"), []),
    ("ServiceMonitor", ("spec", "endpoints", 0, "honorLabels"), "true"),
    ("ServiceMonitor", ("spec", "endpoints", 1, "targetPort"), 9102.5),
    ("PrometheusRule", ("spec", "group"), []),
    ("PrometheusRule", ("spec", "groups", 0, "rules", 1, "for"), 600),
    ("ExternalSecret", ("spec", "refreshIntervall"), "1h"),
    ("ExternalSecret", ("spec", "data", 0, "remoteRef", "key"), 42),
    ("ExternalSecret", ("apiVersion",), "external-secrets.io/v1beta1"),  # not served any more
    ("ExternalSecret", ("metadata", "labels"), {"tier": 1}),
]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not SHARED_CRDS.is_dir():
        pytest.skip("shared upstream CRDs not available")
    cache = tmp_path_factory.mktemp("cache")
    files = sorted(str(p) for p in SHARED_CRDS.iterdir() if p.name != "README.md")
    crd.import_crds(files, cache, io.StringIO())
    return cache


def _schema_for(cache: Path, doc: dict[str, Any]) -> dict[str, Any]:
    group, version = doc["apiVersion"].split("/")
    schema = crd.CrdSchemaStore(cache).get(group, version, doc["kind"])
    assert schema is not None
    return schema


@needs_shared
def test_import_every_shared_crd(tmp_path: Path) -> None:
    files = sorted(str(p) for p in SHARED_CRDS.iterdir() if p.name != "README.md")
    imported = crd.import_crds(files, tmp_path, io.StringIO())
    assert sorted(s.gvk for s in imported) == [
        ("argoproj.io", "v1alpha1", "AppProject"),
        ("argoproj.io", "v1alpha1", "Application"),
        ("argoproj.io", "v1alpha1", "ApplicationSet"),
        ("external-secrets.io", "v1", "ClusterSecretStore"),
        ("external-secrets.io", "v1", "ExternalSecret"),
        ("monitoring.coreos.com", "v1", "PodMonitor"),
        ("monitoring.coreos.com", "v1", "PrometheusRule"),
        ("monitoring.coreos.com", "v1", "ServiceMonitor"),
    ]
    assert (tmp_path / "crds" / "argoproj.io" / "application_v1alpha1.json").is_file()
    assert crd.CrdSchemaStore(tmp_path).known() == sorted(s.gvk for s in imported)
    for s in imported:  # every schema compiles (patterns, formats, draft 2020-12 keywords)
        jsonschema_rs.validator_for(s.schema)


@needs_shared
@pytest.mark.parametrize("kind", sorted(VALID))
def test_realistic_custom_resources_pass(shared_cache: Path, kind: str) -> None:
    doc = yaml.safe_load(VALID[kind])
    validator = jsonschema_rs.validator_for(_schema_for(shared_cache, doc))
    assert [e.message for e in validator.iter_errors(doc)] == []


@needs_shared
@pytest.mark.parametrize(
    ("kind", "path", "value"), BROKEN, ids=lambda v: ".".join(map(str, v)) if isinstance(v, tuple) else None
)
def test_broken_custom_resources_fail(
    shared_cache: Path, kind: str, path: tuple[Any, ...], value: Any
) -> None:
    doc = yaml.safe_load(VALID[kind])
    schema = _schema_for(shared_cache, doc)
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    assert not jsonschema_rs.validator_for(schema).is_valid(doc)


@needs_shared
def test_unserved_version_has_no_schema(shared_cache: Path) -> None:
    store = crd.CrdSchemaStore(shared_cache)
    assert store.get("external-secrets.io", "v1beta1", "ExternalSecret") is None
    assert store.get("external-secrets.io", "v1", "ExternalSecret") is not None


# -------------------------------------------------------------------------------------------- import paths

WIDGET_YAML = yaml.safe_dump(make_crd({"a": {"type": "string"}}))
GADGET_YAML = yaml.safe_dump(make_crd({}, kind="Gadget"))
CONFIGMAP_YAML = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"


def test_import_from_stdin(tmp_path: Path) -> None:
    stdin = io.StringIO(f"{WIDGET_YAML}---\n{CONFIGMAP_YAML}---\n{GADGET_YAML}")
    notes: list[str] = []
    imported = crd.import_crds(["-"], tmp_path, stdin, log=notes.append)
    assert [s.kind for s in imported] == ["Widget", "Gadget"]
    assert notes == ["<stdin>: ignored 1 non-CRD document"]
    stored = json.loads((tmp_path / "crds" / "example.com" / "widget_v1.json").read_text())
    assert stored == imported[0].schema


def test_import_directory_recursively(tmp_path: Path) -> None:
    crd_list = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [make_crd({}, kind="Gizmo")]})
    write_tree(
        tmp_path / "src",
        {
            "b/widget.yml": WIDGET_YAML,
            "a/gadget.json": json.dumps(make_crd({}, kind="Gadget")),
            "list.yaml": crd_list,
            "kustomization.yaml": "resources: [b/widget.yml]\n",
            "README.md": "not yaml: [",
            ".hidden/broken.yaml": "a: [",
        },
    )
    notes: list[str] = []
    imported = crd.import_crds([str(tmp_path / "src")], tmp_path / "cache", io.StringIO(), log=notes.append)
    assert [s.kind for s in imported] == ["Gadget", "Widget", "Gizmo"]  # sorted paths: a/, b/, list.yaml
    assert notes == [f"{tmp_path / 'src' / 'kustomization.yaml'}: no CRDs, skipped"]
    assert crd.CrdSchemaStore(tmp_path / "cache").known() == [
        ("example.com", "v1", "Gadget"),
        ("example.com", "v1", "Gizmo"),
        ("example.com", "v1", "Widget"),
    ]


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec:\n  group: [a\n"
    )
    with pytest.raises(UserError) as info:
        crd.import_crds([str(bad)], tmp_path / "cache", io.StringIO())
    assert info.value.path == str(bad)
    assert info.value.line == 5
    assert info.value.message.startswith("invalid YAML")
    assert not (tmp_path / "cache").exists()


def test_malformed_json_names_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "kind": "CustomResourceDefinition",\n  oops\n}\n')
    with pytest.raises(UserError) as info:
        crd.import_crds([str(bad)], tmp_path / "cache", io.StringIO())
    assert info.value.location() == f"{bad}:3"


def test_file_without_crds_is_an_error(tmp_path: Path) -> None:
    write_tree(tmp_path, {"cm.yaml": CONFIGMAP_YAML, "empty/x.txt": ""})
    with pytest.raises(UserError) as info:
        crd.import_crds([str(tmp_path / "cm.yaml")], tmp_path / "cache", io.StringIO())
    assert info.value.message == "no CustomResourceDefinition in this file"
    with pytest.raises(UserError, match=r"no \.yaml, \.yml or \.json files"):
        crd.import_crds([str(tmp_path / "empty")], tmp_path / "cache", io.StringIO())
    with pytest.raises(UserError, match="file not found"):
        crd.import_crds([str(tmp_path / "missing.yaml")], tmp_path / "cache", io.StringIO())


def test_all_bad_sources_reported_and_nothing_written(tmp_path: Path) -> None:
    write_tree(tmp_path, {"good.yaml": WIDGET_YAML, "cm.yaml": CONFIGMAP_YAML, "bad.yaml": "a: [\n"})
    sources = [str(tmp_path / n) for n in ("good.yaml", "cm.yaml", "bad.yaml")]
    with pytest.raises(UserErrors) as info:
        crd.import_crds(sources, tmp_path / "cache", io.StringIO())
    assert [e.path for e in info.value.errors] == sources[1:]
    assert not (tmp_path / "cache").exists()


# ---------------------------------------------------------------------------------------------- the store


def test_store_loads_each_file_once_and_reports_corruption(tmp_path: Path) -> None:
    crd.import_crds(["-"], tmp_path, io.StringIO(WIDGET_YAML + "---\n" + GADGET_YAML))
    store = crd.CrdSchemaStore(tmp_path)
    first = store.get("example.com", "v1", "Widget")
    assert first is not None
    path = crd.schema_path(tmp_path, "example.com", "v1", "Widget")
    path.write_text("{ truncated")
    assert store.get("example.com", "v1", "Widget") is first  # cached: the file is not read again
    assert store.get("example.com", "v9", "Widget") is None
    assert store.get("..", "v1", "Widget") is None  # never a path outside the cache

    with pytest.raises(UserError) as info:
        crd.CrdSchemaStore(tmp_path).get("example.com", "v1", "Widget")
    assert info.value.path == str(path)
    assert info.value.message.startswith("corrupt schema cache file: invalid JSON")
    assert info.value.hint == "re-run betcycle schemas import"

    path.write_text('["a list"]')
    with pytest.raises(UserError, match="corrupt schema cache file"):
        crd.CrdSchemaStore(tmp_path).known()


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BETCYCLE_SCHEMA_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert crd.default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("BETCYCLE_SCHEMA_CACHE")
    assert crd.default_cache_dir() == tmp_path / "xdg" / "betcycle" / "schemas"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert crd.default_cache_dir() == tmp_path / "home" / ".cache" / "betcycle" / "schemas"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert crd.default_cache_dir() == tmp_path / "home" / ".cache" / "betcycle" / "schemas"


# --------------------------------------------------------------------------------------------------- fetch


class FakeResponse(io.BytesIO):
    pass


def fake_opener(content: dict[str, bytes], calls: list[tuple[str, float]] | None = None) -> Any:
    def opener(url: str, timeout: float) -> FakeResponse:
        if calls is not None:
            calls.append((url, timeout))
        if url not in content:
            raise urllib.error.URLError("Name or service not known")
        return FakeResponse(content[url])

    return opener


def write_lock(path: Path, entries: list[tuple[str, str, bytes | str]]) -> Path:
    lines = ["crds:"]
    for name, url, body in entries:
        sha = body if isinstance(body, str) else hashlib.sha256(body).hexdigest()
        lines += [f"  - name: {name}", f"    url: {url}", f"    sha256: {sha}"]
    path.write_text("\n".join(lines) + "\n")
    return path


URL_W = "https://example.com/crds/widget.yaml"
URL_G = "https://example.com/crds/gadget.yaml"


def test_fetch_verifies_and_imports(tmp_path: Path) -> None:
    bodies = {URL_W: WIDGET_YAML.encode(), URL_G: GADGET_YAML.encode()}
    lock = write_lock(
        tmp_path / "lock.yaml", [("widget", URL_W, bodies[URL_W]), ("gadget", URL_G, bodies[URL_G])]
    )
    calls: list[tuple[str, float]] = []
    imported = crd_fetch.fetch(lock, tmp_path / "cache", opener=fake_opener(bodies, calls))
    assert calls == [(URL_W, 30.0), (URL_G, 30.0)]
    assert [s.kind for s in imported] == ["Widget", "Gadget"]
    assert crd.CrdSchemaStore(tmp_path / "cache").known() == [
        ("example.com", "v1", "Gadget"),
        ("example.com", "v1", "Widget"),
    ]


def test_fetch_sha_mismatch_writes_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    crd.import_crds(["-"], cache, io.StringIO(WIDGET_YAML))
    before = {p: p.read_bytes() for p in cache.rglob("*") if p.is_file()}
    tampered = GADGET_YAML.encode() + b"# changed upstream\n"
    lock = write_lock(
        tmp_path / "lock.yaml",
        [("widget", URL_W, WIDGET_YAML.encode()), ("gadget", URL_G, GADGET_YAML.encode())],
    )
    with pytest.raises(UserError) as info:
        crd_fetch.fetch(lock, cache, opener=fake_opener({URL_W: WIDGET_YAML.encode(), URL_G: tampered}))
    expected = hashlib.sha256(GADGET_YAML.encode()).hexdigest()
    got = hashlib.sha256(tampered).hexdigest()
    assert info.value.message == f"gadget: sha256 mismatch for {URL_G}: expected {expected}, got {got}"
    assert info.value.location() == f"{lock}:5"
    assert {p: p.read_bytes() for p in cache.rglob("*") if p.is_file()} == before


def test_fetch_network_error(tmp_path: Path) -> None:
    lock = write_lock(
        tmp_path / "lock.yaml", [("widget", URL_W, WIDGET_YAML.encode()), ("gadget", URL_G, "f" * 64)]
    )
    calls: list[tuple[str, float]] = []
    with pytest.raises(UserError) as info:
        crd_fetch.fetch(lock, tmp_path / "cache", opener=fake_opener({}, calls))
    assert info.value.message == f"cannot download {URL_W}: Name or service not known"
    assert "schemas import" in (info.value.hint or "")
    assert len(calls) == 1  # the network is down: the other URLs are not tried
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("lock_text", "message"),
    [
        ("crds: {}\n", "expected a mapping with a `crds` list"),
        ("crds:\n  - url: file:///etc/passwd\n    sha256: " + "f" * 64 + "\n", "url must be an http(s) URL"),
        ("crds:\n  - url: https://x/y.yaml\n    sha256: abc\n", "sha256 must be 64 hex digits"),
        ("crds:\n  - url: https://x/y.yaml\n    sha: abc\n", "unknown key 'sha'"),
    ],
)
def test_bad_lock_file(tmp_path: Path, lock_text: str, message: str) -> None:
    lock = tmp_path / "lock.yaml"
    lock.write_text(lock_text)
    with pytest.raises(UserError) as info:
        crd_fetch.fetch(lock, tmp_path / "cache", opener=fake_opener({}))
    assert info.value.message.startswith(message)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def crd_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("no_proxy", "*")  # a proxy from the environment must not see loopback requests
    root = tmp_path / "served"
    write_tree(root, {"widget.yaml": WIDGET_YAML})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=root)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_fetch_over_real_http(tmp_path: Path, crd_server: str) -> None:
    lock = write_lock(tmp_path / "lock.yaml", [("widget", f"{crd_server}/widget.yaml", WIDGET_YAML.encode())])
    imported = crd_fetch.fetch(lock, tmp_path / "cache")
    assert [s.gvk for s in imported] == [("example.com", "v1", "Widget")]

    lock = write_lock(tmp_path / "lock.yaml", [("missing", f"{crd_server}/missing.yaml", "f" * 64)])
    with pytest.raises(UserError) as info:
        crd_fetch.fetch(lock, tmp_path / "cache")
    assert info.value.message == f"cannot download {crd_server}/missing.yaml: HTTP 404 File not found"


# ------------------------------------------------------------------------------------------- the lock file


@needs_shared
def test_lock_file_pins_every_shared_crd() -> None:
    entries = crd_fetch.read_lock(LOCK_FILE)
    shared = sorted(p.name for p in SHARED_CRDS.iterdir() if p.name != "README.md")
    assert sorted(e.name for e in entries) == shared
    readme = (SHARED_CRDS / "README.md").read_text()
    for e in entries:
        assert e.sha256 == hashlib.sha256((SHARED_CRDS / e.name).read_bytes()).hexdigest(), e.name
        assert e.url.startswith("https://raw.githubusercontent.com/")
        _, owner, repo, commit, *path = e.url.removeprefix("https://").split("/")
        assert f"| {owner}/{repo} | {'/'.join(path[:-1])}/ | {commit} |" in readme, e.url
        assert e.name.endswith(path[-1])


@needs_shared
def test_fetch_whole_lock_offline(tmp_path: Path) -> None:
    content = {e.url: (SHARED_CRDS / e.name).read_bytes() for e in crd_fetch.read_lock(LOCK_FILE)}
    imported = crd_fetch.fetch(LOCK_FILE, tmp_path, opener=fake_opener(content))
    assert len(imported) == 8


# ------------------------------------------------------------------------------------------------ commands


def test_run_import_and_fetch_print_one_line_per_schema(tmp_path: Path, crd_server: str) -> None:
    (tmp_path / "widget.yaml").write_text(WIDGET_YAML)
    out = io.StringIO()
    assert (
        schemas_cmd.run_import([str(tmp_path / "widget.yaml")], tmp_path / "cache", out, io.StringIO()) == 0
    )
    path = tmp_path / "cache" / "crds" / "example.com" / "widget_v1.json"
    assert out.getvalue().splitlines() == [
        f"imported example.com/v1 Widget -> {path}",
        f"1 schema imported into {tmp_path / 'cache'}",
    ]

    lock = write_lock(tmp_path / "lock.yaml", [("widget", f"{crd_server}/widget.yaml", WIDGET_YAML.encode())])
    out = io.StringIO()
    assert schemas_cmd.run_fetch(lock, tmp_path / "cache2", out) == 0
    written = crd.schema_path(tmp_path / "cache2", "example.com", "v1", "Widget")
    assert out.getvalue().splitlines() == [
        f"imported example.com/v1 Widget -> {written}",
        f"1 schema pinned in {lock} imported into {tmp_path / 'cache2'}",
    ]


def test_run_import_uses_default_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BETCYCLE_SCHEMA_CACHE", str(tmp_path / "env-cache"))
    out = io.StringIO()
    schemas_cmd.run_import(["-"], None, out, io.StringIO(WIDGET_YAML))
    assert (tmp_path / "env-cache" / "crds" / "example.com" / "widget_v1.json").is_file()
