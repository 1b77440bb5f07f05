"""Calico objects into the model: NetworkPolicy, GlobalNetworkPolicy, Tier, NetworkSet, GlobalNetworkSet.

The two things a reader of Calico manifests gets wrong most often are decided here, once:

* `types` defaulting depends on who wrote the object (calico-semantics.md §1.6): through the Calico API
  (`projectcalico.org/v3`) an empty `types` becomes `[Ingress]` unless there are egress rules, so a
  rule-less "default deny" denies ingress only; a `crd.projectcalico.org/v1` object written directly
  reaches felix with empty `types`, which felix reads as Ingress *and* Egress.
* tiers depend on the Calico version (§0, §1.10): before 3.29 there is one implicit tier and no `Tier`
  kind; from 3.29 a policy's tier must agree with its name's `tier.` prefix.
"""

from __future__ import annotations

from calico_conformance.oracle.errors import LocatedError
from calico_conformance.oracle.loader_calico_rules import read_rule, read_selector, refuse_catch_all_not_nets
from calico_conformance.oracle.loader_document import (
    DNS_LABEL,
    TIER_PREFIX_OPTIONAL_SINCE,
    TIERS_SINCE,
    Document,
    parse_network_set_net,
    version_text,
)
from calico_conformance.oracle.model import (
    DEFAULT_TIER,
    Direction,
    IPNetwork,
    NetworkSet,
    Policy,
    PolicyKind,
    Rule,
    Tier,
)
from calico_conformance.oracle.selector import parse_selector
from calico_conformance.oracle.yamlsrc import Node

# Written directly as CRDs, policies bypass clientv3's `types` defaulting and felix reads empty types
# as both directions (§1.6, `policy_sorter.go`: "no Types means Ingress and Egress").
FELIX_LEVEL_API_VERSION = "crd.projectcalico.org/v1"

POLICY_SPEC_FIELDS = frozenset(
    {"tier", "order", "selector", "serviceAccountSelector", "types", "ingress", "egress", "performanceHints"}
)
GLOBAL_POLICY_SPEC_FIELDS = POLICY_SPEC_FIELDS | {
    "namespaceSelector",
    "applyOnForward",
    "preDNAT",
    "doNotTrack",
}
STAGED_KINDS = ("StagedNetworkPolicy", "StagedGlobalNetworkPolicy", "StagedKubernetesNetworkPolicy")
# The validator pins the built-in tiers' orders (`validateTier`, calico-semantics.md §1.3).
BUILT_IN_TIER_ORDERS = {
    "default": 1_000_000.0,
    "adminnetworkpolicy": 1_000.0,
    "baselineadminnetworkpolicy": 10_000_000.0,
}
TIER_DEFAULT_ACTIONS = ("Deny", "Pass")
PERFORMANCE_HINTS = ("AssumeNeededOnEveryNode",)  # the only hint Calico defines; it never changes verdicts
DOCUMENT_FIELDS = frozenset({"apiVersion", "kind", "metadata", "spec"})
# An omitted policy selector selects everything, like `all()`, but Calico's update processors build the
# final selector from the text as written: a GlobalNetworkPolicy's `all()` is rewritten to
# `has(projectcalico.org/serviceaccount)` once a serviceAccountSelector is appended, an omitted one is
# not (§2.2). Its empty source text is how `scoping.py` tells the two apart.
OMITTED_SELECTOR = parse_selector("")


def _order(spec: Node) -> float | None:
    node = spec.get("order")
    if node is None:
        return None
    order = node.number()
    if order < 0:
        raise node.error(f"order {node.value} is negative; orders are 0 or more")
    return order


def _types(spec: Node, api_version: str) -> frozenset[Direction]:
    node = spec.get("types")
    if node is not None and node.value:
        types: set[Direction] = set()
        for item in node.items("types"):
            value = item.string()
            if value not in ("Ingress", "Egress"):
                raise item.error(f"invalid policy type {value!r}; expected Ingress or Egress")
            if Direction(value) in types:
                raise item.error(f"policy type {value} is listed twice")
            types.add(Direction(value))
        return frozenset(types)
    if api_version == FELIX_LEVEL_API_VERSION:
        return frozenset({Direction.INGRESS, Direction.EGRESS})
    has_ingress, has_egress = (
        bool(spec.get(key) and spec.require(key).value) for key in ("ingress", "egress")
    )
    if has_egress and not has_ingress:
        return frozenset({Direction.EGRESS})
    if has_egress:
        return frozenset({Direction.INGRESS, Direction.EGRESS})
    return frozenset({Direction.INGRESS})


def _tier(document: Document, spec: Node) -> str:
    """The policy's tier, checked against its name and the Calico version (§1.10)."""
    tier_node = spec.get("tier")
    tier = tier_node.string() if tier_node is not None else DEFAULT_TIER
    where = tier_node or spec
    prefix, dot, _ = document.name.partition(".")
    version = version_text(document.version)
    if document.version < TIERS_SINCE:
        if tier_node is not None:  # the field itself is new in 3.29 (§0): the older API refuses it
            raise where.error(f"spec.tier needs Calico >= 3.29 (loading for Calico {version})")
        if dot:
            raise (
                document.node.require("metadata")
                .require("name")
                .error(f"policy names may not contain '.' before Calico 3.29 (loading for Calico {version})")
            )
        return tier
    if not DNS_LABEL.match(tier):
        raise where.error(f"invalid tier name {tier!r}: must be a DNS label without dots")
    name_node = document.node.require("metadata").require("name")
    if dot and prefix != tier:
        raise name_node.error(
            f"name {document.name!r} places the policy in tier {prefix!r} but its tier is {tier!r}"
            + ("" if tier_node else " (spec.tier is not set, so it is 'default')")
        )
    if not dot and tier != DEFAULT_TIER and document.version < TIER_PREFIX_OPTIONAL_SINCE:
        raise name_node.error(
            f"a policy in tier {tier!r} must be named '{tier}.{document.name}' in Calico {version}"
        )
    return tier


def _rules(spec: Node, direction: Direction, namespace: str | None) -> tuple[Rule, ...]:
    node = spec.get(direction.value.lower())
    if node is None:
        return ()
    return tuple(read_rule(item, direction, policy_namespace=namespace) for item in node.items())


def read_calico_policy(document: Document) -> Policy:
    """projectcalico.org/v3 (or crd.projectcalico.org/v1) NetworkPolicy / GlobalNetworkPolicy."""
    is_global = document.kind == "GlobalNetworkPolicy"
    node = document.node.fields(DOCUMENT_FIELDS, what=f"a {document.kind}")
    spec_node = node.get("spec")
    spec = spec_node if spec_node is not None else Node({}, "spec", document.location)
    spec.fields(
        GLOBAL_POLICY_SPEC_FIELDS if is_global else POLICY_SPEC_FIELDS, what=f"a {document.kind} spec"
    )
    selector_node, account_node = spec.get("selector"), spec.get("serviceAccountSelector")
    namespace_node = spec.get("namespaceSelector")
    host_only = _check_host_flags(spec) if is_global else None
    performance_hints = spec.get("performanceHints")
    for hint in performance_hints.items("performanceHints") if performance_hints is not None else []:
        if hint.string() not in PERFORMANCE_HINTS:
            raise hint.error(
                f"unknown performance hint {hint.value!r}; expected {', '.join(PERFORMANCE_HINTS)}"
            )
    kind: PolicyKind = "GlobalNetworkPolicy" if is_global else "NetworkPolicy"
    policy = Policy(
        kind=kind,
        name=document.name,
        namespace=document.namespace,
        tier=_tier(document, spec),
        order=_order(spec),
        selector=read_selector(selector_node) if selector_node is not None else OMITTED_SELECTOR,
        types=_types(spec, document.api_version),
        ingress=_rules(spec, Direction.INGRESS, document.namespace),
        egress=_rules(spec, Direction.EGRESS, document.namespace),
        namespace_selector=read_selector(namespace_node) if namespace_node is not None else None,
        service_account_selector=read_selector(account_node) if account_node is not None else None,
        location=document.location,
        api_version=document.api_version,
        host_endpoints_only=host_only,
    )
    refuse_catch_all_not_nets(spec, document.version)  # after the rules read: they are well formed
    return policy


def _check_host_flags(spec: Node) -> str | None:
    """applyOnForward / preDNAT / doNotTrack only matter for host endpoints, but Calico still validates
    them (§1.8). Returns the flag that keeps the policy off every pod ("doNotTrack" or "preDNAT"), if any."""
    flags = {
        key: spec.require(key).boolean()
        for key in ("applyOnForward", "preDNAT", "doNotTrack")
        if spec.has(key)
    }
    if flags.get("preDNAT") and flags.get("doNotTrack"):
        raise spec.error("preDNAT and doNotTrack cannot both be true")
    if (flags.get("preDNAT") or flags.get("doNotTrack")) and not flags.get("applyOnForward"):
        raise spec.error("applyOnForward must be true when preDNAT or doNotTrack is true")
    if flags.get("preDNAT") and spec.has("egress"):
        raise spec.require("egress").error("a preDNAT policy may not have egress rules")
    return next((flag for flag in ("doNotTrack", "preDNAT") if flags.get(flag)), None)


def read_tier(document: Document) -> Tier:
    version = version_text(document.version)
    if document.version < TIERS_SINCE:
        raise LocatedError(document.location, f"Tier needs Calico >= 3.29 (loading for Calico {version})")
    node = document.node.fields(DOCUMENT_FIELDS, what="a Tier")
    if not DNS_LABEL.match(document.name):
        raise (
            node.require("metadata")
            .require("name")
            .error(f"invalid tier name {document.name!r}: must be a DNS label without dots")
        )
    spec_node = node.get("spec")
    spec = spec_node if spec_node is not None else Node({}, "spec", document.location)
    spec.fields({"order", "defaultAction"}, what="a Tier spec")
    order = _order(spec)
    pinned = BUILT_IN_TIER_ORDERS.get(document.name)
    if pinned is not None and order is None:
        order = pinned  # the built-in tier exists with this order whether or not the manifest repeats it
    if pinned is not None and order != pinned:
        raise (spec.get("order") or spec).error(f"the {document.name} tier's order must be {pinned:.0f}")
    action_node = spec.get("defaultAction")
    action = action_node.string() if action_node is not None else "Deny"
    if action not in TIER_DEFAULT_ACTIONS:
        raise (action_node or spec).error(f"invalid defaultAction {action!r}; expected Deny or Pass")
    return Tier(
        document.name,
        order,
        "Pass" if action == "Pass" else "Deny",
        location=document.location,
        api_version=document.api_version,
    )


def read_network_set(document: Document) -> NetworkSet:
    """NetworkSet (namespaced) or GlobalNetworkSet: labels from metadata, CIDRs from spec.nets."""
    node = document.node.fields(DOCUMENT_FIELDS, what=f"a {document.kind}")
    spec_node = node.get("spec")
    nets: tuple[IPNetwork, ...] = ()
    if spec_node is not None:
        spec_node.fields({"nets"}, what=f"a {document.kind} spec")
        nets_node = spec_node.get("nets")
        nets = tuple(parse_network_set_net(item) for item in nets_node.items("nets")) if nets_node is not None else ()
    return NetworkSet(
        document.name,
        document.namespace,
        nets,
        document.labels,
        location=document.location,
        api_version=document.api_version,
    )
