"""Job builders produce what the agent's schema allows, and batch output is read back without guessing."""

from __future__ import annotations

import json

import jsonschema
import pytest

from calico_conformance.probe.executor import ExecutorError
from calico_conformance.probe.jobs import (
    JOB_SCHEMA,
    RESULT_SCHEMA,
    bulk_transfer_job,
    connect_job,
    dns_job,
    error_result,
    flow_job,
    icmp_job,
    interface_mtu_job,
    mtu_sweep_job,
    results_in_job_order,
)
from calico_conformance.reachability import Flow

BUILT = [
    connect_job("1", "10.244.1.10", 80, "TCP"),
    connect_job("2", "10.244.1.10", 53, "udp", timeout_s=0.5),
    connect_job("3", "10.244.1.10", 80, "sctp"),
    icmp_job("4", "10.244.1.10"),
    dns_job("5", "kubernetes.default.svc.cluster.local"),
    dns_job("6", "example.test", transport="tcp", server="10.96.0.10", port=5353),
    interface_mtu_job("7"),
    mtu_sweep_job("8", "10.244.2.10", 80, max_packet=1500),
    bulk_transfer_job("9", "10.244.2.10", 80, 1_000_000, deadline_s=5),
]


@pytest.mark.parametrize("job", BUILT, ids=lambda job: f"{job['kind']}-{job['id']}")
def test_every_builder_makes_a_valid_job(job: dict[str, object]) -> None:
    jsonschema.validate(job, JOB_SCHEMA)


@pytest.mark.parametrize(
    "job",
    [
        {"id": "x", "kind": "connect", "protocol": "tcp", "ip": "10.0.0.1"},
        {"id": "x", "kind": "connect", "protocol": "quic", "ip": "10.0.0.1", "port": 80},
        {"id": "x", "kind": "icmp", "ip": "10.0.0.1", "port": 80},
        {"id": "x", "kind": "mtu", "check": "bulk", "ip": "10.0.0.1", "port": 80},
        {"kind": "icmp", "ip": "10.0.0.1"},
    ],
)
def test_schema_refuses_malformed_jobs(job: dict[str, object]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(job, JOB_SCHEMA)


def test_connect_refuses_an_unknown_protocol() -> None:
    with pytest.raises(ValueError, match="tcp, udp, sctp"):
        connect_job("x", "10.0.0.1", 80, "QUIC")


def test_flow_job_picks_the_probe_for_the_protocol() -> None:
    assert flow_job("a", Flow("x/a", "y/b", None, "ICMP"), "10.244.1.11")["kind"] == "icmp"
    tcp = flow_job("b", Flow("x/a", "y/b", 81, "TCP"), "10.244.1.11", timeout_s=2)
    assert (tcp["protocol"], tcp["port"], tcp["ip"], tcp["timeout_s"]) == ("tcp", 81, "10.244.1.11", 2)
    with pytest.raises(ValueError, match="needs a port"):
        flow_job("c", Flow("x/a", "y/b", None, "UDP"), "10.244.1.11")


def test_error_result_matches_the_result_schema() -> None:
    jsonschema.validate(error_result(BUILT[0], "gone"), RESULT_SCHEMA)


def _line(job_id: str, verdict: str = "allowed") -> str:
    return json.dumps({"id": job_id, "kind": "connect", "verdict": verdict, "identity": None, "attempts": 1,
                       "elapsed_ms": 1.0, "detail": ""})  # fmt: skip


def test_results_come_back_in_job_order() -> None:
    results = results_in_job_order(
        BUILT[:3], [_line("3", "dropped"), "", _line("1"), _line("2", "rejected")], source="s"
    )
    assert [(r["id"], r["verdict"]) for r in results] == [
        ("1", "allowed"),
        ("2", "rejected"),
        ("3", "dropped"),
    ]


def test_a_job_without_a_line_is_an_error_never_a_deny() -> None:
    results = results_in_job_order(BUILT[:2], [_line("2")], source="pod-x", missing_detail="deadline passed")
    assert (results[0]["verdict"], results[0]["detail"]) == ("error", "pod-x: deadline passed")
    assert results[1]["verdict"] == "allowed"


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        (["not json"], "is not JSON"),
        (['{"verdict": "allowed"}'], "no string id"),
        ([_line("99")], "not sent: 99"),
        ([_line("1", "dropped"), _line("2"), _line("1", "allowed")], "line 3 reports job '1' a second time"),
    ],
)
def test_output_that_cannot_be_trusted_is_an_executor_error(lines: list[str], why: str) -> None:
    with pytest.raises(ExecutorError, match=why):
        results_in_job_order(BUILT[:2], lines, source="pod-x")
