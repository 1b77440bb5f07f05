"""What a selector written in a policy means once Calico has put it in context (calico-semantics.md §2.2).

Calico never evaluates a policy's selectors as written. The update processors rewrite them *as text*
before felix sees them: a namespaced policy's selector gets `&& projectcalico.org/namespace == '<ns>'`,
a GlobalNetworkPolicy's namespaceSelector is `pcns.`-prefixed and `all()` replaced, a rule's selector,
namespaceSelector and serviceAccounts are folded into one selector scoped to the policy's namespace as
soon as any selector field is present, and felix then folds a rule's notSelector into its positive
selector. This module reproduces those rewrites (`networkpolicyprocessor.go`,
`globalnetworkpolicyprocessor.go`, `rules.go` `getEndpointSelector`, felix `combineMatchesIfPossible`),
so the evaluator only ever matches final selectors against label maps.

Each `Scope` also records the namespace facts its selector implies (a required namespace, or a required
`pcns.` namespace selector). They change nothing about matching; the all-pairs fast path uses them to
skip endpoints that cannot match.
"""

from __future__ import annotations

from dataclasses import dataclass

from calico_conformance.oracle.model import EntityRule, Policy
from calico_conformance.oracle.selector import (
    NAMESPACE_LABEL,
    NAMESPACE_PREFIX,
    SERVICE_ACCOUNT_LABEL,
    SERVICE_ACCOUNT_PREFIX,
    Selector,
    parse_selector,
)

HAS_NAMESPACE = f"has({NAMESPACE_LABEL})"
HAS_SERVICE_ACCOUNT = f"has({SERVICE_ACCOUNT_LABEL})"
NO_NAMESPACE = f"!has({NAMESPACE_LABEL})"


@dataclass(frozen=True)
class Scope:
    """A final selector, plus what it implies about the namespace of anything it matches."""

    selector: Selector
    namespace: str | None = None  # the selector requires projectcalico.org/namespace == namespace
    namespace_selector: Selector | None = None  # the selector requires this (over pcns.* labels) to hold

    def __str__(self) -> str:
        return str(self.selector)


@dataclass(frozen=True)
class EntitySelectors:
    """The selector part of one side of a rule, as felix renders it into IP sets.

    `positive`: the packet's address must belong to an object it matches. `negative`: the address must
    belong to no object it matches; felix keeps it separate only when there is no positive selector
    (otherwise it folds `!(notSelector)` into the positive one, object by object).
    """

    positive: Scope | None
    negative: Selector | None

    @property
    def selectors(self) -> tuple[Selector, ...]:
        found = [] if self.positive is None else [self.positive.selector]
        if self.negative is not None:
            found.append(self.negative)
        return tuple(found)


def _text(selector: Selector | None, prefix: str = "") -> str:
    """The canonical text of a selector field, label keys prefixed; "" when the field is absent.

    Calico tests the raw field against "" to decide presence, so a field written as "" is absent, while
    one written as "all()" (or blanks) is present and matches everything.
    """
    if selector is None or selector.source == "":
        return ""
    return str(selector.prefixed(prefix) if prefix else selector)


def _namespace_equals(namespace: str) -> str:
    return f"{NAMESPACE_LABEL} == '{namespace}'"


def policy_scope(policy: Policy) -> Scope:
    """The endpoints a policy applies to (`convert*PolicyV2ToV1Value`), Kubernetes policies included."""
    selector = _text(policy.selector)
    accounts = _text(policy.service_account_selector, SERVICE_ACCOUNT_PREFIX)
    if policy.namespace is not None:
        # networkpolicyprocessor.go: "(sel) && ns == 'x'", then "&& pcsa.<serviceAccountSelector>".
        scoped = _namespace_equals(policy.namespace)
        text = f"({selector}) && {scoped}" if selector else scoped
        if accounts:
            text = f"({text}) && {accounts}"
        return Scope(parse_selector(text), namespace=policy.namespace)
    # globalnetworkpolicyprocessor.go: the all() replacements run over the whole text built so far.
    text = selector
    implied: Selector | None = None
    namespaces = _text(policy.namespace_selector, NAMESPACE_PREFIX)
    if namespaces:
        text = f"({text}) && {namespaces}" if text else namespaces
        text = text.replace("all()", HAS_NAMESPACE)
        implied = parse_selector(namespaces.replace("all()", HAS_NAMESPACE))
    if accounts:
        text = f"({text}) && {accounts}" if text else accounts
        text = text.replace("all()", HAS_SERVICE_ACCOUNT)
    return Scope(parse_selector(text), namespace_selector=implied)


def _service_account_text(entity: EntityRule) -> str:
    """`parseServiceAccounts`: the pcsa.-prefixed selector AND `serviceaccount in {names}`."""
    accounts = entity.service_accounts
    if accounts is None:
        return ""
    text = _text(accounts.selector, SERVICE_ACCOUNT_PREFIX)
    if not accounts.names:
        return text
    names = str(parse_selector(f"{SERVICE_ACCOUNT_LABEL} in {{ '" + "', '".join(accounts.names) + "' }"))
    return f"({text}) && ({names})" if text else names


def entity_selectors(entity: EntityRule, policy_namespace: str | None) -> EntitySelectors:
    """`getEndpointSelector` followed by felix's `combineMatchesIfPossible` for one side of a rule."""
    namespace_text = ""
    namespace = None
    implied: Selector | None = None
    written_namespaces = _text(entity.namespace_selector, NAMESPACE_PREFIX)
    if written_namespaces:
        namespace_text = written_namespaces.replace("all()", HAS_NAMESPACE).replace("global()", NO_NAMESPACE)
        implied = parse_selector(namespace_text)
    elif policy_namespace is not None:
        namespace_text = _namespace_equals(policy_namespace)
        namespace = policy_namespace

    parts = [text for text in (_service_account_text(entity), _text(entity.selector)) if text]
    selector = "(" + ") && (".join(parts) + ")" if len(parts) > 1 else "".join(parts)
    negative = _text(entity.not_selector)
    if namespace_text and (selector or negative or written_namespaces):
        selector = f"({namespace_text}) && ({selector})" if selector else namespace_text
    else:
        namespace, implied = None, None  # the selector (if any) is not namespace-scoped

    if not selector:
        return EntitySelectors(None, parse_selector(negative) if negative else None)
    if negative:
        # combineMatchesIfPossible: with a positive selector the rule only matches known objects, so
        # felix filters that one selector instead of rendering a second IP set.
        selector = f"({selector}) && (!({negative}))"
    return EntitySelectors(Scope(parse_selector(selector), namespace, implied), None)
