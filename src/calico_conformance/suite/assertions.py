"""One assertion per matrix: the failure a suite prints when observed reachability breaks a requirement.

A failing test must let an engineer act within ten seconds, without re-running anything. Its message
leads with the verdict (whose fault: the policy set's, the cluster's, or a policy defect masked by the
cluster), says which promise broke on which cluster and how many flows, then groups the wrong flows by
cause: one line naming the deciding tier, policy, rule and `file:line` of the policy set, then the pairs
and ports it decides. It ends with a command that replays the wrong flows with no cluster, as printed.
That stays within about `MAX_LINES` lines; the matrix and every flow's explanation go to the attachments
and, with `-vv`, below the message. A matrix that is wrong fails the test (a proven defect); a matrix
that is only unproven (a probe error, a missing observation) errors it instead: nothing was proven
either way, and an error is never a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from calico_conformance.reachability import Comparison, Flow, Mismatch, MismatchKind
from calico_conformance.report.outcomes import InfrastructureError
from calico_conformance.suite.causes import CauseGroup, Explain, group_causes
from calico_conformance.suite.defects import Defect

MAX_LINES = 25  # the short message; the rest is in the attachments and under -vv
MAX_CAUSES = 3
MAX_PAIRS_PER_CAUSE = 3

# The first word of a failure says whose fault it is; Allure's categories (report/allure_results.py)
# match on it, so these words appear in the head line only.
VERDICT_WORDS: Mapping[Defect, str] = {
    Defect.MASKED: "MASKED POLICY DEFECT",
    Defect.CLUSTER: "CLUSTER DEFECT",
    Defect.POLICY: "POLICY DEFECT",
}
# Short forms of defects.DEFECT_MEANING: a line of the message must fit a report's error box.
FAULT_WORDS: Mapping[Defect, str] = {
    Defect.POLICY: "the policy set",
    Defect.CLUSTER: "the cluster",
    Defect.MASKED: "the policy set, masked by the cluster",
}
ACTION: Mapping[Defect, str] = {
    Defect.POLICY: "fix the policies",
    Defect.CLUSTER: "Calico does not enforce what the policy set implies",
    Defect.MASKED: "a wrong policy set that the cluster happens to disobey: fix both",
}
KIND_WORDS = {"leak": "leaked", "blocked": "blocked", "masked": "masked", "unproven": "unproven"}
UNPROVEN_WORD = "UNPROVEN"  # only probe errors: an infrastructure error, not a defect
WRONG_WORD = "WRONG"  # wrong flows whose fault the run cannot tell (no policy-set comparison)


@dataclass(frozen=True)
class Wording:
    """How a run words its evidence: `oracle` instead of `observed` on the static target."""

    observed: str = "observed"  # what produced the observations: "observed" (probes) or "oracle"
    base: Path = Path(".")  # paths are shown relative to this (where the user ran pytest)


def verdict_word(comparison: Comparison, defects: Mapping[Flow, Defect]) -> str:
    """The head word: the defect kinds found (worst first), or UNPROVEN, or WRONG."""
    kinds = [VERDICT_WORDS[kind] for kind in VERDICT_WORDS if kind in defects.values()]
    if kinds:
        return " + ".join(kinds)
    if comparison.mismatches and all(m.kind is MismatchKind.UNPROVEN for m in comparison.mismatches):
        return UNPROVEN_WORD
    return WRONG_WORD


def failure_message(
    comparison: Comparison,
    *,
    cluster: str,
    summary: str,
    explain: Explain,
    reproduce: str | None,
    defects: Mapping[Flow, Defect] | None = None,
    wording: Wording | None = None,
    detail: bool = False,
    matrices: str | None = None,
) -> str:
    """The short failure (see the module docstring); with `detail`, the matrix and every wrong flow too."""
    defects = defects or {}
    wording = wording or Wording()
    wrong = comparison.mismatches
    masked = sum(1 for defect in defects.values() if defect is Defect.MASKED)
    counts = (
        f"{_count(wrong, MismatchKind.LEAK)} leaked, {_count(wrong, MismatchKind.BLOCKED)} blocked, "
        f"{_count(wrong, MismatchKind.UNPROVEN)} unproven" + (f", {masked} masked" if masked else "")
    )
    lines = [
        f"{verdict_word(comparison, defects)}: {summary} — does not hold on cluster {cluster}",
        f"  {len(wrong) + masked} of {len(comparison.expected)} flows wrong: {counts} ({_source(wording)})",
        *_fault_lines(defects),
    ]
    requirement = _requirement_line(wrong)
    if requirement:
        lines.append(requirement)
    groups = group_causes(comparison, explain, defects, base=wording.base, observed_label=wording.observed)
    for number, group in enumerate(groups[:MAX_CAUSES], start=1):
        lines.extend(_group_lines(number, group))
    if len(groups) > MAX_CAUSES:
        rest = sum(len(group.flows) for group in groups[MAX_CAUSES:])
        lines.append(
            f"… {len(groups) - MAX_CAUSES} more cause(s) decide {rest} more flow(s): see -vv or the report"
        )
    if reproduce:
        lines.append(f"reproduce (no cluster needed): {reproduce}")
    if matrices and not detail:
        lines.append(f"matrix: {matrices} (or run with -vv)")
    if detail:
        lines += ["", comparison.render(wording.observed)]
    return "\n".join(lines)


def _count(mismatches: tuple[Mismatch, ...], kind: MismatchKind) -> int:
    return sum(1 for mismatch in mismatches if mismatch.kind is kind)


def _source(wording: Wording) -> str:
    if wording.observed == "oracle":
        return "oracle: what the policy set implies, no dataplane"
    return "observed: probes on the cluster"


def _fault_lines(defects: Mapping[Flow, Defect]) -> list[str]:
    lines = []
    for kind in Defect:
        count = sum(1 for defect in defects.values() if defect is kind)
        if count:
            lines.append(f"  whose fault: {FAULT_WORDS[kind]} ({count} flows) — {ACTION[kind]}")
    return lines


def _requirement_line(wrong: tuple[Mismatch, ...]) -> str:
    """The requirement most wrong flows broke, once (every flow carries its reason)."""
    reasons: dict[str, int] = {}
    for mismatch in wrong:
        if mismatch.kind is not MismatchKind.UNPROVEN and mismatch.expected.why:
            verb = "allowed" if mismatch.expected.allowed else "denied"
            key = f"{verb} — {mismatch.expected.why}"
            reasons[key] = reasons.get(key, 0) + 1
    if not reasons:
        return ""
    common = max(reasons, key=lambda key: reasons[key])
    others = f" (and {len(reasons) - 1} other reason(s))" if len(reasons) > 1 else ""
    return f"  required: {common}{others}"


def _group_lines(number: int, group: CauseGroup) -> list[str]:
    lines = [f"cause {number} — {len(group.flows)} {KIND_WORDS[group.kind]} flow(s): {group.cause}"]
    pairs = group.pairs()
    for source, destination, services in pairs[:MAX_PAIRS_PER_CAUSE]:
        lines.append(f"    {source} -> {destination}: {services}")
    if len(pairs) > MAX_PAIRS_PER_CAUSE:
        lines.append(f"    … and {len(pairs) - MAX_PAIRS_PER_CAUSE} more pair(s)")
    return lines


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
