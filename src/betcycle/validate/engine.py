"""Schema validation of Kubernetes resources: built-in kinds against kubernetes-validate's strict schemas for
the environment's version, custom resources against schemas converted from their CRDs (the repository's
vendored schemas/crds, then the user's cache). Strict by default: a custom resource without a schema is an
error, so every resource is checked against something."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs

from betcycle.model.findings import Finding, for_resource, json_path
from betcycle.model.repo import close_matches, did_you_mean
from betcycle.model.resources import Resource
from betcycle.model.schemas import is_builtin_group, kube_schemas
from betcycle.policy.engine import find_origin
from betcycle.validate.crd import CrdSchemaStore
from betcycle.validate.crd_vendor import ADD_HINT

#: annotations that make an object a sync hook, which Argo CD creates anew on purpose (Helm's are mapped)
HOOK_ANNOTATIONS = ("argocd.argoproj.io/hook", "helm.sh/hook")
#: kinds whose name the API server requires to be derived from their spec, so generateName can't name them
_NAME_FROM_SPEC = {
    "CustomResourceDefinition": "<spec.names.plural>.<spec.group>",
    "APIService": "<spec.version>.<spec.group>",
}


@dataclass
class SchemaReport:
    findings: list[Finding] = field(default_factory=list)
    checked: int = 0
    skipped: int = 0
    #: "apiVersion Kind" -> count of custom resources not validated for want of a schema
    skipped_kinds: dict[str, int] = field(default_factory=dict)


def _origin(res: Resource, instance: Any) -> tuple[str, int] | None:
    """The values line that most likely set a scalar the schema rejected (see policy.find_origin)."""
    return find_origin(res.origins, instance)


def _allowed_properties(validator_schema: Any, schema_path: list[Any]) -> list[str]:
    node = validator_schema
    for part in schema_path[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return []
    return sorted(node.get("properties", {})) if isinstance(node, dict) else []


def _name_findings(res: Resource) -> list[Finding]:
    """metadata.name, or a metadata.generateName where Kubernetes accepts one (with Argo CD's caveat)."""
    if res.name:
        return []
    if not res.generate_name:
        return [
            for_resource(
                res,
                severity="error",
                rule="schema",
                message="object has no metadata.name",
                hint="set metadata.name (or metadata.generateName to let the API server name a new object)",
            )
        ]
    if res.kind in _NAME_FROM_SPEC and is_builtin_group(res.group):
        return [
            for_resource(
                res,
                severity="error",
                rule="schema",
                message=f"a {res.kind} cannot be named by metadata.generateName",
                hint=f"set metadata.name to {_NAME_FROM_SPEC[res.kind]}, as the API server requires",
                path="metadata.generateName",
            )
        ]
    annotations = res.metadata.get("annotations")
    if isinstance(annotations, dict) and any(a in annotations for a in HOOK_ANNOTATIONS):
        return []  # a hook: Argo CD creates it on every sync by design
    return [
        for_resource(
            res,
            severity="warning",
            rule="schema/generate-name",
            message="metadata.generateName without metadata.name: Argo CD creates a new object on every sync",
            hint="give it a metadata.name, or make it a hook (annotation argocd.argoproj.io/hook: Sync, with "
            "argocd.argoproj.io/hook-delete-policy) if a new one each sync is what you want",
            path="metadata.generateName",
        )
    ]


def _errors(
    res: Resource, validator: Any, lookup: Callable[[], Any | None], *, crd: bool
) -> Iterable[Finding]:
    """The schema errors of `res`; `lookup()`: the schema, for an unknown field's hint (looked up only then)."""
    rule = "schema"
    for err in validator.iter_errors(res.doc):
        path = tuple(err.instance_path)
        kind = type(err.kind).__name__
        if kind == "AdditionalProperties":
            schema = lookup()
            for name in err.kind.unexpected:
                allowed = _allowed_properties(schema, list(err.schema_path)) if schema is not None else []
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else "remove it, or check the field's spelling"
                yield for_resource(
                    res,
                    severity="error",
                    rule=rule,
                    message=f"unknown field {name!r}",
                    hint=hint,
                    path=json_path((*path, name)),
                )
            continue
        yield for_resource(
            res,
            severity="error",
            rule=rule,
            message=err.message,
            hint=f"see the {res.kind} CRD's schema" if crd else "fix the value to match the Kubernetes API",
            path=json_path(path),
            origin=_origin(res, err.instance),
        )


def validate_schemas(
    resources: list[Resource],
    versions: dict[str | None, str],
    crds: CrdSchemaStore,
    *,
    strict: bool = True,
    crd_validators: dict[tuple[str, str, str], Any] | None = None,
) -> SchemaReport:
    """Validate every resource; `versions` maps environment (None for loose files) to a Kubernetes version.
    `crd_validators`: compiled custom resource schemas kept across calls with the same `crds` (a caller
    checking file by file compiles each once)."""
    report = SchemaReport()
    if crd_validators is None:
        crd_validators = {}
    # (Kubernetes version, apiVersion, kind) -> the built-in kind's validator or None, looked up once
    kube_validators: dict[tuple[str, str, str], Any] = {}
    for res in resources:
        if not res.api_version or not res.kind:
            report.findings.append(
                for_resource(
                    res,
                    severity="error",
                    rule="schema",
                    message="object has no apiVersion or kind",
                    hint="every manifest needs apiVersion and kind",
                )
            )
            continue
        report.findings += _name_findings(res)
        kube = kube_schemas(versions.get(res.env) or versions[None])
        api_version, res_kind = res.api_version, res.kind
        known = (kube.version, api_version, res_kind)
        validator = kube_validators.get(known, kube_validators)
        if validator is kube_validators:
            validator = kube_validators[known] = kube.validator(api_version, res_kind)
        if validator is not None:
            report.checked += 1
            report.findings += _errors(
                res, validator, functools.partial(kube.lookup_schema, api_version, res_kind), crd=False
            )
            continue
        if is_builtin_group(res.group):
            removed = kube.removed(res.api_version, res.kind)
            if removed:
                message = (
                    f"{res.api_version} {res.kind} was removed in Kubernetes {removed.removed_in}; "
                    f"this environment targets {kube.version}"
                )
                hint = f"use {removed.replacement}"
                rule = "schema/removed-api"
            else:
                served = kube.current_api_versions(res.kind)
                message = f"Kubernetes {kube.version} serves no {res.kind} in {res.api_version}"
                kinds = [
                    k for k in kube.served_kinds() if not k.endswith("List") or res.kind.endswith("List")
                ]
                close = [] if served else close_matches(res.kind, kinds)
                hint = (
                    f"served as: {', '.join(served)}"
                    if served
                    else did_you_mean(close)
                    if close
                    else "check the kind and apiVersion (`kubectl api-resources` lists a cluster's kinds)"
                )
                rule = "schema/unknown-kind"
            report.findings.append(for_resource(res, severity="error", rule=rule, message=message, hint=hint))
            continue
        group, _, version = res.api_version.rpartition("/")
        key = (group, version, res.kind)
        if key not in crd_validators:
            crd_schema = crds.get(group, version, res.kind)
            crd_validators[key] = jsonschema_rs.validator_for(crd_schema) if crd_schema is not None else None
        crd_validator = crd_validators[key]
        if crd_validator is None:
            report.skipped += 1
            report.skipped_kinds[f"{res.api_version} {res.kind}"] = (
                report.skipped_kinds.get(f"{res.api_version} {res.kind}", 0) + 1
            )
            if strict:
                others = [v for v in crds.other_versions(res.kind) if v != res.api_version]
                hint = (
                    f"a schema exists for {res.kind} in {', '.join(others)}: check the apiVersion, or "
                    if others
                    else ""
                ) + ADD_HINT
                report.findings.append(
                    for_resource(
                        res,
                        severity="error",
                        rule="schema/no-schema",
                        message=f"no schema for custom resource {res.api_version} {res.kind}",
                        hint=hint,
                    )
                )
            continue
        report.checked += 1
        report.findings += _errors(
            res, crd_validator, functools.partial(crds.get, group, version, res.kind), crd=True
        )
    return report
