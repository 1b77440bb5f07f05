"""One lint run: load the policy set, build the oracle (and, with a layout, its inventory), run the checks.

The families of checks are listed in one registry (`FAMILIES`), each saying whether it needs the layout's
inventory. Without `--layout` those are skipped and the report carries a note naming them, so a clean
result without a layout is never mistaken for a clean result with one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from calico_conformance.lint import default_deny, dns, exceptions, selectors, shadowing, tiers
from calico_conformance.lint.context import LintContext
from calico_conformance.lint.findings import Finding, LintReport
from calico_conformance.lint.flows import FlowTable
from calico_conformance.lint.inventory import Inventory
from calico_conformance.lint.manifests import load_for_lint
from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.model import DEFAULT_CALICO_VERSION
from calico_conformance.oracle.tiers import plan_tiers
from calico_conformance.tenancy.layout import load_layout

CheckFunction = Callable[[LintContext], Iterable[Finding]]


@dataclass(frozen=True)
class Family:
    """A family of checks: the ids it may report, whether it needs `--layout`, and the function."""

    name: str
    checks: tuple[str, ...]
    needs_layout: bool
    run: CheckFunction


FAMILIES: tuple[Family, ...] = (
    Family("convention labels", ("convention-label",), False, selectors.convention_label_findings),
    Family("unknown tiers", ("unknown-tier",), False, tiers.unknown_tier_findings),
    Family("selectors", ("selector-matches-nothing",), True, selectors.matches_nothing_findings),
    Family("default deny", ("missing-default-deny",), True, default_deny.default_deny_findings),
    Family("shadowing", ("shadowed-rule",), True, shadowing.shadowed_rule_findings),
    Family("tier endings", ("tier-denies-lower-tiers",), True, tiers.tier_denies_lower_tiers_findings),
    Family("DNS", ("dns-blocked",), True, dns.dns_blocked_findings),
    Family("DNS destinations", ("dns-any-destination",), True, dns.dns_any_destination_findings),
    Family("one-sided exceptions", ("one-sided-exception",), True, exceptions.one_sided_exception_findings),
)


def _oracle_problem_findings(
    problems: Iterable[LocatedError], already: set[tuple[Location | None, str]]
) -> Iterator[Finding]:
    """What the non-strict oracle could not judge; tier problems are already reported from `plan_tiers`."""
    for problem in problems:
        if (problem.location, problem.why) in already:
            continue
        endpoint_problem = any(
            word in problem.why for word in ("declared twice", "is not declared", "already has")
        )
        yield Finding.from_error("invalid-manifest" if endpoint_problem else "unjudged-rule", problem)


def lint(
    paths: Iterable[str | Path],
    *,
    layout_path: str | Path | None = None,
    calico_version: str = DEFAULT_CALICO_VERSION,
) -> LintReport:
    """Every finding for the policy set at `paths`. A missing path or a bad layout raises LocatedError
    (the command turns it into exit status 2); a bad manifest is a finding."""
    loaded = load_for_lint(paths, calico_version, layout=layout_path)
    resources, findings, notes = loaded.resources, loaded.findings, loaded.notes
    layout = load_layout(layout_path) if layout_path is not None else None
    tier_problems: list[LocatedError] = []
    plans = plan_tiers(
        resources.policies, resources.tiers, calico_version, strict=False, problems=tier_problems
    )
    findings += [
        Finding.from_error("invalid-manifest", problem)
        for problem in tier_problems
        if "no Tier" not in problem.why  # a missing tier is `unknown-tier`, reported from the plans
    ]
    if layout is None:
        oracle = Oracle(
            namespaces=(), pods=(), resources=resources, calico_version=calico_version, strict=False
        )
        context = LintContext(resources, oracle, plans, calico_version)
        skipped = [check for family in FAMILIES if family.needs_layout for check in family.checks]
        notes.append(
            "no --layout given: skipped the checks that need the layout's inventory of namespaces and"
            f" workloads ({', '.join(skipped)}); pass --layout policies/tenancy.yaml to run them"
        )
    else:
        inventory, oracle = Inventory.build(layout, resources, calico_version)
        context = LintContext(
            resources, oracle, plans, calico_version, layout, inventory, FlowTable(inventory)
        )
        notes.append(
            f"inventory: {len(inventory.pods)} pods of {layout.source}, {len(inventory.peers) - len(inventory.pods)}"
            f" outside addresses, {len(inventory.transports)} transports; shadowing, DNS, tier and exception"
            " findings hold for this sample of flows"
        )
        if not layout.outside_addresses or not layout.canary_services:
            notes.append(
                "missing-default-deny was not checked: the layout lists no canary.ports or canary.outside"
            )
    already = {(problem.location, problem.why) for problem in tier_problems}
    findings += _oracle_problem_findings(oracle.problems, already)
    for family in FAMILIES:
        if family.needs_layout and layout is None:
            continue
        findings += family.run(context)
    return LintReport.of(findings, notes)
