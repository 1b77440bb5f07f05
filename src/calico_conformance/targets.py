"""Where the reachability matrix comes from: the `Target` protocol and the registry of targets.

The suites never know which target runs them (ARCHITECTURE.md, "Three targets"). They ask a `Target`
for a cluster's facts and for the observed reachability of a set of flows; `static` answers from the
oracle, `kind` and `kubeconfig` from probes on a live cluster. One table, `TARGETS`, names every target,
builds the `--target` help and choices, and says what each needs on the machine. Live targets are
imported lazily so that choosing `static` never needs a Kubernetes client or a Docker engine.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pytest

from calico_conformance.oracle.model import ResourceSet, Scenario
from calico_conformance.reachability import ExpectedMatrix, Flow, ObservedMatrix

if TYPE_CHECKING:
    from calico_conformance.config import RunConfig
    from calico_conformance.layout import TenancyLayout


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


TargetFactory = Callable[["RunConfig", "TenancyLayout", ResourceSet], Target]


@dataclass(frozen=True)
class TargetSpec:
    """A registered target: its name, `--target` help, how to build it and what it needs."""

    name: str
    help: str
    factory: TargetFactory
    needs: tuple[str, ...] = ()  # executables that must be on PATH
    module: str | None = None  # the module the factory imports, checked before any cluster is touched

    def unavailable_because(self) -> str | None:
        """Why this target cannot run on this machine, or None when it can."""
        if self.module is not None and importlib.util.find_spec(self.module) is None:
            return f"--target={self.name} is not built into this installation ({self.module} is missing)"
        missing = [binary for binary in self.needs if shutil.which(binary) is None]
        if missing:
            return f"--target={self.name} needs {', '.join(self.needs)} on PATH (missing: {', '.join(missing)})"
        return None


def _kind_target(run: RunConfig, layout: TenancyLayout, resources: ResourceSet) -> Target:
    from calico_conformance.cluster.targets import KindTarget

    target: Target = KindTarget(run, layout, resources)
    return target


def _kubeconfig_target(run: RunConfig, layout: TenancyLayout, resources: ResourceSet) -> Target:
    from calico_conformance.cluster.targets import KubeconfigTarget

    target: Target = KubeconfigTarget(run, layout, resources)
    return target


def _static_target(run: RunConfig, layout: TenancyLayout, resources: ResourceSet) -> Target:
    from calico_conformance.static_target import StaticTarget

    return StaticTarget(run, layout, resources)


TARGETS: Mapping[str, TargetSpec] = {
    spec.name: spec
    for spec in (
        TargetSpec(
            "kind",
            "create kind clusters from the register, install Calico, probe them",
            _kind_target,
            needs=("docker", "kind", "kubectl"),
            module="calico_conformance.cluster.targets",
        ),
        TargetSpec(
            "kubeconfig",
            "probe existing clusters by kubeconfig context (--context CLUSTER=CONTEXT), non-disruptively",
            _kubeconfig_target,
            module="calico_conformance.cluster.targets",
        ),
        TargetSpec(
            "static",
            "no cluster: the policy oracle computes the matrix from --policies and the layout",
            _static_target,
            module="calico_conformance.static_target",
        ),
    )
}

STATIC_HINT = "to check a policy set without a cluster use --target=static"


def target_help() -> str:
    return "; ".join(f"{spec.name}: {spec.help}" for spec in TARGETS.values())


def require_target(name: str) -> TargetSpec:
    """The spec of a usable target, or `pytest.UsageError` saying why not and what to use instead."""
    try:
        spec = TARGETS[name]
    except KeyError:
        raise pytest.UsageError(f"unknown --target {name!r}; choose one of: {', '.join(TARGETS)}") from None
    problem = spec.unavailable_because()
    if problem is not None:
        hint = "" if name == "static" else f"; {STATIC_HINT}"
        raise pytest.UsageError(problem + hint)
    return spec


def build_target(run: RunConfig, layout: TenancyLayout, resources: ResourceSet) -> Target:
    return require_target(run.target).factory(run, layout, resources)
