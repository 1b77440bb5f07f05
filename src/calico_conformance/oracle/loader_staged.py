"""Staged policies (Calico 3.30+): read but never enforced, and enforced on request (`--promote-staged`).

A StagedNetworkPolicy, StagedGlobalNetworkPolicy or StagedKubernetesNetworkPolicy is a proposal: felix
evaluates it only to report what it *would* do and never programs it (projectcalico/calico v3.31.7,
felix/rules/policy.go:39 and felix/rules/endpoints.go:374, "Skip programming staged policy"). So a staged
policy changes no verdict, and the oracle keeps it aside (`ResourceSet.staged`). Its spec is the enforced
kind's spec plus `stagedAction` (api/pkg/apis/projectcalico/v3/stagednetworkpolicy.go:40-42,
stagedglobalnetworkpolicy.go:42, stagedkubernetesnetworkpolicy.go:42; the vendored CRDs in
/work/shared/calico/v3.31.7/operator-crds.yaml list the same fields); Calico's own conversion
(`ConvertStagedPolicyToEnforced`, stagednetworkpolicy.go:152-158; `ConvertStagedGlobalPolicyToEnforced`,
stagedglobalnetworkpolicy.go:166; `ConvertStagedKubernetesPolicyToK8SEnforced`,
stagedkubernetesnetworkpolicy.go:118-125) copies metadata and spec onto the enforced kind, which is what
this module reads with the enforced kind's reader.

`stagedAction` (policy_common.go:211-218; the validator accepts exactly Set, Delete, Learn and Ignore,
libcalico-go/lib/validator/v3/validator.go:140-141):

* `Set` (the default when omitted, stagednetworkpolicy.go:41): the staged spec would become the enforced
  policy of the same name, replacing one that exists;
* `Delete`: the enforced policy of the same name would go. Its spec must be empty except `tier`
  (validator.go:1867-1873 and 2087-2094; for the Kubernetes kind entirely empty, 2117-2124), and the
  syncer sends nothing to felix for it (libcalico-go/lib/backend/syncersv1/updateprocessors/
  stagednetworkpolicyprocessor.go:58-61);
* `Learn` and `Ignore`: accepted by the validator, but no source of the release says what enforcing
  them means, so promoting one is refused with its location rather than guessed.

`promote_staged` applies Set and Delete to the enforced policies, which is what `simulate --promote-staged`
and `diff --promote-staged` evaluate. The kinds arrive in 3.30 (the api package of v3.29.x has none of
them), so loading one for an earlier version is a located error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from calico_conformance.oracle.errors import LocatedError
from calico_conformance.oracle.loader_calico import read_calico_policy
from calico_conformance.oracle.loader_document import Document, version_text
from calico_conformance.oracle.loader_k8s import read_kubernetes_network_policy
from calico_conformance.oracle.model import Policy, ResourceSet, StagedAction, StagedPolicy
from calico_conformance.oracle.yamlsrc import LocatedDict, Node

STAGED_SINCE = (3, 30)
STAGED_ACTIONS: tuple[StagedAction, ...] = ("Set", "Delete", "Learn", "Ignore")
DEFAULT_STAGED_ACTION: StagedAction = "Set"
PROMOTABLE_ACTIONS = ("Set", "Delete")
K8S_NETWORKING = "networking.k8s.io/v1"


def _read_calico(document: Document) -> Policy:
    return read_calico_policy(document)


# staged kind -> (enforced kind, apiVersion of the enforced kind or None for the staged one's, its reader)
ENFORCED: Mapping[str, tuple[str, str | None, Callable[[Document], Policy]]] = {
    "StagedNetworkPolicy": ("NetworkPolicy", None, _read_calico),
    "StagedGlobalNetworkPolicy": ("GlobalNetworkPolicy", None, _read_calico),
    "StagedKubernetesNetworkPolicy": ("NetworkPolicy", K8S_NETWORKING, read_kubernetes_network_policy),
}
STAGED_KINDS = tuple(ENFORCED)


def read_staged_policy(document: Document) -> StagedPolicy:
    """A staged policy document: its action and, unless Delete, the enforced policy it stands for."""
    if document.version < STAGED_SINCE:
        raise LocatedError(
            document.location,
            f"{document.kind} needs Calico >= 3.30 (loading for Calico {version_text(document.version)})",
        )
    enforced_kind, enforced_api, read = ENFORCED[document.kind]
    root = document.node.mapping(f"a {document.kind}")
    spec_node = document.node.get("spec")
    spec = spec_node.mapping(f"a {document.kind} spec") if spec_node is not None else {}
    action_node = spec_node.get("stagedAction") if spec_node is not None else None
    action = DEFAULT_STAGED_ACTION
    if action_node is not None:
        text = action_node.string()
        if text not in STAGED_ACTIONS:
            raise action_node.error(f"unknown stagedAction {text!r}; expected {', '.join(STAGED_ACTIONS)}")
        action = text
    bare_spec = _without(spec, "stagedAction")
    if action == "Delete":
        policy = None
        allowed = {"tier"} if document.kind != "StagedKubernetesNetworkPolicy" else set()
        extra = sorted(key for key in bare_spec if key not in allowed)
        if extra:
            assert spec_node is not None  # a non-empty spec was written
            raise spec_node.error(
                f"a {document.kind} with stagedAction Delete has no other spec fields"
                f"{' than tier' if allowed else ''} (Calico's validator refuses them): {', '.join(extra)}"
            )
    else:
        enforced_root = _replaced(root, "spec", bare_spec) if spec_node is not None else root
        enforced = replace(
            document,
            node=Node(enforced_root, document.node.path, document.node.location),
            kind=enforced_kind,
            api_version=enforced_api or document.api_version,
        )
        policy = read(enforced)
        if policy.manifest is not None:  # a live target would apply the enforced object
            manifest = {**policy.manifest, "apiVersion": K8S_NETWORKING, "kind": "NetworkPolicy"}
            manifest["spec"] = {k: v for k, v in manifest.get("spec", {}).items() if k != "stagedAction"}
            policy = replace(policy, manifest=manifest)
    return StagedPolicy(
        kind=document.kind,
        name=document.name,
        namespace=document.namespace,
        action=action,
        policy=policy,
        location=document.location,
    )


def _without(mapping: Mapping[Any, Any], key: str) -> dict[Any, Any]:
    """A copy of `mapping` without `key`, keeping the locations a LocatedDict carries."""
    copy = {k: v for k, v in mapping.items() if k != key}
    if isinstance(mapping, LocatedDict):
        located = LocatedDict(copy)
        located.location = mapping.location
        located.key_locations = mapping.key_locations
        return located
    return copy


def _replaced(mapping: Mapping[Any, Any], key: str, value: Any) -> dict[Any, Any]:
    copy = _without(mapping, key)
    copy[key] = value
    return copy


# --- promotion ----------------------------------------------------------------------------------------------


def _identity(kind: str, namespace: str | None, name: str) -> tuple[str, str | None, str]:
    """How the API server identifies the enforced policy (the loader's rule: Calico stores default-tier
    `foo` and `default.foo` as one object; a Kubernetes NetworkPolicy's name is taken as written)."""
    return kind, namespace, name if kind == "KubernetesNetworkPolicy" else name.removeprefix("default.")


def promote_staged(resources: ResourceSet) -> ResourceSet:
    """The set as if every staged policy were enforced: Set replaces or adds, Delete removes."""
    if not resources.staged:
        return resources
    policies: dict[tuple[str, str | None, str], Policy] = {
        _identity(p.kind, p.namespace, p.name): p for p in resources.policies
    }
    for staged in resources.staged:
        if staged.action not in PROMOTABLE_ACTIONS:
            raise LocatedError(
                staged.location,
                f"{staged.kind} {staged.name}: stagedAction {staged.action} cannot be promoted (Calico "
                "defines enforcing only Set and Delete); give one of those, or leave out --promote-staged",
            )
        enforced_kind = "KubernetesNetworkPolicy" if staged.kind == "StagedKubernetesNetworkPolicy" else ENFORCED[
            staged.kind
        ][0]
        key = _identity(enforced_kind, staged.namespace, staged.name)
        if staged.policy is None:
            policies.pop(key, None)
        else:
            policies[key] = staged.policy
    return replace(resources, policies=tuple(policies.values()), staged=())
