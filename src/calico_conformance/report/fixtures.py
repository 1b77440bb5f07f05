"""Fixtures of the reporting plugin: `record_case` for the suites, `report_run_context` for Allure.

The collector registers this module as a plugin, so every test can ask for `record_case`. A suite calls
it once per checked flow, or once per compared matrix (what `fixtures/reachability.py`'s
`must_match_requirement` does before it asserts):

    comparison = compare(expected, target.observe(cluster, expected))
    record_case.comparison(cluster, comparison)
    ...  # then fail with the matrices and a reproduce command unless comparison.ok

    record_case(cluster, flow, expected, observed, deciding)   # a single flow

Each case becomes a row of the ConformanceReport, part of the test's matrix attached to Allure, and
counts in the test's one JUnit property. `record_case.label(name, *values)` adds Allure labels
(namespace, tier, defect) and `record_case.reproduce(path, command)` names the scenario a failure wrote. A test that records a wrong case and then passes
anyway is turned into a failure by the collector: recording is evidence, not decoration.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from calico_conformance.reachability import (
    DEFAULT_DENY_VERDICTS,
    Comparison,
    Expectation,
    Flow,
    Observation,
    ProbeVerdict,
)
from calico_conformance.report.allure_results import allure_results_dir
from calico_conformance.report.cases import CaseRecord
from calico_conformance.report.collector import (
    REPORT_PLUGIN_NAME,
    ReportCollector,
    recorded_cases,
    recorded_labels,
    set_reproduce,
)
from calico_conformance.suite.defects import Defect


class CaseRecorder:
    """Records cases on one test item; callable for a single flow."""

    def __init__(self, item: pytest.Item) -> None:
        self._item = item
        self._cases = recorded_cases(item)

    def __call__(
        self,
        cluster: str,
        flow: Flow,
        expected: Expectation | bool,
        observed: Observation | ProbeVerdict,
        deciding: str = "",
        *,
        deny_verdicts: frozenset[ProbeVerdict] = DEFAULT_DENY_VERDICTS,
    ) -> CaseRecord:
        """Record one flow: `deciding` names the policy and rule that decided it (defaults to the
        observation's or the expectation's `why`); `deny_verdicts` is the cluster's deny action."""
        if isinstance(expected, bool):
            expected = Expectation(expected)
        if isinstance(observed, ProbeVerdict):
            observed = Observation(observed)
        case = CaseRecord.judge(cluster, flow, expected, observed, deciding, deny_verdicts=deny_verdicts)
        self._add(case)
        return case

    def comparison(
        self, cluster: str, comparison: Comparison, defects: Mapping[Flow, Defect] | None = None
    ) -> list[CaseRecord]:
        """Record every flow of a compared matrix, keeping the comparison's verdict on each flow and,
        where known, whose fault a wrong flow is (`defects.classify`)."""
        cases = CaseRecord.from_comparison(cluster, comparison, defects or {})
        for case in cases:
            self._add(case)
        return cases

    def label(self, name: str, *values: str) -> None:
        """Label the test in Allure (`namespace`, `tier`, `defect`...); repeated values are kept once."""
        known = recorded_labels(self._item).setdefault(name, [])
        known.extend(value for value in values if value and value not in known)

    def reproduce(self, scenario: Path, command: str) -> None:
        """Name the scenario file a failure wrote and the command that replays it (attached, listed)."""
        set_reproduce(self._item, scenario, command)

    @property
    def cases(self) -> tuple[CaseRecord, ...]:
        return tuple(self._cases)

    def _add(self, case: CaseRecord) -> None:
        self._cases.append(case)


@pytest.fixture
def record_case(request: pytest.FixtureRequest) -> CaseRecorder:
    """Record checked flows of this test for JUnit, the ConformanceReport and Allure."""
    if not isinstance(request.node, pytest.Item):
        raise TypeError("record_case is a function-scoped fixture: it records on the running test")
    return CaseRecorder(request.node)


@pytest.fixture(scope="session", autouse=True)
def report_run_context(request: pytest.FixtureRequest) -> None:
    """Attach the run's fingerprint, tenancy layout and policy set to Allure (only with --alluredir)."""
    collector = request.config.pluginmanager.get_plugin(REPORT_PLUGIN_NAME)
    if isinstance(collector, ReportCollector) and allure_results_dir(request.config) is not None:
        collector.attach_run_context()
