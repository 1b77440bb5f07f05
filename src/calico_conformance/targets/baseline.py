"""`--baseline BASE` on the static target: is each failure new in this change, or was it already there?

A pull request's static run fails when the changed policy set breaks a requirement; but a policy set
that was already failing before the change fails too, and a reviewer needs to tell the two apart. With
`--baseline`, the static target is wrapped (`BaselineTarget`): every observation a test makes of the
policy set under review is also made of the baseline set, and the requirement the test compared it with
is checked against both. When a test fails, its report says (a section, a `baseline` user property the
JUnit XML carries, and a terminal summary line):

* `new`: the baseline meets every requirement the test checked, so this change broke it;
* `already failing`: the baseline breaks the same flows; the change is not to blame;
* `partly new`: the baseline fails too, but this change breaks flows the baseline did not (named);
* `not compared`: the test observed nothing of the policy set (a synthetic tier scenario, a failure
  before any observation).

Only the policy set differs between the two observations: the layout, the clusters and the flows probed
are the run's.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

import pytest

from calico_conformance.config import RunConfig
from calico_conformance.oracle.model import ResourceSet, Scenario
from calico_conformance.reachability import ExpectedMatrix, Flow, ObservedMatrix, compare
from calico_conformance.targets.base import ClusterFacts
from calico_conformance.targets.static import StaticTarget
from calico_conformance.tenancy.layout import TenancyLayout

BASELINE_PLUGIN_NAME = "calico-conformance-baseline"
PROPERTY = "baseline"


@dataclass
class BaselineRecorder:
    """The pytest plugin that attributes each failure; `BaselineTarget` feeds it the comparisons."""

    baseline: str  # how the baseline was given, for messages
    current: str | None = None
    # per test node id: (flows the change breaks, flows the baseline breaks), per observation
    observations: dict[str, list[tuple[frozenset[Flow], frozenset[Flow]]]] = field(default_factory=dict)

    def record(self, expected: ExpectedMatrix, observed: ObservedMatrix, baseline: ObservedMatrix) -> None:
        if self.current is None:
            return
        wrong = frozenset(m.flow for m in compare(expected, observed).mismatches)
        wrong_before = frozenset(m.flow for m in compare(expected, baseline).mismatches)
        self.observations.setdefault(self.current, []).append((wrong, wrong_before))

    def verdict(self, nodeid: str) -> tuple[str, str]:
        """(`new` | `already failing` | `partly new` | `not compared`, the sentence the report shows)."""
        seen = self.observations.get(nodeid)
        if not seen:
            return "not compared", f"not compared with the baseline {self.baseline}: the test observed no policy set"
        wrong = frozenset().union(*(now for now, _ in seen))
        wrong_before = frozenset().union(*(before for _, before in seen))
        if not wrong_before:
            return "new", f"new in this change: the baseline {self.baseline} meets every requirement this test checks"
        fresh = sorted(wrong - wrong_before)
        if not fresh:
            return "already failing", f"already failing with the baseline {self.baseline} (the same flows break there)"
        shown = ", ".join(map(str, fresh[:5])) + (f" and {len(fresh) - 5} more" if len(fresh) > 5 else "")
        return "partly new", f"failing with the baseline {self.baseline} too, but this change also breaks: {shown}"

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, None, None]:
        self.current = item.nodeid
        yield
        self.current = None
        self.observations.pop(item.nodeid, None)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item) -> Generator[None, pytest.TestReport, None]:
        outcome = yield
        report = outcome.get_result()
        if report.failed and report.when == "call":
            status, sentence = self.verdict(item.nodeid)
            report.user_properties.append((PROPERTY, status))
            item.user_properties.append((PROPERTY, status))  # the JUnit XML writes the teardown report's
            report.sections.append(("baseline", sentence))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        failed = [r for r in terminalreporter.stats.get("failed", []) if getattr(r, "when", "") == "call"]
        if not failed:
            return
        terminalreporter.section(f"failures against the baseline {self.baseline}")
        for report in failed:
            status = dict(report.user_properties).get(PROPERTY, "not compared")
            terminalreporter.line(f"{status.upper():<16} {report.nodeid}")


class BaselineTarget:
    """The static target of the run, whose observations are also made of the baseline policy set."""

    name = "static"
    has_dataplane = False

    def __init__(self, target: StaticTarget, baseline: StaticTarget, recorder: BaselineRecorder) -> None:
        self._target, self._baseline, self._recorder = target, baseline, recorder

    def prepare(self) -> None:
        self._target.prepare()
        self._baseline.prepare()

    def facts(self, cluster: str) -> ClusterFacts:
        return self._target.facts(cluster)

    def observe(self, cluster: str, expected: ExpectedMatrix) -> ObservedMatrix:
        observed = self._target.observe(cluster, expected)
        self._recorder.record(expected, observed, self._baseline.observe(cluster, expected))
        return observed

    def observe_scenario(self, cluster: str, scenario: Scenario) -> ObservedMatrix:
        return self._target.observe_scenario(cluster, scenario)  # its own policies: nothing to compare

    def oracle(self, cluster: str) -> object:
        return self._target.oracle(cluster)

    def close(self) -> None:
        self._target.close()
        self._baseline.close()


def with_baseline(
    config: pytest.Config, target: object, run: RunConfig, layout: TenancyLayout, baseline: ResourceSet
) -> BaselineTarget:
    """Wrap the run's static target; the recorder plugin is registered once per process."""
    if not isinstance(target, StaticTarget):
        raise pytest.UsageError(f"--baseline only applies to --target=static, not --target={run.target}")
    recorder = config.pluginmanager.get_plugin(BASELINE_PLUGIN_NAME)
    if recorder is None:
        recorder = BaselineRecorder(str(run.baseline))
        config.pluginmanager.register(recorder, BASELINE_PLUGIN_NAME)
    return BaselineTarget(target, StaticTarget(run, layout, baseline), recorder)
