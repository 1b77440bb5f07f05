"""Guardrails: cross-customer isolation must be decided by the security tier, whatever later tiers say.

The security tier promises isolation "whatever a later tier says" (policies/reference/20-*.yaml). A
policy set that loses a security-tier guardrail while a later tier (a Kubernetes default-deny, say)
still denies changes no flow, so no reachability probe can see it: the promise is broken all the same,
and the next allow written in a later tier opens the door. So the requirement is stated on the
oracle's own explanation: every flow between two customer namespaces must be denied by a tier at or
before the guardrail tier (the layout's first intended tier) in felix's order, in one direction or the
other. That is the same as re-checking isolation with every later tier replaced by allow-all.

Pure: the oracle in, the breaches out. The suite runs it against the oracle of the applied policy set on
every target (on live targets too: the oracle is what the cluster was given).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from calico_conformance.oracle.evaluate import Decision, Oracle, Verdict
from calico_conformance.reachability import Flow


@dataclass(frozen=True)
class Breach:
    """A cross-customer flow whose denial (if any) comes from a tier after the guardrail tier."""

    flow: Flow
    verdict: Verdict

    def __str__(self) -> str:
        return f"{self.flow}: {self.verdict}"


def guarding_tiers(oracle: Oracle, guard: str) -> frozenset[str] | None:
    """The tiers at or before `guard` in felix's order; None when the policy set has no such tier."""
    names = [tier.name for tier in oracle.tiers]
    if guard not in names:
        return None
    return frozenset(names[: names.index(guard) + 1])


def _guarded(decision: Decision, tiers: frozenset[str]) -> bool:
    return not decision.allowed and decision.tier in tiers


def guardrail_breaches(oracle: Oracle, flows: Iterable[Flow], guard: str) -> Sequence[Breach]:
    """The flows neither of whose directions is denied at or before tier `guard` (every flow, when the
    policy set has no tier of that name)."""
    tiers = guarding_tiers(oracle, guard) or frozenset()
    breaches = []
    for flow in flows:
        verdict = oracle.verdict_for(flow)
        if not (_guarded(verdict.egress, tiers) or _guarded(verdict.ingress, tiers)):
            breaches.append(Breach(flow, verdict))
    return breaches
