"""Policy-model objects back into `projectcalico.org/v3` manifests, for scenarios applied on live clusters.

A synthetic scenario (the tier suite's) reaches a live target as a parsed `Scenario`: its policies are
`oracle.model` objects, not the YAML they came from. To apply them in scratch namespaces they are
rendered back as Calico resources, with names optionally rewritten (`Renames`) so a shared cluster only
ever sees run-id-named namespaces and tiers.

Faithful for Calico kinds. A Kubernetes NetworkPolicy is applied as the object it was written as (the
model keeps its manifest), so the cluster's own conversion into the default tier is what a live scenario
tests; only a model built without a manifest falls back to the equivalent Calico NetworkPolicy in tier
default at order 1000, named `k8s-<name>` (same verdicts, though felix then sorts it by that name instead
of `knp.default.<name>`, calico-semantics.md §1.4). Namespace renames are textual on quoted selector
values (`'old'` / `"old"`), as namespace names are DNS labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from calico_conformance.oracle.model import (
    PROTOCOL_NAMES,
    EntityRule,
    IcmpMatch,
    NamedPort,
    NetworkSet,
    Policy,
    PortRange,
    Rule,
    Scenario,
    Tier,
)
from calico_conformance.oracle.selector import Selector

CALICO_API = "projectcalico.org/v3"
BUILT_IN_TIERS = frozenset({"default", "adminnetworkpolicy", "baselineadminnetworkpolicy"})


@dataclass(frozen=True)
class Renames:
    """Scenario names -> names on the cluster. Unlisted names are kept."""

    namespaces: Mapping[str, str] = field(default_factory=dict)
    tiers: Mapping[str, str] = field(default_factory=dict)

    def namespace(self, name: str | None) -> str | None:
        return None if name is None else self.namespaces.get(name, name)

    def tier(self, name: str) -> str:
        return self.tiers.get(name, name)

    def selector(self, selector: Selector | None) -> str | None:
        if selector is None:
            return None
        text = str(selector)
        for old, new in self.namespaces.items():
            text = text.replace(f"'{old}'", f"'{new}'").replace(f'"{old}"', f'"{new}"')
        return text

    def policy_name(self, policy: Policy) -> str:
        """`<tier>.<name>` outside the default tier (Calico 3.29+ naming), with the tier renamed."""
        if policy.kind == "KubernetesNetworkPolicy":
            return f"k8s-{policy.name}"
        if policy.tier in BUILT_IN_TIERS or "." not in policy.name:
            return policy.name
        _, _, rest = policy.name.partition(".")
        return f"{self.tier(policy.tier)}.{rest}"


def render_tier(tier: Tier, renames: Renames = Renames()) -> dict[str, Any]:
    spec: dict[str, Any] = {"defaultAction": tier.default_action}
    if tier.order is not None:
        spec["order"] = tier.order
    return {
        "apiVersion": CALICO_API,
        "kind": "Tier",
        "metadata": {"name": renames.tier(tier.name)},
        "spec": spec,
    }


def render_network_set(network_set: NetworkSet, renames: Renames = Renames()) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": network_set.name, "labels": network_set.labels.as_dict()}
    if network_set.namespace is not None:
        metadata["namespace"] = renames.namespace(network_set.namespace)
    kind = "NetworkSet" if network_set.namespace is not None else "GlobalNetworkSet"
    return {
        "apiVersion": CALICO_API,
        "kind": kind,
        "metadata": metadata,
        "spec": {"nets": [str(n) for n in network_set.nets]},
    }


def render_policy(policy: Policy, renames: Renames = Renames()) -> dict[str, Any]:
    if policy.kind == "KubernetesNetworkPolicy" and policy.manifest is not None:
        from calico_conformance.cluster.scratch import rename_manifest  # scratch imports this module

        return rename_manifest(policy.manifest, renames)
    spec: dict[str, Any] = {"tier": renames.tier(policy.tier)}
    # An omitted selector stays omitted: Calico rewrites a *written* all() when it adds a
    # serviceAccountSelector to a GlobalNetworkPolicy, so the two are not the same policy.
    if policy.selector.source.strip():
        spec["selector"] = renames.selector(policy.selector)
    if policy.order is not None:
        spec["order"] = policy.order
    spec["types"] = sorted(str(direction) for direction in policy.types)
    spec["ingress"] = [_rule(rule, renames) for rule in policy.ingress]
    spec["egress"] = [_rule(rule, renames) for rule in policy.egress]
    if policy.namespace_selector is not None:
        spec["namespaceSelector"] = renames.selector(policy.namespace_selector)
    if policy.service_account_selector is not None:
        spec["serviceAccountSelector"] = str(policy.service_account_selector)
    metadata: dict[str, Any] = {"name": renames.policy_name(policy)}
    if policy.namespace is None:
        kind = "GlobalNetworkPolicy"
    else:
        kind = "NetworkPolicy"
        metadata["namespace"] = renames.namespace(policy.namespace)
    return {"apiVersion": CALICO_API, "kind": kind, "metadata": metadata, "spec": spec}


def _rule(rule: Rule, renames: Renames) -> dict[str, Any]:
    rendered: dict[str, Any] = {"action": rule.action}
    if rule.protocol is not None:
        rendered["protocol"] = PROTOCOL_NAMES.get(rule.protocol, rule.protocol)
    if rule.not_protocol is not None:
        rendered["notProtocol"] = PROTOCOL_NAMES.get(rule.not_protocol, rule.not_protocol)
    if rule.icmp is not None:
        rendered["icmp"] = _icmp(rule.icmp)
    if rule.not_icmp is not None:
        rendered["notICMP"] = _icmp(rule.not_icmp)
    if rule.ip_version is not None:
        rendered["ipVersion"] = rule.ip_version
    for side, entity in (("source", rule.source), ("destination", rule.destination)):
        if not entity.is_empty:
            rendered[side] = _entity(entity, renames)
    return rendered


def _icmp(match: IcmpMatch) -> dict[str, int]:
    fields = {"type": match.type, "code": match.code}
    return {key: value for key, value in fields.items() if value is not None}


def _port(port: PortRange | NamedPort) -> int | str:
    if isinstance(port, NamedPort):
        return port.name
    return port.first if port.first == port.last else f"{port.first}:{port.last}"


def _entity(entity: EntityRule, renames: Renames) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    if entity.nets:
        rendered["nets"] = [str(net) for net in entity.nets]
    if entity.not_nets:
        rendered["notNets"] = [str(net) for net in entity.not_nets]
    for key, selector in (
        ("selector", entity.selector),
        ("notSelector", entity.not_selector),
        ("namespaceSelector", entity.namespace_selector),
    ):
        if selector is not None:
            rendered[key] = renames.selector(selector)
    if entity.service_accounts is not None:
        accounts: dict[str, Any] = {}
        if entity.service_accounts.names:
            accounts["names"] = list(entity.service_accounts.names)
        if entity.service_accounts.selector is not None:
            accounts["selector"] = str(entity.service_accounts.selector)
        rendered["serviceAccounts"] = accounts
    if entity.services is not None:
        services: dict[str, Any] = {"name": entity.services.name}
        if entity.services.namespace is not None:
            services["namespace"] = renames.namespace(entity.services.namespace)
        rendered["services"] = services
    if entity.ports:
        rendered["ports"] = [_port(port) for port in entity.ports]
    if entity.not_ports:
        rendered["notPorts"] = [_port(port) for port in entity.not_ports]
    return rendered


def scenario_manifests(scenario: Scenario, renames: Renames = Renames()) -> list[dict[str, Any]]:
    """A scenario's resources as manifests, tiers first so their policies can be created."""
    resources = scenario.resources
    return [
        *(render_tier(tier, renames) for tier in resources.tiers),
        *(render_network_set(network_set, renames) for network_set in resources.network_sets),
        *(render_policy(policy, renames) for policy in resources.policies),
    ]
