"""The `static` target: no cluster, the policy oracle answers for the dataplane.

Observed reachability is what the oracle derives from `--policies` for the layout's workloads placed in
each registered cluster (`workloads.py`), and each observation carries the oracle's explanation (the
deciding tier, policy and rule), which the failing assertion prints. Cluster facts are the register's,
with the Installation the `kind` target would apply. This is the gate a policy pull request runs: it
proves what the policies imply, not what a cluster does, so tests that need a dataplane skip with that
reason (`has_dataplane = False`).
"""

from __future__ import annotations

from calico_conformance.config import RunConfig
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.model import DEFAULT_CALICO_VERSION, ResourceSet, Scenario
from calico_conformance.reachability import ExpectedMatrix, Flow, Observation, ObservedMatrix, ProbeVerdict
from calico_conformance.targets.base import ClusterFacts
from calico_conformance.tenancy.layout import TenancyLayout
from calico_conformance.tenancy.register import ClusterSpec, cluster_by_name, load_register
from calico_conformance.tenancy.workloads import layout_namespaces, layout_pods, layout_service_accounts

NO_DATAPLANE = "--target=static has no dataplane: the oracle proves what the policies imply, not the wire"


def oracle_observation(oracle: Oracle, flow: Flow) -> Observation:
    """The oracle's verdict as an observation: allowed, or dropped (Calico's default deny action)."""
    verdict = oracle.verdict_for(flow)
    return Observation(ProbeVerdict.ALLOWED if verdict.allowed else ProbeVerdict.DROPPED, why=str(verdict))


def cluster_oracle(
    layout: TenancyLayout, cluster: ClusterSpec, resources: ResourceSet, calico_version: str
) -> Oracle:
    """The oracle over `resources` for the layout's workloads placed in `cluster`'s pod subnet."""
    return Oracle(
        namespaces=layout_namespaces(layout),
        pods=layout_pods(layout, cluster.pod_subnet),
        resources=resources,
        calico_version=calico_version,
        service_accounts=layout_service_accounts(layout),
    )


class StaticTarget:
    """A `Target` whose observations are the oracle's verdicts."""

    name = "static"
    has_dataplane = False

    def __init__(self, run: RunConfig, layout: TenancyLayout, resources: ResourceSet) -> None:
        self._run = run
        self._layout = layout
        self._resources = resources
        self._register: tuple[ClusterSpec, ...] = ()
        self._oracles: dict[str, Oracle] = {}

    def prepare(self) -> None:
        if not self._register:
            self._register = load_register(self._run.kind_configs)

    def oracle(self, cluster: str) -> Oracle:
        if cluster not in self._oracles:
            self.prepare()
            spec = cluster_by_name(self._register, cluster)
            self._oracles[cluster] = cluster_oracle(self._layout, spec, self._resources, self._run.calico_version)
        return self._oracles[cluster]

    def facts(self, cluster: str) -> ClusterFacts:
        from calico_conformance.cluster.install import render_installation
        from calico_conformance.cluster.releases import release_for

        self.prepare()
        spec = cluster_by_name(self._register, cluster)
        network = self._layout.networks.get(cluster)
        try:
            release_for(self._run.calico_version)
            version = self._run.calico_version
        except ValueError:
            # The Installation does not depend on the version; render it with the default release
            # rather than refuse a static run of an unpinned version (only live targets install it).
            version = DEFAULT_CALICO_VERSION
        installation = render_installation(
            spec, mtu=network.calico_mtu if network else None, calico_version=version
        )
        return ClusterFacts(
            name=cluster,
            pod_subnet=spec.pod_subnet,
            service_subnet=spec.service_subnet,
            calico_version=self._run.calico_version,
            installation=installation,
            network_mtu=network.network_mtu if network else None,
            source="register",
        )

    def observe(self, cluster: str, expected: ExpectedMatrix) -> ObservedMatrix:
        oracle = self.oracle(cluster)
        return ObservedMatrix({flow: oracle_observation(oracle, flow) for flow in expected})

    def observe_scenario(self, cluster: str, scenario: Scenario) -> ObservedMatrix:
        """A synthetic scenario (the tier suite's) evaluated by the oracle; `cluster` does not matter."""
        oracle = Oracle.from_scenario(scenario)
        flows = (Flow(p.source, p.destination, p.port, p.protocol) for p in scenario.probes)
        return ObservedMatrix({flow: oracle_observation(oracle, flow) for flow in flows})

    def close(self) -> None:
        self._oracles.clear()
