"""The MTU suite's wire checks without a cluster: the jobs sent, how results are read, what they prove.

Results here are written by hand in the agent's documented result format (and checked against its
schema), never taken from a run of the code under test. The jobs themselves run for real on the netns
lab (`tests/netns/test_mtu.py`).
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from calico_conformance.probe.jobs import JOB_SCHEMA, RESULT_SCHEMA
from calico_conformance.report.outcomes import InfrastructureError
from calico_conformance.suite.mtu_checks import (
    BULK_DEADLINE_S,
    BULK_TRANSFER_BYTES,
    bulk_transfer_failure,
    mtu_jobs,
    mtu_observation,
)
from calico_conformance.targets.base import MtuObservation

IDENTITY = {"pod": "sentinel", "namespace": "customer-a", "node": "finland-worker2"}


def _result(job_id: str, verdict: str, **fields: Any) -> dict[str, Any]:
    result = {"id": job_id, "kind": "mtu", "verdict": verdict, "identity": None, "attempts": 1,
              "elapsed_ms": 3.0, "detail": fields.pop("detail", ""), **fields}  # fmt: skip
    jsonschema.validate(result, RESULT_SCHEMA)
    return result


INTERFACE = _result("interface", "allowed", interface="eth0", mtu=1450)
SWEEP = _result("sweep", "allowed", identity=IDENTITY, largest_packet=1450, largest_payload=1422,
                smallest_failed_packet=None, failure=None, black_hole=False, kernel_path_mtu=1450, steps=[])  # fmt: skip


def _bulk(verdict: str, received: int | None, detail: str = "") -> dict[str, Any]:
    return _result(
        "bulk", verdict, detail=detail, bytes=4194304, bytes_queued=4194304, bytes_received=received
    )


def _observe(bulk: dict[str, Any]) -> MtuObservation:
    results = {r["id"]: r for r in (INTERFACE, SWEEP, bulk)}
    return mtu_observation(results, network_mtu=1500, route="control on w1 -> sentinel on w2")


def test_the_batch_is_interface_sweep_and_a_bulk_transfer_to_the_destination() -> None:
    jobs = mtu_jobs("10.244.2.7", udp_port=9999, tcp_port=9999)
    for job in jobs:
        jsonschema.validate(job, JOB_SCHEMA)
    interface, sweep, bulk = jobs
    assert (interface["check"], interface["interface"]) == ("interface", "eth0")
    assert (sweep["check"], sweep["ip"], sweep["port"]) == ("sweep", "10.244.2.7", 9999)
    assert bulk == {"id": "bulk", "kind": "mtu", "check": "bulk", "ip": "10.244.2.7", "port": 9999,
                    "bytes": 4 * 1024 * 1024, "timeout_s": 30.0}  # fmt: skip
    assert (BULK_TRANSFER_BYTES, BULK_DEADLINE_S) == (4194304, 30.0)


def test_a_confirmed_transfer_passes() -> None:
    observed = _observe(_bulk("allowed", 4194304))
    assert (observed.pod_mtu, observed.network_mtu, observed.largest_df_payload) == (1450, 1500, 1422)
    assert (observed.bulk_bytes, observed.bulk_ok) == (4194304, True)
    assert bulk_transfer_failure(observed) is None


def test_a_stalled_transfer_fails_with_how_far_it_got() -> None:
    detail = "the server did not confirm 4194304 bytes within 30s (4194304 queued): full-size packets vanish"
    observed = _observe(_bulk("dropped", None, detail))
    assert observed.bulk_ok is False
    failure = bulk_transfer_failure(observed)
    assert failure is not None
    assert "stalled" in failure
    assert "4194304 of 4194304 bytes queued, none confirmed" in failure
    assert "full-size packets vanish" in failure


@pytest.mark.parametrize("verdict", ["error", "rejected"])
def test_a_transfer_that_could_not_run_is_an_error_never_a_pass(verdict: str) -> None:
    observed = _observe(_bulk(verdict, None, "connect: refused"))
    assert observed.bulk_ok is None
    with pytest.raises(InfrastructureError, match="could not run"):
        bulk_transfer_failure(observed)


def test_an_observation_without_a_bulk_transfer_is_an_error_never_a_pass() -> None:
    with pytest.raises(InfrastructureError, match="not measured"):
        bulk_transfer_failure(MtuObservation(pod_mtu=1450, network_mtu=1500, largest_df_payload=1422))


def test_a_failed_sweep_leaves_nothing_to_judge() -> None:
    sweep = _result("sweep", "dropped", detail="not even min_packet 576 crossed: timeout")
    with pytest.raises(RuntimeError, match="MTU sweep failed: dropped"):
        mtu_observation(
            {r["id"]: r for r in (INTERFACE, sweep, _bulk("allowed", 4194304))}, network_mtu=1500, route="r"
        )


def test_a_missing_result_is_named() -> None:
    with pytest.raises(RuntimeError, match="no result for bulk"):
        mtu_observation({"interface": INTERFACE, "sweep": SWEEP}, network_mtu=1500, route="r")
