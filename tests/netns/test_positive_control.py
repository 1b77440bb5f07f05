"""A deny is believed only when the same server answered someone in the same round.

The peers count any silence as "blocked", so a deny test passes against a server that is gone. Here a
dead server (its pod off the network) turns every silent flow into `error`, "server not answering", and
the comparison can never pass; the same matrix against a live server proves the deny.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from calico_conformance.probe.netns_executor import NetnsExecutor
from calico_conformance.probe.netns_lab import NetnsLab
from calico_conformance.probe.runner import RunResult, run_matrix
from calico_conformance.reachability import Expectation, ExpectedMatrix, Flow, MismatchKind, ProbeVerdict
from tests.netns.lab_layout import CONTROL, PROBE_TIMEOUT_S, ROUND_INTERVAL_S, Policy

pytestmark = pytest.mark.netns


def _run(lab: NetnsLab, executor: NetnsExecutor, expected: ExpectedMatrix, **options: object) -> RunResult:
    return run_matrix(
        executor,
        lab.endpoints(),
        expected,
        timeout_s=PROBE_TIMEOUT_S,
        converge_timeout_s=2.0,
        round_interval_s=ROUND_INTERVAL_S,
        **options,  # type: ignore[arg-type]
    )


def _allowed_and_denied(server: str) -> tuple[Flow, Flow, ExpectedMatrix]:
    allowed = Flow("tenant-a/web-1", server, 80, "TCP")
    denied = Flow("tenant-b/api-1", server, 80, "TCP")
    return allowed, denied, ExpectedMatrix({allowed: Expectation(True), denied: Expectation(False)})


def test_deny_is_believed_when_the_server_answers_an_allowed_client(
    lab: NetnsLab, executor: NetnsExecutor, policy: Policy
) -> None:
    allowed, denied, expected = _allowed_and_denied("tenant-a/web-2")
    policy([f"ip saddr {lab.pods[denied.source].ip} ip daddr {lab.pods[denied.destination].ip} drop"])
    result = _run(lab, executor, expected)
    assert result.ok, result.comparison().render()
    assert result.observed[denied].verdict is ProbeVerdict.DROPPED
    assert result.observed[allowed].answered_by == "tenant-a/web-2"


def test_dead_server_never_counts_as_a_deny(
    lab: NetnsLab, executor: NetnsExecutor, take_offline: Callable[[str], None]
) -> None:
    _, denied, expected = _allowed_and_denied("tenant-a/web-2")
    take_offline("tenant-a/web-2")  # no policy at all: silence comes from the dead server alone
    result = _run(lab, executor, expected)
    assert not result.ok
    comparison = result.comparison()
    assert {m.flow: m.kind for m in comparison.mismatches} == dict.fromkeys(expected, MismatchKind.UNPROVEN)
    assert "server not answering" in result.observed[denied].detail


def test_control_source_proves_a_server_nobody_else_may_reach(
    lab: NetnsLab, executor: NetnsExecutor, policy: Policy
) -> None:
    web_2 = lab.pods["tenant-a/web-2"]
    denied = [Flow(source, web_2.key, 81, "UDP") for source in ("tenant-a/web-1", "tenant-b/api-1")]
    expected = ExpectedMatrix(dict.fromkeys(denied, Expectation(False)))
    sources = " , ".join(lab.pods[flow.source].ip for flow in denied)
    policy([f"ip saddr {{ {sources} }} ip daddr {web_2.ip} udp dport 81 drop"])
    result = _run(lab, executor, expected, control_source=CONTROL)
    assert result.ok, result.comparison().render()
    assert [result.rounds[-1].controls[(web_2.key, 81, "UDP")].answered_by] == [web_2.key]


def test_control_source_cannot_vouch_for_a_dead_server(
    lab: NetnsLab, executor: NetnsExecutor, take_offline: Callable[[str], None]
) -> None:
    denied = Flow("tenant-b/api-1", "tenant-a/web-2", 80, "TCP")
    take_offline("tenant-a/web-2")
    result = _run(lab, executor, ExpectedMatrix({denied: Expectation(False)}), control_source=CONTROL)
    assert not result.ok
    assert result.observed[denied].verdict is ProbeVerdict.ERROR
    assert result.rounds[-1].controls[("tenant-a/web-2", 80, "TCP")].verdict is ProbeVerdict.DROPPED
