"""Whose fault a wrong flow is: every combination of requirement, policy set and observation."""

from __future__ import annotations

import pytest

from calico_conformance.reachability import (
    Expectation,
    ExpectedMatrix,
    Flow,
    Observation,
    ObservedMatrix,
    ProbeVerdict,
    compare,
)
from calico_conformance.report.outcomes import InfrastructureError
from calico_conformance.suite.assertions import fail_unless_matches, failure_message
from calico_conformance.suite.defects import Defect, classify, compare_with_policy, implied_matrix

FLOW = Flow("customer-a/shop", "royal-bank/ledger", 8443, "TCP")
ALLOWED, DROPPED, ERROR = ProbeVerdict.ALLOWED, ProbeVerdict.DROPPED, ProbeVerdict.ERROR


def _judge(required: bool, implied: bool, observed: ProbeVerdict) -> dict[Flow, Defect]:
    requirement = compare(
        ExpectedMatrix({FLOW: Expectation(required)}), ObservedMatrix({FLOW: Observation(observed)})
    )
    _, defects = compare_with_policy(requirement, lambda flow: Expectation(implied, "policy says so"))
    return defects


@pytest.mark.parametrize(
    ("required", "implied", "observed", "defect"),
    [
        # everyone agrees: no defect
        (False, False, DROPPED, None),
        (True, True, ALLOWED, None),
        # the cluster obeys a wrong policy set: the policy is at fault
        (False, True, ALLOWED, Defect.POLICY),
        (True, False, DROPPED, Defect.POLICY),
        # the policy set is right, the cluster disobeys it
        (False, False, ALLOWED, Defect.CLUSTER),
        (True, True, DROPPED, Defect.CLUSTER),
        # the requirement holds only because the cluster disobeys a wrong policy set
        (False, True, DROPPED, Defect.MASKED),
        (True, False, ALLOWED, Defect.MASKED),
    ],
)
def test_every_combination_is_classified(
    required: bool, implied: bool, observed: ProbeVerdict, defect: Defect | None
) -> None:
    assert _judge(required, implied, observed) == ({FLOW: defect} if defect else {})


@pytest.mark.parametrize("implied", [True, False])
def test_an_unproven_flow_is_nobodys_defect(implied: bool) -> None:
    assert _judge(False, implied, ERROR) == {}


def test_flows_the_policy_set_cannot_judge_are_left_to_the_requirement() -> None:
    other = Flow("192.0.2.1", "192.0.2.2", 53, "UDP")

    def decide(flow: Flow) -> Expectation:
        if flow == other:
            raise ValueError("neither side is a pod")
        return Expectation(False)

    assert set(implied_matrix([FLOW, other], decide)) == {FLOW}


def test_classify_needs_both_comparisons_to_agree_on_the_flow() -> None:
    observed = ObservedMatrix({FLOW: Observation(ALLOWED)})
    requirement = compare(ExpectedMatrix({FLOW: Expectation(False)}), observed)
    implied = compare(ExpectedMatrix({}), observed)  # the policy set said nothing about the flow
    assert classify(requirement, implied) == {FLOW: Defect.POLICY}


def test_a_masked_defect_fails_the_test_although_the_requirement_holds() -> None:
    observed = ObservedMatrix({FLOW: Observation(DROPPED)})
    requirement = compare(ExpectedMatrix({FLOW: Expectation(False, "tenancy")}), observed)
    assert requirement.ok
    _, defects = compare_with_policy(requirement, lambda flow: Expectation(True, "allow-all rule 0"))

    def message() -> str:
        return failure_message(
            requirement,
            cluster="finland",
            summary="isolation",
            explain=lambda flow: "allowed by allow-all rule 0",
            reproduce=None,
            defects=defects,
        )

    with pytest.raises(pytest.fail.Exception) as failure:
        fail_unless_matches(requirement, message, defects)
    head, *rest = str(failure.value).splitlines()
    assert head.startswith("MASKED POLICY DEFECT: isolation")
    assert any(
        line.startswith("  whose fault: the policy set, masked by the cluster (1 flows) — ") for line in rest
    )
    assert (
        "cause 1 — 1 masked flow(s): held only because the cluster disobeys the policy set, which allows them: "
        "allowed by allow-all rule 0"
    ) in rest
    assert f"    {FLOW.source} -> {FLOW.destination}: TCP 8443" in rest


def test_a_cluster_defect_leads_the_message_and_names_what_the_policy_set_says() -> None:
    observed = ObservedMatrix({FLOW: Observation(ALLOWED)})
    requirement = compare(ExpectedMatrix({FLOW: Expectation(False, "tenancy")}), observed)
    _, defects = compare_with_policy(requirement, lambda flow: Expectation(False, "default deny"))
    text = failure_message(
        requirement,
        cluster="finland",
        summary="isolation",
        explain=lambda flow: "denied by default-deny",
        reproduce=None,
        defects=defects,
    )
    head, *rest = text.splitlines()
    assert head == "CLUSTER DEFECT: isolation — does not hold on cluster finland"
    assert any(
        line.startswith("  whose fault: the cluster (1 flows) — Calico does not enforce") for line in rest
    )
    assert (
        "cause 1 — 1 leaked flow(s): observed allowed although the policy set denies them: denied by default-deny"
        in rest
    )


def test_only_unproven_flows_error_instead_of_failing() -> None:
    observed = ObservedMatrix({FLOW: Observation(ERROR, detail="exec failed")})
    requirement = compare(ExpectedMatrix({FLOW: Expectation(False)}), observed)
    _, defects = compare_with_policy(requirement, lambda flow: Expectation(False))
    with pytest.raises(InfrastructureError):
        fail_unless_matches(requirement, lambda: "unproven", defects)
