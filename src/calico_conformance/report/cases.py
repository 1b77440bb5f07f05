"""One recorded case: a flow on a cluster, what was expected, what was observed and who decided.

Suites record their cases through the `record_case` fixture. A case travels as plain data on the pytest
report (so xdist workers can ship it to the controller) and as a row of the ConformanceReport; JUnit
gets one compact property per test (`junit_summary`), not a property per flow: a flow-by-flow JUnit
file ran to 4.4 MB for a passing run. Cases of one test and cluster rebuild its matrix for Allure and
the HTML page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from calico_conformance.reachability import (
    DEFAULT_DENY_VERDICTS,
    Comparison,
    Expectation,
    ExpectedMatrix,
    Flow,
    Mismatch,
    MismatchKind,
    Observation,
    ObservedMatrix,
    ProbeVerdict,
    compare,
)

# The result of a case that matched its expectation; otherwise the MismatchKind (leak, blocked, unproven).
MATCHED = "ok"

# The JUnit property of a test that recorded cases: `finland: 221 flows, 20 wrong (20 leak; policy 20)`.
JUNIT_PROPERTY = "cases"


@dataclass(frozen=True)
class CaseRecord:
    """A flow checked on one cluster. `result` is `ok` or the MismatchKind of the disagreement."""

    cluster: str
    flow: Flow
    expected: Expectation
    observed: Observation
    deciding: str  # the tier/policy/rule that decided the flow, or "" when the target cannot say
    result: str = MATCHED
    defect: str = ""  # whose fault a wrong flow is: policy, cluster or masked (defects.Defect); "" if none

    @classmethod
    def judge(
        cls,
        cluster: str,
        flow: Flow,
        expected: Expectation,
        observed: Observation,
        deciding: str = "",
        *,
        deny_verdicts: frozenset[ProbeVerdict] = DEFAULT_DENY_VERDICTS,
    ) -> CaseRecord:
        """Record a case, judging it the way `reachability.compare` judges a matrix cell."""
        comparison = compare(
            ExpectedMatrix({flow: expected}), ObservedMatrix({flow: observed}), deny_verdicts
        )
        result = str(comparison.mismatches[0].kind) if comparison.mismatches else MATCHED
        return cls(cluster, flow, expected, observed, deciding or observed.why or expected.why, result)

    @classmethod
    def from_comparison(
        cls, cluster: str, comparison: Comparison, defects: Mapping[Flow, object] | None = None
    ) -> list[CaseRecord]:
        """Every flow of a comparison as cases, keeping the comparison's own verdict on each; a flow that
        matches the requirement but has a (masked) defect is recorded as wrong too."""
        defects = defects or {}
        kinds = {mismatch.flow: str(mismatch.kind) for mismatch in comparison.mismatches}
        kinds.update({flow: str(defect) for flow, defect in defects.items() if flow not in kinds})
        records = []
        for flow in comparison.expected:
            observed = comparison.observed.cells.get(flow)
            if observed is None:  # a flow nobody probed is unproven: recorded as an error observation
                observed = Observation(ProbeVerdict.ERROR, detail="not observed")
            expected = comparison.expected[flow]
            deciding = observed.why or expected.why
            defect = str(defects[flow]) if flow in defects else ""
            records.append(cls(cluster, flow, expected, observed, deciding, kinds.get(flow, MATCHED), defect))
        return records

    @property
    def matched(self) -> bool:
        return self.result == MATCHED

    @property
    def unproven(self) -> bool:
        return self.result == str(MismatchKind.UNPROVEN)

    def to_data(self) -> dict[str, Any]:
        """Plain data (JSON- and YAML-safe): the report row and the xdist transport form."""
        data: dict[str, Any] = {
            "cluster": self.cluster,
            "from": self.flow.source,
            "to": self.flow.destination,
            "port": self.flow.port,
            "protocol": self.flow.protocol,
            "expected": "allowed" if self.expected.allowed else "denied",
            "observed": str(self.observed.verdict),
            "result": self.result,
            "decidedBy": self.deciding,
        }
        if self.expected.why:
            data["expectedBecause"] = self.expected.why
        if self.observed.detail:
            data["detail"] = self.observed.detail
        if self.defect:
            data["defect"] = self.defect
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> CaseRecord:
        flow = Flow(str(data["from"]), str(data["to"]), data.get("port"), str(data["protocol"]))
        expected = Expectation(data["expected"] == "allowed", str(data.get("expectedBecause", "")))
        observed = Observation(
            ProbeVerdict(data["observed"]),
            detail=str(data.get("detail", "")),
            why=str(data.get("decidedBy", "")),
        )
        return cls(
            str(data["cluster"]),
            flow,
            expected,
            observed,
            str(data.get("decidedBy", "")),
            data["result"],
            str(data.get("defect", "")),
        )


def comparisons_by_cluster(cases: Iterable[CaseRecord]) -> dict[str, Comparison]:
    """Rebuild one Comparison per cluster from recorded cases, keeping each case's recorded result.

    The result is kept rather than recomputed because the suite judged it with its cluster's deny action.
    A flow recorded twice on a cluster keeps its last record.
    """
    by_cluster: dict[str, dict[Flow, CaseRecord]] = {}
    for case in cases:
        by_cluster.setdefault(case.cluster, {})[case.flow] = case
    comparisons = {}
    for cluster, records in sorted(by_cluster.items()):
        expected = ExpectedMatrix({flow: case.expected for flow, case in records.items()})
        observed = ObservedMatrix({flow: case.observed for flow, case in records.items()})
        mismatches = tuple(
            Mismatch(flow, MismatchKind(case.result), case.expected, case.observed)
            for flow, case in sorted(records.items())
            if not case.matched
        )
        comparisons[cluster] = Comparison(expected, observed, mismatches)
    return comparisons


def junit_summary(cases: Iterable[CaseRecord]) -> str:
    """The cases of a test in one line per cluster, for one JUnit property: counts, not flows (the
    flows are in the ConformanceReport and the attachments)."""
    by_cluster: dict[str, list[CaseRecord]] = {}
    for case in cases:
        by_cluster.setdefault(case.cluster, []).append(case)
    lines = []
    for cluster, records in sorted(by_cluster.items()):
        wrong = [case for case in records if not case.matched]
        text = f"{cluster}: {len(records)} flows, {len(wrong)} wrong"
        if wrong:
            results = Counter(case.result for case in wrong)
            defects = Counter(case.defect for case in wrong if case.defect)
            parts = [f"{count} {name}" for name, count in sorted(results.items())]
            parts += [f"{defect} defect {count}" for defect, count in sorted(defects.items())]
            text += f" ({'; '.join(parts)})"
        lines.append(text)
    return "; ".join(lines)
