from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from betcycle.errors import UserError
from betcycle.validate import crd, manifests
from betcycle.validate.crd import CrdSchemaStore
from betcycle.validate.crd_vendor import ADD_HINT
from betcycle.validate.engine import validate_schemas
from tests.conftest import VENDORED_SCHEMAS, write_tree

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports: [{name: http, containerPort: 80}]
"""


def run_validate(cli, *args: str | Path) -> tuple[int, str, str]:
    return cli(*args)


def test_example_repository_is_clean_with_crd_schemas(example: Path, cli, crd_cache: Path) -> None:
    code, out, err = cli("--root", example, "validate", "--strict", "--schema-cache", crd_cache)
    assert code == 0, out + err
    assert "0 error(s)" in out


def test_vendored_schemas_are_found_from_the_root_and_strict_is_the_default(
    example: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(VENDORED_SCHEMAS / "crds", example / "schemas" / "crds")
    code, out, err = cli("--root", example, "validate", "--format", "json")
    assert code == 0, out + err
    summary = json.loads(out)["summary"]
    assert summary["errors"] == 0 and summary["skipped"] == 0 and summary["checked"] > 0
    # without --root: the root (and with it schemas/crds) is found upwards from the current folder
    monkeypatch.chdir(example / "environments")
    code, out, err = cli("validate", "--no-policies")
    assert code == 0, out + err


WIDGET_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              %s
              properties:
                size: {type: integer}
"""
CUSTOM = """\
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: shop}
spec: {size: 1, colour: red}
---
apiVersion: example.com/v1
kind: Gadget
metadata: {name: g, namespace: shop}
spec: {anything: true}
"""


def test_vendored_schemas_come_before_the_user_cache(tmp_path: Path, cli) -> None:
    root = write_tree(tmp_path / "repo", {"betcycle.yaml": "", "custom.yaml": CUSTOM})
    strict, lax = WIDGET_CRD % "", WIDGET_CRD % "x-kubernetes-preserve-unknown-fields: true"
    gadget = strict.replace("Widget", "Gadget").replace("widgets", "gadgets")
    crd.import_crds(["-"], root / "schemas", io.StringIO(strict))  # the repository's (vendored) folder
    cache = tmp_path / "cache"
    crd.import_crds(["-"], cache, io.StringIO(lax + "---\n" + gadget))
    args = ["--root", root, "validate", "--no-policies", "--format", "json", "--schema-cache", cache]
    code, out, _ = cli(*args, root / "custom.yaml")
    doc = json.loads(out)
    assert code == 1
    # the vendored Widget schema (closed) wins over the cached one (open); the cache adds Gadget
    assert [(f["resource"], f["message"]) for f in doc["findings"]] == [
        ("Gadget/shop/g", "unknown field 'anything'"),
        ("Widget/shop/w", "unknown field 'colour'"),
    ]
    assert doc["summary"]["skipped"] == 0


def test_custom_resource_without_any_schema_is_a_strict_error_with_a_hint(tmp_path: Path, cli) -> None:
    custom = CUSTOM.replace(", colour: red", "")
    root = write_tree(tmp_path / "repo", {"betcycle.yaml": "", "custom.yaml": custom})
    crd.import_crds(["-"], root / "schemas", io.StringIO(WIDGET_CRD % ""))
    code, out, _ = cli("--root", root, "validate", "--no-policies", "--format", "json", root / "custom.yaml")
    assert code == 1
    (finding,) = json.loads(out)["findings"]
    assert finding["rule"] == "schema/no-schema"
    assert finding["message"] == "no schema for custom resource example.com/v1 Gadget"
    assert finding["hint"] == ADD_HINT
    assert "crds.lock.yaml" in ADD_HINT and "schemas import --vendor" in ADD_HINT

    # a kind the vendored schemas know under another apiVersion: the hint says which
    (root / "v2.yaml").write_text("apiVersion: example.com/v2\nkind: Widget\nmetadata: {name: w}\n")
    code, out, _ = cli("--root", root, "validate", "--no-policies", "--format", "json", root / "v2.yaml")
    (finding,) = json.loads(out)["findings"]
    assert finding["hint"].startswith(
        "a schema exists for Widget in example.com/v1: check the apiVersion, or "
    )

    # --no-strict reports them as skipped instead
    code, out, _ = cli("--root", root, "validate", "--no-policies", "--no-strict", root / "custom.yaml")
    assert code == 0, out
    assert "skipped (no schema): example.com/v1 Gadget (1)" in out


def test_rendered_argocd_objects_are_valid_against_upstream_crds(example: Path, cli, crd_cache: Path) -> None:
    code, out, _ = cli(
        "--root",
        example,
        "validate",
        "--strict",
        "--no-policies",
        "--schema-cache",
        crd_cache,
        "--format",
        "json",
        *sorted(str(p) for p in example.glob("environments/*/manifests/argocd/*.yaml")),
    )
    doc = json.loads(out)
    assert code == 0, doc
    # per environment: its AppProject and root Application, and hello's AppProject and Application
    assert doc["summary"]["checked"] == 12
    assert doc["summary"]["skipped"] == 0


def test_custom_resources_without_schema_are_strict_errors_unless_no_strict(example: Path, cli) -> None:
    # no schemas/ in this repository and an empty cache: nothing to check Argo CD's objects against
    code, out, _ = cli("--root", example, "validate", "--no-policies")
    assert code == 1
    assert "[schema/no-schema]" in out
    code, out, _ = cli("--root", example, "validate", "--no-policies", "--no-strict")
    assert code == 0
    assert "skipped (no schema): argoproj.io/v1alpha1 AppProject (6)" in out


def test_removed_api_in_a_template_is_reported_as_removed(example: Path, cli, crd_cache: Path) -> None:
    tpl = example / "charts/service/templates/pdb.yaml.j2"
    tpl.write_text(tpl.read_text().replace("policy/v1", "policy/v1beta1"))
    assert cli("--root", example, "render")[0] == 0
    code, out, _ = cli("--root", example, "validate", "--schema-cache", crd_cache, "--format", "json")
    assert code == 1
    found = [f for f in json.loads(out)["findings"] if f["rule"] == "schema/removed-api"]
    assert found, out
    f = found[0]
    assert f["message"] == (
        "policy/v1beta1 PodDisruptionBudget was removed in Kubernetes 1.25; this environment targets 1.31"
    )
    assert f["hint"] == "use policy/v1"
    assert f["source"] == "charts/service/templates/pdb.yaml.j2"
    assert f["env"] in {"prod", "staging"} and f["app"] == "hello"


def test_unknown_field_and_wrong_type_in_loose_files(tmp_path: Path, cli) -> None:
    bad = DEPLOY.replace("replicas: 2", 'replicas: "2"').replace(
        "image: nginx:1.27", "image: nginx:1.27\n          imagePullPolcy: Always"
    )
    write_tree(tmp_path, {"deploy.yaml": bad})
    code, out, _ = cli(
        "--root", tmp_path, "validate", "--no-policies", "--format", "json", tmp_path / "deploy.yaml"
    )
    assert code == 1
    findings = json.loads(out)["findings"]
    by_path = {f["path"]: f for f in findings}
    assert by_path["spec.replicas"]["message"].startswith('"2" is not of type')
    typo = by_path["spec.template.spec.containers[0].imagePullPolcy"]
    assert typo["message"] == "unknown field 'imagePullPolcy'"
    assert typo["hint"] == "did you mean 'imagePullPolicy'?"
    assert typo["source"].endswith("deploy.yaml") and typo["line"] == 1


def test_folders_lists_and_multi_documents(tmp_path: Path, cli) -> None:
    svc = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: http}]\n"
    lst = "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: a, namespace: shop}\n"
    write_tree(
        tmp_path, {"k8s/a.yaml": DEPLOY + "---\n" + svc, "k8s/sub/list.yml": lst, "k8s/README.md": "x"}
    )
    code, out, _ = cli("--root", tmp_path, "validate", "--no-policies", "--format", "json", tmp_path / "k8s")
    assert code == 0, out
    assert json.loads(out)["summary"]["checked"] == 3


def test_stdin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cli) -> None:
    monkeypatch.setattr(
        "sys.stdin", io.StringIO("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containerz: []}\n")
    )
    code, out, _ = cli("--root", tmp_path, "validate", "--no-policies", "-")
    assert code == 1
    assert "<stdin>" in out and "unknown field 'containerz'" in out


def test_missing_path_and_malformed_yaml_are_bad_input(tmp_path: Path, cli) -> None:
    code, _, err = cli("--root", tmp_path, "validate", tmp_path / "nope.yaml")
    assert code == 2 and "no such file or folder" in err
    write_tree(tmp_path, {"bad.yaml": "a: [1,\n"})
    code, _, err = cli("--root", tmp_path, "validate", tmp_path / "bad.yaml")
    assert code == 2 and "invalid YAML" in err and "bad.yaml:" in err


def test_kubernetes_version_selects_schemas(tmp_path: Path, cli) -> None:
    hpa = "apiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec: {scaleTargetRef: {kind: Deployment, name: x}, maxReplicas: 2}\n"
    write_tree(tmp_path, {"hpa.yaml": hpa})
    code, out, _ = cli(
        "--root", tmp_path, "validate", "--no-policies", "--kubernetes-version", "1.25", tmp_path / "hpa.yaml"
    )
    assert "removed" not in out
    code, out, _ = cli(
        "--root", tmp_path, "validate", "--no-policies", "--kubernetes-version", "1.26", tmp_path / "hpa.yaml"
    )
    assert code == 1 and "autoscaling/v2beta2 HorizontalPodAutoscaler was removed in Kubernetes 1.26" in out
    code, _, err = cli("--root", tmp_path, "validate", "--kubernetes-version", "1.2", tmp_path / "hpa.yaml")
    assert code == 2 and "unsupported --kubernetes-version" in err


def test_unknown_builtin_kind(tmp_path: Path) -> None:
    res = manifests.parse("apiVersion: apps/v1\nkind: Deploymnt\nmetadata: {name: x}\n", "x.yaml")
    report = validate_schemas(res, {None: "1.31"}, CrdSchemaStore(tmp_path))
    assert report.findings[0].rule == "schema/unknown-kind"


def test_not_an_object(tmp_path: Path) -> None:
    with pytest.raises(UserError) as e:
        manifests.parse("- a\n- b\n", "x.yaml")
    assert e.value.line == 1


def test_output_file_and_formats(example: Path, cli, crd_cache: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.sarif"
    code, out, _ = cli(
        "--root", example, "validate", "--schema-cache", crd_cache, "--format", "sarif", "-o", target
    )
    assert code == 0 and out == ""
    sarif = json.loads(target.read_text())
    assert sarif["version"] == "2.1.0"
    assert sarif["runs"][0]["tool"]["driver"]["name"] == "betcycle"
