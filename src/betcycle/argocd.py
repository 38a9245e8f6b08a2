"""The Argo CD objects that sync one environment: an AppProject, one Application per app, a root app-of-apps."""

from __future__ import annotations

from typing import Any

from betcycle.repo import Environment, Repo

ARGOCD_DIR = "argocd"
IN_CLUSTER = "https://kubernetes.default.svc"


def _labels(env: Environment, extra: dict[str, str] | None = None) -> dict[str, str]:
    labels = {"app.kubernetes.io/managed-by": "betcycle", "betcycle.io/environment": env.name}
    labels.update(extra or {})
    return dict(sorted(labels.items()))


def _sync_policy(env: Environment, create_namespace: bool) -> dict[str, Any]:
    policy: dict[str, Any] = {}
    if env.auto_sync:
        policy["automated"] = {"prune": True, "selfHeal": True}
    options = ["ServerSideApply=true"]
    if create_namespace:
        options.insert(0, "CreateNamespace=true")
    policy["syncOptions"] = options
    return policy


def app_project(repo: Repo, env: Environment, apps: list[str]) -> dict[str, Any]:
    dest = env.argocd["destination"]
    cluster = {"server": dest["server"]} if "server" in dest else {"name": dest["name"]}
    destinations = [{**cluster, "namespace": ns} for ns in sorted({env.namespace_for(a) for a in apps})]
    destinations.append({"server": IN_CLUSTER, "namespace": repo.argocd_namespace})
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {
            "name": env.project,
            "namespace": repo.argocd_namespace,
            "labels": _labels(env),
        },
        "spec": {
            "description": f"Everything BetCycle deploys to {env.name}; only from this repository.",
            "sourceRepos": [repo.repo_url],
            "destinations": destinations,
            # Namespaces are created by the Applications (CreateNamespace=true); nothing else cluster-wide.
            "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
            "orphanedResources": {"warn": True},
        },
    }


def application(
    repo: Repo, env: Environment, app: str, owner: str, autoscaled: bool = False
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "project": env.project,
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
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": f"{env.name}-{app}",
            "namespace": repo.argocd_namespace,
            "labels": _labels(
                env,
                {
                    "app.kubernetes.io/name": app,
                    "app.kubernetes.io/instance": f"{app}-{env.name}",
                    "app.kubernetes.io/part-of": app,
                    "betcycle.io/owner": owner,
                },
            ),
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },
        "spec": spec,
    }


def root_application(repo: Repo, env: Environment) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
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


def objects(repo: Repo, env: Environment, autoscaled: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """All Argo CD objects of `env`, AppProject first, then the root, then one Application per app.

    `autoscaled`: apps that render a HorizontalPodAutoscaler (Argo CD must leave their replicas alone).
    """
    apps = sorted(repo.env_apps.get(env.name, {}))
    out = [app_project(repo, env, apps), root_application(repo, env)]
    out += [application(repo, env, a, repo.apps[a].owner, a in autoscaled) for a in apps]
    return out
