"""The MTU suite's checks on the wire: the agent jobs a live target runs, and what their results prove.

Why a module apart from the live target: which jobs are sent, how their results become an
`MtuObservation` and when a bulk transfer counts as passed are decisions, so they are written once here
and tested without a cluster (`tests/unit/test_mtu_checks.py`); `cluster/live.py` only runs the batch.

From a probe pod on one node to a probe pod on another, in one batch:

* `interface`: the pod's eth0 MTU;
* `sweep`: the largest don't-fragment UDP datagram that crosses (a binary search over packet sizes);
* `bulk`: BULK_TRANSFER_BYTES over TCP to a serve port, confirmed by the server within
  BULK_DEADLINE_S. Small probes and even one full-size datagram can cross a path that stalls a real
  transfer (a PMTU black hole that only bites once TCP fills its segments, offloads, a middlebox); a
  stalled transfer is the symptom users see, so it is asserted on its own.

A bulk transfer that could not run (`error`, `rejected`) proves nothing either way: the suite errors on
it rather than passing or failing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from calico_conformance.probe.executor import Job
from calico_conformance.probe.jobs import bulk_transfer_job, interface_mtu_job, mtu_sweep_job
from calico_conformance.report.outcomes import InfrastructureError
from calico_conformance.targets.base import MtuObservation

BULK_TRANSFER_BYTES = 4 * 1024 * 1024  # ~2,900 full-size segments at a 1450-byte MTU: no black hole hides
BULK_DEADLINE_S = 30.0  # seconds on a loaded kind node for what a healthy path moves in well under one
SWEEP_TIMEOUT_S = 1.0  # per datagram
IPV4_AND_UDP_HEADERS = 28  # a DF datagram of N IP bytes carries N - 28 payload bytes, like a ping
JOB_IDS = ("interface", "sweep", "bulk")


def mtu_jobs(destination_ip: str, *, udp_port: int, tcp_port: int) -> list[Job]:
    """The batch the source pod runs: its eth0 MTU, the DF sweep and the bulk transfer to the destination."""
    return [
        interface_mtu_job("interface"),
        mtu_sweep_job("sweep", destination_ip, udp_port, timeout_s=SWEEP_TIMEOUT_S),
        bulk_transfer_job("bulk", destination_ip, tcp_port, BULK_TRANSFER_BYTES, deadline_s=BULK_DEADLINE_S),
    ]


def mtu_observation(
    results: Mapping[str, Mapping[str, Any]], *, network_mtu: int | None, route: str
) -> MtuObservation:
    """The observation from the batch's results by job id. `route` says which pods on which nodes.

    Raises RuntimeError when the interface or the sweep could not be measured (nothing to judge); the
    bulk transfer's outcome is kept as it is, for the suite to judge (`bulk_transfer_failure`).
    """
    missing = [job for job in JOB_IDS if job not in results]
    if missing:
        raise RuntimeError(f"MTU check: no result for {', '.join(missing)}")
    interface, sweep, bulk = (results[job] for job in JOB_IDS)
    for result in (interface, sweep):
        if result["verdict"] != "allowed":
            raise RuntimeError(f"MTU {result['id']} failed: {result['verdict']} {result['detail']}")
    verdict = bulk["verdict"]
    ok = True if verdict == "allowed" else False if verdict == "dropped" else None
    received, size = bulk.get("bytes_received"), int(bulk.get("bytes", BULK_TRANSFER_BYTES))
    bulk_detail = (
        f"{verdict}: {bulk.get('bytes_queued', 0)} of {size} bytes queued, "
        f"{'none' if received is None else received} confirmed by the server"
        + (f"; {bulk['detail']}" if bulk.get("detail") else "")
    )
    pod_mtu = int(interface["mtu"])
    return MtuObservation(
        pod_mtu=pod_mtu,
        network_mtu=network_mtu or pod_mtu,
        largest_df_payload=int(sweep["largest_packet"]) - IPV4_AND_UDP_HEADERS,
        detail=f"{route}; black hole: {sweep.get('black_hole')}; failure: {sweep.get('failure')}",
        bulk_bytes=size,
        bulk_ok=ok,
        bulk_detail=bulk_detail,
    )


def bulk_transfer_failure(observed: MtuObservation) -> str | None:
    """None when the bulk transfer crossed nodes, else why it failed (a stall: the path's defect).

    Raises InfrastructureError when it was not measured or could not run: that proves nothing, so the
    test errors instead of passing or failing.
    """
    if observed.bulk_ok is None:
        raise InfrastructureError(f"the bulk TCP transfer across nodes could not run: {observed.bulk_detail}")
    if observed.bulk_ok:
        return None
    return (
        f"a bulk TCP transfer of {observed.bulk_bytes} bytes across nodes stalled ({observed.bulk_detail}): "
        f"small packets cross but full-size ones vanish, so real transfers hang"
    )
