"""What a round of probes proves, and when a matrix has converged: the rules that keep retries honest.

Why a pure module: these rules decide whether isolation passes, so they are kept apart from processes
and threads and tested exhaustively on their own.

- `observe` turns an agent result into an `Observation`. An answer from the wrong server (identity
  mismatch) is `error`, never a plain allow: something else owns that address.
- `apply_positive_control`: a `dropped`/`rejected` is believed only if the same server (destination,
  port, protocol) answered some client in the same round; otherwise it is `error`, "server not answering".
- `apply_source_control`: a `dropped`/`rejected` is believed only if its SOURCE provably sent in the same
  round (one of its flows, or its source-control probe to an endpoint the run's own policy lets every pod
  reach, was answered). An interface felix has not programmed yet drops everything (felix
  `rules/dispatch.go`), so a source that cannot send at all would otherwise pass every deny: `error`.
- `Convergence` applies the rule of issue 3 across rounds: rounds repeat while observed differs from
  expected; the run passes after `required_matches` consecutive rounds in which every flow matched; a flow
  expected denied that is seen allowed in any round after its first matching one fails the run at once,
  so a rule that is removed or flaps mid-run is caught instead of being retried away.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from calico_conformance.reachability import (
    DEFAULT_DENY_VERDICTS,
    ExpectedMatrix,
    Flow,
    Observation,
    ObservedMatrix,
    ProbeVerdict,
    observed_allowed,
)

Service = tuple[str, int | None, str]  # (destination, port, protocol): one listening server
HISTORY_SHOWN = 6  # verdicts quoted in a "not steady" detail


def service_of(flow: Flow) -> Service:
    return (flow.destination, flow.port, flow.protocol)


def describe_service(service: Service) -> str:
    destination, port, protocol = service
    return f"{destination} {protocol if port is None else f'{port}/{protocol}'}"


def identity_key(identity: Any) -> str | None:
    """`namespace/pod` of an agent identity object, or None when there is none."""
    if isinstance(identity, Mapping) and identity.get("namespace") and identity.get("pod"):
        return f"{identity['namespace']}/{identity['pod']}"
    return None


def observe(
    result: Mapping[str, Any],
    expected_server: str | None,
    same_node: bool | None = None,
    expected_peer: str | None = None,
) -> Observation:
    """The Observation for one agent result. `expected_server` is the workload key that must answer (None
    for ICMP, which the kernel answers, and for destinations outside the cluster). `expected_peer` is the
    address the server must have seen the probe come from (a sender bound to an address outside the pod
    network): an answer that saw another source proves nothing about traffic from that address."""
    detail = str(result.get("detail") or "")
    answered_by = identity_key(result.get("identity"))
    try:
        verdict = ProbeVerdict(result.get("verdict"))
    except ValueError:
        return Observation(
            ProbeVerdict.ERROR, f"the agent returned verdict {result.get('verdict')!r}: {detail}"
        )
    if verdict is ProbeVerdict.ALLOWED and expected_server is not None and answered_by != expected_server:
        who = answered_by or "a server that sent no identity"
        detail = f"answered by {who}, not {expected_server}: another server owns this address"
        return Observation(ProbeVerdict.ERROR, detail, answered_by, same_node=same_node)
    if verdict is ProbeVerdict.ALLOWED and expected_peer is not None and result.get("peer") != expected_peer:
        seen = result.get("peer") or "an address it did not report"
        detail = f"the server saw the probe come from {seen}, not {expected_peer}: it proves nothing about {expected_peer}"
        return Observation(ProbeVerdict.ERROR, detail, answered_by, same_node=same_node)
    return Observation(verdict, detail, answered_by, same_node=same_node)


def apply_positive_control(
    observations: Mapping[Flow, Observation], controls: Mapping[Service, Observation]
) -> dict[Flow, Observation]:
    """Turn every unproven deny into `error`: a dropped/rejected flow whose server answered nobody in this
    round (no allowed flow and no control job reached it) says nothing about policy."""
    answering = {
        service_of(flow) for flow, seen in observations.items() if seen.verdict is ProbeVerdict.ALLOWED
    }
    answering |= {service for service, seen in controls.items() if seen.verdict is ProbeVerdict.ALLOWED}
    checked: dict[Flow, Observation] = {}
    for flow, seen in observations.items():
        denied = seen.verdict in (ProbeVerdict.DROPPED, ProbeVerdict.REJECTED)
        if denied and service_of(flow) not in answering:
            detail = (
                f"server not answering: no client reached {describe_service(service_of(flow))} in this round, "
                f"so `{seen.verdict}` proves no deny"
            )
            seen = replace(seen, verdict=ProbeVerdict.ERROR, detail=detail)
        checked[flow] = seen
    return checked


def apply_source_control(
    observations: Mapping[Flow, Observation], sent: Mapping[str, Observation]
) -> dict[Flow, Observation]:
    """Turn every deny whose source is not proven able to send into `error`.

    `sent` maps each source (workload key) to its source-control observation of this round; a source is
    proven when that was `allowed`, or when any of its flows was `allowed` in the same round.
    """
    proven = {flow.source for flow, seen in observations.items() if seen.verdict is ProbeVerdict.ALLOWED}
    proven |= {source for source, seen in sent.items() if seen.verdict is ProbeVerdict.ALLOWED}
    checked: dict[Flow, Observation] = {}
    for flow, seen in observations.items():
        denied = seen.verdict in (ProbeVerdict.DROPPED, ProbeVerdict.REJECTED)
        if denied and flow.source not in proven:
            control = sent.get(flow.source)
            how = (
                f"its source-control probe was `{control.verdict}`" + (f" ({control.detail})" if control.detail else "")
                if control is not None
                else "it has no source-control probe and none of its flows was answered"
            )
            detail = f"source not proven able to send in this round: {how}, so `{seen.verdict}` proves no deny"
            seen = replace(seen, verdict=ProbeVerdict.ERROR, detail=detail)
        checked[flow] = seen
    return checked


class Status(enum.Enum):
    PENDING = "pending"  # observed still differs, or not enough consecutive matching rounds yet
    CONVERGED = "converged"
    FAILED = "failed"  # a leak after a match: no retry may hide it


@dataclass
class FlowHistory:
    seen: list[Observation] = field(default_factory=list)
    matched: list[bool] = field(default_factory=list)
    first_match: int | None = None  # round number

    def streak(self) -> int:
        """Rounds at the end of the history in which the flow matched, in a row."""
        count = 0
        for matched in reversed(self.matched):
            if not matched:
                break
            count += 1
        return count


@dataclass
class Convergence:
    """The per-flow record of a run and the verdict of each round on it."""

    expected: ExpectedMatrix
    required_matches: int = 3
    deny_verdicts: frozenset[ProbeVerdict] = DEFAULT_DENY_VERDICTS
    histories: dict[Flow, FlowHistory] = field(default_factory=dict)
    round_starts: list[float] = field(default_factory=list)
    matching_rounds: int = 0  # consecutive rounds in which every flow matched
    failure: str | None = None

    def __post_init__(self) -> None:
        if self.required_matches < 1:
            raise ValueError(f"required_matches must be at least 1, got {self.required_matches}")
        self.histories = {flow: FlowHistory() for flow in self.expected}

    def matches(self, flow: Flow, seen: Observation) -> bool:
        allowed = observed_allowed(seen, self.deny_verdicts)
        return allowed is not None and allowed == self.expected[flow].allowed

    def record(self, started_s: float, observations: Mapping[Flow, Observation]) -> Status:
        """Add one round (every expected flow observed once; `started_s` since the run began)."""
        self.round_starts.append(started_s)
        number = len(self.round_starts)
        leaks: list[str] = []
        for flow, history in self.histories.items():
            seen = observations.get(flow) or Observation(ProbeVerdict.ERROR, "no probe result in this round")
            matched = self.matches(flow, seen)
            leaked = not self.expected[flow].allowed and seen.verdict is ProbeVerdict.ALLOWED
            if leaked and history.first_match is not None:
                leaks.append(f"{flow} (denied in round {history.first_match}, allowed in round {number})")
            if matched and history.first_match is None:
                history.first_match = number
            history.seen.append(seen)
            history.matched.append(matched)
        self.matching_rounds = (
            self.matching_rounds + 1 if all(h.matched[-1] for h in self.histories.values()) else 0
        )
        if leaks:
            self.failure = (
                "expected denied but allowed after having matched; retries never hide a leak: "
                + "; ".join(leaks)
            )
            return Status.FAILED
        return Status.CONVERGED if self.matching_rounds >= self.required_matches else Status.PENDING

    @property
    def converged(self) -> bool:
        return self.failure is None and self.matching_rounds >= self.required_matches

    def unsteady(self) -> list[Flow]:
        return [flow for flow, h in self.histories.items() if h.streak() < self.required_matches]

    def observed(self) -> ObservedMatrix:
        """The last round's observations, each with its attempts (the round its final matching streak
        began; every round if it never became steady) and converge_s (that round's start). When the run
        stopped short of convergence, a flow whose last observation matched without a full streak of
        `required_matches` is `error` ("not steady"), so no comparison can pass it."""
        cells: dict[Flow, Observation] = {}
        rounds = len(self.round_starts)
        for flow, history in self.histories.items():
            last = history.seen[-1]
            streak = history.streak()
            steady = streak >= self.required_matches
            begun = rounds - streak + 1
            cell = replace(
                last,
                attempts=begun if steady else rounds,
                converge_s=round(self.round_starts[begun - 1], 3) if steady else None,
            )
            if not steady and history.matched[-1] and self.failure is None:
                shown = ", ".join(str(seen.verdict) for seen in history.seen[-HISTORY_SHOWN:])
                detail = f"not steady: matched {streak} round(s) in a row, {self.required_matches} needed (seen: {shown})"
                cell = replace(cell, verdict=ProbeVerdict.ERROR, detail=detail)
            cells[flow] = cell
        return ObservedMatrix(cells)
