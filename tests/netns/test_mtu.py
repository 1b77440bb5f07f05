"""MTU on the wire: the pod's interface, the exact DF boundary through VXLAN, and a PMTU black hole.

The expected boundary is the lab's topology, not a measurement: a 1500-byte underlay under VXLAN (50
bytes of overhead) carries IP packets of at most 1450 bytes between nodes. The `mtu/big-*` pods have a
1500-byte MTU, as a pod does when the CNI's MTU ignores the encapsulation, so the boundary they meet is
the tunnel's, not their own interface's.
"""

from __future__ import annotations

import pytest

from calico_conformance.probe.jobs import bulk_transfer_job, connect_job, interface_mtu_job, mtu_sweep_job
from calico_conformance.probe.netns_executor import NetnsExecutor
from calico_conformance.probe.netns_lab import UNDERLAY_MTU, VXLAN_MTU, VXLAN_OVERHEAD, NetnsLab
from tests.netns.lab_layout import PROBE_TIMEOUT_S, SERVE_TCP, SERVE_UDP

pytestmark = pytest.mark.netns

IP_UDP_HEADERS = 28
BULK_BYTES = 4 * 1024 * 1024  # thousands of full-size segments: far more than any socket buffer absorbs
BULK_DEADLINE_S = 3.0


def _run(
    lab: NetnsLab, executor: NetnsExecutor, source: str, *jobs: dict[str, object]
) -> list[dict[str, object]]:
    return executor.run_batch(lab.pods[source].netns, list(jobs), deadline_s=30)


@pytest.mark.parametrize(("pod", "mtu"), [("tenant-a/web-1", VXLAN_MTU), ("mtu/big-1", UNDERLAY_MTU)])
def test_interface_mtu_is_the_pods(lab: NetnsLab, executor: NetnsExecutor, pod: str, mtu: int) -> None:
    [result] = _run(lab, executor, pod, interface_mtu_job("mtu", "eth0"))
    assert (result["verdict"], result["mtu"]) == ("allowed", mtu), result


def test_interface_mtu_of_a_missing_interface_is_an_error(lab: NetnsLab, executor: NetnsExecutor) -> None:
    [result] = _run(lab, executor, "tenant-a/web-1", interface_mtu_job("mtu", "eth9"))
    assert result["verdict"] == "error", result


@pytest.mark.usefixtures("fresh_path_mtu")
def test_sweep_finds_the_vxlan_boundary_across_nodes(lab: NetnsLab, executor: NetnsExecutor) -> None:
    big_2 = lab.pods["mtu/big-2"]
    job = mtu_sweep_job("sweep", big_2.ip, SERVE_UDP[0], timeout_s=PROBE_TIMEOUT_S)
    [result] = _run(lab, executor, "mtu/big-1", job)
    boundary = UNDERLAY_MTU - VXLAN_OVERHEAD
    assert result["verdict"] == "allowed", result
    assert (result["largest_packet"], result["smallest_failed_packet"]) == (boundary, boundary + 1), result
    assert result["largest_payload"] == boundary - IP_UDP_HEADERS
    assert result["failure"] in ("frag-needed", "emsgsize")  # the node said so: no black hole
    assert result["black_hole"] is False
    assert result["identity"] == big_2.identity


@pytest.mark.usefixtures("fresh_path_mtu")
def test_bulk_transfer_crosses_when_path_mtu_discovery_works(lab: NetnsLab, executor: NetnsExecutor) -> None:
    job = bulk_transfer_job(
        "bulk", lab.pods["mtu/big-2"].ip, SERVE_TCP[0], BULK_BYTES, deadline_s=BULK_DEADLINE_S
    )
    [result] = _run(lab, executor, "mtu/big-1", job)
    assert (result["verdict"], result["bytes_received"]) == ("allowed", BULK_BYTES), result


def test_black_hole_is_caught_by_bulk_transfer_while_small_probes_pass(
    lab: NetnsLab, executor: NetnsExecutor, pmtu_black_hole: str
) -> None:
    big_2 = lab.pods["mtu/big-2"]
    small = [
        connect_job(protocol, big_2.ip, 80, protocol, timeout_s=PROBE_TIMEOUT_S)
        for protocol in ("tcp", "udp")
    ]
    bulk = bulk_transfer_job("bulk", big_2.ip, SERVE_TCP[1], BULK_BYTES, deadline_s=BULK_DEADLINE_S)
    results = {str(result["id"]): result for result in _run(lab, executor, "mtu/big-1", *small, bulk)}
    assert [results[protocol]["verdict"] for protocol in ("tcp", "udp")] == ["allowed", "allowed"]
    assert results["bulk"]["verdict"] == "dropped", results["bulk"]
    assert results["bulk"]["identity"] == big_2.identity  # the handshake and identity line did cross
    assert results["bulk"]["bytes_received"] is None


def test_sweep_through_a_black_hole_says_so(
    lab: NetnsLab, executor: NetnsExecutor, pmtu_black_hole: str
) -> None:
    # Two tries of 0.5 s a size: on a loaded 2-core runner a single 0.2 s try let a late echo of a size
    # that does cross read as lost, so the sweep reported a smaller boundary than the real one.
    job = mtu_sweep_job("sweep", lab.pods["mtu/big-2"].ip, SERVE_UDP[0], timeout_s=0.5, tries=2)
    [result] = _run(lab, executor, "mtu/big-1", job)
    assert result["largest_packet"] == UNDERLAY_MTU - VXLAN_OVERHEAD, result
    assert (result["failure"], result["black_hole"]) == ("timeout", True)
    assert result["kernel_path_mtu"] == UNDERLAY_MTU  # nobody told the sender: that is the black hole
