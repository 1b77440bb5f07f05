"""The runner's plan and rounds, driven by a scripted executor: which jobs go where, what runs in parallel,
what an executor failure becomes, and when a run stops. The netns tests run the same code on real packets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from calico_conformance.probe.executor import ExecutorError
from calico_conformance.probe.netns_executor import NetnsExecutor
from calico_conformance.probe.runner import ProbeEndpoint, RoundRecord, plan_round, run_matrix
from calico_conformance.reachability import Expectation, ExpectedMatrix, Flow, MismatchKind, ProbeVerdict

ENDPOINTS = {
    "x/a": ProbeEndpoint("ns-a", "10.244.1.10", "node1"),
    "x/b": ProbeEndpoint("ns-b", "10.244.1.11", "node1"),
    "y/c": ProbeEndpoint("ns-c", "10.244.2.10", "node2"),
    "ops/control": ProbeEndpoint("ns-control", "10.244.1.12", "node1"),
}
IDENTITY_BY_IP = {endpoint.ip: key for key, endpoint in ENDPOINTS.items()}
A_TO_C = Flow("x/a", "y/c", 80, "TCP")
B_TO_C = Flow("x/b", "y/c", 80, "TCP")
MATRIX = ExpectedMatrix({A_TO_C: Expectation(True), B_TO_C: Expectation(False)})

Decide = Callable[[str, dict[str, Any], int], str]  # (source handle, job, round) -> verdict


class ScriptedExecutor:
    """Answers each job with the verdict `decide` gives; an allowed answer names the pod behind the IP."""

    def __init__(self, decide: Decide, barrier: threading.Barrier | None = None) -> None:
        self.decide = decide
        self.barrier = barrier
        self.calls: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def run_batch(
        self, source: str, jobs: Sequence[dict[str, Any]], *, deadline_s: float
    ) -> list[dict[str, Any]]:
        with self.lock:
            number = 1 + sum(1 for called, _ in self.calls if called == source)
            self.calls.append((source, len(jobs)))
        if self.barrier is not None:
            self.barrier.wait()  # every source must be in flight at once, or this times out
        results = []
        for job in jobs:
            verdict = self.decide(source, job, number)
            key = IDENTITY_BY_IP.get(job["ip"], "")
            identity = (
                {"namespace": key.split("/")[0], "pod": key.split("/")[-1], "node": "n"} if key else None
            )
            results.append(
                {"id": job["id"], "verdict": verdict, "identity": identity if verdict == "allowed" else None}
            )
        return results


def _policy(denied: set[str]) -> Decide:
    return lambda source, job, number: "dropped" if source in denied else "allowed"


def _run(executor: ScriptedExecutor, expected: ExpectedMatrix = MATRIX, **options: Any) -> Any:
    options = {"timeout_s": 1.0, "round_interval_s": 0.0, "converge_timeout_s": 5.0, **options}
    return run_matrix(executor, ENDPOINTS, expected, **options)


def test_plan_groups_flows_by_source_with_unique_ids() -> None:
    plan = plan_round(ENDPOINTS, MATRIX, timeout_s=0.5)
    assert {source: [p.job["id"] for p in batch] for source, batch in plan.batches.items()} == {
        "ns-a": ["0"],
        "ns-b": ["0"],
    }
    [probe] = plan.batches["ns-a"]
    assert (probe.job["ip"], probe.job["protocol"], probe.job["timeout_s"]) == ("10.244.2.10", "tcp", 0.5)
    assert (probe.expected_server, probe.same_node) == ("y/c", False)


def test_service_nobody_may_reach_gets_a_control_job() -> None:
    only_denied = ExpectedMatrix({B_TO_C: Expectation(False), A_TO_C: Expectation(False)})
    plan = plan_round(ENDPOINTS, only_denied, timeout_s=0.5, control_source="ops/control")
    [control] = plan.batches["ns-control"]
    assert (control.flow, control.service, control.job["ip"]) == (None, ("y/c", 80, "TCP"), "10.244.2.10")
    # A service some flow is expected to reach gets one too (the stand-in API server's finding 8).
    [reached] = plan_round(ENDPOINTS, MATRIX, timeout_s=0.5, control_source="ops/control").batches["ns-control"]
    assert (reached.flow, reached.service) == (None, ("y/c", 80, "TCP"))


def test_an_expected_allow_that_drops_while_the_control_gets_through_is_a_proven_block() -> None:
    # The stand-in API server's finding 8: a cluster ignoring the only allow towards a service made that
    # flow `error` ("server not answering") and the run "nothing proven wrong"; the control's answer in
    # the same round makes the drop a cluster defect.
    ignored = ExpectedMatrix({A_TO_C: Expectation(True)})
    executor = ScriptedExecutor(lambda source, job, number: "dropped" if source == "ns-a" else "allowed")
    result = _run(executor, ignored, control_source="ops/control", converge_timeout_s=0.3)
    assert result.observed[A_TO_C].verdict is ProbeVerdict.DROPPED
    (mismatch,) = result.comparison().mismatches
    assert mismatch.kind is MismatchKind.BLOCKED
    without = _run(ScriptedExecutor(lambda source, job, number: "dropped"), ignored, control_source="ops/control",
                   converge_timeout_s=0.3)  # fmt: skip
    assert without.observed[A_TO_C].verdict is ProbeVerdict.ERROR  # nobody got through: nothing proven


@pytest.mark.parametrize(
    ("expected", "control", "why"),
    [
        (ExpectedMatrix({B_TO_C: Expectation(False)}), None, "give a control_source"),
        (ExpectedMatrix({B_TO_C: Expectation(False)}), "y/c", "other than y/c"),
        (ExpectedMatrix({Flow("q/z", "y/c", 80, "TCP"): Expectation(True)}), None, "no endpoint"),
        (
            ExpectedMatrix({Flow("x/a", "q/z", 80, "TCP"): Expectation(True)}),
            None,
            "neither a known workload",
        ),
        (ExpectedMatrix({}), None, "empty"),
    ],
)
def test_plans_that_could_never_prove_anything_are_refused(
    expected: ExpectedMatrix, control: str | None, why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        plan_round(ENDPOINTS, expected, timeout_s=0.5, control_source=control)


def test_external_destination_and_icmp_need_no_identity() -> None:
    external = Flow("x/a", "192.0.2.10", 53, "UDP")
    ping = Flow("x/a", "y/c", None, "ICMP")
    plan = plan_round(
        ENDPOINTS, ExpectedMatrix({external: Expectation(True), ping: Expectation(True)}), timeout_s=1
    )
    assert {p.flow: p.expected_server for p in plan.batches["ns-a"]} == {external: None, ping: None}


def test_matching_matrix_passes_after_three_rounds_of_one_batch_per_source() -> None:
    executor = ScriptedExecutor(_policy({"ns-b"}))
    result = _run(executor)
    assert result.ok
    assert len(result.rounds) == 3
    assert sorted(executor.calls) == sorted([("ns-a", 1), ("ns-b", 1)] * 3)
    assert result.observed[B_TO_C].verdict is ProbeVerdict.DROPPED
    assert result.observed[A_TO_C].answered_by == "y/c"


def test_every_source_runs_at_the_same_time() -> None:
    executor = ScriptedExecutor(_policy({"ns-b"}), barrier=threading.Barrier(2, timeout=10))
    assert _run(executor, required_matches=1).ok


def test_executor_failure_is_an_error_for_that_source_only() -> None:
    class Failing(ScriptedExecutor):
        def run_batch(
            self, source: str, jobs: Sequence[dict[str, Any]], *, deadline_s: float
        ) -> list[dict[str, Any]]:
            if source == "ns-b":
                raise ExecutorError("ns-b: the agent could not run")
            return super().run_batch(source, jobs, deadline_s=deadline_s)

    result = _run(Failing(_policy(set())), converge_timeout_s=0.2)
    assert not result.ok
    assert result.observed[B_TO_C].verdict is ProbeVerdict.ERROR
    assert "could not run" in result.observed[B_TO_C].detail
    assert result.observed[A_TO_C].verdict is ProbeVerdict.ALLOWED


def test_leak_after_a_match_stops_the_run() -> None:
    executor = ScriptedExecutor(
        lambda source, job, number: "allowed" if source == "ns-a" or number == 2 else "dropped"
    )
    seen: list[RoundRecord] = []
    result = _run(executor, on_round=seen.append)
    assert [record.number for record in seen] == [1, 2]
    assert result.failure is not None
    assert "retries never hide a leak" in result.failure
    assert [m.flow for m in result.comparison().leaks] == [B_TO_C]


def test_run_that_never_matches_ends_at_the_timeout_with_the_reason() -> None:
    result = _run(ScriptedExecutor(_policy(set())), converge_timeout_s=0.2)
    assert not result.ok
    assert result.failure is not None
    assert "did not converge within 0.2s" in result.failure
    assert "x/b -> y/c 80/TCP" in result.failure


def test_wrong_server_answering_is_an_error() -> None:
    def impostor(source: str, job: dict[str, Any], number: int) -> str:
        return "allowed"

    swapped = {**ENDPOINTS, "y/c": ProbeEndpoint("ns-c", ENDPOINTS["x/b"].ip, "node1")}  # x/b answers there
    result = run_matrix(ScriptedExecutor(impostor), swapped, ExpectedMatrix({A_TO_C: Expectation(True)}),
                        timeout_s=1, round_interval_s=0, converge_timeout_s=0.2)  # fmt: skip
    assert result.observed[A_TO_C].verdict is ProbeVerdict.ERROR
    assert "answered by x/b, not y/c" in result.observed[A_TO_C].detail


def test_a_netns_executor_that_cannot_start_ip_raises_executor_error_not_oserror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_executable = tmp_path / "ip"
    not_executable.write_text("#!/bin/sh\n")  # present but not executable: PermissionError, an OSError
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ExecutorError, match="cannot run ip"):
        NetnsExecutor().run_batch("nowhere", [{"id": "1", "kind": "icmp", "ip": "10.244.0.1"}], deadline_s=5)
