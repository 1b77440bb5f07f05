"""An independent model of Kubernetes NetworkPolicy, written from the Kubernetes API reference, not Calico.

For clusters that hold only Kubernetes NetworkPolicies the Calico pipeline must reduce to the semantics
the Kubernetes API documents (networking.k8s.io/v1 NetworkPolicySpec, NetworkPolicyPeer,
NetworkPolicyPort; https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/):

* a pod is isolated for a direction when a policy in its namespace selects it (podSelector) and lists
  that direction in `policyTypes`; a pod isolated for neither is open;
* an isolated pod admits exactly the union of what its selecting policies' rules allow;
* a rule with no peers (`from`/`to`) matches every peer, one with no `ports` every port;
* a peer with `namespaceSelector` picks pods in the namespaces it selects (further narrowed by
  `podSelector`), a peer with only `podSelector` picks pods of the policy's namespace, `ipBlock` picks
  addresses in `cidr` but not in any `except`;
* a port matches its protocol (default TCP) and number, `port..endPort` inclusive, or a named container
  port of the destination pod with that name and protocol.

The model works on the scenario data directly (plain dicts), so nothing of the oracle is reused. Where
Kubernetes leaves ipBlock-versus-pod-IP to the implementation, this follows Calico's documented choice
(calico-semantics.md §1.5: an ipBlock matches by IP, pods included).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class PodFacts:
    key: str
    namespace: str
    labels: Mapping[str, str]
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    ports: tuple[Mapping[str, Any], ...]  # container ports as written in the scenario


def label_selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector: matchLabels AND every matchExpression; `{}` selects everything."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


class KubernetesReference:
    """Allowed / denied for pod-to-pod flows under Kubernetes NetworkPolicy alone."""

    def __init__(self, data: Mapping[str, Any], pod_ips: Mapping[str, Any]) -> None:
        """`data` is scenario data; `pod_ips` the address each pod got (the scenario loader assigns them)."""
        self.namespace_labels = {
            ns["name"]: {**(ns.get("labels") or {}), NAMESPACE_NAME_LABEL: ns["name"]}
            for ns in data["namespaces"]
        }
        self.pods = {
            f"{pod['namespace']}/{pod['name']}": PodFacts(
                key=f"{pod['namespace']}/{pod['name']}",
                namespace=pod["namespace"],
                labels=pod.get("labels") or {},
                ip=pod_ips[f"{pod['namespace']}/{pod['name']}"],
                ports=tuple(pod.get("ports") or ()),
            )
            for pod in data["pods"]
        }
        self.policies: Sequence[Mapping[str, Any]] = [
            r
            for r in data["resources"]
            if r["apiVersion"] == "networking.k8s.io/v1" and r["kind"] == "NetworkPolicy"
        ]

    def allowed(self, source: str, destination: str, port: int | None, protocol: str) -> bool:
        src, dst = self.pods[source], self.pods[destination]
        return self._direction(src, "Egress", "egress", "to", src, dst, port, protocol) and self._direction(
            dst, "Ingress", "ingress", "from", src, dst, port, protocol
        )

    def _direction(
        self,
        owner: PodFacts,
        policy_type: str,
        rules_key: str,
        peers_key: str,
        src: PodFacts,
        dst: PodFacts,
        port: int | None,
        protocol: str,
    ) -> bool:
        peer = dst if owner is src else src
        selecting = [
            policy
            for policy in self.policies
            if policy["metadata"]["namespace"] == owner.namespace
            and policy_type in policy["spec"]["policyTypes"]
            and label_selector_matches(policy["spec"]["podSelector"], owner.labels)
        ]
        if not selecting:
            return True  # not isolated for this direction
        return any(
            self._peers_match(rule.get(peers_key), policy["metadata"]["namespace"], peer)
            and self._ports_match(rule.get("ports"), dst, port, protocol)
            for policy in selecting
            for rule in policy["spec"].get(rules_key) or []
        )

    def _peers_match(
        self, peers: Sequence[Mapping[str, Any]] | None, policy_namespace: str, peer: PodFacts
    ) -> bool:
        if not peers:
            return True
        return any(self._peer_matches(p, policy_namespace, peer) for p in peers)

    def _peer_matches(self, peer_spec: Mapping[str, Any], policy_namespace: str, peer: PodFacts) -> bool:
        block = peer_spec.get("ipBlock")
        if block is not None:
            inside = peer.ip in ipaddress.ip_network(block["cidr"])
            return inside and not any(peer.ip in ipaddress.ip_network(e) for e in block.get("except") or [])
        namespace_selector = peer_spec.get("namespaceSelector")
        if namespace_selector is None:
            namespace_ok = peer.namespace == policy_namespace
        else:
            namespace_ok = label_selector_matches(namespace_selector, self.namespace_labels[peer.namespace])
        pod_selector = peer_spec.get("podSelector")
        return namespace_ok and (pod_selector is None or label_selector_matches(pod_selector, peer.labels))

    @staticmethod
    def _ports_match(
        ports: Sequence[Mapping[str, Any]] | None, dst: PodFacts, port: int | None, protocol: str
    ) -> bool:
        if not ports:
            return True
        for entry in ports:
            if entry.get("protocol", "TCP") != protocol:
                continue
            wanted = entry.get("port")
            if wanted is None:
                return True
            if isinstance(wanted, int):
                if port is not None and wanted <= port <= entry.get("endPort", wanted):
                    return True
            elif any(
                c.get("name") == wanted
                and c.get("protocol", "TCP") == protocol
                and c["containerPort"] == port
                for c in dst.ports
            ):
                return True
        return False
