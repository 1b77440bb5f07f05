"""The ConformanceReport: a versioned, diffable record of what a run proved, written as YAML.

Modelled on the Gateway API conformance report: the run's fingerprint (target, Calico version, clusters
and their CIDRs, digests of the policy set, layout and register), per-profile results (one profile per
suite marker such as `isolation` or `dns`, and one per suite module) and, for every test that did not
pass, why: the failure text with its diff, the unproven flows of an infrastructure error, the reason of a
skip or a NOT_SUPPORTED. Results and summary sentences are derived from the test results, never written
by hand. `schemaVersion` changes whenever a field changes meaning; `report/schema.py` validates it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from calico_conformance.config import LIVE_TARGETS
from calico_conformance.pair_matrix import pair_matrix, render_pair_text
from calico_conformance.report.cases import CaseRecord, comparisons_by_cluster
from calico_conformance.report.outcomes import FailureKind, Outcome

API_VERSION = "calico-conformance/v1"
KIND = "ConformanceReport"
SCHEMA_VERSION = 1
REPORT_FILE_NAME = "conformance-report.yaml"

# A failure message can carry whole matrices; past this size the report keeps the head and says so.
MAX_MESSAGE_CHARS = 20_000

# The markers that are profiles (issue 4 registers them); a test counts towards each one it carries.
PROFILE_MARKERS: tuple[str, ...] = (
    "isolation",
    "default_deny",
    "royal_bank",
    "tiers",
    "dns",
    "mtu",
    "cidr",
    "conformance",
)


@dataclass(frozen=True)
class ClusterFingerprint:
    name: str
    pod_subnet: str | None = None
    service_subnet: str | None = None

    def to_data(self) -> dict[str, Any]:
        return {"name": self.name, "podSubnet": self.pod_subnet, "serviceSubnet": self.service_subnet}


@dataclass(frozen=True)
class InputFingerprint:
    """A file or directory the run read, with a digest of its content (None when it did not exist)."""

    path: str
    sha256: str | None

    def to_data(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256}


@dataclass(frozen=True)
class Fingerprint:
    """What a run ran against: enough to tell two runs apart and to reproduce one."""

    target: str
    calico_version: str
    run_id: str
    clusters: tuple[ClusterFingerprint, ...]
    policies: InputFingerprint
    layout: InputFingerprint
    kind_configs: InputFingerprint
    tool_version: str
    register_error: str | None = None  # why the register's CIDRs are missing, when they are

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "target": self.target,
            "calicoVersion": self.calico_version,
            "runId": self.run_id,
            "clusters": [cluster.to_data() for cluster in self.clusters],
            "policies": self.policies.to_data(),
            "layout": self.layout.to_data(),
            "kindConfigs": self.kind_configs.to_data(),
            "toolVersion": self.tool_version,
        }
        if self.register_error:
            data["registerError"] = self.register_error
        return data


@dataclass(frozen=True)
class TestResult:
    """The outcome of one test (all its phases), or of a collector that failed to collect."""

    __test__ = False  # a data class, not a pytest test class

    nodeid: str
    outcome: Outcome
    suite: str  # the module stem, e.g. test_dns_egress
    profiles: tuple[str, ...] = ()
    phase: str = "call"  # where the outcome was decided: collect, setup, call or teardown
    reason: str = ""  # the skip / NOT_SUPPORTED reason, or the one-line headline of a failure or error
    message: str = ""  # the full failure or error text (matrices, reproduce command)
    failure_kind: FailureKind | None = None
    cases: tuple[CaseRecord, ...] = ()
    duration_s: float = 0.0

    @property
    def wrong_cases(self) -> tuple[CaseRecord, ...]:
        return tuple(case for case in self.cases if not case.matched)

    def diff_text(self, observed_label: str = "observed") -> str:
        """The matrix of the recorded cases, per cluster with a wrong flow ("" when none)."""
        blocks = []
        for cluster, comparison in comparisons_by_cluster(self.cases).items():
            if comparison.ok:
                continue
            blocks.append(f"{cluster}:\n{render_pair_text(pair_matrix(comparison), observed_label)}")
        return _strip_lines("\n\n".join(blocks))

    def problem_data(self, observed_label: str = "observed") -> dict[str, Any]:
        """The entry of a failed or errored test in the report (`oracle` for what the static target saw)."""
        data: dict[str, Any] = {
            "test": self.nodeid,
            "suite": self.suite,
            "profiles": list(self.profiles),
            "phase": self.phase,
            "headline": self.reason,
            "message": _bounded(self.message),
        }
        if self.failure_kind is not None:
            data["failureKind"] = str(self.failure_kind)
        diff = self.diff_text(observed_label)
        if diff:
            data["diff"] = diff
        if self.wrong_cases:
            data["wrongCases"] = [case.to_data() for case in self.wrong_cases]
        return data


@dataclass(frozen=True)
class Statistics:
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    not_supported: int = 0
    cases: int = 0
    wrong_cases: int = 0

    @classmethod
    def of(cls, results: Iterable[TestResult]) -> Statistics:
        counts = dict.fromkeys(Outcome, 0)
        cases = wrong = 0
        for result in results:
            counts[result.outcome] += 1
            cases += len(result.cases)
            wrong += len(result.wrong_cases)
        return cls(
            passed=counts[Outcome.PASSED],
            failed=counts[Outcome.FAILED],
            errors=counts[Outcome.ERROR],
            skipped=counts[Outcome.SKIPPED],
            not_supported=counts[Outcome.NOT_SUPPORTED],
            cases=cases,
            wrong_cases=wrong,
        )

    @property
    def tests(self) -> int:
        return self.passed + self.failed + self.errors + self.skipped + self.not_supported

    @property
    def result(self) -> str:
        """failure > error > success (something passed, nothing failed or broke: a green run, whatever it
        skipped with a reason) > partial (nothing passed: only skips and NOT_SUPPORTED, nothing proven)
        > `empty` when no test ran."""
        if self.failed:
            return "failure"
        if self.errors:
            return "error"
        if self.passed:
            return "success"
        return "partial" if self.skipped or self.not_supported else "empty"

    def summary(self) -> str:
        """A sentence derived from the counts, e.g. `3 passed, 1 not supported: success`."""
        parts = [
            f"{count} {label}"
            for count, label in (
                (self.passed, "passed"),
                (self.failed, "failed"),
                (self.errors, "infrastructure errors" if self.errors != 1 else "infrastructure error"),
                (self.skipped, "skipped"),
                (self.not_supported, "not supported"),
            )
            if count
        ]
        return f"{', '.join(parts) or 'no tests'}: {self.result}"

    def to_data(self) -> dict[str, Any]:
        return {
            "tests": self.tests,
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "skipped": self.skipped,
            "notSupported": self.not_supported,
            "cases": self.cases,
            "wrongCases": self.wrong_cases,
        }


@dataclass(frozen=True)
class ProfileReport:
    """The results of one profile: a suite marker (`isolation`) or a suite module (`test_dns_egress`)."""

    name: str
    results: tuple[TestResult, ...]

    @property
    def statistics(self) -> Statistics:
        return Statistics.of(self.results)

    def to_data(self) -> dict[str, Any]:
        statistics = self.statistics
        return {
            "name": self.name,
            "result": statistics.result,
            "summary": statistics.summary(),
            "statistics": statistics.to_data(),
            "failedTests": [r.nodeid for r in self.results if r.outcome is Outcome.FAILED],
            "erroredTests": [r.nodeid for r in self.results if r.outcome is Outcome.ERROR],
            "skippedTests": _reasons(self.results, Outcome.SKIPPED),
            "notSupportedTests": _reasons(self.results, Outcome.NOT_SUPPORTED),
        }


@dataclass(frozen=True)
class ConformanceReport:
    fingerprint: Fingerprint
    date: str  # RFC 3339, UTC
    exit_status: int
    results: tuple[TestResult, ...]
    exit_meaning: str = ""

    @property
    def statistics(self) -> Statistics:
        return Statistics.of(self.results)

    def profiles(self) -> list[ProfileReport]:
        return _group(self.results, lambda result: [m for m in result.profiles if m in PROFILE_MARKERS])

    def suites(self) -> list[ProfileReport]:
        return _group(self.results, lambda result: [result.suite])

    def to_data(self) -> dict[str, Any]:
        statistics = self.statistics
        label = (
            "observed" if self.fingerprint.target in LIVE_TARGETS else "oracle"
        )  # static: the oracle saw it
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "schemaVersion": SCHEMA_VERSION,
            "date": self.date,
            "fingerprint": self.fingerprint.to_data(),
            "result": statistics.result,
            "summary": statistics.summary(),
            "exitStatus": self.exit_status,
            "exitMeaning": self.exit_meaning,
            "statistics": statistics.to_data(),
            "profiles": [profile.to_data() for profile in self.profiles()],
            "suites": [suite.to_data() for suite in self.suites()],
            "failures": [r.problem_data(label) for r in self.results if r.outcome is Outcome.FAILED],
            "errors": [r.problem_data(label) for r in self.results if r.outcome is Outcome.ERROR],
            "skipped": _reasons(self.results, Outcome.SKIPPED),
            "notSupported": _reasons(self.results, Outcome.NOT_SUPPORTED),
        }


def _group(
    results: Sequence[TestResult], keys_of: Callable[[TestResult], Iterable[str]]
) -> list[ProfileReport]:
    groups: dict[str, list[TestResult]] = {}
    for result in results:
        for key in keys_of(result):
            groups.setdefault(key, []).append(result)
    return [ProfileReport(name, tuple(members)) for name, members in sorted(groups.items())]


def _reasons(results: Iterable[TestResult], outcome: Outcome) -> list[dict[str, str]]:
    return [{"test": r.nodeid, "reason": r.reason} for r in results if r.outcome is outcome]


def _bounded(text: str) -> str:
    text = _strip_lines(text)
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return (
        text[:MAX_MESSAGE_CHARS] + f"\n[... {len(text) - MAX_MESSAGE_CHARS} more characters in the JUnit XML]"
    )


def _strip_lines(text: str) -> str:
    """Trailing blanks removed from every line: YAML can then keep the text as a readable block."""
    return "\n".join(line.rstrip() for line in text.splitlines())
