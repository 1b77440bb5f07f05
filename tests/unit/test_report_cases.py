"""Recorded cases, outcome classification and HTML matrices: the pieces the collector is built from."""

from __future__ import annotations

import html.parser

import pytest

from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.probe.executor import ExecutorError
from calico_conformance.reachability import (
    DEFAULT_DENY_VERDICTS,
    Expectation,
    ExpectedMatrix,
    Flow,
    Observation,
    ObservedMatrix,
    ProbeVerdict,
    compare,
)
from calico_conformance.report.cases import CaseRecord, comparisons_by_cluster, junit_summary
from calico_conformance.report.html import MatrixSection, matrices_document
from calico_conformance.report.outcomes import (
    FailureKind,
    InfrastructureError,
    failure_kind,
    is_not_supported,
    not_supported_reason,
    skip_reason,
)

LOGGING = Flow("royal-bank/ledger", "platform/log-collector", 5044, "TCP")
ADMIN = Flow("royal-bank/ledger", "platform/log-collector", 9200, "TCP")
PING = Flow("royal-bank/ledger", "platform/log-collector", None, "ICMP")


@pytest.mark.parametrize(
    ("allowed", "verdict", "result"),
    [
        (True, ProbeVerdict.ALLOWED, "ok"),
        (False, ProbeVerdict.DROPPED, "ok"),
        (False, ProbeVerdict.ALLOWED, "leak"),
        (True, ProbeVerdict.DROPPED, "blocked"),
        (True, ProbeVerdict.ERROR, "unproven"),
        (False, ProbeVerdict.ERROR, "unproven"),
        (False, ProbeVerdict.REJECTED, "unproven"),  # under Calico's default DROP a RST proves no deny
    ],
)
def test_a_case_is_judged_like_a_matrix_cell(allowed: bool, verdict: ProbeVerdict, result: str) -> None:
    case = CaseRecord.judge("finland", LOGGING, Expectation(allowed), Observation(verdict))
    assert case.result == result
    assert case.matched is (result == "ok")


def test_a_reject_cluster_may_count_rejected_as_denied() -> None:
    deny = DEFAULT_DENY_VERDICTS | {ProbeVerdict.REJECTED}
    case = CaseRecord.judge(
        "finland", ADMIN, Expectation(False), Observation(ProbeVerdict.REJECTED), deny_verdicts=deny
    )
    assert case.matched


def test_deciding_defaults_to_the_observation_then_the_expectation() -> None:
    observed = Observation(ProbeVerdict.ALLOWED, why="GlobalNetworkPolicy x rule 0")
    assert CaseRecord.judge("f", LOGGING, Expectation(True, "exception"), observed).deciding == (
        "GlobalNetworkPolicy x rule 0"
    )
    assert CaseRecord.judge(
        "f", LOGGING, Expectation(True, "exception"), Observation(ProbeVerdict.ALLOWED)
    ).deciding == ("exception")
    assert CaseRecord.judge("f", LOGGING, Expectation(True), observed, "given").deciding == "given"


def test_junit_gets_one_compact_line_per_cluster_not_a_property_per_flow() -> None:
    ok = CaseRecord.judge(
        "germany", PING, Expectation(False), Observation(ProbeVerdict.DROPPED), "default deny"
    )
    leak = CaseRecord.judge("finland", ADMIN, Expectation(False), Observation(ProbeVerdict.ALLOWED))
    leak_by_policy = CaseRecord("finland", PING, leak.expected, leak.observed, "", "leak", "policy")
    unproven = CaseRecord.judge("finland", LOGGING, Expectation(True), Observation(ProbeVerdict.ERROR))
    summary = junit_summary([ok, leak, leak_by_policy, unproven])
    assert (
        summary
        == "finland: 3 flows, 3 wrong (2 leak; 1 unproven; policy defect 1); germany: 1 flows, 0 wrong"
    )


def test_case_data_round_trips() -> None:
    case = CaseRecord.judge(
        "finland", ADMIN, Expectation(False, "closed port"), Observation(ProbeVerdict.ERROR, "no agent"), "x"
    )
    again = CaseRecord.from_data(case.to_data())
    assert (again.cluster, again.flow, again.result, again.deciding) == ("finland", ADMIN, "unproven", "x")
    assert again.expected == Expectation(False, "closed port")
    assert (again.observed.verdict, again.observed.detail) == (ProbeVerdict.ERROR, "no agent")


def test_a_comparison_is_recorded_flow_by_flow_and_a_missing_observation_is_an_error() -> None:
    expected = ExpectedMatrix({LOGGING: Expectation(True), ADMIN: Expectation(False)})
    observed = ObservedMatrix({LOGGING: Observation(ProbeVerdict.ALLOWED)})  # ADMIN never probed
    cases = {case.flow: case for case in CaseRecord.from_comparison("finland", compare(expected, observed))}
    assert cases[LOGGING].result == "ok"
    assert cases[ADMIN].result == "unproven"
    assert cases[ADMIN].observed.verdict is ProbeVerdict.ERROR


def test_matrices_are_rebuilt_per_cluster_keeping_the_recorded_results() -> None:
    deny = DEFAULT_DENY_VERDICTS | {ProbeVerdict.REJECTED}
    cases = [
        CaseRecord.judge(
            "finland", ADMIN, Expectation(False), Observation(ProbeVerdict.REJECTED), deny_verdicts=deny
        ),
        CaseRecord.judge("germany", ADMIN, Expectation(False), Observation(ProbeVerdict.ALLOWED)),
    ]
    comparisons = comparisons_by_cluster(cases)
    assert list(comparisons) == ["finland", "germany"]
    assert comparisons["finland"].ok  # judged with finland's REJECT deny action, not re-judged under DROP
    assert [str(m.kind) for m in comparisons["germany"].mismatches] == ["leak"]


@pytest.mark.parametrize(
    ("exception", "kind"),
    [
        (AssertionError("leak"), FailureKind.ASSERTION),
        (pytest.fail.Exception("2 flows disagree"), FailureKind.ASSERTION),
        (InfrastructureError("cluster gone"), FailureKind.INFRASTRUCTURE),
        (ExecutorError("agent missing"), FailureKind.INFRASTRUCTURE),
        (TimeoutError("pods not ready"), FailureKind.INFRASTRUCTURE),
        (ConnectionRefusedError("api server"), FailureKind.INFRASTRUCTURE),
        (LocatedError(Location("p.yaml", 3), "bad selector"), FailureKind.INFRASTRUCTURE),
        (KeyError("x"), FailureKind.INFRASTRUCTURE),  # a crash proves nothing about the policy
    ],
)
def test_only_assertions_are_failures(exception: BaseException, kind: FailureKind) -> None:
    assert failure_kind(exception) is kind


def test_skip_reasons_are_read_from_the_report_and_not_supported_is_told_apart() -> None:
    reason = skip_reason(("suites/test_tier_ordering.py", 10, "Skipped: NOT_SUPPORTED: tiers need 3.29"))
    assert is_not_supported(reason)
    assert not_supported_reason(reason) == "tiers need 3.29"
    assert skip_reason(("x.py", 1, "Skipped: needs a dataplane")) == "needs a dataplane"
    assert not is_not_supported("needs a dataplane")


class _TableCells(html.parser.HTMLParser):
    """(cell class, text) of every `<td>` of a page, and the text of its `<th>` headers."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, str]] = []
        self.headers: list[str] = []
        self._tag: str | None = None
        self._class = ""
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("td", "th"):
            self._tag, self._class, self._text = tag, dict(attrs).get("class") or "", []

    def handle_endtag(self, tag: str) -> None:
        if tag == self._tag == "td":
            self.cells.append((self._class, "".join(self._text)))
        elif tag == self._tag == "th":
            self.headers.append("".join(self._text))
        if tag == self._tag:
            self._tag = None

    def handle_data(self, data: str) -> None:
        if self._tag is not None:
            self._text.append(data)


def test_html_page_marks_a_leak_in_the_one_matrix() -> None:
    case = CaseRecord.judge("finland", ADMIN, Expectation(False), Observation(ProbeVerdict.ALLOWED))
    page = matrices_document(
        "run <1>",
        [MatrixSection("t", comparisons_by_cluster([case])["finland"], "finland", "failed")],
        {"target": "static"},
    )
    assert page.startswith("<!DOCTYPE html>")
    assert "run &lt;1&gt;" in page  # titles are escaped
    parser = _TableCells()
    parser.feed(page)
    # the cell of the pair says what differs: a leak on 9200/TCP
    assert ("leak", "leak TCP 9200") in parser.cells
    assert "platform/log-collector" in parser.headers  # the column is named, not numbered
    assert "royal-bank/ledger" in parser.headers  # and so is the row
    assert "leak: royal-bank/ledger -&gt; platform/log-collector 9200/TCP" in page
