"""The inputs of a suite run, read once: the cluster register, the tenancy layout and the policy set.

They are read when the first suite test is collected (its parameters come from the layout), never for
`pytest tests/`. Every problem is a `LocatedError` (`file:line: why`) that the plugin turns into a
`pytest.UsageError`, so a typo in a policy stops the run before any cluster is touched. Checks that tie
the three together live here too: every tested cluster is registered and has network facts in the layout,
and the oracle can judge the policy set for the layout's workloads. The run's layout is the file's,
widened by the ports and addresses the policy set names (`probe_surface.py`), so a door the policy set
opens where the layout's fixed probes never look is probed too.
"""

from __future__ import annotations

from dataclasses import dataclass

from calico_conformance.config import RunConfig
from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.loader import load_manifests, manifest_files
from calico_conformance.oracle.model import ResourceSet
from calico_conformance.tenancy.layout import TenancyLayout, load_layout
from calico_conformance.tenancy.register import ClusterSpec, cluster_by_name, load_register
from calico_conformance.tenancy.surface import policy_surface, widen_layout
from calico_conformance.tenancy.workloads import layout_namespaces, layout_pods, layout_service_accounts


@dataclass(frozen=True)
class RunInputs:
    register: tuple[ClusterSpec, ...]  # every registered cluster, not only the tested ones
    layout: TenancyLayout
    resources: ResourceSet
    clusters: tuple[str, ...]  # the clusters this run tests, in the order asked for

    def cluster(self, name: str) -> ClusterSpec:
        return cluster_by_name(self.register, name)


def load_run_inputs(run: RunConfig) -> RunInputs:
    """Read register, layout and policies for `run`; the first problem raises `LocatedError`."""
    register = load_register(run.kind_configs)
    registered = [cluster.name for cluster in register]
    for name in run.clusters:
        if name not in registered:
            raise LocatedError(
                Location(str(run.kind_configs)),
                f"cluster {name!r} is not in the register; choose from: {', '.join(registered)}",
            )
    if not run.layout.is_file():
        raise LocatedError(Location(str(run.layout)), "the tenancy layout (--layout) is not a file")
    layout = load_layout(run.layout)
    for name, network in layout.networks.items():
        if name not in registered:
            raise LocatedError(
                network.location, f"clusters.{name}: no such cluster in the register {run.kind_configs}"
            )
    for name in run.clusters:
        if name not in layout.networks:
            raise LocatedError(
                Location(str(run.layout)),
                f"clusters: cluster {name!r} has no network facts (networkMtu, calicoMtu) in the layout",
            )
    if not run.policies.exists():
        raise LocatedError(Location(str(run.policies)), "the policy set (--policies) does not exist")
    # A policy directory may hold the layout beside the set (`--policies policies` holds
    # policies/tenancy.yaml): it is the layout, not a manifest of the set.
    files = [file for file in manifest_files([run.policies]) if file.resolve() != run.layout.resolve()]
    resources = load_manifests(files, calico_version=run.calico_version)
    clusters = run.clusters or tuple(registered)
    # What loads may still be unjudgeable (a policy in a tier with no Tier object): building the oracle
    # once says so now, as a usage error, instead of erroring every test later.
    ranges = [network for spec in register for network in (spec.pod_subnet, spec.service_subnet)]
    widened = widen_layout(layout, policy_surface(resources, layout, ranges))
    Oracle(
        namespaces=layout_namespaces(widened),
        pods=layout_pods(widened, cluster_by_name(register, clusters[0]).pod_subnet),
        resources=resources,
        calico_version=run.calico_version,
        service_accounts=layout_service_accounts(widened),
    )
    return RunInputs(register, widened, resources, clusters)
