"""Kubernetes JSON schemas (shipped by kubernetes-validate) compiled once per process, per kind.

kubernetes-validate's own `validate()` re-reads and re-resolves the JSON for every call (~100 objects/s);
here the shared definitions are loaded once per Kubernetes version, put in one jsonschema-rs Registry, and
each kind's validator is compiled on first use and cached.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

from betcycle.errors import UserError

_DEFS_URI = "https://kubernetes.io/api/_definitions.json"

#: API versions removed before the oldest schema set kubernetes-validate ships (1.25), from the Kubernetes
#: deprecated API migration guide. Later removals are found by looking through the shipped versions.
_REMOVED_BEFORE_SHIPPED: dict[str, tuple[str, str]] = {
    # apiVersion/Kind: (removed in, replacement apiVersion)
    "extensions/v1beta1/Ingress": ("1.22", "networking.k8s.io/v1"),
    "networking.k8s.io/v1beta1/Ingress": ("1.22", "networking.k8s.io/v1"),
    "networking.k8s.io/v1beta1/IngressClass": ("1.22", "networking.k8s.io/v1"),
    "extensions/v1beta1/Deployment": ("1.16", "apps/v1"),
    "extensions/v1beta1/DaemonSet": ("1.16", "apps/v1"),
    "extensions/v1beta1/ReplicaSet": ("1.16", "apps/v1"),
    "extensions/v1beta1/NetworkPolicy": ("1.16", "networking.k8s.io/v1"),
    "extensions/v1beta1/PodSecurityPolicy": ("1.16", "policy/v1beta1 (itself removed in 1.25)"),
    "apps/v1beta1/Deployment": ("1.16", "apps/v1"),
    "apps/v1beta2/Deployment": ("1.16", "apps/v1"),
    "apps/v1beta1/StatefulSet": ("1.16", "apps/v1"),
    "apps/v1beta2/StatefulSet": ("1.16", "apps/v1"),
    "apps/v1beta2/DaemonSet": ("1.16", "apps/v1"),
    "apps/v1beta2/ReplicaSet": ("1.16", "apps/v1"),
    "policy/v1beta1/PodDisruptionBudget": ("1.25", "policy/v1"),
    "policy/v1beta1/PodSecurityPolicy": ("1.25", "Pod Security Admission (namespace labels)"),
    "batch/v1beta1/CronJob": ("1.25", "batch/v1"),
    "autoscaling/v2beta1/HorizontalPodAutoscaler": ("1.25", "autoscaling/v2"),
    "discovery.k8s.io/v1beta1/EndpointSlice": ("1.25", "discovery.k8s.io/v1"),
    "events.k8s.io/v1beta1/Event": ("1.25", "events.k8s.io/v1"),
    "node.k8s.io/v1beta1/RuntimeClass": ("1.25", "node.k8s.io/v1"),
    "rbac.authorization.k8s.io/v1beta1/Role": ("1.22", "rbac.authorization.k8s.io/v1"),
    "rbac.authorization.k8s.io/v1beta1/RoleBinding": ("1.22", "rbac.authorization.k8s.io/v1"),
    "rbac.authorization.k8s.io/v1beta1/ClusterRole": ("1.22", "rbac.authorization.k8s.io/v1"),
    "rbac.authorization.k8s.io/v1beta1/ClusterRoleBinding": ("1.22", "rbac.authorization.k8s.io/v1"),
    "apiextensions.k8s.io/v1beta1/CustomResourceDefinition": ("1.22", "apiextensions.k8s.io/v1"),
    "admissionregistration.k8s.io/v1beta1/MutatingWebhookConfiguration": (
        "1.22",
        "admissionregistration.k8s.io/v1",
    ),
    "admissionregistration.k8s.io/v1beta1/ValidatingWebhookConfiguration": (
        "1.22",
        "admissionregistration.k8s.io/v1",
    ),
    "scheduling.k8s.io/v1beta1/PriorityClass": ("1.22", "scheduling.k8s.io/v1"),
    "storage.k8s.io/v1beta1/CSIDriver": ("1.22", "storage.k8s.io/v1"),
    "storage.k8s.io/v1beta1/StorageClass": ("1.22", "storage.k8s.io/v1"),
    "coordination.k8s.io/v1beta1/Lease": ("1.22", "coordination.k8s.io/v1"),
    "certificates.k8s.io/v1beta1/CertificateSigningRequest": ("1.22", "certificates.k8s.io/v1"),
}

#: API groups served by Kubernetes itself: an unknown kind here is a mistake, not a missing CRD schema.
_BUILTIN_GROUPS = {"", "apps", "batch", "autoscaling", "policy", "extensions"}


def is_builtin_group(group: str) -> bool:
    return group in _BUILTIN_GROUPS or group.endswith(".k8s.io")


@cache
def _schema_root() -> Path:
    # find the package's folder without importing it (its import pulls in the Python jsonschema stack)
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover
        raise UserError("kubernetes-validate is not installed", hint="pip install kubernetes-validate")
    return Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"


@cache
def supported_versions() -> tuple[str, ...]:
    out = []
    for p in _schema_root().iterdir():
        m = re.fullmatch(r"v(\d+)\.(\d+)\.0-local-strict", p.name)
        if m:
            out.append((int(m[1]), int(m[2])))
    return tuple(f"{a}.{b}" for a, b in sorted(out))


def _file_name(api_version: str, kind: str) -> str:
    # kubernetes-validate's naming: rbac.authorization.k8s.io/v1 -> rbac-v1; v1 -> v1
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    return f"{kind.lower()}-{api}.json"


@dataclass(frozen=True)
class Removed:
    removed_in: str
    replacement: str


class KubeSchemas:
    """Validators for one Kubernetes minor version."""

    def __init__(self, version: str) -> None:
        if version not in supported_versions():
            raise UserError(
                f"Kubernetes {version} has no schemas here (supported: "
                f"{supported_versions()[0]}–{supported_versions()[-1]})",
                hint="set kubernetesVersion to a supported minor version, or upgrade kubernetes-validate",
            )
        self.version = version
        self.dir = _schema_root() / f"v{version}.0-local-strict"
        self._registry: Any = None
        self._validators: dict[str, Any] = {}
        self._schemas: dict[str, Any] = {}
        self._defs: dict[str, Any] = {}

    def _load_registry(self) -> Any:
        if self._registry is None:
            self._defs = json.loads((self.dir / "_definitions.json").read_text("utf-8"))
            self._registry = jsonschema_rs.Registry([(_DEFS_URI, self._defs)])
        return self._registry

    def validator(self, api_version: str, kind: str) -> Any | None:
        """The compiled validator for apiVersion/kind, or None if this version does not serve it."""
        name = _file_name(api_version, kind)
        if name in self._validators:
            return self._validators[name]
        path = self.dir / name
        validator = None
        if path.is_file():
            schema = json.loads(path.read_text("utf-8"))
            self._schemas[name] = schema
            gvk = schema.get("x-kubernetes-group-version-kind") or []
            group, _, version = api_version.rpartition("/")
            if not gvk or any(g.get("group", "") == group and g.get("version") == version for g in gvk):
                validator = jsonschema_rs.validator_for(schema, registry=self._load_registry())
        self._validators[name] = validator
        return validator

    def lookup_schema(self, api_version: str, kind: str) -> dict[str, Any]:
        """The kind's schema with the shared `$defs`, for walking an error's schema path (hints only)."""
        return {**self._schemas.get(_file_name(api_version, kind), {}), "$defs": self._defs.get("$defs", {})}

    def removed(self, api_version: str, kind: str) -> Removed | None:
        """Why apiVersion/kind is not served by this version, if it was served by an older one."""
        key = f"{api_version}/{kind}"
        name = _file_name(api_version, kind)
        older = [v for v in supported_versions() if _minor(v) < _minor(self.version)]
        served_in = [v for v in older if (_schema_root() / f"v{v}.0-local-strict" / name).is_file()]
        replacement = self.current_api_versions(kind)
        repl = ", ".join(replacement) if replacement else "a served API version"
        if served_in:
            last = served_in[-1]
            removed_in = next(v for v in supported_versions() if _minor(v) > _minor(last))
            return Removed(removed_in, repl)
        if key in _REMOVED_BEFORE_SHIPPED:
            removed_in, known_repl = _REMOVED_BEFORE_SHIPPED[key]
            return Removed(removed_in, repl if replacement else known_repl)
        return None

    def served_kinds(self) -> list[str]:
        """Every kind this version serves (for "did you mean" hints)."""
        self._load_registry()
        return sorted(
            {
                g["kind"]
                for d in self._defs.get("$defs", {}).values()
                for g in d.get("x-kubernetes-group-version-kind") or []
                if isinstance(g, dict) and isinstance(g.get("kind"), str)
            }
        )

    def current_api_versions(self, kind: str) -> list[str]:
        """apiVersions under which this version serves `kind` (for hints)."""
        out = []
        prefix = f"{kind.lower()}-"
        for p in self.dir.glob(f"{prefix}*.json"):
            rest = p.name[len(prefix) : -len(".json")]
            if rest.endswith("list") or ("-" in rest and rest.split("-")[0].endswith("list")):
                continue
            try:
                gvk = json.loads(p.read_text("utf-8")).get("x-kubernetes-group-version-kind") or []
            except json.JSONDecodeError:
                continue
            for g in gvk:
                if g.get("kind") == kind:
                    out.append(f"{g['group']}/{g['version']}" if g.get("group") else g["version"])
        return sorted(set(out))


def _minor(version: str) -> int:
    return int(version.split(".")[1])


@cache
def kube_schemas(version: str) -> KubeSchemas:
    return KubeSchemas(version)
