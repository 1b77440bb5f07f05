"""Shadowed rules: rules that never decide anything because an earlier rule always decides first.

A rule R is shadowed when, for every flow R matches, an earlier rule of the same policy, or of an earlier
policy of the same tier (in felix's order), already matched and decided it (Allow, Deny or Pass; Log
decides nothing). Found with the oracle (`flows.py` walks the same compiled rules the evaluator uses),
not by comparing rule text, so `selector: all()` shadowing `selector: app == "x"` is found, and two
rules that merely look alike but select different pods are not.

The approximation, stated in every finding: "every flow" is every flow of the inventory's sample
(`inventory.py`: the layout's pods, outside addresses for every CIDR the rules name, every port they
name). A rule that matches nothing in the sample is not reported here (it may be a selector that matches
nothing, which `selectors.py` reports); only rules that matched and never decided are.
"""

from __future__ import annotations

from collections.abc import Iterator

from calico_conformance.lint.context import LintContext
from calico_conformance.lint.findings import Finding
from calico_conformance.lint.flows import rule_name
from calico_conformance.lint.inventory import describe
from calico_conformance.oracle.model import Direction


def shadowed_rule_findings(context: LintContext) -> Iterator[Finding]:
    _, inventory, table = context.require_inventory()
    for record in table.records.values():
        taker = record.shadowed_by
        if not record.matched or record.decided or taker is None:
            continue
        owner, peer = inventory.peers[taker.owner].name, inventory.peers[taker.peer].name
        flow = f"{owner} -> {peer}" if record.direction is Direction.EGRESS else f"{peer} -> {owner}"
        same = (
            " of the same policy"
            if taker.policy is record.policy
            else f" of {taker.policy.policy.display_name}"
        )
        earlier = f"rule {taker.rule.index} ({taker.rule.action}){same}"
        yield Finding(
            "shadowed-rule",
            record.location,
            f"{record.direction.value.lower()} {rule_name(record.policy, record.rule)} never decides a flow:"
            f" every flow it matches in the layout's sample is decided earlier, e.g. {flow}"
            f" {describe(taker.transport)} by {earlier}",
        )
