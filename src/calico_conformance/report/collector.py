"""The reporting plugin: collects every suite test's outcome and cases, writes the reports, sets the exit code.

Wiring (done by `plugin.py`, in every process, xdist workers included)::

    collector = ReportCollector(run_config)
    config.pluginmanager.register(collector, REPORT_PLUGIN_NAME)

`plugin.py` registers `calico_conformance.report.fixtures` beside it (the `record_case` and
`report_run_context` fixtures, which read this collector), so suites need no import. On each process the collector turns recorded
cases into data on the pytest report (`report.conformance`), which xdist ships to the controller, and
attaches matrices to Allure. On the controller (or the only process) it folds the setup / call /
teardown reports of every suite test into one outcome and, at the end of the session, writes:

* `<report-dir>/conformance-report.yaml` — the versioned ConformanceReport (`report/model.py`);
* `<report-dir>/matrices.html` — a linked summary of the failing tests, then every test's matrix;
* `<alluredir>/environment.properties` and `categories.json` — the run fingerprint and the defect
  categories, when `--alluredir` is given.

The reproduce scenarios of this run's failures stay in `<report-dir>/scenarios/`; those of earlier runs
are removed once the preflight has passed (and, for xdist runs, when the new report is written). A run that stops in the preflight (a bad option, a target
that cannot start) writes nothing and keeps the last run's reports, the JUnit XML included.

JUnit XML is pytest's own `--junitxml`; a test that recorded cases gets one compact property (`cases`:
flows and wrong flows per cluster), a failed one its reproduce command (`reproduce`) and whether it
failed an assertion or broke (`failure_kind`).

Exit status: pytest's own, except that a run whose only problems are infrastructure errors (nothing
proven wrong, something not proven at all) exits `EXIT_INFRASTRUCTURE_ERROR` (6) instead of 1. A failed
assertion anywhere keeps 1. Either is non-zero: neither can pass a gate.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from calico_conformance.config import LIVE_TARGETS, RunConfig
from calico_conformance.report.allure_results import (
    allure_results_dir,
    attach_comparisons,
    attach_labels,
    attach_run_context,
    attach_scenario,
    fingerprint_facts,
    short_parameters,
    write_categories,
    write_environment,
)
from calico_conformance.report.cases import JUNIT_PROPERTY, CaseRecord, comparisons_by_cluster, junit_summary
from calico_conformance.report.fingerprint import policy_set_text, run_fingerprint
from calico_conformance.report.html import MATRICES_FILE_NAME, MatrixSection, matrices_document
from calico_conformance.report.model import (
    PROFILE_MARKERS,
    REPORT_FILE_NAME,
    ConformanceReport,
    Fingerprint,
    TestResult,
)
from calico_conformance.report.outcomes import (
    FailureKind,
    Outcome,
    failure_kind,
    is_not_supported,
    not_supported_reason,
    skip_reason,
)
from calico_conformance.report.preflight import keep_previous_junit, remove_stale_scenarios
from calico_conformance.report.writer import dump_report_data, write_report

REPORT_PLUGIN_NAME = "calico-conformance-report"
FIXTURES_PLUGIN_NAME = "calico-conformance-report-fixtures"

# pytest uses 0-5; 6 is ours: infrastructure errors and nothing else went wrong (see the module doc).
EXIT_INFRASTRUCTURE_ERROR = 6
EXIT_MEANINGS = {
    0: "every selected test passed or was skipped with a reason",
    1: "at least one test failed: a requirement does not hold",
    2: "the run was interrupted or collection failed",
    3: "pytest internal error",
    4: "usage error: bad option or bad input (file:line: why)",
    5: "no tests were selected",
    EXIT_INFRASTRUCTURE_ERROR: "infrastructure errors only: nothing was proven wrong, but not everything was proven",
}

CASES_KEY = pytest.StashKey[list[CaseRecord]]()  # the cases `record_case` recorded on an item
LABELS_KEY = pytest.StashKey[dict[str, list[str]]]()  # Allure labels `record_case.label` added
REPRODUCE_KEY = pytest.StashKey[tuple[Path, str]]()  # the scenario a failure wrote, and its command
REPORT_ATTRIBUTE = "conformance"  # the attribute on TestReport that carries our data across xdist
XDIST_WORKER_LINE = re.compile(r"^\[gw\d+\] \S+ -- Python ")  # xdist's "which worker ran it" line
FAIL_PREFIX = "Failed: "  # how pytest heads a `pytest.fail` message; the page shows the verdict first


def recorded_cases(item: pytest.Item) -> list[CaseRecord]:
    """The (mutable) list of cases recorded on `item` so far."""
    return item.stash.setdefault(CASES_KEY, [])


def recorded_labels(item: pytest.Item) -> dict[str, list[str]]:
    """The (mutable) Allure labels recorded on `item` so far, by label name."""
    return item.stash.setdefault(LABELS_KEY, {})


def set_reproduce(item: pytest.Item, scenario: Path, command: str) -> None:
    item.stash[REPRODUCE_KEY] = (scenario, command)


def observed_label(run: RunConfig) -> str:
    """How the reports name what answered: `observed` (probes) or `oracle` (the static target)."""
    return "observed" if run.target in LIVE_TARGETS else "oracle"


def item_profiles(item: pytest.Item) -> list[str]:
    names = []
    for marker in item.iter_markers():
        if marker.name in PROFILE_MARKERS and marker.name not in names:
            names.append(marker.name)
    return names


def suite_of(nodeid: str) -> str:
    """The module stem of a node id: `suites/test_dns_egress.py::test_x[a]` -> `test_dns_egress`."""
    return Path(nodeid.split("::")[0]).stem


def in_scope(nodeid: str, profiles: list[str]) -> bool:
    """Whether a test belongs in the ConformanceReport: a suite test, not the project's own tests."""
    return bool(profiles) or "suites" in Path(nodeid.split("::")[0]).parts


class ReportCollector:
    """pytest plugin object; see the module docstring for how it is registered and what it writes."""

    def __init__(self, run_config: RunConfig) -> None:
        self.run_config = run_config
        self.results: dict[str, TestResult] = {}
        self.report_path: Path | None = None
        self.last_report: ConformanceReport | None = None
        self.preflight_refused = False
        self.scenarios: set[Path] = set()  # the reproduce scenarios this run wrote
        self._fingerprint: Fingerprint | None = None

    # --- every process ------------------------------------------------------------------------------

    @property
    def fingerprint(self) -> Fingerprint:
        if self._fingerprint is None:
            self._fingerprint = run_fingerprint(self.run_config)
        return self._fingerprint

    def attach_run_context(self) -> None:
        """Attach fingerprint, layout and policy set to Allure (called by `report_run_context`)."""
        attach_run_context(
            dump_report_data(self.fingerprint.to_data()),
            self.run_config.layout,
            policy_set_text([self.run_config.policies]),
        )

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> Generator[None, None, None]:
        """A preflight that refuses the run (plugin.py raises UsageError there) writes no report: the
        last run's JUnit XML is kept instead of being replaced by an empty one. A run that passed it and
        will write reports starts without the earlier runs' reproduce scenarios (in one process; under
        xdist the controller removes them when it writes the report, see `pytest_sessionfinish`)."""
        try:
            result = yield
        except pytest.UsageError:
            self.preflight_refused = True
            keep_previous_junit(config)
            raise
        if not hasattr(config, "workerinput") and any(in_scope(i.nodeid, item_profiles(i)) for i in items):
            remove_stale_scenarios(self.run_config.report_dir, keep=())
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        try:
            return (yield)
        finally:
            if allure_results_dir(item.config) is not None:
                self._attach(item)

    def _attach(self, item: pytest.Item) -> None:
        cases = item.stash.get(CASES_KEY, [])
        if cases:
            attach_comparisons(item.name, comparisons_by_cluster(cases), observed_label(self.run_config))
        labels: dict[str, list[str]] = {"module": [suite_of(item.nodeid)]}
        labels.update(recorded_labels(item))
        attach_labels(labels)
        if REPRODUCE_KEY in item.stash:
            attach_scenario(*item.stash[REPRODUCE_KEY])

    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        if allure_results_dir(item.config) is not None and hasattr(item, "callspec"):
            short_parameters(item.callspec.params)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        cases = item.stash.get(CASES_KEY, [])
        data: dict[str, Any] = {"profiles": item_profiles(item), "suite": suite_of(item.nodeid)}
        if call.when == "call":
            data["cases"] = [case.to_data() for case in cases]
            if cases:
                item.user_properties.append((JUNIT_PROPERTY, junit_summary(cases)))
            if REPRODUCE_KEY in item.stash:
                scenario, command = item.stash[REPRODUCE_KEY]
                data["scenario"] = str(scenario)
                item.user_properties.append(("reproduce", command))
            wrong = [case for case in cases if not case.matched]
            if report.failed and call.excinfo is not None:
                kind = failure_kind(call.excinfo.value)
                if kind is FailureKind.ASSERTION and wrong and all(case.unproven for case in wrong):
                    kind = FailureKind.INFRASTRUCTURE  # the assertion only says probes proved nothing
                data["failureKind"] = str(kind)
                item.user_properties.append(("failure_kind", str(kind)))
            elif report.passed and wrong and not hasattr(report, "wasxfail"):
                # A test must never pass over a flow it recorded as wrong: that would let a broken
                # isolation through a gate because a suite forgot its assertion.
                report.outcome = "failed"
                report.longrepr = (
                    f"{len(wrong)} recorded case(s) disagree with their expectation, "
                    "but the test did not fail:\n" + "\n".join(f"  {_case_line(case)}" for case in wrong)
                )
                unproven_only = all(case.unproven for case in wrong)
                kind = FailureKind.INFRASTRUCTURE if unproven_only else FailureKind.ASSERTION
                data["failureKind"] = str(kind)
                item.user_properties.append(("failure_kind", str(kind)))
        setattr(report, REPORT_ATTRIBUTE, data)
        return report

    # --- the controller (or the only process) -------------------------------------------------------

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if not report.failed or not in_scope(report.nodeid, []):
            return
        self.results[report.nodeid] = TestResult(
            nodeid=report.nodeid,
            outcome=Outcome.ERROR,
            suite=suite_of(report.nodeid),
            phase="collect",
            reason=_headline(report),
            message=report.longreprtext,
            failure_kind=FailureKind.INFRASTRUCTURE,
        )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data: dict[str, Any] = getattr(report, REPORT_ATTRIBUTE, None) or {}
        profiles = list(data.get("profiles", []))
        if not in_scope(report.nodeid, profiles):
            return
        current = self.results.get(report.nodeid) or TestResult(
            report.nodeid, Outcome.PASSED, data.get("suite") or suite_of(report.nodeid), tuple(profiles)
        )
        current = replace(current, duration_s=current.duration_s + report.duration)
        self.results[report.nodeid] = _fold(current, report, data)
        if data.get("scenario"):
            self.scenarios.add(Path(data["scenario"]))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(session.config, "workerinput") or not self.results:
            return  # xdist workers report to the controller; a run without suite tests writes nothing
        status = int(exitstatus)
        results = tuple(self.results.values())
        failed = any(result.outcome is Outcome.FAILED for result in results)
        errored = any(result.outcome is Outcome.ERROR for result in results)
        if status == int(pytest.ExitCode.TESTS_FAILED) and errored and not failed:
            status = EXIT_INFRASTRUCTURE_ERROR
            session.exitstatus = status
        report = ConformanceReport(
            fingerprint=self.fingerprint,
            date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            exit_status=status,
            results=results,
            exit_meaning=EXIT_MEANINGS.get(status, "unknown exit status"),
        )
        report_dir = self.run_config.report_dir
        self.report_path = write_report(report, report_dir / REPORT_FILE_NAME)
        remove_stale_scenarios(report_dir, keep=self.scenarios)
        sections = [
            MatrixSection(
                result.nodeid,
                comparison,
                cluster,
                str(result.outcome),
                result.reason,
                tuple(
                    sorted({case.defect for case in result.cases if case.defect and case.cluster == cluster})
                ),
            )
            for result in results
            for cluster, comparison in comparisons_by_cluster(result.cases).items()
        ]
        facts = fingerprint_facts(self.fingerprint)
        (report_dir / MATRICES_FILE_NAME).write_text(
            matrices_document(
                "calico-conformance reachability", sections, facts, observed_label(self.run_config)
            ),
            encoding="utf-8",
        )
        allure_dir = allure_results_dir(session.config)
        if allure_dir is not None:
            write_environment(allure_dir, self.fingerprint)
            write_categories(allure_dir)
        self.last_report = report

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        report = self.last_report
        if report is None or self.report_path is None:
            return
        terminalreporter.section("calico-conformance")
        for profile in report.profiles():
            terminalreporter.write_line(f"{profile.name}: {profile.statistics.summary()}")
        terminalreporter.write_line(f"report: {self.report_path}")
        if report.exit_status == EXIT_INFRASTRUCTURE_ERROR:
            terminalreporter.write_line(
                f"exit status {EXIT_INFRASTRUCTURE_ERROR}: {EXIT_MEANINGS[EXIT_INFRASTRUCTURE_ERROR]}"
            )


def _fold(current: TestResult, report: pytest.TestReport, data: dict[str, Any]) -> TestResult:
    """Fold one phase's report into the test's outcome: the first problem of a test decides it."""
    if report.when == "call":
        current = replace(current, cases=tuple(CaseRecord.from_data(case) for case in data.get("cases", [])))
    if report.passed:
        return current
    if report.skipped:
        if hasattr(report, "wasxfail"):
            return replace(
                current, outcome=Outcome.SKIPPED, phase=report.when, reason=f"xfail: {report.wasxfail}"
            )
        reason = skip_reason(report.longrepr)
        if is_not_supported(reason):
            return replace(
                current, outcome=Outcome.NOT_SUPPORTED, phase=report.when, reason=not_supported_reason(reason)
            )
        return replace(current, outcome=Outcome.SKIPPED, phase=report.when, reason=reason or "skipped")
    # failed
    if current.outcome in (Outcome.FAILED, Outcome.ERROR):
        return replace(
            current, message=f"{current.message}\n\n{report.when} also failed:\n{report.longreprtext}"
        )
    if report.when == "call":
        kind = FailureKind(data.get("failureKind", FailureKind.ASSERTION.value))
        outcome = Outcome.FAILED if kind is FailureKind.ASSERTION else Outcome.ERROR
    else:
        kind, outcome = FailureKind.INFRASTRUCTURE, Outcome.ERROR
    return replace(
        current,
        outcome=outcome,
        phase=report.when,
        reason=_headline(report),
        message=_without_worker_line(report.longreprtext),
        failure_kind=kind,
    )


def _without_worker_line(text: str) -> str:
    """The failure text without the `[gw0] linux -- Python ...` line xdist puts above it."""
    return "\n".join(line for line in text.splitlines() if not XDIST_WORKER_LINE.match(line))


def _headline(report: pytest.TestReport | pytest.CollectReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = str(crash.message) if crash is not None else report.longreprtext
    line = next((line.strip() for line in text.splitlines() if line.strip()), "failed")
    return line.removeprefix(FAIL_PREFIX)


def _case_line(case: CaseRecord) -> str:
    expected = "allowed" if case.expected.allowed else "denied"
    return (
        f"{case.result}: {case.cluster}: {case.flow}: expected {expected}, observed {case.observed.verdict}"
    )
