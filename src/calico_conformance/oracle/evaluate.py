"""The oracle: which flows Calico allows, decided exactly as felix renders policy (calico-semantics.md §1.2).

Per direction, for the endpoint that owns that side of the flow (the source pod for egress, the
destination pod for ingress):

    for tier in tiers (felix order):
        policies = those of the tier that select the endpoint and govern the direction
        if none: skip the tier (no end-of-tier deny)
        first matching rule of those policies, in order: Allow/Deny are final, Log continues,
                                                          Pass leaves the tier
        nothing matched: defaultAction Pass continues, otherwise deny (end of tier)
    reaching the end (no tier applied, or the last applicable tier passed): the kns.<ns> profile allows

Only normal policies are walked: a doNotTrack or preDNAT GlobalNetworkPolicy never applies to a pod,
whatever it selects. felix `calc/event_sequencer.go` (v3.31.7) `tierInfoToProtoTierInfo` (lines
1235-1271) files such a policy under the untracked / preDNAT tier lists, and `flushEndpointTierUpdates`
(lines 518-549) gives a `WorkloadEndpointUpdate` the normal tiers only (`ModelWorkloadEndpointToProto`,
line 403, takes no other list; host endpoints get all four, line 475). A tier holding no normal policy for
a pod is therefore not among its tiers and has no end-of-tier deny for it. v3.27.5 is the same (lines
445-470, 1143-1177). `applyOnForward` alone keeps the policy in the normal tiers (line 1250).

A flow is allowed when both directions are. A side that is not a pod (an address outside the cluster)
has no Calico endpoint and is not evaluated. An IP literal that is a pod's IP *is* that pod: felix cannot
tell the two apart either.

`verdict` walks this pipeline for one flow and explains it; `all_pairs` gets the same answers for every
pair of pods at once through `grouping.py`, which is checked against `verdict` by the unit tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from calico_conformance.oracle.endpoints import AddressView, EndpointIndex, parse_address
from calico_conformance.oracle.errors import LocatedError
from calico_conformance.oracle.explain import (
    PASSED_OUT,
    RULE,
    Decision,
    Verdict,
    end_of_tier,
    no_policy,
    outside,
    tier_passes,
)
from calico_conformance.oracle.grouping import PairMatrix, pair_matrix
from calico_conformance.oracle.model import (
    DEFAULT_CALICO_VERSION,
    Direction,
    IPAddress,
    Namespace,
    Pod,
    ResourceSet,
    Scenario,
    ServiceAccount,
)
from calico_conformance.oracle.rules import (
    CompiledPolicy,
    CompiledRule,
    CompiledTier,
    Transport,
    compile_policy,
)
from calico_conformance.oracle.tiers import plan_tiers
from calico_conformance.reachability import Expectation, ExpectedMatrix, Flow

__all__ = ["CompiledTier", "Decision", "Oracle", "Verdict"]


def rule_decision(direction: Direction, tier: CompiledTier, policy: CompiledPolicy, rule: CompiledRule) -> Decision:
    """What a matching Allow, Deny or Pass rule decides (the per-pair walk and the grouped one agree on it)."""
    return Decision(
        rule.action != "Deny",  # a Pass that leaves the last tier reaches the allowing profile
        direction,
        PASSED_OUT if rule.action == "Pass" else RULE,
        tier=tier.name,
        policy=policy.policy.display_name,
        rule_index=rule.index,
        action=rule.action,
        location=rule.rule.location or policy.policy.location,
    )


class Oracle:
    """Expected reachability for one cluster state: pods, namespaces and the policy objects in force."""

    def __init__(
        self,
        *,
        namespaces: Sequence[Namespace],
        pods: Sequence[Pod],
        resources: ResourceSet,
        calico_version: str = DEFAULT_CALICO_VERSION,
        service_accounts: Sequence[ServiceAccount] = (),
        strict: bool = True,
    ) -> None:
        """Strict (the default): input the oracle cannot judge raises LocatedError. Non-strict (the linter):
        such input is recorded in `problems` and evaluation carries on as felix would."""
        self.calico_version = calico_version
        self.strict = strict
        self.problems: list[LocatedError] = []
        self.endpoints = EndpointIndex(
            (*namespaces, *resources.namespaces),
            pods,
            (*service_accounts, *resources.service_accounts),
            resources.network_sets,
            strict=strict,
            problems=self.problems,
        )
        plans = plan_tiers(
            resources.policies, resources.tiers, calico_version, strict=strict, problems=self.problems
        )
        self.tiers: tuple[CompiledTier, ...] = tuple(
            CompiledTier(
                plan.name,
                plan.tier.default_action,
                tuple(
                    compile_policy(p, strict=strict, problems=self.problems)
                    for p in plan.policies
                    if p.host_endpoints_only is None
                ),
            )
            for plan in plans
        )
        self._applicable: dict[
            tuple[str, Direction], tuple[tuple[CompiledTier, tuple[CompiledPolicy, ...]], ...]
        ] = {}
        self._verdicts: dict[Flow, Verdict] = {}

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> Oracle:
        return cls(
            namespaces=scenario.namespaces,
            pods=scenario.pods,
            resources=scenario.resources,
            calico_version=scenario.calico_version,
            service_accounts=scenario.service_accounts,
        )

    @property
    def pods(self) -> tuple[Pod, ...]:
        return tuple(self.endpoints.pods.values())

    def pod(self, key: str) -> Pod:
        """The pod `namespace/name`; LocatedError if there is none."""
        return self.endpoints.pod(key)

    # --- one flow -------------------------------------------------------------------------------

    def verdict(
        self, source: Pod | IPAddress, destination: Pod | IPAddress, port: int | None, protocol: str
    ) -> Verdict:
        """Whether Calico allows this flow, with each direction's deciding tier/policy/rule."""
        source_ip, source_pod = self._resolve(source)
        destination_ip, destination_pod = self._resolve(destination)
        if source_pod is None and destination_pod is None:
            raise LocatedError(
                None, f"neither {source_ip} nor {destination_ip} is a pod: no Calico endpoint decides"
            )
        if source_ip.version != destination_ip.version:
            raise LocatedError(None, f"{source_ip} and {destination_ip} are of different IP versions")
        transport = Transport.of(protocol, port, source_ip.version)
        source_view = self.endpoints.view(source_ip)
        destination_view = self.endpoints.view(destination_ip)

        views = (transport, source_view, destination_view)
        egress = self._decide(source_pod, Direction.EGRESS, *views)
        ingress = self._decide(destination_pod, Direction.INGRESS, *views)
        return Verdict(egress.allowed and ingress.allowed, egress, ingress)

    def _decide(
        self,
        pod: Pod | None,
        direction: Direction,
        transport: Transport,
        source: AddressView,
        destination: AddressView,
    ) -> Decision:
        """The §1.2 pipeline for one endpoint and direction."""
        if pod is None:
            return outside(direction)
        last_pass: Decision | None = None
        for tier, policies in self.applicable(pod, direction):
            passed = self._first_match(tier, policies, direction, transport, source, destination)
            if passed is not None and passed.action != "Pass":
                return passed  # Allow and Deny are final for the whole direction
            if passed is not None:
                last_pass = passed
            elif tier.default_action == "Pass":
                last_pass = Decision(True, direction, tier_passes(tier.name), tier=tier.name)
            else:
                first = policies[0].policy
                return Decision(
                    False,
                    direction,
                    end_of_tier(tier.name),
                    tier=tier.name,
                    policy=first.display_name,
                    location=first.location,
                )
        return last_pass or no_policy(direction)

    @staticmethod
    def _first_match(
        tier: CompiledTier,
        policies: tuple[CompiledPolicy, ...],
        direction: Direction,
        transport: Transport,
        source: AddressView,
        destination: AddressView,
    ) -> Decision | None:
        """The first Allow, Deny or Pass rule of the tier's selecting policies that matches, if any."""
        for compiled in policies:
            for rule in compiled.rules(direction):
                if rule.action == "Log" or not rule.matches(transport, source, destination):
                    continue  # felix logs and carries on with the next rule
                return rule_decision(direction, tier, compiled, rule)
        return None

    def verdict_for(self, flow: Flow) -> Verdict:
        """`verdict` for a flow whose ends are `namespace/pod` keys or IP literals (remembered: the
        cluster state is fixed, and the suites ask about the same flow from several cases)."""
        found = self._verdicts.get(flow)
        if found is None:
            found = self._verdicts[flow] = self.verdict(
                self._endpoint(flow.source), self._endpoint(flow.destination), flow.port, flow.protocol
            )
        return found

    def expected_matrix(self, flows: Iterable[Flow]) -> ExpectedMatrix:
        """Each flow's expectation, explained by its verdict."""
        return ExpectedMatrix.from_function(flows, lambda flow: _expectation(self.verdict_for(flow)))

    def applicable(
        self, pod: Pod, direction: Direction
    ) -> tuple[tuple[CompiledTier, tuple[CompiledPolicy, ...]], ...]:
        """The tiers that apply to the pod in this direction, each with its selecting policies, in order."""
        key = (pod.key, direction)
        found = self._applicable.get(key)
        if found is None:
            labels = self.endpoints.pod_labels[pod.key]
            found = tuple(
                (tier, selecting)
                for tier in self.tiers
                if (selecting := tuple(p for p in tier.policies if p.applies(direction, labels)))
            )
            self._applicable[key] = found
        return found

    # --- every pair -----------------------------------------------------------------------------

    def pair_matrix(self, port: int | None, protocol: str, pods: Sequence[Pod] | None = None) -> PairMatrix:
        """Every ordered pair of distinct pods, decided per group of indistinguishable pods."""
        chosen = self.pods if pods is None else tuple(self.pod(p.key) for p in pods)
        return pair_matrix(self.endpoints, self.tiers, chosen, port, protocol)

    def all_pairs(
        self, port: int | None, protocol: str, pods: Sequence[Pod] | None = None
    ) -> dict[tuple[str, str], bool]:
        """`{(source key, destination key): allowed}` for every ordered pair of distinct pods.

        A pod talking to its own IP never leaves its network namespace, so self pairs are left out.
        Cost grows with the number of groups of pods no selector, CIDR or named port tells apart.
        """
        return self.pair_matrix(port, protocol, pods).as_dict()

    # --- helpers --------------------------------------------------------------------------------

    def _resolve(self, end: Pod | IPAddress) -> tuple[IPAddress, Pod | None]:
        if isinstance(end, Pod):
            pod = self.pod(end.key)
            return pod.ip, pod
        return end, self.endpoints.pod_at(end)

    def _endpoint(self, text: str) -> Pod | IPAddress:
        address = parse_address(text)
        return self.pod(text) if address is None else address


def _expectation(verdict: Verdict) -> Expectation:
    return Expectation(verdict.allowed, str(verdict))
