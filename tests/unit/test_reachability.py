"""The matrix comparison is the last line of defence: an error or a missing probe must never pass."""

from __future__ import annotations

import pytest

from calico_conformance.reachability import (
    DEFAULT_DENY_VERDICTS,
    Expectation,
    ExpectedMatrix,
    Flow,
    MismatchKind,
    Observation,
    ObservedMatrix,
    ProbeVerdict,
    compare,
    expectation_marks,
    observed_allowed,
    render_text,
)

A_TO_B = Flow("x/a", "y/b", 80, "TCP")
B_TO_A = Flow("y/b", "x/a", 80, "TCP")
A_TO_B_UDP = Flow("x/a", "y/b", 53, "UDP")


def _expected(**cells: bool) -> ExpectedMatrix:
    flows = {"ab": A_TO_B, "ba": B_TO_A, "ab_udp": A_TO_B_UDP}
    return ExpectedMatrix({flows[name]: Expectation(allowed) for name, allowed in cells.items()})


def _observed(**cells: ProbeVerdict) -> ObservedMatrix:
    flows = {"ab": A_TO_B, "ba": B_TO_A, "ab_udp": A_TO_B_UDP}
    return ObservedMatrix({flows[name]: Observation(verdict) for name, verdict in cells.items()})


def test_matching_matrices_compare_ok() -> None:
    comparison = compare(
        _expected(ab=True, ba=False), _observed(ab=ProbeVerdict.ALLOWED, ba=ProbeVerdict.DROPPED)
    )
    assert comparison.ok
    assert comparison.mismatches == ()


def test_allowed_where_denied_is_a_leak() -> None:
    comparison = compare(_expected(ba=False), _observed(ba=ProbeVerdict.ALLOWED))
    assert [m.kind for m in comparison.mismatches] == [MismatchKind.LEAK]
    assert comparison.leaks[0].flow == B_TO_A


def test_denied_where_allowed_is_blocked() -> None:
    comparison = compare(_expected(ab=True), _observed(ab=ProbeVerdict.DROPPED))
    assert [m.kind for m in comparison.mismatches] == [MismatchKind.BLOCKED]


@pytest.mark.parametrize("expected_allowed", [True, False])
def test_an_error_never_matches(expected_allowed: bool) -> None:
    comparison = compare(_expected(ab=expected_allowed), _observed(ab=ProbeVerdict.ERROR))
    assert not comparison.ok
    assert [m.kind for m in comparison.errors] == [MismatchKind.UNPROVEN]


def test_a_missing_observation_never_matches() -> None:
    comparison = compare(_expected(ab=False), _observed())
    assert [m.kind for m in comparison.mismatches] == [MismatchKind.UNPROVEN]
    assert "no observation" in str(comparison.mismatches[0])


def test_reject_is_no_deny_where_calico_drops() -> None:
    # A RST means the packet reached the destination: policy let it through to a closed port.
    assert observed_allowed(Observation(ProbeVerdict.REJECTED)) is None
    assert ProbeVerdict.REJECTED not in DEFAULT_DENY_VERDICTS
    comparison = compare(_expected(ab=False), _observed(ab=ProbeVerdict.REJECTED))
    assert [m.kind for m in comparison.mismatches] == [MismatchKind.UNPROVEN]


def test_reject_is_a_deny_where_the_cluster_rejects() -> None:
    reject = frozenset({ProbeVerdict.DROPPED, ProbeVerdict.REJECTED})
    assert compare(_expected(ab=False), _observed(ab=ProbeVerdict.REJECTED), reject).ok


def test_mismatches_are_ordered_errors_then_leaks_then_blocks() -> None:
    comparison = compare(
        _expected(ab=True, ba=False, ab_udp=True),
        _observed(ab=ProbeVerdict.DROPPED, ba=ProbeVerdict.ALLOWED, ab_udp=ProbeVerdict.ERROR),
    )
    assert [m.kind for m in comparison.mismatches] == [
        MismatchKind.UNPROVEN,
        MismatchKind.LEAK,
        MismatchKind.BLOCKED,
    ]


def test_render_shows_one_matrix_and_every_wrong_flow_explained() -> None:
    comparison = compare(
        ExpectedMatrix({B_TO_A: Expectation(False, why="default-deny-all")}),
        ObservedMatrix({B_TO_A: Observation(ProbeVerdict.ALLOWED, why="rule 0 of allow-all")}),
    )
    text = comparison.render()
    header = next(line for line in text.splitlines() if line.startswith("from \\ to"))
    assert header.split("|")[1].strip() == "x/a"  # columns are named, not numbered
    row = next(line for line in text.splitlines() if line.startswith("y/b "))
    assert row.split("|")[1].strip() == "leak TCP 80"
    assert "leak: y/b -> x/a 80/TCP: expected denied, observed allowed" in text
    assert "default-deny-all" in text
    assert "rule 0 of allow-all" in text


def test_render_says_oracle_where_the_oracle_answered() -> None:
    comparison = compare(
        ExpectedMatrix({B_TO_A: Expectation(False)}),
        ObservedMatrix({B_TO_A: Observation(ProbeVerdict.ALLOWED)}),
    )
    text = comparison.render("oracle")
    assert "expected denied, oracle allowed" in text
    assert "observed" not in text


def test_simulate_grid_has_one_table_per_service_with_marks_in_place() -> None:
    marks = expectation_marks(_expected(ab=True, ba=False, ab_udp=False))
    tcp, udp = render_text(marks).split("\n\n")
    assert tcp.startswith("80/TCP")
    assert udp.startswith("53/UDP")
    header, _, row_a, row_b = tcp.splitlines()
    assert header.split("|")[1].split() == ["x/a", "y/b"]
    # x/a -> x/a is not in the matrix (blank); x/a -> y/b allowed; y/b -> x/a denied
    assert row_a.split("|")[1] == "      ."
    assert row_b.split("|")[1] == "  X"


def test_long_destination_names_become_numbered_columns_with_a_legend() -> None:
    marks = {
        Flow("royal-bank/ledger", "platform/log-collector", 5044, "TCP"): ".",
        Flow("royal-bank/ledger", "customer-a/shop", 5044, "TCP"): "X",
    }
    header, _, row, legend = render_text(marks).splitlines()
    assert header.split("|")[1].split() == ["1", "2"]
    assert row.split("|")[1].split() == ["X", "."]
    assert legend == "columns: 1 customer-a/shop, 2 platform/log-collector"


def test_flow_strings_read_like_sentences() -> None:
    assert str(A_TO_B) == "x/a -> y/b 80/TCP"
    assert Flow("x/a", "y/b", None, "ICMP").service == "ICMP"


def test_flows_with_and_without_ports_sort_together() -> None:
    icmp = Flow("x/a", "y/b", None, "ICMP")
    matrix = ExpectedMatrix({A_TO_B: Expectation(True), icmp: Expectation(False)})
    assert list(matrix) == [icmp, A_TO_B]
    assert sorted([Flow("x/a", "y/b", 5432, "TCP"), Flow("x/a", "y/b", None, "TCP")])[0].port is None
