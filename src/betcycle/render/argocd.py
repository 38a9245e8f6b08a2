"""The Argo CD objects that sync one environment, laid out so that no file aggregates across apps.

Per environment: an AppProject for the Argo CD objects themselves and the root app-of-apps Application.
Per deployed app: its own AppProject (sources: this repository; destinations: only the app's namespace) and
its Application. Adding, changing or removing one app therefore touches only that app's two files, so pull
requests that each add a different service merge without conflicts, and each app is fenced into its own
namespace (docs/architecture.md#where-argo-cd-comes-in).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from betcycle.model.repo import SETTINGS_FILE, Environment, Repo

ARGOCD_DIR = "argocd"
# The `# template:` header of every Argo CD file: a stable label, not this module's path (the package layout
# may change; the committed manifests must not).
TEMPLATE = "betcycle/argocd.py"
IN_CLUSTER = "https://kubernetes.default.svc"
API_VERSION = "argoproj.io/v1alpha1"
#: AppProjects sync one wave before the Applications: created first, and pruned only after the Application
#: that uses them (Argo CD deletes higher waves first), so an Application never points at a missing project.
PROJECT_WAVE = "-1"


@dataclass(frozen=True)
class ArgoObject:
    """One generated Argo CD object, the app it belongs to (None: the environment's own) and its inputs."""

    doc: dict[str, Any]
    app: str | None
    #: repository-relative files the object is derived from, in a fixed order (the generated header)
    sources: tuple[str, ...]

    @property
    def file_name(self) -> str:
        return f"{self.doc['kind'].lower()}-{self.doc['metadata']['name']}.yaml"


def app_project_name(env: Environment, app: str) -> str:
    """The AppProject of `app` in `env`: the environment's `argocd.project` plus the app name."""
    return f"{env.project}-{app}"


def _labels(env: Environment, extra: dict[str, str] | None = None) -> dict[str, str]:
    labels = {"app.kubernetes.io/managed-by": "betcycle", "betcycle.io/environment": env.name}
    labels.update(extra or {})
    return dict(sorted(labels.items()))


def _app_labels(env: Environment, app: str, owner: str) -> dict[str, str]:
    return _labels(
        env,
        {
            "app.kubernetes.io/name": app,
            "app.kubernetes.io/instance": f"{app}-{env.name}",
            "app.kubernetes.io/part-of": app,
            "betcycle.io/owner": owner,
        },
    )


POD_SECURITY_LABELS = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")
}


def _sync_policy(env: Environment, create_namespace: bool) -> dict[str, Any]:
    policy: dict[str, Any] = {}
    if env.auto_sync:
        policy["automated"] = {"prune": True, "selfHeal": True}
    options = ["ServerSideApply=true"]
    if create_namespace:
        options.insert(0, "CreateNamespace=true")
        # The namespace Argo CD creates enforces Pod Security Admission's `restricted` profile, which the
        # service chart's pods already meet (non-root, no privilege escalation, all capabilities dropped).
        policy["managedNamespaceMetadata"] = {"labels": dict(POD_SECURITY_LABELS)}
    policy["syncOptions"] = options
    return policy


def env_project(repo: Repo, env: Environment) -> dict[str, Any]:
    """The environment's AppProject: only the root app-of-apps uses it, to sync Argo CD objects."""
    return {
        "apiVersion": API_VERSION,
        "kind": "AppProject",
        "metadata": {
            "name": env.project,
            "namespace": repo.argocd_namespace,
            "labels": _labels(env),
            "annotations": {"argocd.argoproj.io/sync-wave": PROJECT_WAVE},
        },
        "spec": {
            "description": f"The Argo CD objects of {env.name} (root app-of-apps); each app has its own project.",
            "sourceRepos": [repo.repo_url],
            "destinations": [{"server": IN_CLUSTER, "namespace": repo.argocd_namespace}],
            # Nothing cluster-wide, and in Argo CD's namespace only the objects this folder holds.
            "clusterResourceWhitelist": [],
            "namespaceResourceWhitelist": [
                {"group": "argoproj.io", "kind": "AppProject"},
                {"group": "argoproj.io", "kind": "Application"},
            ],
        },
    }


def app_project(repo: Repo, env: Environment, app: str, owner: str) -> dict[str, Any]:
    """The AppProject of one app: this repository into the app's namespace, and nothing else."""
    destination = env.destination(app)
    return {
        "apiVersion": API_VERSION,
        "kind": "AppProject",
        "metadata": {
            "name": app_project_name(env, app),
            "namespace": repo.argocd_namespace,
            "labels": _app_labels(env, app, owner),
            "annotations": {"argocd.argoproj.io/sync-wave": PROJECT_WAVE},
        },
        "spec": {
            "description": (
                f"{app} in {env.name}: only from this repository, only into namespace {destination['namespace']}."
            ),
            "sourceRepos": [repo.repo_url],
            "destinations": [destination],
            # Namespaces are created by the Application (CreateNamespace=true); nothing else cluster-wide.
            "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
            "orphanedResources": {"warn": True},
        },
    }


def application(
    repo: Repo, env: Environment, app: str, owner: str, autoscaled: bool = False
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "project": app_project_name(env, app),
        "source": {
            "repoURL": repo.repo_url,
            "targetRevision": env.target_revision,
            "path": f"{env.manifests_dir}/{app}",
        },
        "destination": env.destination(app),
        "syncPolicy": _sync_policy(env, create_namespace=True),
    }
    if autoscaled:
        # The HPA owns spec.replicas once it runs; without this, self-heal would undo every scale-out.
        spec["ignoreDifferences"] = [
            {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}
        ]
        spec["syncPolicy"]["syncOptions"].append("RespectIgnoreDifferences=true")
    return {
        "apiVersion": API_VERSION,
        "kind": "Application",
        "metadata": {
            "name": f"{env.name}-{app}",
            "namespace": repo.argocd_namespace,
            "labels": _app_labels(env, app, owner),
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },
        "spec": spec,
    }


def root_application(repo: Repo, env: Environment) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Application",
        "metadata": {
            "name": f"{env.name}-root",
            "namespace": repo.argocd_namespace,
            "labels": _labels(env, {"app.kubernetes.io/name": "root", "betcycle.io/owner": "platform"}),
        },
        "spec": {
            "project": env.project,
            "source": {
                "repoURL": repo.repo_url,
                "targetRevision": env.target_revision,
                "path": f"{env.manifests_dir}/{ARGOCD_DIR}",
            },
            "destination": {"server": IN_CLUSTER, "namespace": repo.argocd_namespace},
            "syncPolicy": _sync_policy(env, create_namespace=False),
        },
    }


def env_objects(repo: Repo, env: Environment) -> list[ArgoObject]:
    """The environment's own objects: they read the environment file and betcycle.yaml, never the apps."""
    sources = (env.file, SETTINGS_FILE)
    return [
        ArgoObject(env_project(repo, env), None, sources),
        ArgoObject(root_application(repo, env), None, sources),
    ]


def app_objects(repo: Repo, env: Environment, app: str, autoscaled: bool = False) -> list[ArgoObject]:
    """One app's AppProject and Application in `env`.

    Inputs: the environment (cluster, namespace rule, project, revision), betcycle.yaml (repository,
    Argo CD namespace), the app's app.yaml (owner) and its environment app file (its presence deploys the
    app; its values decide `autoscaled`).
    """
    owner = repo.apps[app].owner
    sources = (env.file, SETTINGS_FILE, repo.apps[app].file, repo.env_apps[env.name][app].file)
    return [
        ArgoObject(app_project(repo, env, app, owner), app, sources),
        ArgoObject(application(repo, env, app, owner, autoscaled), app, sources),
    ]


def objects(repo: Repo, env: Environment, autoscaled: frozenset[str] = frozenset()) -> list[ArgoObject]:
    """All Argo CD objects of `env`: the environment's own, then each deployed app's, apps sorted.

    `autoscaled`: apps that render a HorizontalPodAutoscaler (Argo CD must leave their replicas alone).
    """
    out = env_objects(repo, env)
    for app in sorted(repo.env_apps.get(env.name, {})):
        out += app_objects(repo, env, app, app in autoscaled)
    return out
