"""The oracle against hand-written Calico cases, each pinned to a sentence of calico-semantics.md.

Every case in `tests/data/calico-cases/` runs its scenario through `scenario_from_data` and
`Oracle.from_scenario` and checks, per probe, the overall verdict and what each direction pins (allowed,
reason, deciding tier, policy, rule index, action). A failure quotes the sentence the case pins, so the
reader sees at once which documented rule the oracle broke. The corpus is checked too: every quote must
be in the cited section of the research notes, and the probes must be exactly the flows expected.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from calico_conformance.oracle.errors import LocatedError
from calico_conformance.oracle.evaluate import Decision, Oracle
from calico_conformance.oracle.scenario import scenario_from_data
from calico_conformance.reachability import Flow
from tests.unit.corpus_calico import (
    DECISION_ATTRIBUTES,
    SEMANTICS_FILE,
    CalicoCase,
    DirectionExpectation,
    case_paths,
    load_case,
    sections_quoting,
)

MINIMUM_CASES = 30


def case_params() -> list[Any]:
    return [pytest.param(path, id=path.stem) for path in case_paths()]


def oracle_case_params() -> list[Any]:
    """The cases, with a strict xfail on those whose `oracle_bug` records a known, reported disagreement."""
    params = []
    for path in case_paths():
        bug = load_case(path).oracle_bug
        marks = [pytest.mark.xfail(strict=True, reason=f"oracle bug: {bug}")] if bug else []
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


def check_direction(name: str, expected: DirectionExpectation, decision: Decision) -> list[str]:
    """Every field the case pins for one direction, as `field: expected X, oracle Y` complaints."""
    complaints = []
    for field, value in expected.fields.items():
        actual = getattr(decision, DECISION_ATTRIBUTES[field])
        if actual != value:
            complaints.append(f"{name} {field}: expected {value!r}, oracle says {actual!r}")
    return complaints


def run_case(case: CalicoCase) -> None:
    __tracebackhide__ = True
    scenario = scenario_from_data(case.scenario, str(case.path))
    oracle = Oracle.from_scenario(scenario)
    probed = [Flow(p.source, p.destination, p.port, p.protocol) for p in scenario.probes]
    expected_flows = [expectation.flow for expectation in case.expectations]
    duplicated = [str(flow) for flow, count in Counter(expected_flows).items() if count > 1]
    assert not duplicated, f"{case.path}: flows expected twice: {duplicated}"
    assert sorted(map(str, probed)) == sorted(map(str, expected_flows)), (
        f"{case.path}: the scenario's probes and the expected flows differ:\n"
        f"  probed only:   {sorted(map(str, set(probed) - set(expected_flows)))}\n"
        f"  expected only: {sorted(map(str, set(expected_flows) - set(probed)))}"
    )
    failures = []
    for expectation in case.expectations:
        verdict = oracle.verdict_for(expectation.flow)
        complaints = []
        if verdict.allowed != expectation.allowed:
            complaints.append(
                f"expected {'allowed' if expectation.allowed else 'denied'}, oracle says {verdict.allowed}"
            )
        complaints += check_direction("egress", expectation.egress, verdict.egress)
        complaints += check_direction("ingress", expectation.ingress, verdict.ingress)
        if complaints:
            failures.append(
                f"{expectation.where}: {expectation.flow}: "
                + "; ".join(complaints)
                + f"\n    oracle: {verdict}"
            )
    assert not failures, f"{case.path} pins {case.pinned}\n  " + "\n  ".join(failures)


# --- the corpus -------------------------------------------------------------------------------------


def test_there_are_enough_cases() -> None:
    assert len(case_paths()) >= MINIMUM_CASES


@pytest.mark.parametrize("path", case_params())
def test_case_quotes_the_research_in_the_cited_section(path: Path) -> None:
    case = load_case(path)
    if not SEMANTICS_FILE.exists():
        pytest.skip(f"no research notes at {SEMANTICS_FILE} to check the quote against (fresh clone)")
    sections = sections_quoting(SEMANTICS_FILE.read_text(encoding="utf-8"), case.quote)
    assert sections, f"{path}: the quote is not in calico-semantics.md: {case.quote!r}"
    assert case.section in sections, f"{path}: the quote is in §{', §'.join(sections)}, not §{case.section}"


@pytest.mark.parametrize("path", case_params())
def test_case_pins_something(path: Path) -> None:
    """A case with no expectation, or expectations that pin only `allowed: true`, proves little."""
    case = load_case(path)
    if case.expected_error is not None:
        return
    assert case.expectations, f"{path}: no expectations"
    assert any(not expectation.allowed for expectation in case.expectations) or any(
        expectation.egress.fields or expectation.ingress.fields for expectation in case.expectations
    ), f"{path}: every flow is expected allowed and no decision is pinned"


# --- the oracle -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", oracle_case_params())
def test_oracle_decides_as_calico_does(path: Path) -> None:
    case = load_case(path)
    if case.expected_error is None:
        run_case(case)
        return
    with pytest.raises(LocatedError) as raised:
        Oracle.from_scenario(scenario_from_data(case.scenario, str(path)))
    message = str(raised.value)
    assert case.expected_error in message, (
        f"{path} pins {case.pinned}\n  expected an error containing {case.expected_error!r}, got {message!r}"
    )
    assert message.startswith(f"{path}:"), f"{path}: the error does not name the case file: {message!r}"
    location = raised.value.location
    assert location is not None, f"{path}: the error has no location: {message!r}"
    assert location.line > 0, f"{path}: the error names no line: {message!r}"


# --- the linter's mode ------------------------------------------------------------------------------

UNDECLARED_TIER_SCENARIO = {
    "namespaces": [{"name": "shop"}],
    "pods": [
        {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        {"name": "db", "namespace": "shop", "labels": {"app": "db"}},
    ],
    "resources": [
        {"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": "late"}, "spec": {}},
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkPolicy",
            "metadata": {"name": "late.allow-web"},
            "spec": {
                "tier": "late",
                "selector": "app == 'web'",
                "types": ["Ingress"],
                "ingress": [{"action": "Allow"}],
            },
        },
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkPolicy",
            "metadata": {"name": "ghost.deny-all"},
            "spec": {
                "tier": "ghost",
                "selector": "all()",
                "types": ["Ingress"],
                "ingress": [{"action": "Deny"}],
            },
        },
    ],
}


def test_non_strict_oracle_evaluates_policies_of_undeclared_tiers_after_every_valid_tier() -> None:
    """calico-semantics.md §1.3: "1. valid tiers (Tier object exists) before invalid ones (policies
    referencing a tier that has no Tier object);" — even before a valid tier with no order, which itself
    sorts after every ordered tier. The linter's non-strict oracle evaluates as felix does and records why."""
    scenario = scenario_from_data(UNDECLARED_TIER_SCENARIO, "undeclared-tier")
    oracle = Oracle(
        namespaces=scenario.namespaces,
        pods=scenario.pods,
        resources=scenario.resources,
        calico_version=scenario.calico_version,
        strict=False,
    )
    to_web = oracle.verdict_for(Flow("shop/db", "shop/web", 80, "TCP"))
    assert to_web.allowed, f"the valid nil-order tier late must come before the invalid tier ghost: {to_web}"
    assert to_web.ingress.tier == "late"
    to_db = oracle.verdict_for(Flow("shop/web", "shop/db", 5432, "TCP"))
    assert not to_db.allowed, f"the invalid tier ghost is still evaluated, last: {to_db}"
    assert to_db.ingress.tier == "ghost"
    assert to_db.ingress.rule_index == 0
    assert any("ghost" in str(problem) for problem in oracle.problems), oracle.problems
