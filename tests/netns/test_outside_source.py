"""Traffic from a node to a pod on another node: which source address the pod sees (issue 9, item 5).

The lab's nodes are joined by VXLAN like Calico's (`vxlan0` with an address from the pod network, a route
to the other node's pod block through it), so a node's unbound socket towards a pod on the other node
leaves with the node's tunnel address — inside the pod network, as Calico's vxlan.calico address is taken
from the pod IP pool (projectcalico/calico v3.31.7 felix/dataplane/linux/vxlan_mgr.go). Bound to the node's
own underlay address (the agent's `bind`), the pod sees that address, and says so (`peer`).
"""

from __future__ import annotations

import pytest

from calico_conformance.probe.jobs import connect_job
from calico_conformance.probe.netns_executor import NetnsExecutor
from calico_conformance.probe.netns_lab import NetnsLab

pytestmark = pytest.mark.netns

DESTINATION = "tenant-a/web-2"  # on node2


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_a_node_reaches_a_pod_elsewhere_from_its_tunnel_address_unless_it_binds_its_own(
    lab: NetnsLab, executor: NetnsExecutor, protocol: str
) -> None:
    node1, node2 = lab.nodes["node1"], lab.nodes["node2"]
    pod = lab.pods[DESTINATION]
    assert pod.node == node2.name
    jobs = [
        connect_job("unbound", pod.ip, 80, protocol, timeout_s=2.0),
        connect_job("bound", pod.ip, 80, protocol, timeout_s=2.0, bind=node1.underlay_ip),
    ]
    results = {result["id"]: result for result in executor.run_batch(node1.netns, jobs, deadline_s=20)}
    assert results["unbound"]["verdict"] == "allowed"
    assert results["unbound"]["peer"] == node1.vxlan_ip  # the tunnel's address: "outside" it is not
    assert results["bound"]["verdict"] == "allowed", results["bound"]
    assert results["bound"]["peer"] == node1.underlay_ip
