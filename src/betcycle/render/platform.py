"""Platform applications: upstream Helm charts declared in `environments/<env>/platform.yaml`.

Each component becomes one Argo CD Application with a Helm source (repository, chart, exact chart version,
values as `helm.valuesObject`), in the environment's `manifests/argocd/` folder beside the apps' own, plus
one AppProject `<project>-platform` whose sourceRepos are exactly betcycle.yaml's
`platform.allowedChartRepositories` and whose destinations are the components' namespaces. The file is
optional: an environment without it renders no platform objects (docs/platform.md).

The chart repository allow-list is enforced here, at render time, because it lives in betcycle.yaml, which
a policy (it sees one rendered object) cannot read: a repository not in the list is an input error naming
platform.yaml's line, exit 2, before anything is written. Pinned versions are enforced twice: by the file's
schema here, and by policy BC030 on the rendered Application (so a hand-written one is caught too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from betcycle.errors import UserError, UserErrors
from betcycle.model import safepaths, schemacheck, values
from betcycle.model.repo import SETTINGS_FILE, Environment, Repo
from betcycle.model.yamlio import LineMap, load_with_lines, read_text
from betcycle.render.argocd import API_VERSION, ArgoObject

PLATFORM_FILE = "platform.yaml"
VALUES_DIR = "platform"
#: the `# template:` header label of the platform objects (stable, like argocd.TEMPLATE)
TEMPLATE = "betcycle/platform.py"
#: the platform AppProject syncs before every component (their waves are -9 and up, apps' are 0)
PROJECT_WAVE = "-10"


def platform_file(env: Environment) -> str:
    return f"{env.dir}/{PLATFORM_FILE}"


def project_name(env: Environment) -> str:
    return f"{env.project}-platform"


def _load(root: Path, rel: str) -> tuple[Any, LineMap]:
    data, lines = load_with_lines(read_text(root / rel, rel), rel)
    return ({} if data is None else data), lines


def allowed_repositories(root: Path) -> list[str]:
    """betcycle.yaml's `platform.allowedChartRepositories` (already schema-checked by load_repo)."""
    if not (root / SETTINGS_FILE).exists():
        return []
    data, _ = _load(root, SETTINGS_FILE)
    platform = data.get("platform") if isinstance(data, dict) else None
    repos = platform.get("allowedChartRepositories", []) if isinstance(platform, dict) else []
    return [str(r) for r in repos]


def _labels(env: Environment, name: str) -> dict[str, str]:
    return dict(
        sorted(
            {
                "app.kubernetes.io/managed-by": "betcycle",
                "app.kubernetes.io/name": name,
                "app.kubernetes.io/part-of": "platform",
                "betcycle.io/environment": env.name,
                "betcycle.io/owner": "platform",
            }.items()
        )
    )


def _destination(env: Environment, namespace: str) -> dict[str, str]:
    dest = env.argocd["destination"]
    out = {"server": dest["server"]} if "server" in dest else {"name": dest["name"]}
    out["namespace"] = namespace
    return out


def _component_values(
    repo: Repo, env: Environment, rel: str, comp: dict[str, Any], lines: LineMap, i: int
) -> tuple[dict[str, Any], list[str], list[UserError]]:
    """The component's Helm values: its values files in order, then inline `values` on top."""
    errors: list[UserError] = []
    layers: list[values.Layer] = []
    files: list[str] = []
    for j, name in enumerate(comp.get("valuesFiles", [])):
        frel = f"{env.dir}/{name}"
        line = lines.get(("components", i, "valuesFiles", j))
        if ".." in name.split("/") or not (repo.root / frel).is_file():
            errors.append(
                UserError(
                    f"values file {name!r} of component {comp['name']!r} does not exist ({frel})",
                    path=rel,
                    line=line,
                    hint=f"create {frel}, or remove it from valuesFiles",
                )
            )
            continue
        link_errors = safepaths.check_links_inside(repo.root, frel)
        if link_errors:
            errors += link_errors
            continue
        try:
            data, flines = _load(repo.root, frel)
        except UserError as exc:
            errors.append(exc)
            continue
        if not isinstance(data, dict):
            errors.append(
                UserError("expected a mapping of Helm values at the top of the file", path=frel, line=1)
            )
            continue
        layers.append(values.Layer(frel, data, flines))
        files.append(frel)
    inline = comp.get("values") or {}
    prefix = ("components", i, "values")
    layers.append(values.Layer(rel, inline, {k[3:]: v for k, v in lines.items() if k[:3] == prefix}))
    merged, _ = values.merge(layers)
    return merged, files, errors


def _application(
    repo: Repo, env: Environment, comp: dict[str, Any], helm_values: dict[str, Any]
) -> dict[str, Any]:
    chart = comp["chart"]
    helm: dict[str, Any] = {"releaseName": comp["name"]}
    if helm_values:
        helm["valuesObject"] = helm_values
    options = ["CreateNamespace=true"]
    if comp.get("serverSideApply", True):
        options.append("ServerSideApply=true")
    sync: dict[str, Any] = {}
    if env.auto_sync:
        sync["automated"] = {"prune": True, "selfHeal": True}
    sync["syncOptions"] = options
    return {
        "apiVersion": API_VERSION,
        "kind": "Application",
        "metadata": {
            "name": f"{env.name}-platform-{comp['name']}",
            "namespace": repo.argocd_namespace,
            "labels": _labels(env, comp["name"]),
            "annotations": {"argocd.argoproj.io/sync-wave": str(comp.get("syncWave", -5))},
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },
        "spec": {
            "project": project_name(env),
            "source": {
                "repoURL": chart["repoURL"],
                "chart": chart["chart"],
                "targetRevision": chart["targetRevision"],
                "helm": helm,
            },
            "destination": _destination(env, comp["namespace"]),
            "syncPolicy": sync,
        },
    }


def _project(repo: Repo, env: Environment, allowed: list[str], namespaces: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "AppProject",
        "metadata": {
            "name": project_name(env),
            "namespace": repo.argocd_namespace,
            "labels": _labels(env, "platform"),
            "annotations": {"argocd.argoproj.io/sync-wave": PROJECT_WAVE},
        },
        "spec": {
            "description": (
                f"Platform components of {env.name}: only the allowed Helm repositories, only into the "
                "platform namespaces."
            ),
            "sourceRepos": sorted(allowed),
            "destinations": [_destination(env, ns) for ns in namespaces],
            # Operators install CRDs, ClusterRoles and webhooks: cluster-scoped objects are their job. The
            # fence is the source (reviewed upstream charts at pinned versions) and the namespaces.
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
            "orphanedResources": {"warn": True},
        },
    }


def objects(repo: Repo, env: Environment) -> list[ArgoObject]:
    """The platform AppProject and one Application per component of `env` ([] without platform.yaml).

    Raises UserErrors (file and line) for a schema violation, a repeated component name, a chart repository
    outside the allow-list or a missing values file.
    """
    rel = platform_file(env)
    if not (repo.root / rel).exists():
        return []
    errors = safepaths.check_links_inside(repo.root, rel)
    if errors:
        raise UserErrors(errors)
    data, lines = _load(repo.root, rel)
    if not isinstance(data, dict):
        raise UserError("expected a mapping (key: value) at the top of the file", path=rel, line=1)
    errors = schemacheck.check_builtin(data, "platform", path=rel, lines=lines)
    for err in errors:  # the schema's semver pattern is no message for a person
        if ".chart.targetRevision: " in err.message and " does not match " in err.message:
            at, _, value = err.message.partition(": ")
            err.message = f"{at}: chart version {value.split(' does not match ')[0]} is not one exact version"
            err.hint = (
                "pin one released chart version, e.g. 1.18.2 or v1.18.2: no ranges (^, ~, >=, 1.x), "
                "wildcards, latest or HEAD; upgrade by changing it in a pull request"
            )
    if errors:
        raise UserErrors(errors)
    allowed = allowed_repositories(repo.root)
    seen: dict[str, int | None] = {}
    built: list[tuple[dict[str, Any], list[str]]] = []
    for i, comp in enumerate(data["components"]):
        name = comp["name"]
        line = lines.get(("components", i, "name"))
        if name in seen:
            errors.append(
                UserError(
                    f"component {name!r} is declared twice (first on line {seen[name]})",
                    path=rel,
                    line=line,
                    hint="give each component a unique name",
                )
            )
            continue
        seen[name] = line
        url = comp["chart"]["repoURL"]
        if url not in allowed:
            errors.append(
                UserError(
                    f"chart repository {url} of component {name!r} is not in betcycle.yaml "
                    "platform.allowedChartRepositories",
                    path=rel,
                    line=lines.get(("components", i, "chart", "repoURL")),
                    hint="add the repository to the allow-list in betcycle.yaml (a reviewed change), "
                    "or install the chart from an allowed one",
                )
            )
        helm_values, files, problems = _component_values(repo, env, rel, comp, lines, i)
        errors += problems
        built.append((_application(repo, env, comp, helm_values), files))
    if errors:
        raise UserErrors(errors)
    if not built:
        return []
    namespaces = sorted({doc["spec"]["destination"]["namespace"] for doc, _ in built})
    base = (env.file, SETTINGS_FILE, rel)
    out = [ArgoObject(_project(repo, env, allowed, namespaces), None, base)]
    out += [ArgoObject(doc, None, (*base, *files)) for doc, files in built]
    return out
