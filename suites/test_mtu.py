"""MTU: the Installation's pod MTU leaves room for the encapsulation on the node network.

VXLAN wraps every pod packet in 50 more bytes (runbook "BGP mode versus VXLAN mode"; seed 001 "MTU
Configuration": VXLAN MTU = network MTU - 50). A pod MTU that ignores it works for small packets and
hangs large transfers (fragmentation, dropped DF packets), which no reachability probe notices. Whether
the MTU is set explicitly (`calicoNetwork.mtu`) or auto-detected, it must fit. Live targets also measure
it on the wire (the pod MTU, a full-size DF datagram and a bulk TCP transfer across nodes,
`mtu_checks.py`); the static target says so when it skips that part.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from calico_conformance.report.outcomes import not_supported
from calico_conformance.suite.mtu_checks import bulk_transfer_failure
from calico_conformance.targets.base import ClusterFacts, MtuTarget, Target
from calico_conformance.targets.static import NO_DATAPLANE

pytestmark = [pytest.mark.conformance, pytest.mark.mtu]

# IPv4 encapsulation overhead in bytes (calico-install.md §4, felix int_dataplane.go). CrossSubnet modes
# count as enabled: felix lowers the pod MTU for them even where it never encapsulates.
ENCAPSULATION_OVERHEAD: Mapping[str, int] = {
    "VXLAN": 50,
    "VXLANCrossSubnet": 50,
    "IPIP": 20,
    "IPIPCrossSubnet": 20,
    "None": 0,
}
DEFAULT_ENCAPSULATION = "IPIP"  # the operator's default for IPv4 pools that do not say (calico-install.md §3)
IPV4_AND_ICMP_HEADERS = 28  # a DF ping of MTU - 28 payload bytes fills the MTU exactly


def _encapsulation_overhead(installation: Mapping[str, Any]) -> tuple[int, list[str]]:
    network = installation.get("spec", {}).get("calicoNetwork", {})
    modes = [pool.get("encapsulation", DEFAULT_ENCAPSULATION) for pool in network.get("ipPools") or []]
    unknown = [mode for mode in modes if mode not in ENCAPSULATION_OVERHEAD]
    assert not unknown, f"unknown encapsulation(s) {unknown}; known: {', '.join(ENCAPSULATION_OVERHEAD)}"
    return max((ENCAPSULATION_OVERHEAD[mode] for mode in modes), default=0), modes


def test_installation_mtu_fits_encapsulation(cluster: str, cluster_facts: ClusterFacts) -> None:
    """The pod MTU (explicit or auto-detected) plus the encapsulation overhead fits the network MTU."""
    overhead, modes = _encapsulation_overhead(cluster_facts.installation)
    network_mtu = cluster_facts.network_mtu
    assert network_mtu is not None, (
        f"{cluster}: the node network's MTU is unknown; give clusters.{cluster}.networkMtu in the layout"
    )
    explicit = cluster_facts.installation.get("spec", {}).get("calicoNetwork", {}).get("mtu")
    pod_mtu = explicit if explicit is not None else network_mtu - overhead
    how = "set in the Installation" if explicit is not None else "auto-detected by felix (network MTU - overhead)"
    assert pod_mtu + overhead <= network_mtu, (
        f"{cluster}: pod MTU {pod_mtu} ({how}) + {overhead} bytes of {'/'.join(modes) or 'no'} encapsulation "
        f"= {pod_mtu + overhead} > network MTU {network_mtu}: large packets fragment or vanish; "
        f"set calicoNetwork.mtu to at most {network_mtu - overhead}"
    )


def test_pod_mtu_on_the_wire(cluster: str, cluster_facts: ClusterFacts, target: Target) -> None:
    """Pods really get that MTU, and a full-size DF packet crosses nodes (live targets only)."""
    if not target.has_dataplane:
        pytest.skip(f"{NO_DATAPLANE}; live targets measure the pod MTU and send a DF ping across nodes")
    if not isinstance(target, MtuTarget):
        not_supported(f"--target={target.name} does not measure the MTU on the wire yet")
    observed = target.observe_mtu(cluster)
    overhead, _ = _encapsulation_overhead(cluster_facts.installation)
    network_mtu = cluster_facts.network_mtu or observed.network_mtu
    assert observed.pod_mtu + overhead <= network_mtu, (
        f"{cluster}: pods have MTU {observed.pod_mtu}, + {overhead} > network MTU {network_mtu} ({observed.detail})"
    )
    assert observed.largest_df_payload >= observed.pod_mtu - IPV4_AND_ICMP_HEADERS, (
        f"{cluster}: a DF ping of {observed.pod_mtu - IPV4_AND_ICMP_HEADERS} bytes did not cross nodes; "
        f"the largest that did was {observed.largest_df_payload} ({observed.detail})"
    )


def test_bulk_transfer_across_nodes(cluster: str, target: Target) -> None:
    """A multi-megabyte TCP transfer crosses nodes in time: full-size segments do not vanish (live only)."""
    if not target.has_dataplane:
        pytest.skip(f"{NO_DATAPLANE}; live targets send a bulk TCP transfer across nodes")
    if not isinstance(target, MtuTarget):
        not_supported(f"--target={target.name} does not measure the MTU on the wire yet")
    observed = target.observe_mtu(cluster)
    failure = bulk_transfer_failure(observed)  # an unmeasured transfer errors here, never passes
    assert failure is None, f"{cluster}: {failure} ({observed.detail})"
