"""The reporting plugin end to end: synthetic suites run in a pytest subprocess, reports read back.

The suites here are small on purpose: each test produces one known outcome (a leak, a probe error, a
NOT_SUPPORTED skip, a setup error), so the report's counts, the exit status and the JUnit properties can be
checked against what the tests were written to do.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from calico_conformance.report.collector import EXIT_INFRASTRUCTURE_ERROR
from calico_conformance.report.html import section_anchor
from calico_conformance.report.schema import read_report

pytest_plugins = ["pytester"]

REPOSITORY = Path(__file__).resolve().parents[2]

HEADER = """
import pytest
from calico_conformance.reachability import (
    Expectation, ExpectedMatrix, Flow, Observation, ObservedMatrix, ProbeVerdict, compare,
)
from calico_conformance.report.outcomes import InfrastructureError, not_supported

LEDGER_TO_SHOP = Flow("royal-bank/ledger", "customer-a/shop", 8443, "TCP")
"""

PASSING = """
@pytest.mark.isolation
@pytest.mark.royal_bank
def test_isolated(record_case):
    record_case("finland", LEDGER_TO_SHOP, False, ProbeVerdict.DROPPED, "default-deny-all")

@pytest.mark.tiers
def test_tiers_on_old_calico():
    not_supported("tiers need Calico >= 3.29")

@pytest.mark.mtu
def test_wire_mtu():
    pytest.skip("needs a dataplane")
"""

LEAKING = """
@pytest.mark.isolation
def test_leak(record_case):
    case = record_case("finland", LEDGER_TO_SHOP, False, Observation(ProbeVerdict.ALLOWED, why="allow-all rule 0"))
    assert case.matched, "royal-bank reaches customer-a"
"""

PROBE_ERROR = """
@pytest.mark.dns
def test_probe_error(record_case):
    comparison = compare(
        ExpectedMatrix({LEDGER_TO_SHOP: Expectation(False)}),
        ObservedMatrix({LEDGER_TO_SHOP: Observation(ProbeVerdict.ERROR, detail="exec failed")}),
    )
    record_case.comparison("finland", comparison)
    assert comparison.ok, comparison.render()

@pytest.fixture
def cluster_gone():
    raise InfrastructureError("the kind cluster is gone")

@pytest.mark.cidr
def test_setup_breaks(cluster_gone):
    pass
"""

LONG_PARAMETER = """
class Case:
    def __init__(self, name):
        self.name, self.flows = name, list(range(3000))

    def __str__(self):
        return self.name

    def __repr__(self):
        return f"Case({self.name!r}, flows={self.flows!r})"

@pytest.mark.parametrize("case", [Case("finland-royal-bank")], ids=str)
def test_long_case(case):
    pass
"""

STALE_SCENARIO_GONE = """
def test_the_earlier_runs_scenario_is_gone_when_tests_start():
    from pathlib import Path
    assert not Path("reports/scenarios/finland-test_gone.yaml").exists()
"""

NEEDS_INPUTS = """
@pytest.mark.conformance
def test_a_suite_test():  # a suite test: the preflight reads the register, layout and policy set
    pass
"""

FORGOTTEN_ASSERTION = """
@pytest.mark.isolation
def test_records_a_leak_and_forgets_to_assert(record_case):
    record_case("germany", LEDGER_TO_SHOP, False, ProbeVerdict.ALLOWED)
"""


FINLAND_KIND_CONFIG = """kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
name: finland
networking:
  podSubnet: 10.244.0.0/16
  serviceSubnet: 10.96.0.0/16
  disableDefaultCNI: true
nodes:
  - role: control-plane
  - role: worker
  - role: worker
"""


def _suite(pytester: pytest.Pytester, *bodies: str) -> None:
    pytester.mkdir("suites")
    (pytester.path / "suites" / "test_synthetic.py").write_text(HEADER + "".join(bodies))


@dataclass(frozen=True)
class MixedRun:
    """One run of a suite with a pass, a leak, a probe error and a setup error, with Allure on."""

    directory: Path
    returncode: int
    stdout: str

    def report(self) -> dict[str, object]:
        return read_report(self.directory / "reports" / "conformance-report.yaml")


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory: pytest.TempPathFactory) -> MixedRun:
    """Several tests read the same run: one subprocess instead of four keeps the plugin tests quick."""
    directory = tmp_path_factory.mktemp("mixed")
    (directory / "suites").mkdir()
    (directory / "suites" / "test_synthetic.py").write_text(
        HEADER + PASSING + LEAKING + PROBE_ERROR + LONG_PARAMETER
    )
    (directory / "kind-configs").mkdir()
    (directory / "kind-configs" / "finland.yaml").write_text(FINLAND_KIND_CONFIG)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "suites",
            "--target=static",
            "--clusters=finland",
            f"--report-dir={directory / 'reports'}",
            f"--junitxml={directory / 'reports' / 'junit.xml'}",
            f"--alluredir={directory / 'allure'}",
            "-p",
            "no:cacheprovider",
        ],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )
    return MixedRun(directory, completed.returncode, completed.stdout + completed.stderr)


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "suites",
        "--target=static",
        f"--report-dir={pytester.path / 'reports'}",
        f"--junitxml={pytester.path / 'reports' / 'junit.xml'}",
        "-p",
        "no:cacheprovider",
        *args,
    )


def _report(pytester: pytest.Pytester) -> dict[str, object]:
    return read_report(pytester.path / "reports" / "conformance-report.yaml")


def test_a_clean_run_exits_0_and_records_skips_and_not_supported(pytester: pytest.Pytester) -> None:
    _suite(pytester, PASSING)
    result = _run(pytester)
    assert result.ret == 0
    report = _report(pytester)
    assert report["result"] == "success"  # green: what it skipped is listed with the reason
    assert report["statistics"]["passed"] == 1  # type: ignore[index]
    assert report["notSupported"] == [
        {"test": "suites/test_synthetic.py::test_tiers_on_old_calico", "reason": "tiers need Calico >= 3.29"}
    ]
    assert report["skipped"] == [
        {"test": "suites/test_synthetic.py::test_wire_mtu", "reason": "needs a dataplane"}
    ]
    result.stdout.fnmatch_lines(["*calico-conformance*", "tiers: 1 not supported: partial", "report: *"])


def test_a_failed_assertion_exits_1_even_beside_infrastructure_errors(mixed_run: MixedRun) -> None:
    assert mixed_run.returncode == 1, mixed_run.stdout
    report = mixed_run.report()
    assert (report["statistics"]["failed"], report["statistics"]["errors"]) == (1, 2)  # type: ignore[index]
    (failure,) = report["failures"]  # type: ignore[misc]
    assert failure["failureKind"] == "assertion"
    assert failure["wrongCases"][0]["decidedBy"] == "allow-all rule 0"


def test_infrastructure_errors_alone_exit_with_their_own_status(pytester: pytest.Pytester) -> None:
    _suite(pytester, PASSING, PROBE_ERROR)
    result = _run(pytester)
    assert result.ret == EXIT_INFRASTRUCTURE_ERROR
    report = _report(pytester)
    assert report["exitStatus"] == EXIT_INFRASTRUCTURE_ERROR
    errors = {error["test"].split("::")[1]: error for error in report["errors"]}  # type: ignore[attr-defined]
    assert errors["test_probe_error"]["phase"] == "call"
    assert errors["test_probe_error"]["wrongCases"][0]["result"] == "unproven"
    assert errors["test_setup_breaks"]["phase"] == "setup"
    assert "the kind cluster is gone" in errors["test_setup_breaks"]["headline"]
    result.stdout.fnmatch_lines([f"exit status {EXIT_INFRASTRUCTURE_ERROR}: infrastructure errors only*"])


def test_a_test_that_records_a_leak_cannot_pass(pytester: pytest.Pytester) -> None:
    _suite(pytester, FORGOTTEN_ASSERTION)
    result = _run(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["*1 recorded case(s) disagree with their expectation, but the test did not fail*"]
    )
    assert _report(pytester)["failures"][0]["wrongCases"][0]["result"] == "leak"  # type: ignore[index]


def test_junit_carries_one_compact_line_of_cases_not_a_property_per_flow(mixed_run: MixedRun) -> None:
    junit = ET.parse(mixed_run.directory / "reports" / "junit.xml")
    cases = {case.get("name"): case for case in junit.iter("testcase")}
    properties = [(p.get("name"), p.get("value")) for p in cases["test_leak"].iter("property")]
    assert properties == [("cases", "finland: 1 flows, 1 wrong (1 leak)"), ("failure_kind", "assertion")]
    assert [(p.get("name"), p.get("value")) for p in cases["test_isolated"].iter("property")] == [
        ("cases", "finland: 1 flows, 0 wrong")
    ]
    assert ("failure_kind", "infrastructure") in [
        (p.get("name"), p.get("value")) for p in cases["test_probe_error"].iter("property")
    ]


def test_cases_recorded_on_xdist_workers_reach_the_report(pytester: pytest.Pytester) -> None:
    _suite(pytester, PASSING, LEAKING, PROBE_ERROR)
    result = _run(pytester, "-n", "2")
    assert result.ret == 1
    report = _report(pytester)
    assert report["statistics"]["cases"] == 3  # type: ignore[index]
    assert report["statistics"]["wrongCases"] == 2  # type: ignore[index]
    # the report's failure text is the test's, without the line xdist adds to name its worker
    assert not any(f["message"].startswith("[gw") for f in report["failures"])  # type: ignore[attr-defined]


def test_allure_gets_matrices_run_context_and_fingerprint(mixed_run: MixedRun) -> None:
    allure = mixed_run.directory / "allure"
    environment = (allure / "environment.properties").read_text()
    assert "target=static\n" in environment
    assert "cluster.finland.podSubnet=10.244.0.0/16\n" in environment
    results = [json.loads(path.read_text()) for path in allure.glob("*-result.json")]
    leak = next(result for result in results if result["name"] == "test_leak")
    names = {attachment["name"] for attachment in leak["attachments"]}
    assert names == {"finland: reachability (text)", "finland: reachability (HTML)"}
    labels = {(label["name"], label["value"]) for label in leak["labels"]}
    assert {("cluster", "finland"), ("module", "test_synthetic")} <= labels
    containers = [json.loads(path.read_text()) for path in allure.glob("*-container.json")]
    context = [
        attachment["name"]
        for container in containers
        for before in container.get("befores", [])
        if before["name"] == "report_run_context"
        for attachment in before.get("attachments", [])
    ]
    assert "run fingerprint" in context
    assert "policy set" in context


def test_allure_shows_a_long_parameter_by_its_id(mixed_run: MixedRun) -> None:
    results = [
        json.loads(path.read_text()) for path in (mixed_run.directory / "allure").glob("*-result.json")
    ]
    (long_case,) = [result for result in results if result["name"].startswith("test_long_case")]
    assert long_case["parameters"] == [{"name": "case", "value": "'finland-royal-bank'"}]


def test_allure_sorts_failures_by_whose_fault_they_are(mixed_run: MixedRun) -> None:
    categories = json.loads((mixed_run.directory / "allure" / "categories.json").read_text())
    # Allure 3's default report takes them from its configuration, written beside them
    allure3 = json.loads((mixed_run.directory / "allure" / "allurerc.json").read_text())
    assert allure3["categories"]["rules"] == categories
    assert [category["name"] for category in categories] == [
        "masked policy defect",
        "cluster defect",
        "policy defect",
        "infrastructure error",
        "infrastructure error",
    ]
    by_name = {category["name"]: category for category in categories if "messageRegex" in category}

    def matches(category: str, message: str) -> bool:  # Allure 2 matches the whole message
        return re.fullmatch(by_name[category]["messageRegex"], message) is not None

    assert matches("policy defect", "Failed: POLICY DEFECT: isolation — does not hold\n  2 of 9 flows wrong")
    assert matches("masked policy defect", "Failed: MASKED POLICY DEFECT: x\nmore")
    assert not matches(
        "cluster defect", "Failed: POLICY DEFECT: x\nthe cluster defect words later do not count"
    )
    assert not matches("policy defect", "Failed: something else\nPOLICY DEFECT")


def test_the_fingerprint_carries_the_register_cidrs(mixed_run: MixedRun) -> None:
    fingerprint = mixed_run.report()["fingerprint"]
    assert fingerprint["clusters"] == [  # type: ignore[index]
        {"name": "finland", "podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/16"}
    ]
    assert fingerprint["target"] == "static"  # type: ignore[index]


def test_a_run_of_no_suite_test_writes_no_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_unit():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess(
        f"--report-dir={pytester.path / 'reports'}", "-p", "no:cacheprovider"
    )
    assert result.ret == 0
    assert not (pytester.path / "reports" / "conformance-report.yaml").exists()


def test_matrices_page_opens_with_the_failing_tests_linked_to_their_matrices(mixed_run: MixedRun) -> None:
    page = (mixed_run.directory / "reports" / "matrices.html").read_text()
    anchor = section_anchor("suites/test_synthetic.py::test_leak", "finland")
    summary = page.index('<table class="summary">')
    assert page.index(f'<a href="#{anchor}">', summary) < page.index(f'id="{anchor}"')  # linked from the top
    assert "suites/test_synthetic.py::test_leak on finland" in page
    assert "leak: royal-bank/ledger -&gt; customer-a/shop 8443/TCP" in page
    # failing tests before passing ones, which are folded
    assert page.index(f'id="{anchor}"') < page.index('<details class="passed"')
    assert "passed: suites/test_synthetic.py::test_isolated on finland" in page


def test_a_run_refused_in_preflight_keeps_the_last_runs_reports(pytester: pytest.Pytester) -> None:
    _suite(pytester, LEAKING, NEEDS_INPUTS)
    inputs = [
        f"--policies={REPOSITORY / 'policies' / 'reference'}",
        f"--kind-configs={REPOSITORY / 'kind-configs'}",
    ]
    assert _run(pytester, *inputs, f"--layout={REPOSITORY / 'policies' / 'tenancy.yaml'}").ret == 1
    reports = pytester.path / "reports"
    before = {path.name: path.read_bytes() for path in reports.iterdir() if path.is_file()}
    assert {"junit.xml", "conformance-report.yaml", "matrices.html"} <= set(before)
    refused = _run(pytester, *inputs, "--layout=no-such-layout.yaml")  # the preflight reads the inputs
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*no-such-layout.yaml*"])
    after = {path.name: path.read_bytes() for path in reports.iterdir() if path.is_file()}
    assert after == before


def test_a_run_that_writes_reports_removes_the_scenarios_of_earlier_runs(pytester: pytest.Pytester) -> None:
    _suite(pytester, PASSING, STALE_SCENARIO_GONE)
    scenarios = pytester.path / "reports" / "scenarios"
    scenarios.mkdir(parents=True)
    (scenarios / "finland-test_gone.yaml").write_text("# a failure of an earlier run\n")
    result = _run(pytester)
    assert result.ret == 0, result.stdout.str()  # gone before the first test ran, and after the run
    assert list(scenarios.iterdir()) == []
