"""What a target is: the `Target` protocol, its optional abilities, and the facts it reports.

The suites never know which target runs them (ARCHITECTURE.md, "Three targets"). They ask a `Target`
for a cluster's facts and for the observed reachability of a set of flows; `static` answers from the
oracle, `kind` and `kubeconfig` from probes on a live cluster. This module holds only the types, so that
the targets' implementations (`targets/static.py`, `cluster/`) and the suites depend on it and never on
the registry that builds them (`targets/registry.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import Any, Protocol, runtime_checkable

from calico_conformance.oracle.model import Scenario
from calico_conformance.reachability import ExpectedMatrix, Flow, ObservedMatrix


@dataclass(frozen=True)
class ClusterFacts:
    """What a target knows about one cluster: as registered (static, kind) or as found (live)."""

    name: str
    pod_subnet: IPv4Network | IPv6Network
    service_subnet: IPv4Network | IPv6Network
    calico_version: str
    installation: Mapping[str, Any]  # the operator.tigera.io/v1 Installation (whole object) applied/observed
    network_mtu: int | None  # the node network's MTU, if known
    source: str  # "register" (static/kind as configured) or "live"


class Target(Protocol):
    """One way of answering "who can reach whom" for the clusters of a run."""

    name: str
    has_dataplane: bool  # False for static: wire-level tests skip with that reason

    def prepare(self) -> None:
        """Create or connect the clusters, install Calico, deploy probes. Idempotent."""

    def facts(self, cluster: str) -> ClusterFacts: ...

    def observe(self, cluster: str, expected: ExpectedMatrix) -> ObservedMatrix:
        """Observe every flow of `expected` (workload keys `namespace/workload` or IP literals)."""

    def close(self) -> None: ...


@runtime_checkable
class ScenarioTarget(Protocol):
    """A target that can also run a small synthetic scenario (its own namespaces, pods and policies).

    The tier suite proves Calico's tier semantics with such scenarios: the static target evaluates them
    with the oracle, live targets apply them in scratch namespaces. A target without this method makes
    those cases `NOT_SUPPORTED`, recorded with the reason.
    """

    def observe_scenario(self, cluster: str, scenario: Scenario) -> ObservedMatrix: ...


@runtime_checkable
class FlowSupportTarget(Protocol):
    """A target that cannot probe some flows of a layout matrix on some clusters (live targets: outside
    addresses without an outside stand-in). The suites leave those flows out of the assertion and end the
    test NOT_SUPPORTED with the reason, never passed."""

    def unsupported_flows(self, cluster: str, flows: Iterable[Flow]) -> Mapping[Flow, str]: ...


@dataclass(frozen=True)
class MtuObservation:
    """What a live target measured of a cluster's MTU."""

    pod_mtu: int  # eth0 of a probe pod
    network_mtu: int  # the node's interface
    largest_df_payload: int  # the largest ICMP payload a don't-fragment ping carried across nodes
    detail: str = ""  # how it was measured, for the failure message
    bulk_bytes: int = 0  # the size of the TCP transfer sent across nodes
    bulk_ok: bool | None = None  # all confirmed in time; False: it stalled; None: not measured / could not run
    bulk_detail: str = "not measured"


@runtime_checkable
class MtuTarget(Protocol):
    """A target that can measure the MTU on the wire (live targets); the MTU suite uses it if present."""

    def observe_mtu(self, cluster: str) -> MtuObservation: ...
