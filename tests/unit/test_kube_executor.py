"""`KubeExecutor`: the batch command, output collection, the deadline, errors, bounded concurrency.

What is real here: the exact command line a pod runs (`sh -c 'head -c N | exec python3 ... probe'`) is
run on this machine with the real agent and a stdin that is never closed — the situation of the v4 exec
protocol — and must still finish with one result per job.

What is not: `FakeExecSession` is a fake exec stream that exists ONLY to test this module's own logic
(reading output until the stream closes, cutting a batch at its deadline, turning failures into
`ExecutorError`). It proves nothing about the Kubernetes exec websocket, which only a live run exercises.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from calico_conformance.cluster.waits import FakeClock, Progress, wait_for
from calico_conformance.probe.executor import ExecutorError, Job
from calico_conformance.probe.jobs import connect_job
from calico_conformance.probe.kube_executor import KubeExecutor, encode_batch, probe_command

AGENT = Path(__file__).resolve().parents[2] / "src" / "calico_conformance" / "probe" / "agent.py"


def result_line(job_id: str, verdict: str = "dropped") -> str:
    return (
        json.dumps(
            {
                "id": job_id,
                "kind": "connect",
                "verdict": verdict,
                "identity": None,
                "attempts": 1,
                "elapsed_ms": 1.0,
                "detail": "",
            }
        )
        + "\n"
    )


class FakeExecSession:
    """A fake exec stream for testing KubeExecutor's own logic only (see module docstring)."""

    def __init__(
        self,
        chunks: Sequence[str],
        *,
        close_after: int | None,
        returncode: int = 0,
        stderr: str = "",
        clock: FakeClock | None = None,
    ) -> None:
        self.chunks = list(chunks)
        self.close_after = close_after  # updates until the remote side closes; None: never
        self.code = returncode
        self.stderr = stderr
        self.clock = clock
        self.updates = 0
        self.stdin = ""
        self.closed_by_us = False
        self._stdout = ""

    def is_open(self) -> bool:
        return not self.closed_by_us and (self.close_after is None or self.updates < self.close_after)

    def update(self, timeout: float = 0) -> None:
        self.updates += 1
        if self.chunks:
            self._stdout += self.chunks.pop(0)
        if self.clock is not None:
            self.clock.sleep(timeout)  # the socket wait passes time

    def read_stdout(self, timeout: float | None = None) -> str:
        out, self._stdout = self._stdout, ""
        return out

    def read_stderr(self, timeout: float | None = None) -> str:
        out, self.stderr = self.stderr, ""
        return out

    def write_stdin(self, data: str) -> None:
        self.stdin += data

    def close(self) -> None:
        self.closed_by_us = True

    @property
    def returncode(self) -> int | None:
        return None if self.is_open() and not self.closed_by_us else self.code


def jobs(count: int) -> list[Job]:
    return [connect_job(str(index), "10.244.1.2", 8080, "tcp") for index in range(count)]


def executor_with(
    session: FakeExecSession, calls: list[tuple[str, ...]] | None = None, **kwargs: object
) -> KubeExecutor:
    def open_exec(namespace: str, pod: str, container: str, argv: Sequence[str]) -> FakeExecSession:
        if calls is not None:
            calls.append((namespace, pod, container, *argv))
        return session

    return KubeExecutor(open_exec, **kwargs)  # type: ignore[arg-type]


def test_the_command_limits_stdin_to_the_batch_bytes() -> None:
    batch = jobs(2)
    assert probe_command(len(encode_batch(batch))) == [
        "sh",
        "-c",
        f"head -c {len(encode_batch(batch))} | exec python3 -I -S /opt/calico-conformance/agent.py probe",
    ]


def test_the_real_agent_finishes_although_stdin_is_never_closed() -> None:
    batch = [connect_job("closed", "127.0.0.1", 9, "tcp", timeout_s=1.0), {"id": "bad", "kind": "teleport"}]
    payload = encode_batch(batch)
    argv = probe_command(len(payload), agent_path=str(AGENT))

    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(payload)
    process.stdin.flush()  # and never closed: like stdin over an exec stream that cannot send EOF
    try:
        output = process.stdout.read()
        assert process.wait(timeout=30) == 0
    finally:
        process.stdin.close()
        process.kill()

    results = {line["id"]: line for line in map(json.loads, output.splitlines())}
    assert results["closed"]["verdict"] == "rejected"  # nothing listens on port 9 here: RST
    assert results["bad"]["verdict"] == "error"


def test_results_come_back_in_job_order_and_stdin_is_the_exact_batch() -> None:
    batch = jobs(3)
    session = FakeExecSession(
        [result_line("2"), result_line("0", "allowed"), result_line("1")], close_after=3
    )
    calls: list[tuple[str, ...]] = []

    results = executor_with(session, calls).run_batch("royal-bank/ledger", batch, deadline_s=30)

    assert [r["id"] for r in results] == ["0", "1", "2"]
    assert results[0]["verdict"] == "allowed"
    assert session.stdin == encode_batch(batch)
    assert calls[0][:3] == ("royal-bank", "ledger", "agent")
    assert calls[0][3:] == tuple(probe_command(len(session.stdin)))
    assert session.closed_by_us


def test_a_batch_cut_at_its_deadline_keeps_what_was_reported_and_errors_the_rest() -> None:
    clock = FakeClock()
    session = FakeExecSession([result_line("0")], close_after=None, clock=clock)

    results = executor_with(session, clock=clock).run_batch("x/a", jobs(3), deadline_s=5)

    assert [r["verdict"] for r in results] == ["dropped", "error", "error"]
    assert "did not finish within the batch deadline of 5s" in results[1]["detail"]
    assert clock.now == 1005  # it waited exactly until the deadline
    assert session.closed_by_us


def test_a_line_cut_off_by_the_deadline_is_left_out_not_fatal_to_the_batch() -> None:
    clock = FakeClock()
    cut = result_line("1")[:25]  # the agent was writing job 1's line when the deadline passed
    session = FakeExecSession([result_line("0") + cut], close_after=None, clock=clock)

    results = executor_with(session, clock=clock).run_batch("x/a", jobs(2), deadline_s=5)

    assert [r["verdict"] for r in results] == ["dropped", "error"]
    assert "did not finish within the batch deadline" in results[1]["detail"]


def test_a_nonzero_exit_is_an_executor_error_with_stderr() -> None:
    session = FakeExecSession([], close_after=1, returncode=127, stderr="sh: python3: not found\n")

    with pytest.raises(
        ExecutorError, match=r"x/a: the agent could not run \(exit 127\): sh: python3: not found"
    ):
        executor_with(session).run_batch("x/a", jobs(1), deadline_s=10)


def test_missing_result_lines_are_errors_not_denies() -> None:
    session = FakeExecSession([result_line("0")], close_after=2)

    results = executor_with(session).run_batch("x/a", jobs(2), deadline_s=10)

    assert results[1]["verdict"] == "error"
    assert "the agent wrote no result for this job" in results[1]["detail"]


def test_output_that_is_not_the_agents_is_an_executor_error() -> None:
    session = FakeExecSession(['Defaulted container "agent"\n'], close_after=2)

    with pytest.raises(ExecutorError, match="is not JSON"):
        executor_with(session).run_batch("x/a", jobs(1), deadline_s=10)


def test_an_exec_that_cannot_start_is_an_executor_error() -> None:
    def refuse(namespace: str, pod: str, container: str, argv: Sequence[str]) -> FakeExecSession:
        raise ConnectionRefusedError('pods "a" is forbidden')

    with pytest.raises(
        ExecutorError, match=r"x/a: exec could not start: ConnectionRefusedError: pods \"a\" is forbidden"
    ):
        KubeExecutor(refuse).run_batch("x/a", jobs(1), deadline_s=10)  # type: ignore[arg-type]


def test_an_exit_status_that_cannot_be_read_is_an_executor_error() -> None:
    class NoStatus(FakeExecSession):
        @property
        def returncode(self) -> int | None:
            raise KeyError("details")

    with pytest.raises(ExecutorError, match="exec ended without an exit status"):
        executor_with(NoStatus([], close_after=1)).run_batch("x/a", jobs(1), deadline_s=10)


def test_a_source_that_is_not_namespace_slash_pod_is_refused() -> None:
    with pytest.raises(ExecutorError, match="not a namespace/pod source handle"):
        executor_with(FakeExecSession([], close_after=1)).run_batch("ledger", jobs(1), deadline_s=10)


def test_no_more_than_the_bound_of_execs_run_at_once() -> None:
    bound = 2
    running = 0
    peak = 0
    lock = threading.Lock()
    release = threading.Event()

    class Slow(FakeExecSession):
        def update(self, timeout: float = 0) -> None:
            release.wait(5)
            super().update(timeout)

    def open_exec(namespace: str, pod: str, container: str, argv: Sequence[str]) -> FakeExecSession:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        return Slow([result_line("0")], close_after=1)

    executor = KubeExecutor(open_exec, max_concurrent_execs=bound)  # type: ignore[arg-type]
    original_close = FakeExecSession.close

    def counting_close(self: FakeExecSession) -> None:
        nonlocal running
        with lock:
            running -= 1
        original_close(self)

    Slow.close = counting_close  # type: ignore[method-assign]
    threads = [
        threading.Thread(target=executor.run_batch, args=(f"x/p{i}", jobs(1)), kwargs={"deadline_s": 10})
        for i in range(6)
    ]
    for thread in threads:
        thread.start()
    try:
        wait_for(
            "execs to fill every slot",
            lambda: Progress(running == bound, str(running)),
            timeout_s=10,
            interval_s=0.01,
        )
    finally:
        release.set()
    for thread in threads:
        thread.join()

    assert peak == bound  # six batches waited for two slots: never a third exec at once
