"""Selectors over Calico's pseudo-labels, and the namespaceSelector rewrite, on endpoint label maps.

The label maps are written out by hand the way calico-semantics.md §2.3 says Calico builds them: a pod
carries its own labels, `projectcalico.org/{namespace,orchestrator,serviceaccount}`, its namespace's
labels as `pcns.*` (plus `pcns.projectcalico.org/name`) and its service account's labels as `pcsa.*`.
Expected rewrites are the upstream `rules_test.go` / `globalnetworkpolicyprocessor_test.go` strings.
"""

from __future__ import annotations

import pytest

from calico_conformance.oracle.selector import (
    ALL,
    NAMESPACE_PREFIX,
    SERVICE_ACCOUNT_PREFIX,
    and_,
    namespace_scope,
    parse_selector,
    rewrite_text,
)

CUSTOMER_A_WEB_POD = {
    "app": "web",
    "projectcalico.org/namespace": "customer-a",
    "projectcalico.org/orchestrator": "k8s",
    "projectcalico.org/serviceaccount": "frontend",
    "pcns.team": "a",
    "pcns.env": "staging",
    "pcns.kubernetes.io/metadata.name": "customer-a",
    "pcns.projectcalico.org/name": "customer-a",
    "pcsa.tier": "public",
    "pcsa.projectcalico.org/name": "frontend",
}
ROYAL_BANK_DB_POD = {
    "app": "db",
    "projectcalico.org/namespace": "royal-bank",
    "projectcalico.org/orchestrator": "k8s",
    "projectcalico.org/serviceaccount": "default",
    "pcns.team": "bank",
    "pcns.env": "prod",
    "pcns.kubernetes.io/metadata.name": "royal-bank",
    "pcns.projectcalico.org/name": "royal-bank",
    "pcsa.projectcalico.org/name": "default",
}
CUSTOMER_A_NETWORK_SET = {  # a namespaced NetworkSet: own labels, namespace, inherited namespace labels
    "role": "partners",
    "projectcalico.org/namespace": "customer-a",
    "pcns.team": "a",
    "pcns.env": "staging",
    "pcns.kubernetes.io/metadata.name": "customer-a",
    "pcns.projectcalico.org/name": "customer-a",
}
DNS_GLOBAL_NETWORK_SET = {"role": "dns-servers"}  # only its own labels

OBJECTS = {
    "customer-a-web-pod": CUSTOMER_A_WEB_POD,
    "royal-bank-db-pod": ROYAL_BANK_DB_POD,
    "customer-a-network-set": CUSTOMER_A_NETWORK_SET,
    "dns-global-network-set": DNS_GLOBAL_NETWORK_SET,
}


@pytest.mark.parametrize(
    ("namespace_selector", "selected"),
    [
        pytest.param("team == 'a'", {"customer-a-web-pod", "customer-a-network-set"}, id="namespace-label"),
        pytest.param(
            "all()",
            {"customer-a-web-pod", "royal-bank-db-pod", "customer-a-network-set"},
            id="all-means-every-namespaced-object",
        ),
        pytest.param("global()", {"dns-global-network-set"}, id="global-means-only-non-namespaced-objects"),
        pytest.param(
            "env != 'prod'",
            {"customer-a-web-pod", "customer-a-network-set", "dns-global-network-set"},
            id="negative-selector-also-selects-non-namespaced-objects",
        ),
        pytest.param(
            "env != 'prod' && all()",
            {"customer-a-web-pod", "customer-a-network-set"},
            id="and-all-restricts-to-namespaces",
        ),
        pytest.param("projectcalico.org/name == 'royal-bank'", {"royal-bank-db-pod"}, id="namespace-by-name"),
        pytest.param(
            "kubernetes.io/metadata.name in {'royal-bank', 'customer-b'}",
            {"royal-bank-db-pod"},
            id="namespace-by-kubernetes-name-label",
        ),
        pytest.param("!has(team)", {"dns-global-network-set"}, id="absent-namespace-label"),
    ],
)
def test_namespace_scope_selects_by_inherited_namespace_labels(
    namespace_selector: str, selected: set[str]
) -> None:
    scoped = namespace_scope(parse_selector(namespace_selector))
    assert {name for name, labels in OBJECTS.items() if scoped.matches(labels)} == selected


@pytest.mark.parametrize(
    ("namespace_selector", "rewritten"),
    [
        pytest.param("namespacelabel1 == 'value1'", 'pcns.namespacelabel1 == "value1"', id="upstream-prefix"),
        pytest.param(
            "!has(key) || (has(key) && !key in {'value'})",
            '(!has(pcns.key) || (has(pcns.key) && !pcns.key in {"value"}))',
            id="upstream-complex",
        ),
        pytest.param("all()", "has(projectcalico.org/namespace)", id="all"),
        pytest.param("  global( ) ", "!has(projectcalico.org/namespace)", id="global"),
        pytest.param("!global()", "has(projectcalico.org/namespace)", id="not-global-collapses"),
        pytest.param(
            "team == 'a' || all()",
            '(pcns.team == "a" || has(projectcalico.org/namespace))',
            id="all-inside-an-expression",
        ),
        # Calico's rewrite is strings.Replace over the whole text, so it reaches into quoted values too.
        pytest.param(
            "note == 'all()'",
            'pcns.note == "has(projectcalico.org/namespace)"',
            id="textual-rewrite-reaches-values-as-in-calico",
        ),
    ],
)
def test_namespace_scope_rewrites_text_as_calico(namespace_selector: str, rewritten: str) -> None:
    assert str(namespace_scope(parse_selector(namespace_selector))) == rewritten


def test_rule_selector_combined_with_namespace_selector_as_upstream() -> None:
    # rules_test.go: selector `projectcalico.org/orchestrator == 'k8s'` + namespaceSelector `key == 'value'`.
    combined = and_(
        namespace_scope(parse_selector("key == 'value'")),
        parse_selector("projectcalico.org/orchestrator == 'k8s'"),
    )
    assert combined == parse_selector("(pcns.key == \"value\") && (projectcalico.org/orchestrator == 'k8s')")


def test_service_accounts_in_a_namespaced_policy_as_upstream() -> None:
    # rules_test.go: serviceAccounts {names: [sa1, sa2], selector: key == 'value1'} in NP namespace "namespace".
    service_accounts = and_(
        parse_selector("key == 'value1'").prefixed(SERVICE_ACCOUNT_PREFIX),
        parse_selector("projectcalico.org/serviceaccount in { 'sa1', 'sa2' }"),
    )
    combined = and_(parse_selector("projectcalico.org/namespace == 'namespace'"), service_accounts)
    upstream = (
        "(projectcalico.org/namespace == 'namespace') && "
        '((pcsa.key == "value1") && (projectcalico.org/serviceaccount in {"sa1", "sa2"}))'
    )
    assert combined == parse_selector(upstream)
    assert not combined.matches(CUSTOMER_A_WEB_POD)
    assert combined.matches(
        {
            "projectcalico.org/namespace": "namespace",
            "projectcalico.org/serviceaccount": "sa2",
            "pcsa.key": "value1",
        }
    )


def test_global_policy_service_account_all_as_upstream() -> None:
    # globalnetworkpolicyprocessor_test.go: selector `mylabel == 'selectme'`, serviceAccountSelector `all()`.
    prefixed = and_(parse_selector("mylabel == 'selectme'"), ALL.prefixed(SERVICE_ACCOUNT_PREFIX))
    rewritten = rewrite_text(prefixed, "all()", "has(projectcalico.org/serviceaccount)")
    assert rewritten == parse_selector("(mylabel == 'selectme') && has(projectcalico.org/serviceaccount)")


def test_global_policy_namespace_selector_as_upstream() -> None:
    # globalnetworkpolicyprocessor_test.go: selector `mylabel == 'selectme'`, namespaceSelector `name == 'testing'`.
    combined = and_(
        parse_selector("mylabel == 'selectme'"),
        parse_selector("name == 'testing'").prefixed(NAMESPACE_PREFIX),
    )
    assert combined == parse_selector("(mylabel == 'selectme') && pcns.name == \"testing\"")


@pytest.mark.parametrize(
    ("endpoint_selector", "selected"),
    [
        pytest.param(
            "projectcalico.org/orchestrator == 'k8s'", {"customer-a-web-pod", "royal-bank-db-pod"}, id="pods"
        ),
        pytest.param("projectcalico.org/namespace == 'royal-bank'", {"royal-bank-db-pod"}, id="by-namespace"),
        pytest.param(
            "projectcalico.org/serviceaccount in {'frontend'}", {"customer-a-web-pod"}, id="by-sa-name"
        ),
        pytest.param("pcsa.tier == 'public'", {"customer-a-web-pod"}, id="by-sa-label"),
        pytest.param(
            "pcns.team == 'a'",
            {"customer-a-web-pod", "customer-a-network-set"},
            id="namespace-label-via-pcns",
        ),
        pytest.param(
            "!has(projectcalico.org/namespace)", {"dns-global-network-set"}, id="only-non-namespaced-objects"
        ),
    ],
)
def test_endpoint_selectors_over_pseudo_labels(endpoint_selector: str, selected: set[str]) -> None:
    selector = parse_selector(endpoint_selector)
    assert {name for name, labels in OBJECTS.items() if selector.matches(labels)} == selected
