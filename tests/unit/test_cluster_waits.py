"""`wait_for` and `Timeouts`: the deadline, the error it raises and what it says, with a fake clock.

These test the waiting logic only (a condition function stands in for the API); what the conditions
see on a real cluster is judged by `cluster/readiness.py` (test_cluster_readiness.py) and observed only
by live runs.
"""

from __future__ import annotations

import dataclasses

import pytest

from calico_conformance.cluster.waits import (
    FakeClock,
    Progress,
    Timeouts,
    WaitHopeless,
    WaitTimeout,
    hopeless,
    timed,
    wait_for,
)


def test_returns_the_first_progress_that_is_done_without_sleeping_after_it() -> None:
    clock = FakeClock()
    answers = iter([Progress(False, "0/3"), Progress(False, "2/3"), Progress(True, "3/3")])

    result = wait_for(
        "pods", lambda: next(answers), timeout_s=60, interval_s=2, clock=clock, sleep=clock.sleep
    )

    assert result == Progress(True, "3/3")
    assert clock.sleeps == [2, 2]


def test_times_out_at_the_deadline_naming_what_how_long_and_what_was_seen_last() -> None:
    clock = FakeClock()
    looks = []

    def check() -> Progress:
        looks.append(clock.now)
        return Progress(False, f"Degraded=True (IPPool outside podSubnet) at {clock.now:g}")

    with pytest.raises(WaitTimeout) as raised:
        wait_for("TigeraStatus calico", check, timeout_s=10, interval_s=3, clock=clock, sleep=clock.sleep)

    error = raised.value
    assert isinstance(error, TimeoutError)
    assert error.what == "TigeraStatus calico"
    assert error.attempts == len(looks) == 5  # at 0, 3, 6, 9 and at the deadline itself (10)
    assert looks == [1000, 1003, 1006, 1009, 1010]
    assert error.last_seen == "Degraded=True (IPPool outside podSubnet) at 1010"
    assert str(error).startswith("timed out after 10s waiting for TigeraStatus calico (5 checks); last seen:")


def test_a_hopeless_look_ends_the_wait_at_once_as_a_timeout_that_says_so() -> None:
    clock = FakeClock()
    answers = iter(
        [Progress(False, "not up: a (Pending)"), hopeless("a: the agent exited 2 (CrashLoopBackOff)")]
    )

    with pytest.raises(WaitHopeless) as raised:
        wait_for(
            "probe pods", lambda: next(answers), timeout_s=300, interval_s=2, clock=clock, sleep=clock.sleep
        )

    error = raised.value
    assert isinstance(error, WaitTimeout)  # every caller's diagnostics path handles it
    assert (error.attempts, clock.sleeps) == (2, [2])  # not 150 looks over 300 s
    assert str(error) == (
        "gave up waiting for probe pods after 2.0s (2 checks): a: the agent exited 2 (CrashLoopBackOff)"
    )


def test_never_sleeps_past_the_deadline() -> None:
    clock = FakeClock()

    with pytest.raises(WaitTimeout):
        wait_for("x", lambda: Progress(False), timeout_s=5, interval_s=4, clock=clock, sleep=clock.sleep)

    assert clock.sleeps == [4, 1]
    assert clock.now == 1005


def test_listed_exceptions_mean_not_yet_and_become_the_last_thing_seen() -> None:
    clock = FakeClock()

    def check() -> Progress:
        raise ConnectionError("apiserver not answering")

    with pytest.raises(WaitTimeout) as raised:
        wait_for(
            "api",
            check,
            timeout_s=4,
            interval_s=2,
            retry_on=(ConnectionError,),
            clock=clock,
            sleep=clock.sleep,
        )

    assert raised.value.last_seen == "ConnectionError: apiserver not answering"


def test_an_exception_recovered_from_is_not_an_error() -> None:
    clock = FakeClock()
    answers: list[Exception | Progress] = [ConnectionError("blip"), Progress(True, "ok")]

    def check() -> Progress:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    result = wait_for("api", check, timeout_s=10, retry_on=(ConnectionError,), clock=clock, sleep=clock.sleep)

    assert result.detail == "ok"


def test_unlisted_exceptions_propagate_at_once() -> None:
    clock = FakeClock()
    calls = []

    def check() -> Progress:
        calls.append(1)
        raise KeyError("a bug, not a slow cluster")

    with pytest.raises(KeyError):
        wait_for("x", check, timeout_s=100, retry_on=(ConnectionError,), clock=clock, sleep=clock.sleep)

    assert calls == [1]
    assert clock.sleeps == []


def test_a_zero_timeout_still_looks_once() -> None:
    clock = FakeClock()

    assert wait_for("x", lambda: Progress(True), timeout_s=0, clock=clock, sleep=clock.sleep).done
    with pytest.raises(WaitTimeout) as raised:
        wait_for("x", lambda: Progress(False, "no"), timeout_s=0, clock=clock, sleep=clock.sleep)
    assert raised.value.attempts == 1


def test_every_timeout_is_positive_and_documented_in_one_dataclass() -> None:
    timeouts = Timeouts()
    for field in dataclasses.fields(timeouts):
        assert getattr(timeouts, field.name) > 0, field.name
        assert field.name.endswith("_s"), field.name


def test_scaled_keeps_the_poll_interval() -> None:
    slow = Timeouts().scaled(2)

    assert slow.tigera_status_s == 2 * Timeouts().tigera_status_s
    assert slow.poll_interval_s == Timeouts().poll_interval_s


def test_every_wait_logs_its_start_and_its_end_with_seconds() -> None:
    clock = FakeClock()
    lines: list[str] = []
    answers = iter([Progress(False, "not yet"), Progress(True, "there")])
    wait_for("the thing", lambda: next(answers), timeout_s=10, interval_s=2, clock=clock, sleep=clock.sleep,
             log=lines.append)  # fmt: skip
    assert lines == ["start: waiting for the thing", "done: waiting for the thing in 2.0s"]


def test_a_timed_step_that_fails_says_so_with_its_seconds() -> None:
    clock = FakeClock()
    lines: list[str] = []

    def create() -> None:
        with timed("finland: creating the kind cluster", log=lines.append, clock=clock):
            clock.sleep(41.5)
            raise RuntimeError("docker is gone")

    with pytest.raises(RuntimeError):
        create()
    assert lines == ["start: finland: creating the kind cluster",
                     "failed: finland: creating the kind cluster after 41.5s (RuntimeError)"]  # fmt: skip
