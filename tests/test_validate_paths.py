"""`betcycle validate PATH…` on anyone's manifests: chosen checks, warnings for what lives elsewhere, declared
external objects, every pod-template owner, generateName, and the line of each item of a List."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from betcycle.validate import manifests
from tests.conftest import write_tree

RC_AND_SERVICE = """\
apiVersion: v1
kind: ReplicationController
metadata: {name: nginx, namespace: web}
spec:
  replicas: 2
  selector: {app: nginx}
  template:
    metadata: {labels: {app: nginx}}
    spec:
      containers:
        - name: nginx
          image: nginx:1.27
          ports: [{name: http, containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: nginx, namespace: web}
spec:
  selector: {app: nginx}
  ports: [{port: 80, targetPort: http}]
"""

LONE_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      serviceAccountName: api-runner
      containers:
        - name: api
          image: registry.example.com/api:1.0
"""

JOB = """\
apiVersion: batch/v1
kind: Job
metadata:
  generateName: migrate-
  namespace: shop
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: registry.example.com/migrate:1.0
"""


def validate(cli, root: Path, *args: str | Path) -> tuple[int, list[dict[str, Any]], str]:
    """`betcycle --root ROOT validate --format json ARGS`: (exit code, findings, stderr)."""
    code, out, err = cli("--root", root, "validate", "--format", "json", *args)
    return code, (json.loads(out)["findings"] if out else []), err


def test_a_service_selecting_a_replication_controller_selects_its_pods(tmp_path: Path, cli) -> None:
    write_tree(tmp_path, {"rc.yaml": RC_AND_SERVICE})
    code, findings, _ = validate(cli, tmp_path, tmp_path / "rc.yaml")
    assert (code, findings) == (0, [])
    # and the named targetPort is looked up in the RC's pod template
    write_tree(tmp_path, {"rc.yaml": RC_AND_SERVICE.replace("targetPort: http", "targetPort: htp")})
    code, findings, _ = validate(cli, tmp_path, tmp_path / "rc.yaml")
    assert code == 1 and [f["rule"] for f in findings] == ["crossref/target-port"]


@pytest.mark.parametrize(
    ("kind", "api", "template"),
    [
        ("ReplicaSet", "apps/v1", "spec:\n  selector: {matchLabels: {app: w}}\n  template:\n"),
        ("DaemonSet", "apps/v1", "spec:\n  selector: {matchLabels: {app: w}}\n  template:\n"),
        (
            "StatefulSet",
            "apps/v1",
            "spec:\n  serviceName: w\n  selector: {matchLabels: {app: w}}\n  template:\n",
        ),
        ("Job", "batch/v1", "spec:\n  template:\n"),
        ("CronJob", "batch/v1", "spec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n"),
    ],
)
def test_every_pod_template_owner_counts_for_selectors(
    tmp_path: Path, cli, kind: str, api: str, template: str
) -> None:
    indent = " " * (template.splitlines()[-1].index("template") + 2)
    pod = (
        f"{indent}metadata: {{labels: {{app: w}}}}\n{indent}spec:\n{indent}  restartPolicy: "
        f"{'Always' if kind in ('ReplicaSet', 'DaemonSet', 'StatefulSet') else 'Never'}\n"
        f"{indent}  containers: [{{name: w, image: 'nginx:1.27'}}]\n"
    )
    owner = f"apiVersion: {api}\nkind: {kind}\nmetadata: {{name: w, namespace: ns}}\n{template}{pod}"
    svc = "apiVersion: v1\nkind: Service\nmetadata: {name: w, namespace: ns}\nspec: {selector: {app: w}, ports: [{port: 80}]}\n"
    write_tree(tmp_path, {"m.yaml": owner + "---\n" + svc})
    code, findings, _ = validate(cli, tmp_path, tmp_path / "m.yaml")
    assert (code, findings) == (0, [])


def test_a_reference_to_an_object_outside_the_files_is_a_warning(tmp_path: Path, cli) -> None:
    write_tree(tmp_path, {"deploy.yaml": LONE_DEPLOYMENT})
    code, findings, _ = validate(cli, tmp_path, tmp_path / "deploy.yaml")
    assert code == 0
    [f] = findings
    assert (f["severity"], f["rule"], f["path"]) == (
        "warning",
        "crossref/missing-reference",
        "spec.template.spec.serviceAccountName",
    )
    assert f["message"] == "ServiceAccount 'api-runner' is not in these files (namespace shop)"
    assert "--external ServiceAccount/shop/api-runner (or in an --external-file)" in f["hint"]
    # the text report says it too, and still exits 0
    code, out, _ = cli("--root", tmp_path, "validate", tmp_path / "deploy.yaml")
    assert code == 0 and "warning" in out and "api-runner" in out


def test_external_declarations_silence_the_warning(tmp_path: Path, cli) -> None:
    write_tree(tmp_path, {"deploy.yaml": LONE_DEPLOYMENT})
    target = tmp_path / "deploy.yaml"
    for declared in ("ServiceAccount/api-runner", "serviceaccount/shop/api-runner"):
        assert validate(cli, tmp_path, target, "--external", declared)[:2] == (0, [])
    # another namespace, or another name, is not the one the Deployment uses
    for other in ("ServiceAccount/default/api-runner", "ServiceAccount/api"):
        assert len(validate(cli, tmp_path, target, "--external", other)[1]) == 1
    write_tree(
        tmp_path,
        {
            "ext.yaml": "- Secret/db\n- {kind: ServiceAccount, namespace: shop, name: api-runner}\n",
            "kubectl.yaml": "apiVersion: v1\nkind: List\nitems:\n"
            "  - {apiVersion: v1, kind: ServiceAccount, metadata: {name: api-runner, namespace: shop}}\n",
        },
    )
    assert validate(cli, tmp_path, target, "--external-file", tmp_path / "ext.yaml")[:2] == (0, [])
    assert validate(cli, tmp_path, target, "--external-file", tmp_path / "kubectl.yaml")[:2] == (0, [])


def test_bad_external_declarations_are_bad_input(tmp_path: Path, cli) -> None:
    write_tree(tmp_path, {"deploy.yaml": LONE_DEPLOYMENT, "ext.yaml": "- Secret/db\n- {kind: Secret}\n"})
    target = tmp_path / "deploy.yaml"
    code, _, err = validate(cli, tmp_path, target, "--external", "api-runner")
    assert code == 2 and "is not KIND/NAME or KIND/NAMESPACE/NAME" in err
    code, _, err = validate(cli, tmp_path, target, "--external", "ServiceAcount/api-runner")
    assert code == 2 and "unknown kind 'ServiceAcount'" in err and "did you mean 'ServiceAccount'?" in err
    code, _, err = validate(cli, tmp_path, target, "--external-file", tmp_path / "ext.yaml")
    assert code == 2 and "ext.yaml:2:" in err and "needs a kind and a name" in err


def test_checks_chooses_the_stages(tmp_path: Path, cli) -> None:
    bad = LONE_DEPLOYMENT.replace("image: registry", "imagePullPolcy: Always\n          image: registry")
    write_tree(tmp_path, {"deploy.yaml": bad})
    target = tmp_path / "deploy.yaml"
    code, findings, _ = validate(cli, tmp_path, target, "--checks", "schema")
    assert code == 1 and {f["rule"] for f in findings} == {"schema"}
    code, findings, _ = validate(cli, tmp_path, target, "--checks", "crossref")
    assert code == 0 and {f["rule"] for f in findings} == {"crossref/missing-reference"}
    code, out, _ = cli("--root", tmp_path, "validate", "--checks", "crossref", target)
    assert out.splitlines()[-1] == "1 resource(s), schemas not checked (--checks): 0 error(s), 1 warning(s)"
    code, findings, _ = validate(cli, tmp_path, target, "--checks", "schema,crossref,policy")
    assert {f["rule"] for f in findings} == {"schema", "crossref/missing-reference"}
    code, _, err = validate(cli, tmp_path, target, "--checks", "schema,crosref")
    assert code == 2
    assert "unknown check 'crosref' in --checks" in err
    assert "did you mean 'crossref'? The checks are: schema, crossref, policy" in err


def test_checks_policy_alone_and_no_policies(example: Path, cli, crd_cache: Path) -> None:
    # FX001 (the fixture's policy) wants pinned image tags
    write_tree(example, {"deploy.yaml": LONE_DEPLOYMENT.replace("api:1.0", "api:latest")})
    target = example / "deploy.yaml"
    code, findings, _ = validate(cli, example, target, "--checks", "policy")
    assert code == 1 and [f["rule"] for f in findings] == ["policy/FX001"]
    code, findings, _ = validate(cli, example, target, "--no-policies")
    assert not any(f["rule"].startswith("policy/") for f in findings)
    # with no PATH, --checks applies to the rendered environments too
    code, findings, _ = validate(cli, example, "--schema-cache", crd_cache, "--checks", "crossref")
    assert (code, findings) == (0, [])


def test_selector_mismatches_and_duplicates_inside_the_files_stay_errors(tmp_path: Path, cli) -> None:
    mismatch = RC_AND_SERVICE.replace("selector: {app: nginx}\n  ports", "selector: {app: ngnix}\n  ports")
    write_tree(tmp_path, {"m.yaml": mismatch})
    code, findings, _ = validate(cli, tmp_path, tmp_path / "m.yaml")
    assert code == 1 and [(f["severity"], f["rule"]) for f in findings] == [
        ("error", "crossref/service-selector")
    ]
    # a lone Service: its pods are deployed from elsewhere, which is only a warning
    lone = RC_AND_SERVICE.split("---\n")[1]
    write_tree(tmp_path, {"svc.yaml": lone})
    code, findings, _ = validate(cli, tmp_path, tmp_path / "svc.yaml")
    assert code == 0 and [(f["severity"], f["rule"]) for f in findings] == [
        ("warning", "crossref/service-selector")
    ]
    write_tree(tmp_path, {"dup.yaml": RC_AND_SERVICE + "---\n" + lone})
    code, findings, _ = validate(cli, tmp_path, tmp_path / "dup.yaml")
    assert code == 1 and [f["rule"] for f in findings] == ["crossref/duplicate"]
    assert "is also defined in" in findings[0]["message"] and "dup.yaml:15" in findings[0]["message"]


def test_ingress_backend_and_hpa_target_elsewhere_are_warnings(tmp_path: Path, cli) -> None:
    ingress = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  rules:
    - host: shop.example.com
      http:
        paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: shop}
spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}, maxReplicas: 3}
"""
    write_tree(tmp_path, {"m.yaml": ingress})
    code, findings, _ = validate(cli, tmp_path, tmp_path / "m.yaml")
    assert code == 0
    assert sorted((f["severity"], f["rule"]) for f in findings) == [
        ("warning", "crossref/hpa-target"),
        ("warning", "crossref/ingress-backend"),
    ]
    declared = ("--external", "Service/web", "--external", "Deployment/shop/web")
    assert validate(cli, tmp_path, tmp_path / "m.yaml", *declared)[:2] == (0, [])


def test_files_of_an_environment_keep_its_strictness(example: Path, cli, crd_cache: Path) -> None:
    """Inside environments/<env>/manifests everything the environment needs must be in it."""
    write_tree(example, {"environments/dev/manifests/extra/deploy.yaml": LONE_DEPLOYMENT})
    inside = example / "environments/dev/manifests/extra/deploy.yaml"
    code, findings, _ = validate(cli, example, "--no-policies", inside)
    assert code == 1
    [f] = [f for f in findings if f["rule"] == "crossref/missing-reference"]
    assert f["severity"] == "error" and "external.serviceAccounts in environment.yaml" in f["hint"]
    # environment.yaml's external declarations count for its files
    env_file = example / "environments/dev/environment.yaml"
    env_file.write_text(env_file.read_text() + "external:\n  serviceAccounts: [shop/api-runner]\n")
    code, findings, _ = validate(cli, example, "--no-policies", inside)
    assert not [f for f in findings if f["rule"] == "crossref/missing-reference"]
    # the same file anywhere else is anyone's manifest
    write_tree(example, {"elsewhere/deploy.yaml": LONE_DEPLOYMENT})
    code, findings, _ = validate(cli, example, "--no-policies", example / "elsewhere")
    assert code == 0 and [f["severity"] for f in findings] == ["warning"]


def test_rendered_environments_without_path_stay_strict(example: Path, cli, crd_cache: Path) -> None:
    write_tree(example, {"environments/dev/manifests/extra/deploy.yaml": LONE_DEPLOYMENT})
    code, findings, _ = validate(cli, example, "--schema-cache", crd_cache, "--env", "dev")
    assert code == 1
    assert ("error", "crossref/missing-reference") in {(f["severity"], f["rule"]) for f in findings}
    assert all(f["severity"] == "error" for f in findings if f["rule"].startswith("crossref/"))


def test_generate_name_is_accepted_with_a_warning(tmp_path: Path, cli) -> None:
    write_tree(tmp_path, {"job.yaml": JOB})
    code, findings, _ = validate(cli, tmp_path, tmp_path / "job.yaml")
    assert code == 0
    [f] = findings
    assert (f["severity"], f["rule"], f["resource"]) == (
        "warning",
        "schema/generate-name",
        "Job/shop/migrate-*",
    )
    assert "Argo CD creates a new object on every sync" in f["message"]
    hook = JOB.replace(
        "  namespace: shop\n", "  namespace: shop\n  annotations: {argocd.argoproj.io/hook: PreSync}\n"
    )
    write_tree(tmp_path, {"job.yaml": hook})
    assert validate(cli, tmp_path, tmp_path / "job.yaml")[:2] == (0, [])
    # two objects named by the API server are two objects, not duplicates
    write_tree(tmp_path, {"job.yaml": hook + "---\n" + hook})
    assert validate(cli, tmp_path, tmp_path / "job.yaml")[:2] == (0, [])


def test_an_object_without_name_or_generate_name_is_an_error(tmp_path: Path, cli) -> None:
    write_tree(tmp_path, {"job.yaml": JOB.replace("  generateName: migrate-\n", "")})
    code, findings, _ = validate(cli, tmp_path, tmp_path / "job.yaml")
    assert code == 1 and [f["message"] for f in findings] == ["object has no metadata.name"]
    crd = (
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {generateName: w-}\n"
        "spec: {group: example.com, scope: Namespaced, names: {plural: ws, kind: W}, versions: []}\n"
    )
    write_tree(tmp_path, {"crd.yaml": crd})
    code, findings, _ = validate(cli, tmp_path, "--checks", "schema", tmp_path / "crd.yaml")
    assert code == 1
    assert "a CustomResourceDefinition cannot be named by metadata.generateName" in [
        f["message"] for f in findings
    ]


LIST = """\
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: a, namespace: shop}
    dataa: {}
  - apiVersion: v1
    kind: ConfigMap
    metadata:
      name: b
      namespace: shop
    dat: {}
---
apiVersion: v1
kind: ConfigMapList
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: c, namespace: shop}
    data: {x: 1}
"""


def test_each_item_of_a_list_reports_its_own_line(tmp_path: Path, cli) -> None:
    write_tree(tmp_path, {"list.yaml": LIST})
    assert [r.line for r in manifests.parse(LIST, "list.yaml")] == [4, 8, 18]
    code, findings, _ = validate(cli, tmp_path, "--checks", "schema", tmp_path / "list.yaml")
    assert code == 1
    assert sorted((f["resource"], f["line"]) for f in findings) == [
        ("ConfigMap/shop/a", 4),
        ("ConfigMap/shop/b", 8),
        ("ConfigMap/shop/c", 18),
    ]
    target = str(tmp_path / "list.yaml")
    code, out, _ = cli("--root", tmp_path, "validate", "--checks", "schema", target)
    assert f"{target}:8" in out and f"{target}:18" in out
    code, out, _ = cli("--root", tmp_path, "validate", "--checks", "schema", "--format", "github", target)
    assert "line=4" in out and "line=8" in out and "line=18" in out
    code, out, _ = cli("--root", tmp_path, "validate", "--checks", "schema", "--format", "sarif", target)
    lines = [
        r["locations"][0]["physicalLocation"]["region"]["startLine"]
        for r in json.loads(out)["runs"][0]["results"]
    ]
    assert sorted(lines) == [4, 8, 18]


def test_json_lists_report_item_lines_too(tmp_path: Path) -> None:
    text = json.dumps({"apiVersion": "v1", "kind": "List", "items": [{"kind": "A"}, {"kind": "B"}]}, indent=2)
    assert [r.line for r in manifests.parse(text, "l.json")] == [5, 8]


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_a_rendered_files_findings_name_the_template_in_its_header(eol: str) -> None:
    header = eol.join(["# Generated by betcycle render", "# app: a", "# template: charts/x/t.yaml", ""])
    for body in ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", "{kind: A, apiVersion: v1}"):
        got = manifests.parse(header + body, "environments/dev/manifests/a/c.yaml")
        assert all(r.source == "charts/x/t.yaml" for r in got)
    assert manifests._head("a\nb\nc") == "a\nb\nc" and manifests._head("1\n2\n3\n4\n5\n") == "1\n2\n3\n4\n"


def test_an_environments_files_given_as_text_paths_are_read_and_refused_as_read_text_would(
    tmp_path: Path,
) -> None:
    import os

    from betcycle.errors import UserError
    from betcycle.model.yamlio import read_text

    (tmp_path / "ok.yaml").write_text("a: é\n")
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "latin1.yaml").write_bytes(b"a: 1\nb: \xe9\n")
    (tmp_path / "folder.yaml").mkdir()
    os.mkfifo(tmp_path / "fifo.yaml")
    for name in ("ok.yaml", "empty.yaml", "latin1.yaml", "folder.yaml", "fifo.yaml", "missing.yaml"):
        path = tmp_path / name
        try:
            expected: object = read_text(path, name)
        except UserError as exc:
            expected = (exc.message, exc.path, exc.line)
        try:
            got: object = read_text(str(path), name)  # as env_manifest_texts reads them
        except UserError as exc:
            got = (exc.message, exc.path, exc.line)
        assert got == expected, name
