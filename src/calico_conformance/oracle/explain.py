"""The oracle's answers and how they read: which tier, policy and rule decided each direction, or why none did.

Every expected cell of a reachability matrix carries `str(Verdict)`, and a failing conformance test prints
it next to what the probe saw, so the text must let a reader find the deciding line of YAML without
running anything: tier, policy, rule index, action and `file:line`.
"""

from __future__ import annotations

from dataclasses import dataclass

from calico_conformance.oracle.errors import Location
from calico_conformance.oracle.model import Direction

# Decision.reason values. Tier-specific reasons are built by the functions below.
RULE = "rule"
NO_POLICY = "no policy applies"
PASSED_OUT = "passed out of the last tier"
OUTSIDE = "outside the cluster"


def end_of_tier(tier: str) -> str:
    return f"end of tier {tier}"


def tier_passes(tier: str) -> str:
    return f"tier {tier} passes to profile"


@dataclass(frozen=True)
class Decision:
    """One direction's outcome and what decided it."""

    allowed: bool
    direction: Direction
    reason: str  # RULE | NO_POLICY | end_of_tier(t) | tier_passes(t) | PASSED_OUT | OUTSIDE
    tier: str | None = None
    policy: str | None = None  # Policy.display_name of the deciding policy
    rule_index: int | None = None  # 0-based index in that policy's rules of this direction
    action: str | None = None
    location: Location | None = None  # the deciding rule's (or policy's) location

    @property
    def verb(self) -> str:
        return "allowed" if self.allowed else "denied"

    def _rule_text(self) -> str:
        text = f"tier {self.tier}, {self.policy} rule {self.rule_index} ({self.action})"
        return f"{text} at {self.location}" if self.location else text

    def __str__(self) -> str:
        head = f"{self.direction} {self.verb}"
        if self.reason == RULE:
            return f"{head} by {self._rule_text()}"
        if self.reason == PASSED_OUT:
            return f"{head}: passed out of the last tier by {self._rule_text()}; the namespace profile allows"
        if self.reason == NO_POLICY:
            return f"{head}: no policy applies (namespace profile allows)"
        if self.reason == OUTSIDE:
            return f"{head}: outside the cluster (no Calico endpoint on this side)"
        if self.reason == tier_passes(self.tier or ""):
            return (
                f"{head}: tier {self.tier} passes to profile (a policy selects the endpoint, no rule matched,"
                " defaultAction Pass); the namespace profile allows"
            )
        if self.reason == end_of_tier(self.tier or ""):
            text = f"{head}: end of tier {self.tier}: a policy selects the endpoint but no rule matched"
            if self.policy:
                where = f" at {self.location}" if self.location else ""
                text += f" (first selecting policy: {self.policy}{where})"
            return text
        return f"{head}: {self.reason}"


@dataclass(frozen=True)
class Verdict:
    """Both directions of one flow: allowed only if the source's egress and the destination's ingress are."""

    allowed: bool
    egress: Decision
    ingress: Decision

    def __str__(self) -> str:
        return f"{'allowed' if self.allowed else 'denied'}: {self.egress}; {self.ingress}"


def outside(direction: Direction) -> Decision:
    """The side of a flow that is not a pod: nothing in the cluster polices it."""
    return Decision(True, direction, OUTSIDE)


def no_policy(direction: Direction) -> Decision:
    return Decision(True, direction, NO_POLICY)
