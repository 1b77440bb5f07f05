"""One assertion per matrix: the failure a suite prints when observed reachability breaks a requirement.

A failing test must let an engineer act without re-running anything: it shows the expected
(requirement), observed and diff matrices, names the tier, policy and rule that decided the first wrong
flow (the oracle's explanation, on any target), and ends with the command that replays the flow with
no cluster. A matrix that is wrong fails the test (a proven defect); a matrix that is only unproven (a
probe error, a missing observation) errors it instead: nothing was proven either way, and an error is
never a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from calico_conformance.reachability import Comparison, Flow, Mismatch, MismatchKind
from calico_conformance.report.outcomes import InfrastructureError
from calico_conformance.suite.defects import Defect, defect_summary

Explain = Callable[[Flow], str]  # the policy-set explanation of a flow (the oracle's verdict as text)


def failure_message(
    comparison: Comparison,
    *,
    cluster: str,
    summary: str,
    explain: Explain,
    reproduce: str | None,
    defects: Mapping[Flow, Defect] | None = None,
) -> str:
    """The matrices, whose fault each wrong flow is, the first wrong flow explained, and a reproducer."""
    wrong = comparison.mismatches
    defects = defects or {}
    lines = [
        f"{summary} — does not hold on cluster {cluster}: "
        f"{len(wrong)} of {len(comparison.expected)} flows disagree with the requirement "
        f"({_count(wrong, MismatchKind.LEAK)} leaked, {_count(wrong, MismatchKind.BLOCKED)} blocked, "
        f"{_count(wrong, MismatchKind.UNPROVEN)} unproven)",
        *defect_summary(defects),
        "",
        comparison.render(),
        "",
    ]
    first = wrong[0] if wrong else None
    if first is not None:
        lines += [
            f"first wrong flow: {first.flow}" + (f" ({defects[first.flow]} defect)" if first.flow in defects else ""),
            f"  required: {'allowed' if first.expected.allowed else 'denied'} ({first.expected.why})",
            f"  observed: {_observed(first)}",
            f"  the policy set decides it: {_explained(explain, first.flow)}",
        ]
    for flow, defect in defects.items():
        if defect is Defect.MASKED:
            lines.append(f"masked: {flow}: the requirement holds, but {_explained(explain, flow)}")
    if reproduce:
        lines.append(f"reproduce: {reproduce}")
    return "\n".join(lines)


def _count(mismatches: tuple[Mismatch, ...], kind: MismatchKind) -> int:
    return sum(1 for mismatch in mismatches if mismatch.kind is kind)


def _observed(mismatch: Mismatch) -> str:
    if mismatch.observed is None:
        return "nothing (no probe result)"
    text = str(mismatch.observed.verdict)
    return f"{text} ({mismatch.observed.detail})" if mismatch.observed.detail else text


def _explained(explain: Explain, flow: Flow) -> str:
    try:
        return explain(flow)
    except ValueError as problem:  # the oracle cannot judge it (e.g. a flow between two outside addresses)
        return f"(the oracle cannot say: {problem})"


def fail_unless_matches(
    comparison: Comparison, message: Callable[[], str], defects: Mapping[Flow, Defect] | None = None
) -> None:
    """Pass when every flow matches the requirement and the policy set; fail on any defect; error when
    something is only unproven."""
    __tracebackhide__ = True
    if comparison.ok and not defects:
        return
    if not defects and all(mismatch.kind is MismatchKind.UNPROVEN for mismatch in comparison.mismatches):
        raise InfrastructureError(message())
    pytest.fail(message(), pytrace=False)
