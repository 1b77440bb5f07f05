"""The failure a suite prints: verdict first, short, the wrong flows grouped by the rule that decides them."""

from __future__ import annotations

from pathlib import Path

from calico_conformance.oracle.errors import Location
from calico_conformance.oracle.explain import NO_POLICY, OUTSIDE, RULE, Decision, Verdict
from calico_conformance.oracle.model import Direction
from calico_conformance.reachability import (
    Comparison,
    Expectation,
    ExpectedMatrix,
    Flow,
    Observation,
    ObservedMatrix,
    ProbeVerdict,
    compare,
)
from calico_conformance.suite.assertions import MAX_LINES, Wording, failure_message
from calico_conformance.suite.causes import group_causes
from calico_conformance.suite.defects import Defect

SENTINEL = "royal-bank/sentinel"
SOURCES = ["192.0.2.10", "conformance-outsider/sentinel"] + [f"tenant-{n}/web" for n in range(8)]
SERVICES = [(None, "ICMP"), (54, "TCP"), (5044, "TCP"), (5045, "TCP"), (8080, "TCP"), (54, "UDP")]
ALLOW_ALL = Decision(
    True,
    Direction.INGRESS,
    RULE,
    tier="default",
    policy="KubernetesNetworkPolicy royal-bank/allow-all-ingress",
    rule_index=0,
    action="Allow",
    location=Location("/repo/policies/90-allow-all-ingress.yaml", 11),
)
DNS_DENY = Decision(
    False,
    Direction.EGRESS,
    RULE,
    tier="security",
    policy="GlobalNetworkPolicy security.deny-dns",
    rule_index=2,
    action="Deny",
    location=Location("/repo/policies/30-platform-dns.yaml", 40),
)
TO_DNS = Flow(SENTINEL, "kube-system/kube-dns", 53, "UDP")


def _verdict(flow: Flow) -> Verdict:
    if flow == TO_DNS:
        return Verdict(False, DNS_DENY, Decision(True, Direction.INGRESS, NO_POLICY))
    egress = Decision(True, Direction.EGRESS, OUTSIDE if flow.source[0].isdigit() else NO_POLICY)
    return Verdict(True, egress, ALLOW_ALL)


def _comparison() -> tuple[Comparison, dict[Flow, Defect]]:
    leaks = [Flow(source, SENTINEL, port, protocol) for source in SOURCES for port, protocol in SERVICES]
    expected = {flow: Expectation(False, "every namespace is default-deny") for flow in leaks}
    expected[TO_DNS] = Expectation(True, "DNS to kube-dns")
    observed = {flow: Observation(ProbeVerdict.ALLOWED) for flow in leaks}
    observed[TO_DNS] = Observation(ProbeVerdict.DROPPED)
    comparison = compare(ExpectedMatrix(expected), ObservedMatrix(observed))
    return comparison, {mismatch.flow: Defect.POLICY for mismatch in comparison.mismatches}


def _message(detail: bool = False) -> str:
    comparison, defects = _comparison()
    return failure_message(
        comparison,
        cluster="finland",
        summary="royal-bank/sentinel can neither send nor receive",
        explain=_verdict,
        reproduce=".venv/bin/calico-conformance simulate reports/scenarios/finland-x.yaml",
        defects=defects,
        wording=Wording("oracle", Path("/repo")),
        detail=detail,
        matrices="reports/matrices.html#x",
    )


def test_the_message_leads_with_whose_fault_and_stays_short() -> None:
    lines = _message().splitlines()
    assert (
        lines[0]
        == "POLICY DEFECT: royal-bank/sentinel can neither send nor receive — does not hold on cluster finland"
    )
    assert lines[1] == (
        "  61 of 61 flows wrong: 60 leaked, 1 blocked, 0 unproven (oracle: what the policy set implies, no dataplane)"
    )
    assert lines[2] == "  whose fault: the policy set (61 flows) — fix the policies"
    assert len(lines) <= MAX_LINES
    assert (
        lines[-2]
        == "reproduce (no cluster needed): .venv/bin/calico-conformance simulate reports/scenarios/finland-x.yaml"
    )
    assert lines[-1] == "matrix: reports/matrices.html#x (or run with -vv)"


def test_wrong_flows_are_grouped_under_their_deciding_rule_with_its_file_and_line() -> None:
    lines = _message().splitlines()
    causes = [line for line in lines if line.startswith("cause ")]
    assert causes == [
        "cause 1 — 60 leaked flow(s): the policy set allows them: Ingress allowed by tier default, "
        "KubernetesNetworkPolicy royal-bank/allow-all-ingress rule 0 (Allow) at policies/90-allow-all-ingress.yaml:11",
        "cause 2 — 1 blocked flow(s): the policy set denies them: Egress denied by tier security, "
        "GlobalNetworkPolicy security.deny-dns rule 2 (Deny) at policies/30-platform-dns.yaml:40",
    ]
    # under the leak: the pairs with their ports, a few of them, then how many more
    first = lines.index(causes[0])
    assert lines[first + 1] == "    192.0.2.10 -> royal-bank/sentinel: ICMP; TCP 54,5044-5045,8080; UDP 54"
    assert lines[first + 4] == "    … and 7 more pair(s)"
    assert lines[lines.index(causes[1]) + 1] == "    royal-bank/sentinel -> kube-system/kube-dns: UDP 53"


def test_the_cause_of_an_allowed_flow_is_the_policy_that_allowed_it_not_the_unpoliced_side() -> None:
    comparison, defects = _comparison()
    groups = group_causes(comparison, _verdict, defects, base=Path("/repo"))
    # the outside source's egress (nobody polices it) and the outsider's (no policy) do not split the group
    assert [len(group.flows) for group in groups] == [60, 1]
    assert "Egress" not in groups[0].cause


def test_with_detail_the_matrix_and_every_flow_follow_the_short_message() -> None:
    text = _message(detail=True)
    short = _message()
    assert text.startswith(short.rsplit("\n", 1)[0])  # the same head, without the "-vv" hint
    assert "from \\ to" in text
    assert text.count("leak: ") == 60  # every wrong flow, explained, with `oracle` for what answered
    assert "expected denied, oracle allowed" in text
    assert "observed" not in text


def test_many_causes_still_fit_and_say_how_many_more_there_are() -> None:
    flows = [Flow(f"tenant-{n}/web", SENTINEL, 80 + n, "TCP") for n in range(6)]
    comparison = compare(
        ExpectedMatrix({flow: Expectation(False, "default-deny") for flow in flows}),
        ObservedMatrix({flow: Observation(ProbeVerdict.ALLOWED) for flow in flows}),
    )

    def verdict(flow: Flow) -> Verdict:  # a different allowing rule for each flow
        rule = Decision(
            True, Direction.INGRESS, RULE, "default", f"NetworkPolicy x/allow-{flow.port}", 0, "Allow"
        )
        return Verdict(True, Decision(True, Direction.EGRESS, NO_POLICY), rule)

    text = failure_message(
        comparison,
        cluster="finland",
        summary="default deny",
        explain=verdict,
        reproduce="calico-conformance simulate s.yaml",
        defects=dict.fromkeys(flows, Defect.POLICY),
    )
    lines = text.splitlines()
    assert len(lines) <= MAX_LINES
    assert sum(1 for line in lines if line.startswith("cause ")) == 3
    assert "… 3 more cause(s) decide 3 more flow(s): see -vv or the report" in lines
