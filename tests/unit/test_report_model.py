"""The ConformanceReport is evidence: counts, results and reasons must follow from the test results alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from calico_conformance.oracle.errors import LocatedError
from calico_conformance.reachability import Expectation, Flow, Observation, ProbeVerdict
from calico_conformance.report.cases import CaseRecord
from calico_conformance.report.model import (
    ClusterFingerprint,
    ConformanceReport,
    Fingerprint,
    InputFingerprint,
    Statistics,
    TestResult,
)
from calico_conformance.report.outcomes import FailureKind, Outcome
from calico_conformance.report.schema import read_report, report_problems
from calico_conformance.report.writer import write_report

LEAK_FLOW = Flow("royal-bank/ledger", "customer-a/shop", 8443, "TCP")
DNS_FLOW = Flow("royal-bank/ledger", "kube-system/kube-dns", 53, "UDP")

FINGERPRINT = Fingerprint(
    target="static",
    calico_version="3.31",
    run_id="r1",
    clusters=(ClusterFingerprint("finland", "10.244.0.0/16", "10.96.0.0/16"),),
    policies=InputFingerprint("/p", "a" * 64),
    layout=InputFingerprint("/l", "b" * 64),
    kind_configs=InputFingerprint("/k", None),
    tool_version="0.1.0",
)


def _leak_case() -> CaseRecord:
    return CaseRecord.judge(
        "finland",
        LEAK_FLOW,
        Expectation(False, "layout: customers are isolated"),
        Observation(ProbeVerdict.ALLOWED, why="NetworkPolicy royal-bank/allow-all rule 0"),
    )


def _error_case() -> CaseRecord:
    return CaseRecord.judge(
        "finland", DNS_FLOW, Expectation(True), Observation(ProbeVerdict.ERROR, "exec failed")
    )


def _results() -> tuple[TestResult, ...]:
    return (
        TestResult(
            "suites/test_royal_bank_isolation.py::test_a[finland]",
            Outcome.PASSED,
            "test_royal_bank_isolation",
            ("isolation", "royal_bank"),
        ),
        TestResult(
            "suites/test_royal_bank_isolation.py::test_b[finland]",
            Outcome.FAILED,
            "test_royal_bank_isolation",
            ("isolation", "royal_bank"),
            reason="1 flow disagrees",
            message="expected:\n. X  \n",
            failure_kind=FailureKind.ASSERTION,
            cases=(_leak_case(),),
        ),
        TestResult(
            "suites/test_dns_egress.py::test_c[finland]",
            Outcome.ERROR,
            "test_dns_egress",
            ("dns",),
            reason="probe error",
            failure_kind=FailureKind.INFRASTRUCTURE,
            cases=(_error_case(),),
        ),
        TestResult(
            "suites/test_tier_ordering.py::test_d",
            Outcome.NOT_SUPPORTED,
            "test_tier_ordering",
            ("tiers",),
            reason="tiers need Calico >= 3.29",
        ),
        TestResult(
            "suites/test_mtu.py::test_e", Outcome.SKIPPED, "test_mtu", ("mtu",), reason="needs a dataplane"
        ),
    )


def test_statistics_count_each_outcome_and_the_wrong_cases() -> None:
    statistics = Statistics.of(_results())
    assert (statistics.passed, statistics.failed, statistics.errors) == (1, 1, 1)
    assert (statistics.skipped, statistics.not_supported, statistics.tests) == (1, 1, 5)
    assert (statistics.cases, statistics.wrong_cases) == (2, 2)


@pytest.mark.parametrize(
    ("statistics", "result"),
    [
        (Statistics(passed=3), "success"),
        # a green run is green: what it skipped is counted and listed with its reason, not a verdict
        (Statistics(passed=3, skipped=1), "success"),
        (Statistics(passed=3, not_supported=1), "success"),
        # nothing passed, nothing proven: only skips
        (Statistics(skipped=1, not_supported=1), "partial"),
        (Statistics(passed=3, errors=1, skipped=1), "error"),
        (Statistics(passed=3, failed=1, errors=1), "failure"),
        (Statistics(), "empty"),
    ],
)
def test_result_ranks_failure_over_error_over_success(statistics: Statistics, result: str) -> None:
    assert statistics.result == result


def test_summary_names_only_the_counts_that_occurred() -> None:
    assert Statistics(passed=2, not_supported=1).summary() == "2 passed, 1 not supported: success"
    assert Statistics(failed=1, errors=1).summary() == "1 failed, 1 infrastructure error: failure"


def test_profiles_group_by_marker_and_suites_by_module() -> None:
    report = ConformanceReport(FINGERPRINT, "2026-01-01T00:00:00Z", 1, _results())
    profiles = {profile.name: profile for profile in report.profiles()}
    assert sorted(profiles) == ["dns", "isolation", "mtu", "royal_bank", "tiers"]
    assert profiles["isolation"].statistics.result == "failure"
    assert profiles["tiers"].statistics.result == "partial"
    suites = {suite.name for suite in report.suites()}
    assert suites == {"test_royal_bank_isolation", "test_dns_egress", "test_tier_ordering", "test_mtu"}


def test_report_data_lists_every_problem_with_its_reason_and_diff() -> None:
    data = ConformanceReport(FINGERPRINT, "2026-01-01T00:00:00Z", 1, _results()).to_data()
    (failure,) = data["failures"]
    assert failure["failureKind"] == "assertion"
    assert failure["wrongCases"][0]["result"] == "leak"
    assert failure["wrongCases"][0]["decidedBy"] == "NetworkPolicy royal-bank/allow-all rule 0"
    # the diff names the cluster and marks the leaking pair X (rows are sources, columns destinations)
    header, *rows = failure["diff"].splitlines()
    assert header == "finland:"
    (leak_row,) = [row for row in rows if row.startswith("royal-bank/ledger")]
    assert leak_row.split("|")[1].strip() == "leak TCP 8443"
    (error,) = data["errors"]
    assert error["wrongCases"][0]["result"] == "unproven"
    assert data["notSupported"] == [
        {"test": "suites/test_tier_ordering.py::test_d", "reason": "tiers need Calico >= 3.29"}
    ]
    assert data["skipped"] == [{"test": "suites/test_mtu.py::test_e", "reason": "needs a dataplane"}]


def test_written_report_is_valid_yaml_of_the_schema(tmp_path: Path) -> None:
    path = write_report(
        ConformanceReport(FINGERPRINT, "2026-01-01T00:00:00Z", 1, _results()), tmp_path / "r.yaml"
    )
    text = path.read_text()
    assert path.stat().st_mode & 0o777 == 0o644  # an artifact CI and colleagues read
    assert "SCHEMA PROBLEM" not in text
    data = read_report(path)
    assert data["schemaVersion"] == 1
    assert data["statistics"]["failed"] == 1
    # multi-line text stays readable: a literal block, not an escaped one-line string
    assert "message: |" in text


def test_schema_refuses_a_report_with_a_missing_field() -> None:
    data = ConformanceReport(FINGERPRINT, "2026-01-01T00:00:00Z", 0, _results()).to_data()
    del data["notSupported"]
    assert report_problems(data) == ["(top level): 'notSupported' is a required property"]


def test_schema_refuses_an_unknown_outcome_in_a_case() -> None:
    data = ConformanceReport(FINGERPRINT, "2026-01-01T00:00:00Z", 1, _results()).to_data()
    data["failures"][0]["wrongCases"][0]["observed"] = "maybe"
    (problem,) = report_problems(data)
    assert problem.startswith("failures.0.wrongCases.0.observed:")


def test_reading_another_schema_version_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump({"schemaVersion": 99}))
    with pytest.raises(LocatedError, match=r"old\.yaml: schemaVersion 99 is not 1"):
        read_report(path)


def test_reading_broken_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: x\nkind: [unclosed\n")
    with pytest.raises(LocatedError, match=r"broken\.yaml:\d+: not YAML"):
        read_report(path)


def test_long_messages_are_bounded_and_say_where_the_rest_is() -> None:
    result = TestResult("suites/test_x.py::t", Outcome.FAILED, "test_x", message="x" * 30_000)
    message = result.problem_data()["message"]
    assert len(message) < 21_000
    assert message.endswith("more characters in the JUnit XML]")
