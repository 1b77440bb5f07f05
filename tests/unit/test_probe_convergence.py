"""The rules that decide what a round proves and when a run passes, without any dataplane.

Observations are written out by hand per round; the netns tests prove the same rules on real packets.
"""

from __future__ import annotations

import pytest

from calico_conformance.probe.convergence import Convergence, Status, apply_positive_control, observe
from calico_conformance.reachability import Expectation, ExpectedMatrix, Flow, Observation, ProbeVerdict

ALLOWED, DROPPED, REJECTED, ERROR = (ProbeVerdict.ALLOWED, ProbeVerdict.DROPPED, ProbeVerdict.REJECTED,
                                     ProbeVerdict.ERROR)  # fmt: skip
TO_B = Flow("x/a", "y/b", 80, "TCP")  # expected allowed
DENIED_TO_B = Flow("z/c", "y/b", 80, "TCP")  # expected denied, same server
OTHER_PORT = Flow("x/a", "y/b", 81, "TCP")
EXPECTED = ExpectedMatrix({TO_B: Expectation(True), DENIED_TO_B: Expectation(False)})
B = {"namespace": "y", "pod": "b", "node": "n2"}


def _seen(allowed: ProbeVerdict, denied: ProbeVerdict) -> dict[Flow, Observation]:
    return {TO_B: Observation(allowed), DENIED_TO_B: Observation(denied)}


# --- observe -----------------------------------------------------------------------------------------


def test_answer_from_the_destination_is_allowed() -> None:
    seen = observe({"verdict": "allowed", "identity": B, "detail": ""}, "y/b", same_node=False)
    assert (seen.verdict, seen.answered_by, seen.same_node) == (ALLOWED, "y/b", False)


@pytest.mark.parametrize(
    ("identity", "who"),
    [({"namespace": "y", "pod": "impostor", "node": "n2"}, "y/impostor"), (None, "no identity")],
)
def test_answer_from_another_server_is_an_error(identity: object, who: str) -> None:
    seen = observe({"verdict": "allowed", "identity": identity, "detail": ""}, "y/b")
    assert seen.verdict is ERROR
    assert who in seen.detail
    assert "not y/b" in seen.detail


def test_icmp_needs_no_identity() -> None:
    assert observe({"verdict": "allowed", "identity": None}, None).verdict is ALLOWED


def test_unknown_verdict_is_an_error() -> None:
    seen = observe({"verdict": "probably", "detail": "?"}, "y/b")
    assert seen.verdict is ERROR
    assert "'probably'" in seen.detail


# --- positive control ----------------------------------------------------------------------------------


@pytest.mark.parametrize("denied", [DROPPED, REJECTED])
def test_deny_without_any_answer_from_its_server_is_an_error(denied: ProbeVerdict) -> None:
    checked = apply_positive_control({DENIED_TO_B: Observation(denied), OTHER_PORT: Observation(ALLOWED)}, {})
    assert checked[DENIED_TO_B].verdict is ERROR
    assert "server not answering" in checked[DENIED_TO_B].detail
    assert checked[OTHER_PORT].verdict is ALLOWED  # 81/TCP answering proves nothing about 80/TCP


def test_deny_is_kept_when_an_allowed_client_reached_the_same_server() -> None:
    checked = apply_positive_control(_seen(ALLOWED, DROPPED), {})
    assert checked[DENIED_TO_B].verdict is DROPPED


def test_control_job_answer_vouches_for_the_server() -> None:
    service = ("y/b", 80, "TCP")
    assert (
        apply_positive_control({DENIED_TO_B: Observation(DROPPED)}, {service: Observation(ALLOWED)})[
            DENIED_TO_B
        ].verdict
        is DROPPED
    )
    assert (
        apply_positive_control({DENIED_TO_B: Observation(DROPPED)}, {service: Observation(DROPPED)})[
            DENIED_TO_B
        ].verdict
        is ERROR
    )


def test_two_silent_flows_do_not_vouch_for_each_other() -> None:
    checked = apply_positive_control(_seen(DROPPED, DROPPED), {})
    assert [checked[TO_B].verdict, checked[DENIED_TO_B].verdict] == [ERROR, ERROR]


# --- convergence ---------------------------------------------------------------------------------------


def _run(*rounds: dict[Flow, Observation], required: int = 3) -> tuple[Convergence, list[Status]]:
    tracker = Convergence(EXPECTED, required)
    return tracker, [tracker.record(float(number), seen) for number, seen in enumerate(rounds)]


def test_three_matching_rounds_converge() -> None:
    tracker, statuses = _run(*[_seen(ALLOWED, DROPPED)] * 3)
    assert statuses == [Status.PENDING, Status.PENDING, Status.CONVERGED]
    assert tracker.converged
    assert {flow: (seen.attempts, seen.converge_s) for flow, seen in tracker.observed().items()} == {
        TO_B: (1, 0.0),
        DENIED_TO_B: (1, 0.0),
    }


def test_a_late_deny_converges_and_records_when() -> None:
    tracker, statuses = _run(_seen(ALLOWED, ALLOWED), _seen(ALLOWED, DROPPED), *[_seen(ALLOWED, DROPPED)] * 2)
    assert statuses[-1] is Status.CONVERGED
    assert (tracker.observed()[DENIED_TO_B].attempts, tracker.observed()[DENIED_TO_B].converge_s) == (2, 1.0)


def test_allow_after_the_first_deny_fails_at_once() -> None:
    tracker, statuses = _run(_seen(ALLOWED, DROPPED), _seen(ALLOWED, ALLOWED))
    assert statuses == [Status.PENDING, Status.FAILED]
    assert tracker.failure is not None
    assert "z/c -> y/b 80/TCP" in tracker.failure
    assert tracker.observed()[DENIED_TO_B].verdict is ALLOWED  # the leak stays visible to compare()


def test_allow_before_any_deny_is_only_not_yet_converged() -> None:
    _, statuses = _run(_seen(ALLOWED, ALLOWED), _seen(ALLOWED, ALLOWED))
    assert statuses == [Status.PENDING, Status.PENDING]


def test_an_allow_that_flaps_restarts_the_count() -> None:
    tracker, statuses = _run(_seen(ALLOWED, DROPPED), _seen(ALLOWED, DROPPED), _seen(DROPPED, DROPPED),
                             _seen(ALLOWED, DROPPED))  # fmt: skip
    assert statuses == [Status.PENDING] * 4
    observed = tracker.observed()
    assert observed[TO_B].verdict is ERROR  # matched last, but only once in a row
    assert "not steady" in observed[TO_B].detail
    assert "allowed, allowed, dropped, allowed" in observed[TO_B].detail
    assert observed[DENIED_TO_B].verdict is DROPPED  # four in a row: steady on its own


def test_errors_never_match() -> None:
    tracker, statuses = _run(*[_seen(ALLOWED, ERROR)] * 4)
    assert statuses == [Status.PENDING] * 4
    assert tracker.unsteady() == [DENIED_TO_B]


@pytest.mark.parametrize(
    ("deny", "status"), [(frozenset({DROPPED}), Status.PENDING), (frozenset({REJECTED}), Status.CONVERGED)]
)
def test_reject_is_a_deny_only_where_the_cluster_rejects(
    deny: frozenset[ProbeVerdict], status: Status
) -> None:
    tracker = Convergence(EXPECTED, 1, deny)
    assert tracker.record(0.0, _seen(ALLOWED, REJECTED)) is status


def test_a_missing_observation_is_an_error() -> None:
    tracker = Convergence(EXPECTED, 1)
    assert tracker.record(0.0, {TO_B: Observation(ALLOWED)}) is Status.PENDING
    assert tracker.observed()[DENIED_TO_B].verdict is ERROR


def test_required_matches_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Convergence(EXPECTED, 0)
