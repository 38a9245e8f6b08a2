"""Template output can't be injected (issue 8): values reach YAML only through quoting filters, the rendered
output is parsed strictly (a repeated key is an error), and the values schema refuses what must not carry
structure. The shipped chart is copied into tmp_path (read only); the rest uses the tests' fixture repo."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
import yaml_rs
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from betcycle.errors import UserError, UserErrors
from betcycle.model.repo import load_repo
from betcycle.model.yamlio import DuplicateKeyError, FastLoader, load_all_with_lines
from betcycle.render import engine as render
from betcycle.validate import manifests
from tests.conftest import REPO, write_tree

VALUES = "environments/dev/apps/web.yaml"
DEPLOYMENT = "environments/dev/manifests/web/deployment-web.yaml"

#: the review's payload: a podAnnotations key that closes the annotations, sets replicas and a pod template
INJECTED_KEY = (
    "a: b\n  replicas: 500\n  template:\n    metadata:\n"
    "      labels: {app.kubernetes.io/instance: web-dev, app.kubernetes.io/name: web}\n"
    "      annotations:\n        x"
)


def yaml_text(data: Any) -> str:
    """Any data as YAML that PyYAML reads back exactly (non-ASCII escaped)."""
    text: str = yaml.safe_dump(data, allow_unicode=False, sort_keys=False, width=10_000)
    return text


def shipped_chart_repo(
    root: Path, values: dict[str, Any], *, schema: bool = True, owner: str = "team-web"
) -> Path:
    """A one-app, one-environment repository rendered with a copy of the shipped chart (charts/service)."""
    shutil.copytree(REPO / "charts/service", root / "charts/service")
    if not schema:
        (root / "charts/service/values.schema.json").unlink()
    write_tree(
        root,
        {
            "betcycle.yaml": "repoURL: https://github.com/example-org/platform.git\nargocd:\n  namespace: argocd\n",
            "apps/web/app.yaml": yaml_text(
                {
                    "name": "web",
                    "owner": owner,
                    "description": "Web.",
                    "chart": "service",
                    "values": {"image": {"repository": "registry.example.com/web"}},
                }
            ),
            "environments/dev/environment.yaml": """\
                name: dev
                description: Development
                kubernetesVersion: "1.31"
                argocd:
                  project: dev
                  targetRevision: main
                  destination:
                    server: https://kubernetes.default.svc
                    namespace: "{app}-dev"
                """,
            VALUES: yaml_text({"image": {"tag": "1.0.0"}, **values}),
        },
    )
    return root


def rendered(root: Path) -> dict[str, dict[str, Any]]:
    """Render `root` and read the written manifests back as BetCycle reads them (kind -> object)."""
    render.write(root, render.render(load_repo(root)))
    resources = manifests.load_env_manifests(root, "dev", "environments/dev/manifests")
    return {r.kind: r.doc for r in resources if r.app == "web"}


# --- the review's injection ----------------------------------------------------------------------------


def test_the_pod_annotation_injection_is_refused_naming_the_values_file(tmp_path: Path, cli) -> None:
    root = shipped_chart_repo(tmp_path / "repo", {})
    # as the review wrote it: one quoted key, valid YAML, and nothing in it a YAML reader objects to
    (root / VALUES).write_text(f'image:\n  tag: "1.0.0"\npodAnnotations:\n  {json.dumps(INJECTED_KEY)}: w\n')
    code, out, err = cli("--root", root, "render")
    assert code == 2, out + err
    assert err.startswith(f"error: {VALUES}:4: value podAnnotations: key 'a: b\\n  replicas: 500")
    assert "qualified name" in err
    assert not (root / "environments/dev/manifests").exists()


def test_without_the_schema_the_injected_key_stays_one_annotation(tmp_path: Path) -> None:
    # the chart's quoting holds on its own: the key is one string, replicas and the pod template are the chart's
    root = shipped_chart_repo(tmp_path / "repo", {"podAnnotations": {INJECTED_KEY: "w"}}, schema=False)
    deployment = rendered(root)["Deployment"]
    assert deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["annotations"][INJECTED_KEY] == "w"
    assert set(pod["metadata"]["annotations"]) == {"checksum/config", INJECTED_KEY}
    assert pod["spec"]["serviceAccountName"] == "web"


INJECTION = "x\n  replicas: 500\n  hostNetwork: true\n# "


@pytest.mark.parametrize(
    "values",
    [
        {"podAnnotations": {"a": INJECTION}},
        {"env": {"A": INJECTION}},
        {"config": {"A": INJECTION}},
        {"args": [INJECTION], "command": [INJECTION]},
        {"probes": {"liveness": {"path": "/" + INJECTION}, "readiness": {"path": "/" + INJECTION}}},
        {"metrics": {"enabled": True, "path": "/" + INJECTION, "interval": INJECTION}},
        {"ingress": {"enabled": True, "host": INJECTION, "className": INJECTION, "path": "/" + INJECTION}},
        {"ingress": {"enabled": True, "host": "h", "annotations": {INJECTION: INJECTION}}},
        {"service": {"annotations": {INJECTION: INJECTION}}},
        {"serviceAccount": {"annotations": {INJECTION: INJECTION}}},
        {"networkPolicy": {"allowNamespaces": [INJECTION], "ingressNamespace": INJECTION}},
        {"database": {"enabled": True, "secretStore": INJECTION, "remoteKey": INJECTION}},
        {"podDisruptionBudget": {"enabled": True, "maxUnavailable": INJECTION}},
        {"image": {"tag": "1.0.0", "pullPolicy": INJECTION}},
    ],
    ids=lambda v: ",".join(v),
)
def test_no_value_can_add_keys_even_without_the_schema(tmp_path: Path, values: dict[str, Any]) -> None:
    root = shipped_chart_repo(tmp_path / "repo", values, schema=False)
    objects = rendered(root)
    assert objects["Deployment"]["spec"]["replicas"] == 1
    assert "hostNetwork" not in objects["Deployment"]["spec"]["template"]["spec"]
    texts = [s for doc in objects.values() for s in _strings(doc)]
    assert any(INJECTION in s for s in texts), "the value arrives whole, as one string"


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [*node, *(s for v in node.values() for s in _strings(v))]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def test_the_chart_writes_checksum_config_itself(tmp_path: Path, cli) -> None:
    root = shipped_chart_repo(tmp_path / "repo", {"podAnnotations": {"checksum/config": "0"}})
    code, _, err = cli("--root", root, "render")
    assert code == 2
    assert err.startswith(f"error: {VALUES}:4: value podAnnotations: key 'checksum/config' ")


def test_every_feature_of_the_shipped_chart_renders_without_duplicate_keys(tmp_path: Path) -> None:
    values = {
        "podAnnotations": {"example.com/team": "web", "prometheus.io/scrape": "true"},
        "env": {"A": "1", "B": True},
        "config": {"C": "x", "D": 2},
        "command": ["python"],
        "args": ["-m", "web"],
        "autoscaling": {"enabled": True},
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": "25%"},
        "topologySpread": True,
        "ingress": {"enabled": True, "host": "web.example.com", "annotations": {"a.example.com/b": "c"}},
        "service": {"annotations": {"a.example.com/b": "c"}},
        "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/web"}},
        "database": {"enabled": True, "remoteKey": "dev/web/db"},
    }
    root = shipped_chart_repo(tmp_path / "repo", values)
    objects = rendered(root)
    kinds = {"Deployment", "ConfigMap", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress"}
    assert kinds <= set(objects)
    for path in sorted((root / "environments/dev/manifests").rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        load_all_with_lines(text, path.name)  # the strict loader: raises on a repeated key
    assert objects["PodDisruptionBudget"]["spec"]["maxUnavailable"] == "25%"
    pod = objects["Deployment"]["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"


# --- strict parsing of the template output --------------------------------------------------------------


def test_a_template_that_writes_a_key_twice_fails_naming_template_and_line(example: Path, cli) -> None:
    tpl = example / "charts/service/templates/serviceaccount.yaml.j2"
    lines = tpl.read_text().splitlines(keepends=True)
    assert lines[-1] == "automountServiceAccountToken: false\n"
    tpl.write_text("".join([*lines, "automountServiceAccountToken: true\n"]))
    code, _, err = cli("--root", example, "render")
    assert code == 2
    first = err.splitlines()[0]
    assert first.startswith(
        f"error: charts/service/templates/serviceaccount.yaml.j2:{len(lines) + 1}: rendered output repeats the "
        "key 'automountServiceAccountToken' ("
    ), first
    assert re.search(
        r"output line \d+: 'automountServiceAccountToken: true'; first on output line \d+\)$", first
    )


def test_a_repeated_key_from_a_loop_names_the_template_without_a_line(example: Path) -> None:
    tpl = example / "charts/service/templates/serviceaccount.yaml.j2"
    tpl.write_text(tpl.read_text() + "{% for k in ['a', 'a'] %}\n{{ k }}: 1\n{% endfor %}\n")
    with pytest.raises(UserErrors) as caught:
        render.render(load_repo(example))
    # `{{ k }}: 1` wrote both keys: no single template line is to blame
    assert {(e.path, e.line) for e in caught.value.errors} == {
        ("charts/service/templates/serviceaccount.yaml.j2", None)
    }
    assert all("rendered output repeats the key 'a'" in e.message for e in caught.value.errors)


@pytest.mark.parametrize("generated", [False, True], ids=["pyyaml", "fast-path"])
def test_the_loader_refuses_duplicate_keys_on_both_paths(generated: bool) -> None:
    text = f"{render.HEADER_MARK}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n"
    with pytest.raises(DuplicateKeyError) as caught:
        load_all_with_lines(text, "x.yaml", generated=generated)
    assert (caught.value.path, caught.value.line) == ("x.yaml", 6)
    assert caught.value.message == "duplicate key 'name' (first defined on line 5)"


def test_keys_are_compared_as_values_and_merges_may_override() -> None:
    with pytest.raises(DuplicateKeyError):
        load_all_with_lines('a: 1\n"a": 2\n', "x.yaml")
    merged = "base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  x: 3\n"
    assert load_all_with_lines(merged, "x.yaml")[0][0]["m"] == {"x": 3, "y": 2}


@pytest.mark.parametrize("generated", [False, True], ids=["hand-written", "generated"])
def test_validate_refuses_a_manifest_with_a_repeated_key(tmp_path: Path, cli, generated: bool) -> None:
    head = f"{render.HEADER_MARK}\n" if generated else ""
    write_tree(
        tmp_path,
        {
            "deploy.yaml": head
            + "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n"
            + "automountServiceAccountToken: false\nautomountServiceAccountToken: true\n"
        },
    )
    code, out, err = cli("validate", tmp_path / "deploy.yaml")
    assert code == 2, out + err
    line = 7 if generated else 6
    assert f"deploy.yaml:{line}: duplicate key 'automountServiceAccountToken'" in err
    assert "Traceback" not in err


# --- the filters ----------------------------------------------------------------------------------------

#: YAML 1.1 and 1.2 line breaks, controls, quotes, escapes, indicators, astral characters
NASTY = ["", "a: b", "- x", "? k", "'", '"', "\\", "\n", "\r\n", "\t", "\x00", "\x7f", "\x85", "\u2028", "\u2029",
         "\ufeff", "\U0001f600", "é", "# c", "*a", "&a", "!t", "{x: 1}", "[1]", "|", ">", "%", "@", "`", "---",
         "...", "~", "null", "true", "on", "0755", "1e3", "2024-01-01", " lead", "trail "]  # fmt: skip


def _read_all(text: str) -> list[Any]:
    return [
        yaml.load(text, Loader=FastLoader),
        yaml.load(text, Loader=yaml.SafeLoader),  # PyYAML's pure-Python reader: the same YAML 1.1
        # a YAML 1.2 reader; it reads even a quoted 2024-01-01 as a date (yamlio never uses it on such text)
        yaml_rs.loads(text, parse_datetime=False),
    ]


@given(st.lists(st.sampled_from(NASTY) | st.text(), max_size=4).map("".join))
def test_quote_and_yamlkey_read_back_exactly(text: str) -> None:
    if len(render.yaml_string(text)) > 1000:  # past YAML's 1024-character limit for a `key:` key
        with pytest.raises(jinja2.exceptions.FilterArgumentError, match="can't be a YAML key"):
            render._yamlkey(text)
        return
    mapping = f"{render._yamlkey(text)}: {render._quote(text)}\n"
    flow = f"- [{render._quote(text)}, {{{render._yamlkey(text)}: 1}}]\n"
    assert (mapping + flow).isascii()
    for read in _read_all(mapping):
        assert read == {text: text}
    for read in _read_all(flow):
        assert read == [[text, {text: 1}]]


@given(
    st.dictionaries(
        st.lists(st.sampled_from(NASTY) | st.text(), max_size=3).map("".join),
        st.lists(st.sampled_from(NASTY) | st.text(), max_size=3).map("".join)
        | st.integers()
        | st.booleans()
        | st.none(),
        min_size=1,
        max_size=4,
    )
)
def test_toyaml_indent_and_tojson_nest_any_map_exactly(data: dict[str, Any]) -> None:
    env = render._jinja_env(Path("/nonexistent"))
    tpl = env.from_string(
        "outer:\n  inner:\n    {{ data | toyaml | indent(4) }}\n  toyaml4:\n{{ data | toyaml(4) }}\n"
        "  json: {{ data | tojson }}\n"
    )
    if any(len(json.dumps(key)) > 1000 for key in data):  # too long for a YAML flow key: refused
        with pytest.raises(jinja2.exceptions.FilterArgumentError, match="can't be a YAML flow key"):
            tpl.render(data=data)
        return
    text = tpl.render(data=data)
    assert text.isascii()
    back = yaml.load(text, Loader=FastLoader)
    assert back == {"outer": {"inner": data, "toyaml4": data, "json": data}}


def test_tojson_refuses_a_key_too_long_for_yaml_and_toyaml_writes_it() -> None:
    """Found by hypothesis: YAML caps implicit (flow) keys at 1024 characters, so JSON can't carry them."""
    env = render._jinja_env(Path("/nonexistent"))
    data = {"k" * 1100: "v"}
    with pytest.raises(
        jinja2.exceptions.FilterArgumentError, match="1100 characters can't be a YAML flow key"
    ):
        env.from_string("x: {{ data | tojson }}\n").render(data=data)
    text = env.from_string("x:\n{{ data | toyaml(2) }}\n").render(data=data)
    assert yaml.load(text, Loader=FastLoader) == {"x": data}


def test_quote_refuses_structures_and_names_the_fix(example: Path) -> None:
    tpl = example / "charts/service/templates/serviceaccount.yaml.j2"
    tpl.write_text(tpl.read_text() + "x: {{ labels | quote }}\n")
    with pytest.raises(UserErrors) as caught:
        render.render(load_repo(example))
    error = caught.value.errors[0]
    assert (error.path, error.line) == ("charts/service/templates/serviceaccount.yaml.j2", 8)
    assert "quote takes a string, number, boolean or null, not a dict: emit structures with `| toyaml`" in (
        error.message
    )


def test_toyaml_of_a_scalar_is_one_scalar() -> None:
    # PyYAML would end a lone plain scalar with a `...` document-end line, which splits the template output
    assert render._toyaml("x") == '"x"'
    assert [render._toyaml(v) for v in (1, 1.5, float("nan"), True, None, {}, [])] == [
        "1", "1.5", ".nan", "true", "null", "{}", "[]"
    ]  # fmt: skip


# --- the property: any string either is refused by a schema, or arrives exactly ---------------------------

ANY_TEXT = st.lists(st.sampled_from(NASTY) | st.text(max_size=8), max_size=3).map("".join)
#: what each field is when it isn't the one under test
VALID = {
    "annotation_key": "example.com/a-b_c.d",
    "annotation_value": "v",
    "env_value": "e",
    "host": "web.example.com",
    "owner": "team-web",
}


@settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(sorted(VALID)), text=ANY_TEXT | st.sampled_from(NASTY))
def test_any_string_is_refused_by_a_schema_or_renders_exactly(
    tmp_path_factory: pytest.TempPathFactory, field: str, text: str
) -> None:
    given_ = {**VALID, field: text}
    annotation_key, annotation_value = given_["annotation_key"], given_["annotation_value"]
    env_value, host, owner = given_["env_value"], given_["host"], given_["owner"]
    root = tmp_path_factory.mktemp("prop") / "repo"
    values = {
        "podAnnotations": {annotation_key: annotation_value},
        "env": {"GIVEN": env_value},
        "ingress": {"enabled": True, "host": host, "annotations": {annotation_key: annotation_value}},
    }
    shipped_chart_repo(root, values, owner=owner)
    try:
        objects = rendered(root)
    except (UserError, UserErrors) as exc:
        event("refused")
        errors = exc.errors if isinstance(exc, UserErrors) else [exc]
        # refused by the values schema (or the app schema, for the owner label), never by a template or parse
        assert all(e.path in (VALUES, "apps/web/app.yaml") for e in errors), [str(e) for e in errors]
        assert all(e.message.startswith(("value ", "owner")) or "owner" in e.message for e in errors), [
            str(e) for e in errors
        ]
        return
    event("rendered")
    pod = objects["Deployment"]["spec"]["template"]
    assert pod["metadata"]["annotations"][annotation_key] == annotation_value
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env["GIVEN"] == env_value
    assert pod["metadata"]["labels"]["betcycle.io/owner"] == owner
    ingress = objects["Ingress"]
    assert ingress["spec"]["rules"][0]["host"] == host
    assert ingress["metadata"]["annotations"] == {annotation_key: annotation_value}


def test_a_key_too_long_for_yaml_is_refused_not_emitted() -> None:
    """YAML reads `key: value` only for keys up to 1024 characters: longer would be a parse error later."""
    assert render._yamlkey("k" * 990) == '"' + "k" * 990 + '"'
    with pytest.raises(jinja2.exceptions.FilterArgumentError, match="1102 characters"):
        render._yamlkey("é" * 275)  # 275 escapes of 4 characters (\xE9), plus the quotes
