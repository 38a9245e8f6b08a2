"""The same apps as a kustomize layout, and `kubectl kustomize` over it: the comparison row of the bench.

From BetCycle's render of a repository (the data both tools start from):
- `base/<app>/`: the app's resources as rendered for the base environment (dev), without BetCycle's header
  and namespace, plus a kustomization.yaml listing them;
- `overlays/<env>/<app>/kustomization.yaml`: the environment's namespace, `images` (newTag), `labels` (those
  whose values differ from the base's; the ones in the Deployment's selector with includeSelectors), and
  only what differs from the base: a strategic-merge patch of the Deployment (replicas, container resources
  and env vars, topology spread constraints), a patch per other resource whose data or spec differs
  (dashboards and alert texts name the environment; a ServiceMonitor's selector, which kustomize's label
  transformer doesn't know), the resources only that environment has (prod's HorizontalPodAutoscaler and
  PodDisruptionBudget) and `$patch: delete` for base resources it lacks.
kustomize's output then equals BetCycle's render resource for resource (tests/test_bench.py compares counts).
Argo CD builds one Application at a time, so the bench runs one `kubectl kustomize overlays/<env>/<app>` per
(environment, app) pair, as many at once as there are CPUs.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import procmon
import yaml

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
KUSTOMIZATION = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}


def load_app(folder: Path) -> list[dict[str, Any]]:
    """The resources of one rendered app folder (one per file; the header comment is dropped by the parser)."""
    docs = []
    for path in sorted(folder.glob("*.yaml")):
        docs += [doc for doc in yaml.load_all(path.read_text(encoding="utf-8"), Loader=Loader) if doc]
    return docs


def _key(doc: dict[str, Any]) -> tuple[str, str, str]:
    return doc["apiVersion"], doc["kind"], doc["metadata"]["name"]


def _file(doc: dict[str, Any]) -> str:
    return f"{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"


def _dump(path: Path, data: Any) -> None:
    path.write_text(yaml.dump(data, Dumper=Dumper, sort_keys=False), encoding="utf-8")


def _without_namespace(doc: dict[str, Any]) -> dict[str, Any]:
    """The resource as a kustomize base holds it: the overlay's `namespace` sets the namespace."""
    return {**doc, "metadata": {k: v for k, v in doc["metadata"].items() if k != "namespace"}}


# Selectors kustomize's `labels` with includeSelectors rewrites in built-in kinds (a custom resource's, such
# as a ServiceMonitor's, it leaves alone: those need a patch).
SELECTORS = {
    "Service": ("spec", "selector"),
    "NetworkPolicy": ("spec", "podSelector", "matchLabels"),
    "PodDisruptionBudget": ("spec", "selector", "matchLabels"),
}


def _relabelled(doc: dict[str, Any], pairs: dict[str, str]) -> dict[str, Any]:
    """`doc` as kustomize's label transformer leaves it: the selector labels set in its known selector."""
    path = SELECTORS.get(doc["kind"])
    if not path or not pairs:
        return doc
    doc = copy.deepcopy(doc)
    node = doc
    for key in path:
        node = node.setdefault(key, {})
    node.update(pairs)
    return doc


def _field_patch(base: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any] | None:
    """A patch setting each top-level field (data, spec...) that differs from the base to the env's value.

    Keys the base has and the environment lacks are set to null, which deletes them (strategic merge and
    JSON merge patch alike). The environment's dashboard and alert texts, ServiceMonitor selectors... get
    here: what a kustomize user would carry as per-environment patches.
    """
    fields = {}
    for name, value in doc.items():
        if name in ("apiVersion", "kind", "metadata") or base.get(name) == value:
            continue
        if isinstance(value, dict) and isinstance(base.get(name), dict):
            value = {**dict.fromkeys(base[name].keys() - value.keys()), **value}
        fields[name] = value
    if not fields:
        return None
    return {
        "apiVersion": doc["apiVersion"],
        "kind": doc["kind"],
        "metadata": {"name": doc["metadata"]["name"]},
    } | fields


def _deployments(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}


def _overlay(base: list[dict[str, Any]], docs: list[dict[str, Any]], app: str, dest: Path) -> None:
    dest.mkdir(parents=True)
    base_keys = {_key(d): d for d in base}
    env_keys = {_key(d): d for d in docs}
    resources = [f"../../../base/{app}"]
    patches: list[dict[str, Any]] = []
    for key, doc in env_keys.items():
        if key not in base_keys:  # only this environment has it: a resource of the overlay
            _dump(dest / _file(doc), _without_namespace(doc))
            resources.append(_file(doc))
    for key in base_keys.keys() - env_keys.keys():
        api, kind, name = key
        delete = {"apiVersion": api, "kind": kind, "metadata": {"name": name}, "$patch": "delete"}
        _dump(dest / f"delete-{_file(delete)}", delete)
        patches.append({"path": f"delete-{_file(delete)}"})
    kustomization: dict[str, Any] = {**KUSTOMIZATION, "resources": resources}
    namespaces = {d["metadata"]["namespace"] for d in docs if "namespace" in d["metadata"]}
    if namespaces:
        kustomization["namespace"] = sorted(namespaces)[0]
    base_deploys, env_deploys = _deployments(base), _deployments(docs)
    images: dict[str, str] = {}
    selector_pairs: dict[str, str] = {}
    other_pairs: dict[str, str] = {}
    for name, deploy in sorted(env_deploys.items()):
        original = base_deploys.get(name)
        if original is None:
            continue
        pod = deploy["spec"]["template"]["spec"]
        base_pod = original["spec"]["template"]["spec"]
        base_containers = {c["name"]: c for c in base_pod["containers"]}
        containers = []
        for container in pod["containers"]:
            repository, _, tag = container["image"].rpartition(":")
            if repository and tag:
                images[repository] = tag
            before = base_containers.get(container["name"], {})
            changed = {k: container[k] for k in ("resources", "env") if container.get(k) != before.get(k)}
            if changed:
                containers.append({"name": container["name"], **changed})
        pod_patch: dict[str, Any] = {"containers": containers} if containers else {}
        if pod.get("topologySpreadConstraints") != base_pod.get("topologySpreadConstraints"):
            pod_patch["topologySpreadConstraints"] = pod.get("topologySpreadConstraints")
        spec: dict[str, Any] = {"template": {"spec": pod_patch}} if pod_patch else {}
        if deploy["spec"].get("replicas") != original["spec"].get("replicas"):
            spec["replicas"] = deploy["spec"].get("replicas")
        if spec:  # the base environment's own overlay needs none
            patch = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}
            _dump(dest / f"patch-{_file(patch)}", patch)
            patches.append({"path": f"patch-{_file(patch)}"})
        selector = original["spec"]["selector"].get("matchLabels", {})
        base_labels = original["metadata"].get("labels", {})
        for label, value in deploy["metadata"].get("labels", {}).items():
            if base_labels.get(label) != value:
                (selector_pairs if label in selector else other_pairs)[label] = value
    for key, doc in env_keys.items():
        original = base_keys.get(key)
        if original is not None and doc["kind"] != "Deployment":
            patch = _field_patch(_relabelled(original, selector_pairs), doc)
            if patch:
                _dump(dest / f"patch-{_file(doc)}", patch)
                patches.append({"path": f"patch-{_file(doc)}"})
    if images:
        kustomization["images"] = [{"name": r, "newTag": t} for r, t in sorted(images.items())]
    labels = []
    if selector_pairs:
        labels.append({"pairs": selector_pairs, "includeSelectors": True})
    if other_pairs:
        labels.append({"pairs": other_pairs, "includeSelectors": False, "includeTemplates": True})
    if labels:
        kustomization["labels"] = labels
    if patches:
        kustomization["patches"] = patches
    _dump(dest / "kustomization.yaml", kustomization)


def build_layout(repo: Path, dest: Path, envs: list[str], base_env: str = "dev") -> tuple[list[Path], int]:
    """Write base/ and overlays/ under `dest` from the rendered manifests of `repo`.

    Returns the overlay folders (one per environment and app) and how many resources BetCycle rendered for
    them (the count kustomize's output should match).
    """
    overlays, expected = [], 0
    manifests = repo / "environments" / base_env / "manifests"
    apps = sorted(p.name for p in manifests.iterdir() if p.is_dir() and p.name != "argocd")
    for app in apps:
        base = load_app(manifests / app)
        folder = dest / "base" / app
        folder.mkdir(parents=True)
        for doc in base:
            _dump(folder / _file(doc), _without_namespace(doc))
        _dump(folder / "kustomization.yaml", {**KUSTOMIZATION, "resources": [_file(d) for d in base]})
        for env in envs:
            docs = load_app(repo / "environments" / env / "manifests" / app)
            if not docs:
                continue
            expected += len(docs)
            overlay = dest / "overlays" / env / app
            _overlay(base, docs, app, overlay)
            overlays.append(overlay)
    return overlays, expected


@dataclass
class KustomizeRun:
    seconds: float
    peak_rss: int
    maxrss: int
    cpu: float
    builds: int
    workers: int
    resources: int
    failures: list[str] = field(default_factory=list)


def _count_documents(text: str) -> int:
    body = text.strip()
    return body.count("\n---\n") + 1 if body else 0


def run_builds(kubectl: str, layout: Path, overlays: list[Path], workers: int) -> KustomizeRun:
    """`kubectl kustomize` once per overlay, `workers` at a time; the tree under this process is sampled."""
    lock = threading.Lock()
    totals = {"resources": 0, "maxrss": 0, "cpu": 0.0}
    failures: list[str] = []

    def build(overlay: Path) -> None:
        measured = procmon.run(
            [kubectl, "kustomize", str(overlay.relative_to(layout))], cwd=layout, sample=False
        )
        with lock:
            totals["maxrss"] = max(totals["maxrss"], measured.maxrss)
            totals["cpu"] += measured.cpu
            if measured.returncode:
                failures.append(f"{overlay.relative_to(layout)}: {measured.stderr.strip()[:500]}")
            else:
                totals["resources"] += _count_documents(measured.stdout)

    with procmon.PeakSampler(os.getpid(), include_root=False) as sampler:
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(build, overlays))
        seconds = time.perf_counter() - start
    return KustomizeRun(
        seconds=seconds,
        peak_rss=sampler.peak,
        maxrss=int(totals["maxrss"]),
        cpu=totals["cpu"],
        builds=len(overlays),
        workers=workers,
        resources=totals["resources"],
        failures=failures,
    )
