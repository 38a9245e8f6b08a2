"""CRD → JSON schema conversion, the schema folders (cache and vendored) and importing into a cache.

The lock file, the vendored folder, fetch and check are test_crd_vendor.py's."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from betcycle.errors import UserError, UserErrors
from betcycle.validate import crd
from tests.conftest import VENDORED_SCHEMAS


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


def _schema_for(doc: dict[str, Any]) -> dict[str, Any]:
    group, version = doc["apiVersion"].split("/")
    schema = crd.CrdSchemaStore(VENDORED_SCHEMAS).get(group, version, doc["kind"])
    assert schema is not None
    return schema


def test_vendored_schemas_cover_the_pinned_kinds_and_compile() -> None:
    store = crd.CrdSchemaStore(VENDORED_SCHEMAS)
    assert store.known() == [
        ("argoproj.io", "v1alpha1", "AppProject"),
        ("argoproj.io", "v1alpha1", "Application"),
        ("argoproj.io", "v1alpha1", "ApplicationSet"),
        ("external-secrets.io", "v1", "ClusterSecretStore"),
        ("external-secrets.io", "v1", "ExternalSecret"),
        ("monitoring.coreos.com", "v1", "PodMonitor"),
        ("monitoring.coreos.com", "v1", "PrometheusRule"),
        ("monitoring.coreos.com", "v1", "ServiceMonitor"),
    ]
    for gvk in store.known():  # every schema compiles (patterns, formats, draft 2020-12 keywords)
        jsonschema_rs.validator_for(store.get(*gvk))


@pytest.mark.parametrize("kind", sorted(VALID))
def test_realistic_custom_resources_pass(kind: str) -> None:
    doc = yaml.safe_load(VALID[kind])
    validator = jsonschema_rs.validator_for(_schema_for(doc))
    assert [e.message for e in validator.iter_errors(doc)] == []


@pytest.mark.parametrize(
    ("kind", "path", "value"), BROKEN, ids=lambda v: ".".join(map(str, v)) if isinstance(v, tuple) else None
)
def test_broken_custom_resources_fail(kind: str, path: tuple[Any, ...], value: Any) -> None:
    doc = yaml.safe_load(VALID[kind])
    schema = _schema_for(doc)
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    assert not jsonschema_rs.validator_for(schema).is_valid(doc)


def test_unserved_version_has_no_schema() -> None:
    store = crd.CrdSchemaStore(VENDORED_SCHEMAS)
    assert store.get("external-secrets.io", "v1beta1", "ExternalSecret") is None
    assert store.get("external-secrets.io", "v1", "ExternalSecret") is not None
    assert store.other_versions("ExternalSecret") == ["external-secrets.io/v1"]


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
    assert info.value.message.startswith("corrupt schema file: invalid JSON")
    assert info.value.hint == "re-run betcycle schemas import"

    path.write_text('["a list"]')
    with pytest.raises(UserError, match="corrupt schema file"):
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


def test_store_looks_up_folders_in_order(tmp_path: Path) -> None:
    strict_widget = yaml.safe_dump(make_crd({"a": {"type": "string"}}))
    lax_widget = yaml.safe_dump(
        make_crd({"a": {"type": "string"}}, root_extra={"x-kubernetes-preserve-unknown-fields": True})
    )
    crd.import_crds(["-"], tmp_path / "first", io.StringIO(strict_widget))
    crd.import_crds(["-"], tmp_path / "second", io.StringIO(lax_widget + "---\n" + GADGET_YAML))
    store = crd.CrdSchemaStore(crd.SchemaDir(tmp_path / "first", "hint one"), tmp_path / "second")
    widget_schema = store.get("example.com", "v1", "Widget")
    assert widget_schema is not None and widget_schema["additionalProperties"] is False  # the first folder's
    assert store.path_of("example.com", "v1", "Widget") == crd.schema_path(
        tmp_path / "first", "example.com", "v1", "Widget"
    )
    assert store.get("example.com", "v1", "Gadget") is not None  # only the second folder has it
    assert store.known() == [("example.com", "v1", "Gadget"), ("example.com", "v1", "Widget")]
    assert store.other_versions("Widget") == ["example.com/v1"]
    assert store.other_versions("../x") == []

    crd.schema_path(tmp_path / "first", "example.com", "v1", "Widget").write_text("[]")
    with pytest.raises(UserError) as info:
        crd.CrdSchemaStore(crd.SchemaDir(tmp_path / "first", "hint one")).get("example.com", "v1", "Widget")
    assert info.value.hint == "hint one"


def test_dump_is_sorted_stable_and_compact_where_it_fits() -> None:
    schema = {"b": {"type": "string"}, "a": [1, 2], "$schema": "x", "c": {"k" * 60: "v" * 60}}
    text = crd.dump_schema(schema)
    assert json.loads(text) == schema
    assert text == crd.dump_schema(json.loads(text))  # a round trip changes no byte
    assert text.splitlines() == [
        "{",
        ' "$schema": "x",',
        ' "a": [1, 2],',
        ' "b": {"type": "string"},',
        ' "c": {',
        f'  "{"k" * 60}": "{"v" * 60}"',
        " }",
        "}",
    ]
