"""The flow ledger of live runs: a flow one matrix concluded is not probed again, and nothing that was
not concluded (an error of any kind) is ever recalled in its place.

The whole run that relies on it is `tests/standin/test_standin_suites.py` (the royal-bank matrices
are all recalled from the default-deny ones there); these pin the rules."""

from __future__ import annotations

from calico_conformance.cluster.ledger import RECALLED, FlowLedger
from calico_conformance.reachability import Flow, Observation, ProbeVerdict

LEAK = Flow("customer-a/sentinel", "royal-bank/ledger", 8443, "TCP")
DROP = Flow("customer-b/sentinel", "royal-bank/ledger", 8443, "TCP")
REJECT = Flow("customer-b/sentinel", "royal-bank/ledger", 9999, "UDP")
UNPROVEN = Flow("platform/sentinel", "royal-bank/ledger", 8443, "TCP")


def _first_matrix() -> dict[Flow, Observation]:
    return {
        LEAK: Observation(ProbeVerdict.ALLOWED, answered_by="royal-bank/ledger"),
        DROP: Observation(ProbeVerdict.DROPPED),
        REJECT: Observation(ProbeVerdict.REJECTED, detail="icmp port unreachable"),
        UNPROVEN: Observation(ProbeVerdict.ERROR, "no positive control answered"),
    }


def test_conclusive_observations_are_recalled_with_the_matrix_that_probed_them() -> None:
    ledger = FlowLedger()
    ledger.remember(_first_matrix(), label="finland matrix 1")
    recalled = ledger.recall([LEAK, DROP, REJECT])
    assert {flow: o.verdict for flow, o in recalled.items()} == {
        LEAK: ProbeVerdict.ALLOWED,  # a leak stays a leak for every later test that asks
        DROP: ProbeVerdict.DROPPED,
        REJECT: ProbeVerdict.REJECTED,
    }
    assert recalled[LEAK].answered_by == "royal-bank/ledger"
    assert recalled[DROP].detail == f"{RECALLED} (finland matrix 1)"
    assert recalled[REJECT].detail == f"{RECALLED} (finland matrix 1); icmp port unreachable"
    assert len(ledger) == 3


def test_an_error_is_never_recalled_so_the_next_matrix_probes_it_again() -> None:
    ledger = FlowLedger()
    ledger.remember(_first_matrix(), label="finland matrix 1")
    assert ledger.recall([UNPROVEN]) == {}
    ledger.remember({UNPROVEN: Observation(ProbeVerdict.DROPPED)}, label="finland matrix 2")
    assert ledger.recall([UNPROVEN])[UNPROVEN].detail == f"{RECALLED} (finland matrix 2)"


def test_only_the_flows_asked_for_are_recalled() -> None:
    ledger = FlowLedger()
    ledger.remember(_first_matrix(), label="m")
    other = Flow("customer-a/sentinel", "royal-bank/ledger", 8444, "TCP")
    assert set(ledger.recall([DROP, other])) == {DROP}
