"""Whose fault is a wrong flow: the policy set's, or the cluster's?

Every live assertion holds the observed matrix against two references (ARCHITECTURE.md, "Three
targets"): the **requirement** (the tenancy layout) and what the **policy set implies** (the oracle over
the same policy objects). The two disagreements mean different things and go to different people:

* observed differs from the requirement, and the oracle agrees with what was observed: the policies do
  what they say, and what they say is wrong — a **policy** defect (fix the policy set);
* observed differs from what the policies imply: Calico (or the cluster under it) does not enforce the
  policies — a **cluster** defect, whether or not the requirement happens to hold;
* observed matches the requirement only because the cluster disobeys a wrong policy set: **masked** — a
  policy defect hidden by a cluster defect. It passes the requirement and still fails the test, because
  the day the cluster is fixed the isolation breaks.

On the static target the observation *is* the oracle's verdict, so every defect there is a policy defect.
Pure: no pytest, no Kubernetes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping

from calico_conformance.reachability import (
    DEFAULT_DENY_VERDICTS,
    Comparison,
    Expectation,
    ExpectedMatrix,
    Flow,
    MismatchKind,
    ProbeVerdict,
    compare,
)


class Defect(str, enum.Enum):
    POLICY = "policy"  # the policy set implies what the layout forbids (or denies what it requires)
    CLUSTER = "cluster"  # Calico does not do what the policy set implies
    MASKED = "masked"  # the requirement holds only because the cluster disobeys a wrong policy set

    def __str__(self) -> str:
        return self.value


DEFECT_MEANING: Mapping[Defect, str] = {
    Defect.POLICY: "the policy set allows or denies what the layout forbids or requires: fix the policies",
    Defect.CLUSTER: "the cluster does not enforce what the policy set implies: a Calico or cluster defect",
    Defect.MASKED: (
        "the requirement holds only because the cluster disobeys a wrong policy set: "
        "a policy defect hidden by a cluster defect"
    ),
}


def implied_matrix(flows: Iterable[Flow], decide: Callable[[Flow], Expectation]) -> ExpectedMatrix:
    """What the policy set implies for each flow it can judge (a flow it cannot judge is left out and
    stays judged by the requirement alone)."""
    cells = {}
    for flow in flows:
        try:
            cells[flow] = decide(flow)
        except ValueError:  # e.g. an address the oracle has no endpoint for on either side
            continue
    return ExpectedMatrix(cells)


def classify(requirement: Comparison, implied: Comparison) -> dict[Flow, Defect]:
    """The defect of every flow that is wrong against the requirement or against the policy set.

    Unproven flows (errors, missing probes) are no defect of either kind: they are reported as unproven
    by the requirement comparison and never pass.
    """
    wrong_vs_requirement = {m.flow for m in requirement.mismatches if m.kind is not MismatchKind.UNPROVEN}
    wrong_vs_policy = {m.flow for m in implied.mismatches if m.kind is not MismatchKind.UNPROVEN}
    defects: dict[Flow, Defect] = {}
    for flow in sorted(wrong_vs_requirement | wrong_vs_policy):
        if flow not in wrong_vs_policy:
            defects[flow] = Defect.POLICY
        elif flow in wrong_vs_requirement:
            defects[flow] = Defect.CLUSTER
        else:
            defects[flow] = Defect.MASKED
    return defects


def compare_with_policy(
    requirement: Comparison,
    decide: Callable[[Flow], Expectation],
    deny_verdicts: frozenset[ProbeVerdict] = DEFAULT_DENY_VERDICTS,
) -> tuple[Comparison, dict[Flow, Defect]]:
    """Compare the requirement comparison's observations with what the policy set implies, and classify."""
    implied = compare(implied_matrix(requirement.expected, decide), requirement.observed, deny_verdicts)
    return implied, classify(requirement, implied)
