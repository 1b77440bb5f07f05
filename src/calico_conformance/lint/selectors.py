"""Selector findings: selectors that match nothing in the layout's inventory, and convention-only labels.

A selector that matches nothing is the quietest policy bug there is: the runbook's
`namespaceSelector: name == "platform"` parses, applies, and allows nothing, because no namespace has a
`name` label. Matching is done on the selectors *as Calico renders them* (`scoping.py`: namespace scoping,
`pcns.`/`pcsa.` prefixes, folded notSelectors) against the label maps felix gives the layout's pods, its
namespaces and the policy set's network sets (`endpoints.py`), so "matches nothing" means exactly that
felix's IP set for it would be empty on a cluster holding the layout.

`name` on a namespace is only a convention (some tools set it, Kubernetes does not); the API server sets
`kubernetes.io/metadata.name` on every namespace and Calico adds `projectcalico.org/name`. A namespace
selector reading `name` gets a finding of its own, with or without a layout.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from calico_conformance.lint.context import LintContext
from calico_conformance.lint.findings import Finding
from calico_conformance.oracle.endpoints import LabelMap
from calico_conformance.oracle.errors import Location
from calico_conformance.oracle.model import Direction, EntityRule, Policy
from calico_conformance.oracle.rules import CompiledPolicy, EntityMatcher
from calico_conformance.oracle.scoping import Scope
from calico_conformance.oracle.selector import NAMESPACE_PREFIX, Selector

CONVENTION_LABEL = "name"
NAMESPACE_NAME_LABELS = ("kubernetes.io/metadata.name", "projectcalico.org/name")
NAMES_SHOWN = 6  # namespaces listed in a message before "..."


def _written(selector: Selector | None) -> str:
    return selector.source if selector is not None and selector.source.strip() else ""


def _namespace_selectors(policy: Policy) -> Iterator[tuple[str, Selector, Location | None]]:
    """(where, selector, location) of every namespace selector a policy writes."""
    if _written(policy.namespace_selector):
        assert policy.namespace_selector is not None
        yield "spec.namespaceSelector", policy.namespace_selector, policy.location
    for direction in Direction:
        for index, rule in enumerate(policy.rules(direction)):
            for side, entity in (("source", rule.source), ("destination", rule.destination)):
                if _written(entity.namespace_selector):
                    assert entity.namespace_selector is not None
                    where = f"{direction.value.lower()} rule {index} {side}.namespaceSelector"
                    yield where, entity.namespace_selector, rule.location or policy.location


def convention_label_findings(context: LintContext) -> Iterator[Finding]:
    for policy in context.resources.policies:
        for where, selector, location in _namespace_selectors(policy):
            if CONVENTION_LABEL in selector.label_keys():
                yield Finding(
                    "convention-label",
                    location,
                    f"{policy.display_name} {where} `{selector.source}` reads the label `name`, which"
                    f" Kubernetes does not set on namespaces; use {' or '.join(NAMESPACE_NAME_LABELS)}",
                )


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown + (", ..." if len(names) > NAMES_SHOWN else "")


class _Inventory:
    """The label maps felix would hold for the layout's cluster."""

    def __init__(self, context: LintContext) -> None:
        index = context.oracle.endpoints
        self.namespaces = {name: facts.labels for name, facts in index.namespaces.items()}
        self.pods: tuple[LabelMap, ...] = tuple(index.pod_labels.values())
        self.namespace_names = sorted(self.namespaces)
        # A selector scoped to a namespace can only match that namespace's pods (the namespace pseudo-label
        # always wins, endpoints.py), except a pod whose own `pcns.` labels stand in for the namespace's.
        self.sets = index.network_set_labels
        self.pods_in: dict[str, list[LabelMap]] = {}
        self.anywhere: list[LabelMap] = []  # pods that carry their own pcns. labels
        for key, labels in index.pod_labels.items():
            pod = index.pods[key]
            if any(label.startswith(NAMESPACE_PREFIX) for label in pod.labels):
                self.anywhere.append(labels)
            else:
                self.pods_in.setdefault(pod.namespace, []).append(labels)

    def candidates(self, scope: Scope, *, network_sets: bool) -> list[LabelMap]:
        """The pods `scope` could match (all, or those of the namespaces it is scoped to), and the
        network sets when asked for."""
        if scope.namespace is not None:
            found = list(self.pods_in.get(scope.namespace, []))
        elif scope.namespace_selector is not None:
            wanted = scope.namespace_selector.matcher
            found = [m for name, maps in self.pods_in.items() if wanted(self.namespaces[name]) for m in maps]
        else:
            found = [m for maps in self.pods_in.values() for m in maps]
        return found + self.anywhere + (list(self.sets) if network_sets else [])

    def namespace_text(self) -> str:
        return f"no namespace of the layout ({_listing(self.namespace_names)})"

    def matches_namespace(self, selector: Selector) -> bool:
        return any(selector.matcher(labels) for labels in self.namespaces.values())


def _policy_finding(compiled: CompiledPolicy, inventory: _Inventory) -> Finding | None:
    policy, scope = compiled.policy, compiled.scope
    if scope.namespace_selector is not None and not inventory.matches_namespace(scope.namespace_selector):
        assert policy.namespace_selector is not None
        return Finding(
            "selector-matches-nothing",
            policy.location,
            f"{policy.display_name} spec.namespaceSelector `{policy.namespace_selector.source}` matches"
            f" {inventory.namespace_text()}, so the policy applies to no pod",
        )
    if any(scope.selector.matcher(labels) for labels in inventory.candidates(scope, network_sets=False)):
        return None
    if policy.namespace is not None and policy.namespace not in inventory.namespaces:
        why = f"its namespace {policy.namespace} is not in the layout ({_listing(inventory.namespace_names)})"
    else:
        written = _written(policy.selector) or "all()"
        accounts = _written(policy.service_account_selector)
        why = f"spec.selector `{written}`" + (
            f" with serviceAccountSelector `{accounts}`" if accounts else ""
        )
        why += " matches no workload of the layout"
    return Finding(
        "selector-matches-nothing", policy.location, f"{policy.display_name} applies to no pod: {why}"
    )


def _entity_finding(
    matcher: EntityMatcher, where: str, location: Location | None, inventory: _Inventory
) -> Finding | None:
    scope, entity = matcher.scope, matcher.entity
    if scope is None:
        return None  # no positive selector: nets, ports or notSelector alone are not "a selector"
    if scope.namespace_selector is not None and not inventory.matches_namespace(scope.namespace_selector):
        assert entity.namespace_selector is not None
        return Finding(
            "selector-matches-nothing",
            location,
            f"{where}.namespaceSelector `{entity.namespace_selector.source}` matches"
            f" {inventory.namespace_text()}, so the rule matches no traffic",
        )
    if any(scope.selector.matcher(labels) for labels in inventory.candidates(scope, network_sets=True)):
        return None
    return Finding(
        "selector-matches-nothing",
        location,
        f"{where} {_entity_text(entity)} matches no workload or network set of the layout, so the rule"
        " matches no traffic",
    )


def _entity_text(entity: EntityRule) -> str:
    parts = []
    for name, selector in (
        ("namespaceSelector", entity.namespace_selector),
        ("selector", entity.selector),
        ("notSelector", entity.not_selector),
    ):
        if _written(selector):
            assert selector is not None
            parts.append(f"{name} `{selector.source}`")
    accounts = entity.service_accounts
    if accounts is not None:
        if accounts.names:
            parts.append(f"serviceAccounts.names {list(accounts.names)}")
        if _written(accounts.selector):
            assert accounts.selector is not None
            parts.append(f"serviceAccounts.selector `{accounts.selector.source}`")
    return " with ".join(parts) or "(its selectors)"


def matches_nothing_findings(context: LintContext) -> Iterator[Finding]:
    """Policy selectors that select no pod, rule selectors that match no pod or network set."""
    context.require_inventory()
    inventory = _Inventory(context)
    for tier in context.oracle.tiers:
        for compiled in tier.policies:
            finding = _policy_finding(compiled, inventory)
            if finding is not None:
                yield finding
                continue  # its rules are moot while the policy applies to nothing
            for direction in Direction:
                for rule in compiled.rules(direction):
                    location = rule.rule.location or compiled.policy.location
                    for side, matcher in (("source", rule.source), ("destination", rule.destination)):
                        where = f"{compiled.policy.display_name} {direction.value.lower()} rule {rule.index} {side}"
                        entity_finding = _entity_finding(matcher, where, location, inventory)
                        if entity_finding is not None:
                            yield entity_finding
