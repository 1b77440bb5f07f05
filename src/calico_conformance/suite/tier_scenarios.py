"""Small synthetic scenarios that prove Calico's tier semantics on a target, with hand-written answers.

The tier suite checks the policy set's tiers keep their intended order, but order alone proves nothing
unless the target applies tiers the way the layout's authors assume. Each scenario here isolates one rule
of the evaluation pipeline (calico-semantics.md §1.2) with three pods: a `client` that a rule names, a
`control` that no rule names, and a `server` both probe on 8080/TCP. The expected outcome is stated by
hand from Calico's documentation, never computed by the oracle, so the scenario tests the oracle on the
static target and Calico itself on live targets (which apply it in scratch namespaces). Every scenario
has one allowed flow, which doubles as the positive control for its deny.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from calico_conformance.reachability import Expectation, ExpectedMatrix, Flow

TIER_NAMESPACE_PREFIX = "conformance-tiers"
CLIENT_NAMESPACE = f"{TIER_NAMESPACE_PREFIX}-client"
CONTROL_NAMESPACE = f"{TIER_NAMESPACE_PREFIX}-control"
SERVER_NAMESPACE = f"{TIER_NAMESPACE_PREFIX}-server"
FIRST_TIER = "conformance-first"  # order 100: applied before SECOND_TIER
SECOND_TIER = "conformance-second"  # order 200
SERVICE_PORT = 8080

CLIENT = f"{CLIENT_NAMESPACE}/client"
CONTROL = f"{CONTROL_NAMESPACE}/control"
SERVER = f"{SERVER_NAMESPACE}/server"
CLIENT_FLOW = Flow(CLIENT, SERVER, SERVICE_PORT, "TCP")
CONTROL_FLOW = Flow(CONTROL, SERVER, SERVICE_PORT, "TCP")


@dataclass(frozen=True)
class TierScenario:
    """A scenario (ARCHITECTURE.md format) and what Calico must do with its two probes."""

    name: str  # the test id
    description: str
    policies: tuple[Mapping[str, Any], ...]  # manifests, in addition to the two tiers
    client_allowed: bool
    control_allowed: bool
    reason: str  # why, in Calico's terms

    def expected(self) -> ExpectedMatrix:
        return ExpectedMatrix(
            {
                CLIENT_FLOW: Expectation(self.client_allowed, self.reason),
                CONTROL_FLOW: Expectation(self.control_allowed, self.reason),
            }
        )

    def scenario_data(self, calico_version: str) -> dict[str, Any]:
        """The whole scenario as `calico-conformance simulate` reads it."""
        namespaces = [CLIENT_NAMESPACE, CONTROL_NAMESPACE, SERVER_NAMESPACE]
        pods = [("client", CLIENT_NAMESPACE), ("control", CONTROL_NAMESPACE), ("server", SERVER_NAMESPACE)]
        return {
            "calicoVersion": calico_version,
            "description": f"{self.name}: {self.description}",
            "namespaces": [{"name": name} for name in namespaces],
            "pods": [
                {
                    "name": name,
                    "namespace": namespace,
                    "labels": {"app": name},
                    "ports": [{"name": "http", "containerPort": SERVICE_PORT, "protocol": "TCP"}],
                }
                for name, namespace in pods
            ],
            "resources": [_tier(FIRST_TIER, 100), _tier(SECOND_TIER, 200), *map(dict, self.policies)],
            "probes": [
                {"from": flow.source, "to": flow.destination, "port": flow.port, "protocol": flow.protocol}
                for flow in (CLIENT_FLOW, CONTROL_FLOW)
            ],
        }


def _tier(name: str, order: int) -> dict[str, Any]:
    return {"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": name}, "spec": {"order": order}}


def _from(namespace: str) -> dict[str, Any]:
    return {"namespaceSelector": f'kubernetes.io/metadata.name == "{namespace}"'}


def _server_policy(tier: str, name: str, ingress: list[dict[str, Any]]) -> dict[str, Any]:
    """A Calico NetworkPolicy in `tier` selecting the server, ingress only."""
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"{tier}.{name}", "namespace": SERVER_NAMESPACE},
        "spec": {"tier": tier, "order": 100, "selector": "app == 'server'", "types": ["Ingress"], "ingress": ingress},
    }


def _kubernetes_allow(*namespaces: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-listed-namespaces", "namespace": SERVER_NAMESPACE},
        "spec": {
            "podSelector": {"matchLabels": {"app": "server"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}]}
                for ns in namespaces
            ],
        },
    }


TIER_SCENARIOS: tuple[TierScenario, ...] = (
    TierScenario(
        name="higher-tier-deny-beats-lower-tier-allow",
        description="the first tier denies the client; the second allows everyone",
        policies=(
            _server_policy(FIRST_TIER, "deny-client", [{"action": "Deny", "source": _from(CLIENT_NAMESPACE)}, {"action": "Pass"}]),
            _server_policy(SECOND_TIER, "allow-all", [{"action": "Allow"}]),
        ),
        client_allowed=False,
        control_allowed=True,
        reason="a Deny in an earlier tier is final: later tiers never see the packet",
    ),
    TierScenario(
        name="pass-delegates-to-the-next-tier",
        description="the first tier passes everything; the second allows only the client",
        policies=(
            _server_policy(FIRST_TIER, "pass-all", [{"action": "Pass"}]),
            _server_policy(SECOND_TIER, "allow-client", [{"action": "Allow", "source": _from(CLIENT_NAMESPACE)}]),
        ),
        client_allowed=True,
        control_allowed=False,
        reason="Pass hands the decision to the next tier, which allows the client and denies the rest",
    ),
    TierScenario(
        name="selecting-tier-without-a-match-denies",
        description="the first tier selects the server and allows only the control; the second allows everyone",
        policies=(
            _server_policy(FIRST_TIER, "allow-control", [{"action": "Allow", "source": _from(CONTROL_NAMESPACE)}]),
            _server_policy(SECOND_TIER, "allow-all", [{"action": "Allow"}]),
        ),
        client_allowed=False,
        control_allowed=True,
        reason="a tier that selects an endpoint and matches no rule denies at its end (implicit end-of-tier deny)",
    ),
    TierScenario(
        name="kubernetes-policies-land-in-the-default-tier",
        description="the first tier denies the control and passes the rest; a Kubernetes policy allows both",
        policies=(
            _server_policy(FIRST_TIER, "deny-control", [{"action": "Deny", "source": _from(CONTROL_NAMESPACE)}, {"action": "Pass"}]),
            _kubernetes_allow(CLIENT_NAMESPACE, CONTROL_NAMESPACE),
        ),
        client_allowed=True,
        control_allowed=False,
        reason="a Kubernetes NetworkPolicy sits in tier default, after every user tier: it allows only what they pass",
    ),
)


@dataclass(frozen=True)
class TierCase:
    """One tier scenario on one cluster: the test id reads `finland-pass-delegates-to-the-next-tier`."""

    cluster: str
    scenario: TierScenario

    @property
    def id(self) -> str:
        return f"{self.cluster}-{self.scenario.name}"


def tier_cases(clusters: Sequence[str]) -> list[TierCase]:
    return [TierCase(cluster, scenario) for cluster in clusters for scenario in TIER_SCENARIOS]
