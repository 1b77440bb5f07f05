"""The oracle's decisions for every flow of the inventory's sample, kept with what each rule did.

Every inventory-based check asks the same questions: for this pod, direction and transport, which peers
does Calico allow, and which tier, policy and rule decided? Which rules decided *some* flow, which only
ever matched flows an earlier rule had already decided? Asking `Oracle.verdict` flow by flow would
repeat the same rule matching millions of times on a 2,000-policy set, so the table walks the oracle's
own pipeline (`Oracle.applicable`, `CompiledRule`, `EntityMatcher.matches`; calico-semantics.md §1.2)
once per pod, direction and transport, over all peers at once as bit masks:

* a rule matches a flow when its transport criteria, its side on the pod and its side on the peer all
  match; the peer side does not depend on the pod, so it is computed once per rule and transport;
* per tier, the first matching non-Log rule decides a peer (the tier-local decision); the rule "decided"
  when it was first for some peer, and was "shadowed at" a peer an earlier rule had taken;
* tiers compose exactly as `Oracle._decide` composes them: Allow and Deny are final, Pass and a Pass
  default go on, an unmatched peer of a Deny-default tier is denied by the end of the tier;
* transports no applicable rule tells apart share one walk, and policies of other namespaces are never
  tested against a pod (`applicable.py` says why both are exact, not approximations).

The unit tests check the table against `Oracle.verdict` on every flow of several policy sets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from calico_conformance.lint.applicable import (
    ApplicableTier,
    PoliciesByNamespace,
    RuleEntry,
    TransportClasses,
    TransportPlan,
    applicable_tiers,
)
from calico_conformance.lint.inventory import Inventory
from calico_conformance.oracle.endpoints import AddressView
from calico_conformance.oracle.errors import Location
from calico_conformance.oracle.model import Direction, NamedPort, PortRange
from calico_conformance.oracle.rules import (
    CompiledPolicy,
    CompiledRule,
    CompiledTier,
    EntityMatcher,
    Transport,
)

# Outcome.reason values, worded as explain.py words the oracle's Decision reasons.
RULE = "rule"
END_OF_TIER = "end of tier"
PASSED_OUT = "passed out of the last tier"
TIER_PASSES = "tier passes to profile"
NO_POLICY = "no policy applies"

# Per tier: the rules that were first to match, each with the peers it took, in evaluation order.
Hits = list[tuple[CompiledPolicy, CompiledRule, int]]
# A tier's local decisions for one pod, direction and transport: (tier, its selecting policies, hits,
# peers no rule of the tier matched).
TierLocal = tuple[CompiledTier, tuple[CompiledPolicy, ...], Hits, int]


@dataclass(frozen=True)
class Outcome:
    """How one direction of the flows to (or from) the peers in `mask` was decided."""

    mask: int
    allowed: bool
    reason: str
    tier: CompiledTier | None = None
    # The deciding rule's policy; for END_OF_TIER the tier's first policy selecting the pod.
    policy: CompiledPolicy | None = None
    rule: CompiledRule | None = None

    def describe(self, direction: Direction) -> str:
        verb = "allowed" if self.allowed else "denied"
        if self.reason == RULE and self.policy is not None and self.rule is not None:
            return f"{direction} {verb} by {rule_name(self.policy, self.rule)}"
        if self.reason == END_OF_TIER and self.tier is not None:
            first = f" (first selecting policy: {self.policy.policy.display_name})" if self.policy else ""
            return f"{direction} {verb} at the end of tier {self.tier.name}: no rule matched{first}"
        return f"{direction} {verb}: {self.reason}"


def rule_name(policy: CompiledPolicy, rule: CompiledRule) -> str:
    """`rule 1 (Allow) of NetworkPolicy royal-bank/allow-logging` (the index counts from 0, as the oracle's
    explanations do, within the rule's direction)."""
    return f"rule {rule.index} ({rule.action}) of {policy.policy.display_name}"


@dataclass(frozen=True)
class Taker:
    """An earlier rule that decided a flow a later rule also matched: the evidence of shadowing."""

    policy: CompiledPolicy
    rule: CompiledRule
    owner: int  # peer index of the pod whose side was evaluated
    peer: int
    transport: Transport


@dataclass
class RuleRecord:
    """What one compiled rule did across the whole sample."""

    policy: CompiledPolicy
    rule: CompiledRule
    direction: Direction
    matched: bool = False  # matched at least one flow of the sample
    decided: bool = False  # was the tier-local first match of at least one flow
    shadowed_by: Taker | None = None  # the first earlier rule seen deciding a flow this one matched

    @property
    def location(self) -> Location | None:
        return self.rule.rule.location or self.policy.policy.location


@dataclass(frozen=True)
class LowerTierAllow:
    """Peers denied by `tier`'s implicit end-of-tier deny that a lower tier's rule would have allowed."""

    tier: CompiledTier
    denied_by: Outcome
    allowed_by: Outcome


@dataclass
class Walk:
    """The outcomes of one pod, direction and transport: they partition the peers (but the pod itself)."""

    outcomes: list[Outcome] = field(default_factory=list)
    lower_allows: list[LowerTierAllow] = field(default_factory=list)

    def outcome(self, peer: int) -> Outcome:
        bit = 1 << peer
        for outcome in self.outcomes:
            if outcome.mask & bit:
                return outcome
        raise KeyError(peer)


class FlowTable:
    """Outcomes of every (pod, direction, transport, peer) of an inventory, and every rule's record."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.peers = inventory.peers
        self.every_peer = (1 << len(self.peers)) - 1
        self.records: dict[int, RuleRecord] = {}  # by id() of the CompiledRule
        self._matcher_ids: dict[int, int] = {}  # id() of an EntityMatcher -> one id per distinct cache_key
        self._matcher_keys: dict[tuple[object, ...], int] = {}
        self._peer_masks: dict[tuple[int, Transport | None], int] = {}
        self._tricky = self._pods_that_defeat_namespace_shortcuts()
        self._namespace_masks: dict[str, int] = {}
        for index, peer in enumerate(self.peers):
            if peer.pod is not None:
                self._namespace_masks[peer.pod.namespace] = (
                    self._namespace_masks.get(peer.pod.namespace, 0) | 1 << index
                )
        container_ports = frozenset(port.port for pod in inventory.pods for port in pod.ports)
        policies = PoliciesByNamespace(inventory.oracle)
        plan = TransportPlan(inventory.transports, container_ports)
        self.classes: dict[tuple[Direction, int], TransportClasses] = {}
        self.walks: dict[tuple[Direction, int, Transport], Walk] = {}  # walked transports only
        for direction in Direction:
            for owner, peer in enumerate(self.peers):
                if peer.pod is None:
                    continue
                tiers = applicable_tiers(policies.applicable(peer.pod, direction), direction)
                classes = self.classes[(direction, owner)] = TransportClasses(plan, tiers)
                for transport in classes.weights:
                    self.walks[(direction, owner, transport)] = self._walk(tiers, direction, owner, transport)

    def walk(self, direction: Direction, owner: int, transport: Transport) -> Walk:
        walked = self.classes[(direction, owner)].representative(transport)
        return self.walks[(direction, owner, walked)]

    def outcome(self, direction: Direction, owner: int, transport: Transport, peer: int) -> Outcome:
        return self.walk(direction, owner, transport).outcome(peer)

    def weight(self, direction: Direction, owner: int, transport: Transport) -> int:
        """How many transports of the sample the walked `transport` stands for."""
        return self.classes[(direction, owner)].weights[transport]

    def bits(self, mask: int) -> Iterator[int]:
        """The peer indices set in `mask`, lowest first."""
        while mask:
            low = mask & -mask
            yield low.bit_length() - 1
            mask ^= low

    # --- matching -------------------------------------------------------------------------------

    def _pods_that_defeat_namespace_shortcuts(self) -> int:
        """Peers whose label maps may not follow their namespace: a pod carrying its own `pcns.` labels,
        or an address a network set also owns. They are always matched, never skipped."""
        mask = 0
        for index, peer in enumerate(self.peers):
            own = peer.pod.labels if peer.pod is not None else {}
            if peer.pod is None or len(peer.view.owners) > 1 or any(k.startswith("pcns.") for k in own):
                mask |= 1 << index
        return mask

    def _candidates(self, matcher: EntityMatcher) -> int:
        """Peers the matcher could match: a namespace-scoped selector only matches that namespace's pods."""
        scope = matcher.scope
        if scope is None or (scope.namespace is None and scope.namespace_selector is None):
            return self.every_peer
        namespaces = self.inventory.oracle.endpoints.namespaces
        if scope.namespace is not None:
            allowed = {scope.namespace}
        else:
            assert scope.namespace_selector is not None
            wanted = scope.namespace_selector.matcher
            allowed = {name for name, facts in namespaces.items() if wanted(facts.labels)}
        mask = self._tricky
        for name in allowed:
            mask |= self._namespace_masks.get(name, 0)
        return mask

    def _matcher_id(self, matcher: EntityMatcher) -> int:
        """One small id per distinct `cache_key` (equal keys match exactly the same addresses)."""
        found = self._matcher_ids.get(id(matcher))
        if found is None:
            found = self._matcher_keys.setdefault(matcher.cache_key, len(self._matcher_keys))
            self._matcher_ids[id(matcher)] = found
        return found

    def _peer_mask(self, matcher: EntityMatcher, transport: Transport) -> int:
        """The peers whose side of the flow `matcher` accepts; cached per matcher identity and transport."""
        # A side that is a source, or a destination without ports, reads nothing of the transport.
        entity = matcher.entity
        reads_transport = matcher.role == "destination" and bool(entity.ports or entity.not_ports)
        key = (self._matcher_id(matcher), transport if reads_transport else None)
        cached = self._peer_masks.get(key)
        if cached is not None:
            return cached
        mask = 0
        if not _port_excludes(matcher, transport):
            if not matcher.reads_peer:
                mask = self.every_peer if matcher.matches(self.peers[0].view, transport) else 0
            else:
                for index in self.bits(self._candidates(matcher)):
                    if matcher.matches(self.peers[index].view, transport):
                        mask |= 1 << index
        self._peer_masks[key] = mask
        return mask

    def _rule_mask(self, entry: RuleEntry, owner: AddressView, transport: Transport) -> int:
        if not entry.admits(transport) or not entry.rule.matches_transport(transport):
            return 0
        if not entry.own.matches(owner, transport):
            return 0
        return self._peer_mask(entry.other, transport)

    # --- the pipeline -----------------------------------------------------------------------------

    def _walk(
        self, tiers: tuple[ApplicableTier, ...], direction: Direction, owner: int, transport: Transport
    ) -> Walk:
        view = self.peers[owner].view
        everyone = self.every_peer & ~(1 << owner)  # a pod talking to itself never leaves its namespace
        locals_: list[TierLocal] = []
        for applicable in tiers:
            hits, undecided = self._tier_local(applicable, direction, owner, view, transport, everyone)
            locals_.append((applicable.tier, applicable.policies, hits, undecided))
        walk = Walk()
        pending, passes = everyone, []
        for position, (tier, policies, hits, undecided) in enumerate(locals_):
            for policy, rule, hit in hits:
                mine = hit & pending
                if not mine:
                    continue
                if rule.action == "Pass":
                    passes.append(Outcome(mine, True, PASSED_OUT, tier, policy, rule))
                else:
                    walk.outcomes.append(Outcome(mine, rule.action == "Allow", RULE, tier, policy, rule))
                    pending &= ~mine
            unmatched = undecided & pending
            if not unmatched:
                continue
            if tier.default_action == "Pass":
                passes.append(Outcome(unmatched, True, TIER_PASSES, tier))
                continue
            denied = Outcome(unmatched, False, END_OF_TIER, tier, policies[0])
            walk.outcomes.append(denied)
            pending &= ~unmatched
            walk.lower_allows += self._lower_allows(tier, denied, locals_[position + 1 :])
        for passed in reversed(passes):  # the last Pass a peer took explains why the profile allows it
            mine = passed.mask & pending
            if mine:
                walk.outcomes.append(
                    Outcome(mine, True, passed.reason, passed.tier, passed.policy, passed.rule)
                )
                pending &= ~mine
        if pending:
            walk.outcomes.append(Outcome(pending, True, NO_POLICY))
        return walk

    def _tier_local(
        self,
        applicable: ApplicableTier,
        direction: Direction,
        owner: int,
        view: AddressView,
        transport: Transport,
        everyone: int,
    ) -> tuple[Hits, int]:
        """First matching rule per peer within one tier, recording what each rule did on the way."""
        undecided = everyone
        hits: Hits = []
        records = self.records
        for entry in applicable.entries:
            if not entry.admits(transport):
                continue  # cannot match this transport: nothing to decide, nothing to learn
            rule = entry.rule
            record = records.get(id(rule))
            if record is None:
                record = records[id(rule)] = RuleRecord(entry.policy, rule, direction)
            if not undecided and (record.decided or record.shadowed_by is not None):
                continue  # nothing left to decide here, and nothing new to learn about this rule
            mask = self._rule_mask(entry, view, transport) & everyone
            if not mask:
                continue
            record.matched = True
            hit = mask & undecided
            if hit:
                record.decided = True
                hits.append((entry.policy, rule, hit))
                undecided &= ~hit
            taken = mask & ~hit
            if taken and record.shadowed_by is None:
                record.shadowed_by = _first_taker(hits, taken, owner, transport)
        return hits, undecided

    def _lower_allows(
        self, denying: CompiledTier, denied: Outcome, lower: list[TierLocal]
    ) -> Iterator[LowerTierAllow]:
        """What the tiers after a denying tier would have allowed by a rule, had that tier passed."""
        pending = denied.mask
        for tier, _, hits, undecided in lower:
            for policy, rule, hit in hits:
                mine = hit & pending
                if not mine:
                    continue
                if rule.action == "Allow":
                    yield LowerTierAllow(denying, denied, Outcome(mine, True, RULE, tier, policy, rule))
                if rule.action != "Pass":
                    pending &= ~mine
            if tier.default_action != "Pass":
                pending &= ~undecided
            if not pending:
                return


def _first_taker(hits: Hits, taken: int, owner: int, transport: Transport) -> Taker | None:
    """The earliest rule that decided one of the peers in `taken`, with that peer."""
    for policy, rule, hit in hits:
        overlap = hit & taken
        if overlap:
            return Taker(policy, rule, owner, (overlap & -overlap).bit_length() - 1, transport)
    return None


def _port_excludes(matcher: EntityMatcher, transport: Transport) -> bool:
    """A destination that lists only numeric ports none of which is the transport's matches no peer.
    (A necessary condition `matches` checks too; testing it first skips the per-peer loop.)"""
    entity = matcher.entity
    if (
        matcher.role != "destination"
        or not entity.ports
        or any(isinstance(p, NamedPort) for p in entity.ports)
    ):
        return False
    port = transport.port
    return port is None or not any(isinstance(p, PortRange) and port in p for p in entity.ports)
