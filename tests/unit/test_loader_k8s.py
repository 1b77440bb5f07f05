"""Kubernetes NetworkPolicy conversion, pinned to what Calico's `K8sNetworkPolicyToCalico` produces.

The expected selector strings are Calico's own: the `k8sSelectorToCalico` format
(`projectcalico.org/orchestrator == 'k8s' && k == 'v' && k in { 'a', 'b' } && ! has(k)`, calico-semantics.md
§1.5) and the upstream test expectations quoted in §1.5 and §2.2 for the scoped forms. Line numbers are
those of the YAML in each test, counted by hand.
"""

from __future__ import annotations

import ipaddress

import pytest

from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.loader import load_manifest_text
from calico_conformance.oracle.model import (
    Direction,
    EntityRule,
    NamedPort,
    Policy,
    PortRange,
)
from calico_conformance.oracle.selector import and_, namespace_scope, parse_selector

INGRESS, EGRESS = Direction.INGRESS, Direction.EGRESS


def knp(spec: str, *, namespace: str = "default", name: str = "np") -> str:
    """A NetworkPolicy document; `spec` starts on line 6, indented by two spaces."""
    return (
        "apiVersion: networking.k8s.io/v1\n"  # 1
        "kind: NetworkPolicy\n"  # 2
        f"metadata: {{name: {name}, namespace: {namespace}}}\n"  # 3
        "# spec follows\n"  # 4
        "spec:\n" + spec  # 5
    )


def load_policy(text: str) -> Policy:
    (policy,) = load_manifest_text(text, "p.yaml").policies
    return policy


def load_error(text: str) -> LocatedError:
    with pytest.raises(LocatedError) as caught:
        load_manifest_text(text, "p.yaml")
    return caught.value


# --- the policy itself -----------------------------------------------------------------------------------


def test_a_knp_lands_in_tier_default_at_order_1000_with_allow_rules_only() -> None:
    policy = load_policy(knp("  podSelector: {}\n  ingress:\n    - {}\n"))
    assert policy.kind == "KubernetesNetworkPolicy"
    assert (policy.name, policy.namespace, policy.tier, policy.order) == ("np", "default", "default", 1000.0)
    assert [rule.action for rule in policy.ingress] == ["Allow"]
    assert policy.felix_key == "default/knp.default.np"
    assert policy.location == Location("p.yaml", 1)
    assert policy.api_version == "networking.k8s.io/v1"


def test_empty_pod_selector_scoped_to_its_namespace_is_calicos_upstream_selector() -> None:
    """§1.5: `podSelector: {}` in `default` => `(projectcalico.org/orchestrator == 'k8s') &&
    projectcalico.org/namespace == 'default'` (networkpolicyprocessor_test.go)."""
    policy = load_policy(knp("  podSelector: {}\n"))
    assert policy.selector == parse_selector("projectcalico.org/orchestrator == 'k8s'")
    scoped = and_(policy.selector, parse_selector("projectcalico.org/namespace == 'default'"))
    upstream = "(projectcalico.org/orchestrator == 'k8s') && projectcalico.org/namespace == 'default'"
    assert scoped == parse_selector(upstream)


def test_match_labels_sorted_then_expressions_in_order_as_k8s_selector_to_calico_writes_them() -> None:
    policy = load_policy(
        knp(
            "  podSelector:\n"
            "    matchLabels: {b: '2', a: '1'}\n"
            "    matchExpressions:\n"
            "      - {key: env, operator: In, values: [prod, dev]}\n"
            "      - {key: stage, operator: NotIn, values: [test]}\n"
            "      - {key: owner, operator: Exists}\n"
            "      - {key: legacy, operator: DoesNotExist}\n"
        )
    )
    expected = (
        "projectcalico.org/orchestrator == 'k8s' && a == '1' && b == '2' && env in { 'prod', 'dev' } "
        "&& stage not in { 'test' } && has(owner) && ! has(legacy)"
    )
    assert policy.selector == parse_selector(expected)


# --- policyTypes, defaulted as the API server does ------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "types"),
    [
        pytest.param("", {INGRESS}, id="nothing-means-ingress"),
        pytest.param("  ingress: [{}]\n", {INGRESS}, id="ingress-rules-only"),
        pytest.param("  egress: [{}]\n", {INGRESS, EGRESS}, id="egress-section-adds-egress"),
        pytest.param("  egress: []\n", {INGRESS}, id="empty-egress-section-is-no-egress"),
        pytest.param("  policyTypes: []\n  egress: [{}]\n", {INGRESS, EGRESS}, id="empty-list-is-defaulted"),
        pytest.param("  policyTypes: [Egress]\n", {EGRESS}, id="egress-only-as-written"),
        pytest.param("  policyTypes: [Ingress, Egress]\n", {INGRESS, EGRESS}, id="both-as-written"),
        pytest.param("  policyTypes: [Egress]\n  ingress: [{}]\n", {EGRESS}, id="written-wins-over-rules"),
    ],
)
def test_policy_types_default_as_the_api_server_does(spec: str, types: set[Direction]) -> None:
    assert load_policy(knp("  podSelector: {}\n" + spec)).types == frozenset(types)


# --- peers -------------------------------------------------------------------------------------------------


def test_a_pod_selector_peer_is_orchestrator_and_terms_with_no_namespace_selector() -> None:
    policy = load_policy(
        knp("  podSelector: {}\n  ingress:\n    - from: [{podSelector: {matchLabels: {app: web}}}]\n")
    )
    (rule,) = policy.ingress
    assert rule.source == EntityRule(
        selector=parse_selector("projectcalico.org/orchestrator == 'k8s' && app == 'web'")
    )
    assert rule.destination == EntityRule()


def test_an_empty_namespace_selector_peer_is_calicos_upstream_selector() -> None:
    """§1.5: ingress peer `namespaceSelector: {}` => SrcSelector
    `(has(projectcalico.org/namespace)) && (projectcalico.org/orchestrator == 'k8s')`."""
    policy = load_policy(knp("  podSelector: {}\n  ingress:\n    - from: [{namespaceSelector: {}}]\n"))
    (rule,) = policy.ingress
    assert rule.source.namespace_selector == parse_selector("all()")
    assert rule.source.selector == parse_selector("projectcalico.org/orchestrator == 'k8s'")
    combined = and_(namespace_scope(rule.source.namespace_selector), rule.source.selector)
    upstream = "(has(projectcalico.org/namespace)) && (projectcalico.org/orchestrator == 'k8s')"
    assert combined == parse_selector(upstream)


def test_namespace_and_pod_selector_together_scope_to_the_pcns_labels() -> None:
    """§2.2: namespaceSelector `key == 'value'` + selector `projectcalico.org/orchestrator == 'k8s'` =>
    `(pcns.key == "value") && (projectcalico.org/orchestrator == 'k8s')`."""
    policy = load_policy(
        knp(
            "  podSelector: {}\n  egress:\n    - to: [{namespaceSelector: {matchLabels: {key: value}}, podSelector: {}}]\n"
        )
    )
    (rule,) = policy.egress
    assert rule.destination.namespace_selector == parse_selector("key == 'value'")
    combined = and_(namespace_scope(rule.destination.namespace_selector), rule.destination.selector)
    assert combined == parse_selector(
        """(pcns.key == "value") && (projectcalico.org/orchestrator == 'k8s')"""
    )


def test_an_ip_block_peer_is_nets_and_not_nets_without_any_selector() -> None:
    policy = load_policy(
        knp(
            "  podSelector: {}\n  egress:\n    - to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]\n"
        )
    )
    (rule,) = policy.egress
    assert rule.destination == EntityRule(
        nets=(ipaddress.ip_network("10.0.0.0/8"),), not_nets=(ipaddress.ip_network("10.1.0.0/16"),)
    )
    assert rule.source == EntityRule()


def test_a_rule_without_peers_or_ports_matches_everything() -> None:
    (rule,) = load_policy(knp("  podSelector: {}\n  egress:\n    - {}\n")).egress
    assert (rule.protocol, rule.source, rule.destination) == (None, EntityRule(), EntityRule())


# --- ports -------------------------------------------------------------------------------------------------


def test_one_rule_per_protocol_and_peer_protocols_sorted() -> None:
    policy = load_policy(
        knp(
            "  podSelector: {}\n"
            "  ingress:\n"
            "    - from: [{podSelector: {}}, {ipBlock: {cidr: 192.0.2.0/24}}]\n"
            "      ports: [{port: 53, protocol: UDP}, {port: 80}, {port: 443, protocol: TCP}]\n"
        )
    )
    summary = [(rule.protocol, rule.destination.ports, bool(rule.source.nets)) for rule in policy.ingress]
    tcp, udp = (PortRange(80, 80), PortRange(443, 443)), (PortRange(53, 53),)
    assert summary == [(6, tcp, False), (6, tcp, True), (17, udp, False), (17, udp, True)]


def test_a_protocol_without_port_allows_every_port_of_that_protocol() -> None:
    (rule,) = load_policy(
        knp("  podSelector: {}\n  ingress:\n    - ports: [{port: 80}, {protocol: TCP}]\n")
    ).ingress
    assert (rule.protocol, rule.destination.ports) == (6, ())


def test_end_port_makes_a_range_and_a_string_port_is_a_named_port() -> None:
    policy = load_policy(
        knp(
            "  podSelector: {}\n  egress:\n    - ports: [{port: 32000, endPort: 32768}, {port: dns, protocol: UDP}]\n"
        )
    )
    assert [(rule.protocol, rule.destination.ports) for rule in policy.egress] == [
        (6, (PortRange(32000, 32768),)),
        (17, (NamedPort("dns"),)),
    ]


def test_sctp_is_accepted() -> None:
    (rule,) = load_policy(
        knp("  podSelector: {}\n  ingress:\n    - ports: [{port: 9, protocol: SCTP}]\n")
    ).ingress
    assert rule.protocol == 132


# --- validation, as the API server validates -------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "line", "message"),
    [
        pytest.param("  podSelectr: {}\n", 6, "spec.podSelectr: unknown field", id="unknown-spec-field"),
        pytest.param("  ingress: []\n", 5, "'podSelector' is required", id="missing-pod-selector"),
        pytest.param(
            "  podSelector:\n    matchExpressions:\n      - {key: a, operator: Equals, values: [x]}\n",
            8,
            "'Equals' is not a valid selector operator",
            id="bad-operator",
        ),
        pytest.param(
            "  podSelector:\n    matchExpressions:\n      - {key: a, operator: In}\n",
            8,
            "operator In needs at least one value",
            id="in-without-values",
        ),
        pytest.param(
            "  podSelector:\n    matchExpressions:\n      - {key: a, operator: Exists, values: [x]}\n",
            8,
            "operator Exists takes no values",
            id="exists-with-values",
        ),
        pytest.param(
            "  podSelector:\n    matchLabels: {'bad key': x}\n",
            7,
            "invalid label key 'bad key'",
            id="bad-label-key",
        ),
        pytest.param(
            "  podSelector:\n    matchLabels: {app: 'a b'}\n",
            7,
            "invalid value 'a b' for label",
            id="bad-label-value",
        ),
        pytest.param(
            "  podSelector: {}\n  ingress:\n    - ports: [{endPort: 90}]\n",
            8,
            "endPort may not be specified when port is not",
            id="end-port-without-port",
        ),
        pytest.param(
            "  podSelector: {}\n  ingress:\n    - ports:\n        - port: 90\n          endPort: 80\n",
            10,
            "endPort 80 must be greater than or equal to port 90",
            id="end-port-below-port",
        ),
        pytest.param(
            "  podSelector: {}\n  ingress:\n    - ports: [{port: http, endPort: 90}]\n",
            8,
            "endPort may not be specified when port is a named port",
            id="end-port-with-named-port",
        ),
        pytest.param(
            "  podSelector: {}\n  ingress:\n    - ports: [{port: 0}]\n",
            8,
            "port 0 is out of range",
            id="port-zero",
        ),
        pytest.param(
            "  podSelector: {}\n  ingress:\n    - ports: [{port: 70000}]\n",
            8,
            "port 70000 is out of range",
            id="big",
        ),
        pytest.param(
            "  podSelector: {}\n  ingress:\n    - ports: [{port: '80'}]\n",
            8,
            "invalid named port '80'",
            id="quoted-number-is-no-port-name",
        ),
        pytest.param(
            "  podSelector: {}\n  ingress:\n    - ports: [{port: 80, protocol: ICMP}]\n",
            8,
            "unsupported protocol 'ICMP'",
            id="icmp-is-no-knp-protocol",
        ),
        pytest.param(
            "  podSelector: {}\n  egress:\n    - to:\n        - ipBlock: {cidr: 10.0.0.0/8}\n          podSelector: {}\n",
            9,
            "may not combine ipBlock with podSelector",
            id="ip-block-with-selector",
        ),
        pytest.param(
            "  podSelector: {}\n  egress:\n    - to:\n        - {}\n",
            9,
            "a peer needs podSelector",
            id="empty-peer",
        ),
        pytest.param(
            "  podSelector: {}\n  egress:\n    - to: [{ipBlock: {cidr: 10.0.0.300/8}}]\n",
            8,
            "invalid CIDR '10.0.0.300/8'",
            id="bad-cidr",
        ),
        pytest.param(
            "  podSelector: {}\n  egress:\n    - to:\n        - ipBlock:\n            cidr: 10.0.0.0/16\n"
            "            except: [10.1.0.0/24]\n",
            11,
            "must be a strict subset of the ipBlock cidr 10.0.0.0/16",
            id="except-outside-cidr",
        ),
        pytest.param(
            "  podSelector: {}\n  egress:\n    - to:\n        - ipBlock:\n            cidr: 10.0.0.0/8\n"
            "            except: ['fd00::/64']\n",
            11,
            "must be a strict subset",
            id="except-of-another-family",
        ),
        pytest.param(
            "  podSelector: {}\n  egress:\n    - to:\n        - ipBlock:\n            cidr: 10.0.0.0/8\n"
            "            except: [10.0.0.0/8]\n",
            11,
            "must be a strict subset",
            id="except-equal-to-cidr",
        ),
        pytest.param(
            "  podSelector: {}\n  policyTypes: [Ingress, Sideways]\n",
            7,
            "unsupported policy type 'Sideways'",
            id="bad-policy-type",
        ),
    ],
)
def test_invalid_network_policies_are_errors_at_their_line(spec: str, line: int, message: str) -> None:
    error = load_error(knp(spec))
    assert error.location == Location("p.yaml", line)
    assert message in error.why


def test_an_error_reads_file_line_path_why() -> None:
    error = load_error(knp("  podSelector: {}\n  ingress:\n    - ports: [{port: 0}]\n"))
    assert (
        str(error)
        == "p.yaml:8: spec.ingress[0].ports[0].port: port 0 is out of range: must be between 1 and 65535"
    )


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        pytest.param("{name: Bad_Name, namespace: x}", "invalid name 'Bad_Name'", id="bad-name"),
        pytest.param("{namespace: x}", "'name' is required", id="no-name"),
        pytest.param("{name: np, namespace: X}", "invalid namespace 'X'", id="bad-namespace"),
        pytest.param("{name: np, labels: {a: 1}}", "labels values must be strings", id="numeric-label-value"),
        pytest.param("{name: np, nmespace: x}", "metadata.nmespace: unknown field", id="typo"),
    ],
)
def test_bad_metadata_is_an_error(metadata: str, message: str) -> None:
    text = f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {metadata}\nspec: {{podSelector: {{}}}}\n"
    error = load_error(text)
    assert error.location == Location("p.yaml", 3)
    assert message in error.why


def test_a_namespaced_object_without_namespace_goes_to_default_as_kubectl_puts_it() -> None:
    text = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np}\nspec: {podSelector: {}}\n"
    assert load_policy(text).namespace == "default"


# --- namespaces and service accounts -----------------------------------------------------------------------


def test_namespaces_get_the_metadata_name_label_the_api_server_adds() -> None:
    text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: royal-bank\n  labels: {tenant: bank}\n"
    (namespace,) = load_manifest_text(text, "p.yaml").namespaces
    assert namespace.labels.as_dict() == {"tenant": "bank", "kubernetes.io/metadata.name": "royal-bank"}
    assert namespace.location == Location("p.yaml", 1)


def test_a_namespace_may_not_claim_to_be_in_a_namespace() -> None:
    error = load_error("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  namespace: b\n")
    assert error.location == Location("p.yaml", 5)
    assert "cluster-scoped" in error.why


def test_service_accounts_keep_their_labels() -> None:
    text = (
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: api, namespace: bank, labels: {role: api}}\n"
    )
    (account,) = load_manifest_text(text, "p.yaml").service_accounts
    assert (account.name, account.namespace, account.labels.as_dict()) == ("api", "bank", {"role": "api"})
