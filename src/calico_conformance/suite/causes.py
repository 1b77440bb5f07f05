"""Why the wrong flows of a matrix are wrong, grouped: one cause, then the flows it decides.

Twenty leaked flows usually have one cause: one rule that allows them, one missing default-deny. A
failure that repeats that cause under every flow buries it; grouping by cause shows it once, with the
deciding policy, rule and the `file:line` of the policy set the run read, followed by the (source,
destination) pairs and the ports it decides. The cause of a flow is the part of the policy set's verdict
that makes it what it is: for an allowed flow the directions a policy allowed (or, when none did, the
directions nothing policed); for a denied flow the directions that denied it. Pure: no pytest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from calico_conformance.oracle.errors import Location
from calico_conformance.oracle.explain import OUTSIDE, Decision, Verdict
from calico_conformance.pair_matrix import services_text
from calico_conformance.reachability import Comparison, Flow, Mismatch, MismatchKind
from calico_conformance.suite.defects import Defect

Explain = Callable[[Flow], "Verdict | str"]  # the policy set's verdict on a flow (or its text)


@dataclass(frozen=True)
class CauseGroup:
    """Wrong flows that share one cause."""

    kind: str  # leak, blocked, unproven or masked
    defect: Defect | None  # whose fault, when the run compared with the policy set
    cause: str  # one line: what decides these flows, with file:line
    flows: tuple[Flow, ...]

    def pairs(self) -> list[tuple[str, str, str]]:
        """(source, destination, services) of the group's flows, in flow order."""
        by_pair: dict[tuple[str, str], list[Flow]] = {}
        for flow in self.flows:
            by_pair.setdefault((flow.source, flow.destination), []).append(flow)
        return [
            (source, destination, services_text(flows)) for (source, destination), flows in by_pair.items()
        ]


def shown_path(file: str, base: Path) -> str:
    """`file` relative to `base` (where the user ran pytest) when it lies below it, else as given."""
    try:
        return str(Path(file).resolve().relative_to(base.resolve()))
    except (ValueError, OSError):
        return file


def decision_text(decision: Decision, base: Path) -> str:
    """A decision as the oracle words it, its location made relative to `base`."""
    if decision.location is not None and decision.location.file:
        location = Location(shown_path(decision.location.file, base), decision.location.line)
        decision = replace(decision, location=location)
    return str(decision)


def deciding(verdict: Verdict) -> tuple[Decision, ...]:
    """The directions that make the verdict what it is (see the module docstring)."""
    sides = (verdict.egress, verdict.ingress)
    if verdict.allowed:
        policed = [side for side in sides if side.reason != OUTSIDE]
        by_policy = [side for side in policed if side.policy]
        return tuple(by_policy or policed or sides)
    return tuple(side for side in sides if not side.allowed)


def verdict_cause(explain: Explain, flow: Flow, base: Path) -> tuple[bool | None, str]:
    """(what the policy set says of the flow, the deciding part of its verdict as one line)."""
    try:
        verdict = explain(flow)
    except ValueError as problem:  # the oracle cannot judge it (e.g. a flow between two outside addresses)
        return None, f"the oracle cannot say: {problem}"
    if isinstance(verdict, str):
        return None, verdict
    return verdict.allowed, "; ".join(decision_text(decision, base) for decision in deciding(verdict))


def _says(allowed: bool) -> str:
    return "the policy set allows them" if allowed else "the policy set denies them"


def _cause_line(
    mismatch: Mismatch, defect: Defect | None, explain: Explain, base: Path, observed: str
) -> str:
    if mismatch.kind is MismatchKind.UNPROVEN:
        detail = "not observed" if mismatch.observed is None else (mismatch.observed.detail or "probe error")
        return f"no verdict: {detail}"
    allowed, why = verdict_cause(explain, mismatch.flow, base)
    if defect is Defect.CLUSTER:
        seen = "allowed" if mismatch.kind is MismatchKind.LEAK else "denied"
        implied = mismatch.kind is MismatchKind.BLOCKED if allowed is None else allowed
        return f"{observed} {seen} although {_says(implied)}: {why}"
    if defect is Defect.POLICY and allowed is None:  # the policy set agrees with what was observed
        allowed = mismatch.kind is MismatchKind.LEAK
    return f"{_says(allowed)}: {why}" if allowed is not None else why


def group_causes(
    comparison: Comparison,
    explain: Explain,
    defects: Mapping[Flow, Defect] | None = None,
    *,
    base: Path,
    observed_label: str = "observed",
) -> list[CauseGroup]:
    """The wrong flows of a comparison (and the masked ones) grouped by cause, largest group first
    within leaks, then blocks, masked flows and unproven flows."""
    defects = defects or {}
    groups: dict[tuple[str, Defect | None, str], list[Flow]] = {}
    for mismatch in comparison.mismatches:
        defect = defects.get(mismatch.flow)
        cause = _cause_line(mismatch, defect, explain, base, observed_label)
        groups.setdefault((str(mismatch.kind), defect, cause), []).append(mismatch.flow)
    for flow in _masked(comparison, defects):
        allowed, why = verdict_cause(explain, flow, base)
        if allowed is None:  # masked: the policy set says the opposite of the (held) requirement
            allowed = not comparison.expected[flow].allowed
        cause = f"held only because the cluster disobeys the policy set, which {_verb(allowed)} them: {why}"
        groups.setdefault(("masked", Defect.MASKED, cause), []).append(flow)
    order = {"leak": 0, "blocked": 1, "masked": 2, "unproven": 3}
    ranked = sorted(groups.items(), key=lambda item: (order[item[0][0]], -len(item[1]), item[0][2]))
    return [CauseGroup(kind, defect, cause, tuple(flows)) for (kind, defect, cause), flows in ranked]


def _verb(allowed: bool) -> str:
    return "allows" if allowed else "denies"


def _masked(comparison: Comparison, defects: Mapping[Flow, Defect]) -> Iterable[Flow]:
    wrong = {mismatch.flow for mismatch in comparison.mismatches}
    return sorted(flow for flow, defect in defects.items() if defect is Defect.MASKED and flow not in wrong)


def deciding_tiers(explain: Explain, flows: Iterable[Flow]) -> list[str]:
    """The Calico tiers whose policies decided some of `flows` (for the report's `tier` label)."""
    tiers: set[str] = set()
    for flow in flows:
        try:
            verdict = explain(flow)
        except ValueError:
            continue
        if isinstance(verdict, Verdict):
            tiers.update(side.tier for side in (verdict.egress, verdict.ingress) if side.tier)
    return sorted(tiers)
