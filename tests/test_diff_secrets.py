"""diff_secrets.py: every place a secret travels is masked with a per-run keyed digest, in every format."""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from betcycle.diff.engine import DiffReport, EnvInfo, compute
from betcycle.diff.formats import write_json, write_markdown, write_text
from betcycle.diff.secrets import Masker
from betcycle.model.resources import Resource
from betcycle.validate.manifests import parse
from tests.conftest import git

ENVS = {"dev": EnvInfo("dev"), "prod": EnvInfo("prod", True)}
DIGEST = re.compile(r"redacted hmac:([0-9a-f]{12})")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def res(doc: dict[str, Any], env: str = "dev", app: str | None = "web") -> Resource:
    name = doc.get("metadata", {}).get("name", "list")
    out = f"environments/{env}/manifests/{app or 'argocd'}/{doc['kind'].lower()}-{name}.yaml"
    return Resource(copy.deepcopy(doc), env=env, app=app, source="charts/x/templates/t.yaml.j2", output=out)


def obj(kind: str, name: str = "x", api: str = "v1", **fields: Any) -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": "web"}, **fields}


def outputs(report: DiffReport) -> dict[str, str]:
    out = {}
    for fmt, write in {
        "text": lambda o: write_text(report, o, colour=False),
        "markdown": lambda o: write_markdown(report, o),
        "json": lambda o: write_json(report, o),
    }.items():
        buf = io.StringIO()
        write(buf)
        out[fmt] = buf.getvalue()
    return out


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def forbidden(value: str) -> list[str]:
    """The value, its base64, and every 8 hex characters of the plain SHA-256 of either."""
    out = [value, b64(value)]
    for v in (value, b64(value)):
        digest = hashlib.sha256(v.encode()).hexdigest()
        out += [digest[i : i + 8] for i in range(len(digest) - 7)]
    return out


def assert_no_leak(texts: dict[str, str] | str, *values: str) -> None:
    for fmt, text in texts.items() if isinstance(texts, dict) else [("text", texts)]:
        for value in values:
            for bad in forbidden(value):
                assert bad not in text, f"{fmt}: {bad!r} (from {value!r}) leaks"


def secret_with_last_applied(password: str) -> dict[str, Any]:
    """A Secret as `kubectl apply` leaves it: the value in data, stringData and the annotation's JSON copy."""
    doc = obj("Secret", "db", type="Opaque", data={"password": b64(password)}, stringData={"conf": password})
    doc["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(doc, separators=(",", ":"))}
    return doc


# --- the acceptance line -----------------------------------------------------------------------------------


def test_changed_secret_with_last_applied_copy_shows_changed_in_every_format_and_never_leaks() -> None:
    old, new = "Tr0ub4dor&3", "correct-horse-battery"
    report = compute([res(secret_with_last_applied(old))], [res(secret_with_last_applied(new))], ENVS)
    (env,) = report.envs
    ((secret,),) = [a.objects for a in env.apps]
    assert secret.status == "changed"
    paths = {f.path for f in secret.fields}
    assert {"data.password", "stringData.conf", f"metadata.annotations['{LAST_APPLIED}']"} <= paths
    for f in secret.fields:
        assert f.old != f.new
    out = outputs(report)
    assert_no_leak(out, old, new)
    for fmt, text in out.items():
        assert "data.password" in text, fmt
        digests = set(DIGEST.findall(text))
        assert len(digests) >= 4, (
            fmt
        )  # old and new of data, stringData (and the copies inside the annotation)
    doc = json.loads(out["json"])
    (field,) = [
        f for f in doc["environments"][0]["apps"][0]["objects"][0]["fields"] if f["path"] == "data.password"
    ]
    assert DIGEST.fullmatch(field["old"].strip("<>")) and DIGEST.fullmatch(field["new"].strip("<>"))
    assert field["old"] != field["new"]


def test_the_annotation_copy_is_masked_with_the_same_digest_as_the_field() -> None:
    masker = Masker()
    masked = masker.mask(secret_with_last_applied("hunter2"))
    copy_ = json.loads(masked["metadata"]["annotations"][LAST_APPLIED])
    assert copy_["stringData"]["conf"] == masked["stringData"]["conf"] == masker.digest("hunter2")
    assert copy_["data"]["password"] == masked["data"]["password"] == masker.digest(b64("hunter2"))
    assert copy_["metadata"]["name"] == "db"  # the rest of the copy is still readable


# --- every other carrier -----------------------------------------------------------------------------------


def external_secret(pw: str) -> dict[str, Any]:
    return obj(
        "ExternalSecret",
        "db",
        api="external-secrets.io/v1",
        spec={
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": "vault"},
            "target": {
                "name": "db",
                "template": {
                    "data": {"dsn": f"postgres://app:{pw}@db:5432/app"},
                    "templateFrom": [{"literal": f"password={pw}"}, {"configMap": {"name": "tpl"}}],
                },
            },
            "dataFrom": [{"extract": {"key": "db/app"}}],
        },
    )


def secret_list(pw: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": [obj("Secret", "in-list", data={"pw": b64(pw)})]}


def pod(**container: Any) -> dict[str, Any]:
    return obj(
        "Deployment",
        "web",
        api="apps/v1",
        spec={"template": {"spec": {"containers": [{"name": "web", **container}]}}},
    )


CARRIERS: dict[str, Any] = {
    "external-secret template": external_secret,
    "Secret in a List": secret_list,
    "ConfigMap DSN": lambda pw: obj(
        "ConfigMap", "cfg", data={"DATABASE_URL": f"postgres://app:{pw}@db:5432/x"}
    ),
    "ConfigMap properties": lambda pw: obj(
        "ConfigMap",
        "props",
        data={"app.properties": f"url=jdbc:x\nspring.datasource.password={pw}\nlevel=INFO\n"},
    ),
    "ConfigMap YAML file": lambda pw: obj(
        "ConfigMap", "yml", data={"config.yaml": f"db:\n  user: app\n  password: {pw}\n"}
    ),
    "ConfigMap connection string": lambda pw: obj(
        "ConfigMap", "cs", data={"conn": f"Server=db;User Id=app;Pwd={pw};"}
    ),
    "ConfigMap JSON file": lambda pw: obj(
        "ConfigMap", "js", data={"app.json": json.dumps({"api": {"apiKey": pw}})}
    ),
    "ConfigMap private key": lambda pw: obj(
        "ConfigMap",
        "pem",
        data={
            "tls.key": f"-----BEGIN PRIVATE KEY-----\n{pw}\n-----END PRIVATE KEY-----\n"  # pragma: allowlist secret
        },
    ),
    "args --flag=value": lambda pw: pod(args=["serve", f"--db-password={pw}"]),
    "args --flag value": lambda pw: pod(args=["serve", "--token", pw]),
    "command with a bearer header": lambda pw: pod(
        command=["sh", "-c", f"curl -H 'Authorization: Bearer {pw}' x"]
    ),
    "command with a URL": lambda pw: pod(command=["psql", f"postgresql://app:{pw}@db/app"]),
    "env with a secret name": lambda pw: pod(env=[{"name": "STRIPE_API_KEY", "value": pw}]),
    "env with a DSN value": lambda pw: pod(env=[{"name": "DATABASE_URL", "value": f"mysql://root:{pw}@db"}]),
    "secret-named key anywhere": lambda pw: obj(
        "Widget", "w", api="example.com/v1", spec={"auth": {"clientSecret": pw}}
    ),
    "annotation holding JSON": lambda pw: obj(
        "Service",
        "svc",
        metadata={"name": "svc", "annotations": {"example.com/config": json.dumps({"token": pw})}},
    ),
    "annotation holding a YAML Secret": lambda pw: obj(
        "Service",
        "svc",
        metadata={
            "name": "svc",
            "annotations": {"example.com/copy": f"kind: Secret\nstringData:\n  k: {pw}\n"},
        },
    ),
    "Argo CD helm values string": lambda pw: obj(
        "Application",
        "dev-web",
        api="argoproj.io/v1alpha1",
        spec={
            "source": {"helm": {"values": f"db:\n  password: {pw}\n"}, "repoURL": "https://git.example.com/x"}
        },
    ),
}


@pytest.mark.parametrize("carrier", sorted(CARRIERS))
def test_every_carrier_shows_the_change_but_not_the_secret(carrier: str) -> None:
    make = CARRIERS[carrier]
    old, new = "s3cretOLDvalue", "s3cretNEWvalue"
    report = compute([res(make(old))], [res(make(new))], ENVS)
    assert report.has_changes, "a changed secret must show as a change"
    objects = [o for a in report.envs[0].apps for o in a.objects]
    assert all(o.status == "changed" for o in objects)
    out = outputs(report)
    assert_no_leak(out, old, new)
    for fmt, text in out.items():
        assert DIGEST.search(text), fmt
    # unchanged on both sides: nothing to report
    assert not compute([res(make(old))], [res(make(old))], ENVS).has_changes
    assert_no_leak(outputs(compute([], [res(make(old))], ENVS)), old)  # added objects show whole: masked too


def test_only_the_secret_part_is_masked() -> None:
    m = Masker()
    pw = m.digest("pw")
    assert m.text("postgres://app:pw@db:5432/x") == f"postgres://app:{pw}@db:5432/x"
    assert m.text("a=b;password=pw;c=d") == f"a=b;password={pw};c=d"
    assert m.text("--Password=pw") == f"--Password={pw}"
    assert m.text("host=db API_KEY='pw' x=1") == f"host=db API_KEY='{pw}' x=1"
    assert m.text('{"a": 1, "secret": "pw"}') == f'{{"a":1,"secret":"{pw}"}}'
    assert (
        m.text("https://u:p@w@host/x?access_key=pw&y=1")
        == f"https://u:{m.digest('p@w')}@host/x?access_key={pw}&y=1"
    )
    assert m.text("mysql://root:pa/ss#?x@db/app other") == f"mysql://root:{m.digest('pa/ss#?x')}@db/app other"
    assert m.text("a://u:1@h b://v:2@i") == f"a://u:{m.digest('1')}@h b://v:{m.digest('2')}@i"
    # what only names or points at a secret stays readable
    for plain in (
        "secretName: db",
        "https://git.example.com/x",
        "export PATH=$PWD:/bin",
        "tokenTTL=1h",
        "ssh://git@h/x",
    ):
        assert m.text(plain) == plain
    masked = m.mask(pod(args=["--token", "pw", "--verbose", "pw"], env=[{"name": "PORT", "value": "8080"}]))
    container = masked["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["--token", pw, "--verbose", "pw"]
    assert container["env"] == [{"name": "PORT", "value": "8080"}]
    sa = m.mask(
        obj("ServiceAccount", "sa", automountServiceAccountToken=False, imagePullSecrets=[{"name": "r"}])
    )
    assert sa["automountServiceAccountToken"] is False and sa["imagePullSecrets"] == [{"name": "r"}]


def test_a_list_on_both_sides_reads_as_its_items_whichever_side_is_expanded() -> None:
    text = json.dumps(secret_list("old-list-pw"))
    base = parse(text, "environments/dev/manifests/web/list-list.yaml", env="dev", app="web")
    assert [r.kind for r in base] == ["Secret"]  # committed files are read item by item
    report = compute(base, [res(secret_list("new-list-pw"))], ENVS)
    ((change,),) = [a.objects for a in report.envs[0].apps]
    assert (change.status, change.ident, [f.path for f in change.fields]) == (
        "changed",
        "Secret/web/in-list",
        ["data.pw"],
    )
    assert_no_leak(outputs(report), "old-list-pw", "new-list-pw")


def test_nesting_past_the_limit_is_masked_whole_not_a_crash() -> None:
    deep: Any = "password=deep-secret"
    for _ in range(200):
        deep = {"a": deep}
    masked = Masker().mask(obj("Widget", "w", api="example.com/v1", spec=deep))
    assert "deep-secret" not in json.dumps(masked)
    embedded = "[" * 5000 + "]" * 5000  # json.loads gives up (RecursionError): kept as a plain string
    assert Masker().text(embedded) == embedded


# --- keyed per run -----------------------------------------------------------------------------------------


def test_equal_values_share_a_digest_within_a_run_and_never_across_runs() -> None:
    a, b = Masker(), Masker()
    assert a.digest("hunter2") == a.digest("hunter2") != a.digest("hunter3")
    assert a.digest("hunter2") != b.digest("hunter2")
    base, head = [res(secret_with_last_applied("v1"))], [res(secret_with_last_applied("v2"))]
    first, second = outputs(compute(base, head, ENVS))["json"], outputs(compute(base, head, ENVS))["json"]
    assert set(DIGEST.findall(first)).isdisjoint(DIGEST.findall(second))
    # one run: both sides use the same key, so an untouched secret beside a change keeps its digest
    keep = obj("Secret", "other", data={"k": b64("same")}, metadata={"name": "other", "labels": {"v": "1"}})
    touched = copy.deepcopy(keep)
    touched["metadata"]["labels"]["v"] = "2"
    report = compute([res(keep)], [res(touched)], ENVS)
    ((change,),) = [a.objects for a in report.envs[0].apps]
    assert [f.path for f in change.fields] == ["metadata.labels.v"]
    assert len(set(DIGEST.findall(change.hunk))) == 1, change.hunk  # the context line, same digest both sides


# --- end to end: diff, PR body and commit message -----------------------------------------------------------

SECRET_TEMPLATE = """\
apiVersion: v1
kind: Secret
metadata:
  name: {{ app.name }}-db
  namespace: {{ namespace }}
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: {{ copy | tojson | tojson }}
type: Opaque
stringData:
  password: {{ password | quote }}
"""

APP_TEMPLATE = """\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {{ app.name }}-addon
  namespace: {{ namespace }}
spec:
  project: default
  destination: {server: "https://kubernetes.default.svc", namespace: {{ namespace }}}
  source:
    repoURL: https://charts.example.com
    chart: addon
    targetRevision: 1.0.0
    helm:
      parameters:
        - name: db.password
          value: {{ password | quote }}
"""


def add_secret_templates(root: Path) -> None:
    """Secrets whose value follows the image tag, so set-image changes them (as a real rotation would)."""
    pw = "{% set password = 'pw-' ~ values.image.tag ~ '-Zq9' %}"
    copy_ = (
        "{% set copy = {'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': app.name ~ '-db'}, "
        "'stringData': {'password': password}} %}"
    )
    templates = root / "charts/service/templates"
    (templates / "secret.yaml.j2").write_text(pw + copy_ + "\n" + SECRET_TEMPLATE)
    (templates / "addon.yaml.j2").write_text(pw + "\n" + APP_TEMPLATE)


def test_diff_command_in_all_formats(repo_git: Path, cli) -> None:
    add_secret_templates(repo_git)
    assert cli("--root", repo_git, "render")[0] == 0
    git(repo_git, "add", "-A")
    git(repo_git, "commit", "-q", "-m", "secrets")
    prod = repo_git / "environments/prod/apps/hello.yaml"
    prod.write_text(prod.read_text().replace('tag: "1.3.2"', 'tag: "1.3.3"'))
    for fmt in ("text", "markdown", "json"):
        code, out, err = cli("--root", repo_git, "diff", "--format", fmt)
        assert code == 0, err
        assert_no_leak(out, "pw-1.3.2-Zq9", "pw-1.3.3-Zq9")
        assert "stringData.password" in out and LAST_APPLIED in out, fmt
        assert "redacted hmac:" in out, fmt


def test_set_image_pr_body_and_commit_message_are_masked(repo_git: Path, cli, tmp_path: Path) -> None:
    add_secret_templates(repo_git)
    assert cli("--root", repo_git, "render")[0] == 0
    git(repo_git, "add", "-A")
    git(repo_git, "commit", "-q", "-m", "secrets")
    body = tmp_path / "pr.md"
    args = ("set-image", "hello", "--env", "prod", "--tag", "2.0.0", "--commit", "--pr-body", body)
    code, out, err = cli("--root", repo_git, *args)
    assert code == 0, err
    text, message = body.read_text(), git(repo_git, "log", "-1", "--format=%B")
    for shown in (out, text, message):
        assert_no_leak(shown, "pw-1.3.2-Zq9", "pw-2.0.0-Zq9")
    assert "stringData.password" in text and "redacted hmac:" in text
    # the risk line for the Argo CD Application carries the digests, in the body and in the commit message
    (risk,) = [line for line in message.splitlines() if "Application/hello/hello-addon" in line]
    assert "helm.parameters[0].value" in risk and DIGEST.search(risk)
