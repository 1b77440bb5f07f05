"""One-sided exceptions: an allow on one side of a flow that the other side's default-deny drops.

Every flow needs two yeses: the source's egress and the destination's ingress (calico-semantics.md
§1.2). The runbook's logging exception allowed royal-bank's egress to the platform collector, but
platform is default-deny too, so the collector never accepted it: the exception looks granted and
silently is not. The check walks the flow table: a flow between two layout pods, on a port the
destination listens on, that an Allow rule lets out on egress while the destination's ingress denies it
at the end of a tier (no rule matched: a default-deny, not a deliberate Deny) — and the reverse, an
ingress allow whose source's egress is default-denied.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from calico_conformance.lint.context import LintContext
from calico_conformance.lint.findings import Finding
from calico_conformance.lint.flows import END_OF_TIER, RULE, Outcome, rule_name
from calico_conformance.lint.inventory import describe, listens
from calico_conformance.oracle.model import Direction
from calico_conformance.oracle.rules import Transport


@dataclass
class _Example:
    allow: Outcome
    direction: Direction
    source: str
    destination: str
    transport: Transport
    denial: Outcome
    flows: int = 0


def one_sided_exception_findings(context: LintContext) -> Iterator[Finding]:
    _, inventory, table = context.require_inventory()
    examples: dict[int, _Example] = {}
    for (direction, owner, transport), walk in table.walks.items():
        other_side = Direction.INGRESS if direction is Direction.EGRESS else Direction.EGRESS
        for outcome in walk.outcomes:
            if outcome.reason != RULE or not outcome.allowed or outcome.rule is None:
                continue
            for peer in table.bits(outcome.mask):
                peer_pod = inventory.peers[peer].pod
                owner_pod = inventory.peers[owner].pod
                if peer_pod is None or owner_pod is None:
                    continue  # an outside address has no policy of its own: nothing to be one-sided about
                destination = peer_pod if direction is Direction.EGRESS else owner_pod
                if not listens(destination, transport):
                    continue
                denial = table.outcome(other_side, peer, transport, owner)
                if denial.allowed or denial.reason != END_OF_TIER:
                    continue
                source, target = (
                    (owner_pod, peer_pod) if direction is Direction.EGRESS else (peer_pod, owner_pod)
                )
                example = examples.setdefault(
                    id(outcome.rule), _Example(outcome, direction, source.key, target.key, transport, denial)
                )
                example.flows += 1
    for example in examples.values():
        allow = example.allow
        assert allow.policy is not None
        assert allow.rule is not None
        other = example.destination if example.direction is Direction.EGRESS else example.source
        other_direction = Direction.INGRESS if example.direction is Direction.EGRESS else Direction.EGRESS
        more = (
            f" (and {example.flows - 1} more flow{'s' if example.flows > 2 else ''})"
            if example.flows > 1
            else ""
        )
        yield Finding(
            "one-sided-exception",
            allow.rule.rule.location or allow.policy.policy.location,
            f"{example.direction.value.lower()} {rule_name(allow.policy, allow.rule)} allows"
            f" {example.source} -> {example.destination} {describe(example.transport)}{more}, but {other}"
            f" denies it by default: {example.denial.describe(other_direction)}",
            f"allow the flow on {other}'s {other_direction.value.lower()} too"
            f" ({'from ' + example.source if example.direction is Direction.EGRESS else 'to ' + example.destination}"
            f" on {describe(example.transport)})",
        )
