"""Rule matching: what each criterion of a rule matches, per calico-semantics.md §2.1-§2.4.

Every scenario below has the same shape: a policy that selects the pod under test and ends in an implicit
end-of-tier deny, with one Allow rule whose criterion is the subject. So "allowed" means "the criterion
matched" and "denied" means "it did not". Expectations come from the section cited in each docstring.
"""

from __future__ import annotations

import textwrap

import pytest

from calico_conformance.oracle.errors import LocatedError
from tests.unit.evaluate_support import SOURCE, allowed, oracle_for, verdict

CLUSTER = """
    calicoVersion: "3.30"
    namespaces:
      - {{name: x, labels: {{team: a}}}}
      - {{name: y, labels: {{team: b}}}}
    pods:
      - {{name: server, namespace: x, labels: {{app: server}}, ip: 10.0.0.10,
         ports: [{{name: http, containerPort: 80, protocol: TCP}}, {{name: dns, containerPort: 53, protocol: UDP}}]}}
      - {{name: good, namespace: x, labels: {{app: good}}, ip: 10.0.0.11}}
      - {{name: bad, namespace: x, labels: {{app: bad}}, ip: 10.0.0.12}}
      - {{name: other, namespace: y, labels: {{app: good}}, ip: 10.1.0.13}}
      - {{name: robot, namespace: y, labels: {{app: good}}, ip: 10.1.0.14, serviceAccount: robot}}
    resources:
      - apiVersion: v1
        kind: ServiceAccount
        metadata: {{name: robot, namespace: y, labels: {{trusted: "yes"}}}}
{resources}
"""


def rule_lines(text: str, spaces: int) -> str:
    """A rule written flush-left, indented to sit under `ingress:` / `egress:` in the templates."""
    return textwrap.indent(textwrap.dedent(text).strip("\n"), " " * spaces)


def with_ingress_rule(rule: str, *, kind: str = "NetworkPolicy", extra: str = "") -> str:
    """A cluster whose pod x/server is guarded by one policy with this single ingress rule."""
    namespace = "\n          namespace: x" if kind == "NetworkPolicy" else ""
    policy = f"""
      - apiVersion: projectcalico.org/v3
        kind: {kind}
        metadata:
          name: guard{namespace}
        spec:
          selector: app == 'server'
          types: [Ingress]
          ingress:
{rule_lines(rule, 12)}
{extra}"""
    return CLUSTER.format(resources=policy)


def with_egress_rule(rule: str, *, kind: str = "GlobalNetworkPolicy", extra: str = "") -> str:
    """A cluster whose pod x/good is guarded by one egress policy with this single rule."""
    namespace = "\n          namespace: x" if kind == "NetworkPolicy" else ""
    policy = f"""
      - apiVersion: projectcalico.org/v3
        kind: {kind}
        metadata:
          name: guard{namespace}
        spec:
          selector: app == 'good' && projectcalico.org/namespace == 'x'
          types: [Egress]
          egress:
{rule_lines(rule, 12)}
{extra}"""
    return CLUSTER.format(resources=policy)


# --- §2.2 selector scoping -------------------------------------------------------------------------------


def test_a_not_selector_alone_in_a_namespaced_policy_matches_only_that_namespace() -> None:
    """§2.2 table: `notSelector: N` only, in NetworkPolicy (ns X): "endpoints in X that do not match N
    (restricted to X!)"."""
    oracle = oracle_for(with_ingress_rule("- action: Allow\n  source: {notSelector: app == 'bad'}"))
    assert allowed(oracle, "x/good", "x/server")
    assert not allowed(oracle, "x/bad", "x/server")
    assert not allowed(oracle, "y/other", "x/server")  # not in x, although it does not match N
    assert not allowed(oracle, "192.0.2.1", "x/server")


def test_a_not_selector_alone_in_a_global_policy_matches_anything_else_even_outside() -> None:
    """§2.2 table: in a GlobalNetworkPolicy "any IP except endpoints/sets matching N (includes outside world)"."""
    oracle = oracle_for(
        with_ingress_rule(
            "- action: Allow\n  source: {notSelector: app == 'bad'}", kind="GlobalNetworkPolicy"
        )
    )
    assert allowed(oracle, "x/good", "x/server")
    assert allowed(oracle, "y/other", "x/server")
    assert allowed(oracle, "192.0.2.1", "x/server")
    assert not allowed(oracle, "x/bad", "x/server")


def test_a_selector_matches_known_objects_only_never_the_outside_world() -> None:
    """§2.2 notes: "A rule with a selector `all()` won't match 'all packets'"."""
    oracle = oracle_for(
        with_ingress_rule("- action: Allow\n  source: {selector: all()}", kind="GlobalNetworkPolicy")
    )
    assert allowed(oracle, "y/other", "x/server")
    assert not allowed(oracle, "192.0.2.1", "x/server")


def test_an_empty_rule_matches_every_packet_including_the_outside_world() -> None:
    """§2.4: `- action: Allow` with no other fields "matches every packet ... any peer (including
    non-cluster IPs), in NP and GNP alike"."""
    oracle = oracle_for(with_ingress_rule("- action: Allow"))
    assert allowed(oracle, "y/other", "x/server")
    assert allowed(oracle, "192.0.2.1", "x/server")


def test_a_namespace_selector_replaces_the_policy_namespace() -> None:
    """§2.2 table: `namespaceSelector: NS` in a NetworkPolicy: "endpoints in namespaces matching NS --
    replaces X"."""
    oracle = oracle_for(with_ingress_rule("- action: Allow\n  source: {namespaceSelector: team == 'b'}"))
    assert allowed(oracle, "y/other", "x/server")
    assert not allowed(oracle, "x/good", "x/server")


def test_a_selector_in_a_namespaced_policy_is_scoped_to_its_namespace() -> None:
    """§2.2 table: `selector: S` in NetworkPolicy (ns X): "endpoints in X matching S"."""
    oracle = oracle_for(with_ingress_rule("- action: Allow\n  source: {selector: app == 'good'}"))
    assert allowed(oracle, "x/good", "x/server")
    assert not allowed(oracle, "y/other", "x/server")  # app=good too, but in y


def test_not_equal_and_not_in_match_objects_without_the_label() -> None:
    """§3 truth table: `k != "x"` and `k not in {...}` are true when the label is absent."""
    rule = "- action: Allow\n  source: {selector: \"tier != 'db' && role not in {'admin'}\"}"
    oracle = oracle_for(with_ingress_rule(rule))
    assert allowed(oracle, "x/good", "x/server")  # has neither label


def test_a_not_selector_is_folded_into_the_positive_selector_object_by_object() -> None:
    """felix `combineMatchesIfPossible` (quoted in §2.2's source): with a positive selector, the
    notSelector filters the same object; both in one rule must be satisfied (§2.1)."""
    rule = (
        "- action: Allow\n  source: {selector: projectcalico.org/namespace == 'x', notSelector: app == 'bad'}"
    )
    oracle = oracle_for(with_ingress_rule(rule, kind="GlobalNetworkPolicy"))
    assert allowed(oracle, "x/good", "x/server")
    assert not allowed(oracle, "x/bad", "x/server")
    assert not allowed(oracle, "y/other", "x/server")


def test_service_accounts_match_names_and_selector() -> None:
    """§2.2: serviceAccounts match "pods whose SA matches"; names AND selector (`parseServiceAccounts`)."""
    by_name = oracle_for(
        with_ingress_rule(
            "- action: Allow\n  source: {serviceAccounts: {names: [robot]}}", kind="GlobalNetworkPolicy"
        )
    )
    assert allowed(by_name, "y/robot", "x/server")
    assert not allowed(by_name, "y/other", "x/server")
    by_label = oracle_for(
        with_ingress_rule(
            "- action: Allow\n  source: {serviceAccounts: {selector: trusted == 'yes'}}",
            kind="GlobalNetworkPolicy",
        )
    )
    assert allowed(by_label, "y/robot", "x/server")
    assert not allowed(by_label, "y/other", "x/server")


def test_service_accounts_in_a_namespaced_policy_are_scoped_to_its_namespace() -> None:
    """§2.2 table: serviceAccounts "scoped like `selector`" in a NetworkPolicy."""
    oracle = oracle_for(with_ingress_rule("- action: Allow\n  source: {serviceAccounts: {names: [robot]}}"))
    assert not allowed(oracle, "y/robot", "x/server")


def test_service_account_names_never_match_a_pod_whose_account_name_has_63_characters_or_more() -> None:
    """§2.3: a pod carries `projectcalico.org/serviceaccount` "only if SA name < 63 chars", and §2.2
    turns `serviceAccounts.names` into `projectcalico.org/serviceaccount in {names}`: naming such an
    account matches none of its pods (one character shorter, it does)."""
    limit, short = "r" * 63, "r" * 62
    cluster = f"""
        calicoVersion: "3.30"
        namespaces: [{{name: x}}]
        pods:
          - {{name: server, namespace: x, ip: 10.0.0.10}}
          - {{name: limit, namespace: x, ip: 10.0.0.11, serviceAccount: {limit}}}
          - {{name: short, namespace: x, ip: 10.0.0.12, serviceAccount: {short}}}
        resources:
          - apiVersion: projectcalico.org/v3
            kind: NetworkPolicy
            metadata: {{name: guard, namespace: x}}
            spec:
              selector: all()
              types: [Ingress]
              ingress:
                - action: Allow
                  source: {{serviceAccounts: {{names: [{limit}, {short}]}}}}
    """
    oracle = oracle_for(cluster)
    assert not allowed(oracle, "x/limit", "x/server")
    assert allowed(oracle, "x/short", "x/server")
    pairs = oracle.all_pairs(80, "TCP")
    assert not pairs[("x/limit", "x/server")]
    assert pairs[("x/short", "x/server")]


# --- §2.1 nets, protocols, ICMP -----------------------------------------------------------------------


def test_nets_and_not_nets_must_both_hold() -> None:
    """§2.1: "A single rule can contain the positive and negative version of a match and both must be
    satisfied"."""
    rule = "- action: Allow\n  destination: {nets: [10.0.0.0/8], notNets: [10.1.0.0/16]}"
    oracle = oracle_for(with_egress_rule(rule))
    assert allowed(oracle, "x/good", "x/server")  # 10.0.0.10
    assert not allowed(oracle, "x/good", "y/other")  # 10.1.0.13
    assert allowed(oracle, "x/good", "10.200.0.1")
    assert not allowed(oracle, "x/good", "192.0.2.1")


def test_protocol_and_not_protocol() -> None:
    """§2.1 `protocol` / `notProtocol`."""
    oracle = oracle_for(with_egress_rule("- action: Allow\n  protocol: UDP"))
    assert allowed(oracle, "x/good", "x/server", 53, "UDP")
    assert not allowed(oracle, "x/good", "x/server", 53, "TCP")
    negated = oracle_for(with_egress_rule("- action: Allow\n  notProtocol: UDP"))
    assert allowed(negated, "x/good", "x/server", 80, "TCP")
    assert allowed(negated, "x/good", "x/server", None, "ICMP")
    assert not allowed(negated, "x/good", "x/server", 53, "UDP")


@pytest.mark.parametrize(
    ("icmp", "matches"),
    [("{type: 8}", True), ("{type: 8, code: 0}", True), ("{type: 0}", False), ("{type: 8, code: 1}", False)],
)
def test_icmp_probes_are_echo_requests(icmp: str, matches: bool) -> None:
    """§2.1 `icmp` {type, code}; the oracle's ICMP probe is an echo request, type 8 code 0."""
    oracle = oracle_for(with_egress_rule(f"- action: Allow\n  protocol: ICMP\n  icmp: {icmp}"))
    assert allowed(oracle, "x/good", "x/server", None, "ICMP") is matches


def test_not_icmp_excludes_echo_requests() -> None:
    oracle = oracle_for(with_egress_rule("- action: Allow\n  protocol: ICMP\n  notICMP: {type: 8}"))
    assert not allowed(oracle, "x/good", "x/server", None, "ICMP")


# --- §2.1 ports -------------------------------------------------------------------------------------------


def test_port_ranges_are_inclusive() -> None:
    """§2.1: string range "1000:2000" (inclusive)."""
    oracle = oracle_for(
        with_egress_rule("- action: Allow\n  protocol: TCP\n  destination: {ports: ['80:90']}")
    )
    assert allowed(oracle, "x/good", "x/server", 80)
    assert allowed(oracle, "x/good", "x/server", 90)
    assert not allowed(oracle, "x/good", "x/server", 91)


def test_not_ports_exclude_listed_ports() -> None:
    oracle = oracle_for(with_egress_rule("- action: Allow\n  protocol: TCP\n  destination: {notPorts: [22]}"))
    assert allowed(oracle, "x/good", "x/server", 80)
    assert not allowed(oracle, "x/good", "x/server", 22)


def test_a_named_port_on_egress_matches_the_destination_pod_exposing_it() -> None:
    """§2.1 "Named port: matches destination IP:port pairs where an endpoint in the rule's selector scope
    exposes a container port with that name and the rule's protocol"."""
    oracle = oracle_for(with_egress_rule("- action: Allow\n  protocol: TCP\n  destination: {ports: [http]}"))
    assert allowed(oracle, "x/good", "x/server", 80)
    assert not allowed(oracle, "x/good", "x/server", 8080)  # the named port is 80
    assert not allowed(oracle, "x/good", "y/other", 80)  # exposes no port named http
    assert not allowed(oracle, "x/good", "192.0.2.1", 80)  # not an endpoint at all


def test_a_named_port_needs_the_rules_protocol() -> None:
    """§2.1: "... with that name **and the rule's protocol**"; server's `dns` is UDP 53."""
    udp = oracle_for(with_egress_rule("- action: Allow\n  protocol: UDP\n  destination: {ports: [dns]}"))
    assert allowed(udp, "x/good", "x/server", 53, "UDP")
    tcp = oracle_for(with_egress_rule("- action: Allow\n  protocol: TCP\n  destination: {ports: [dns]}"))
    assert not allowed(tcp, "x/good", "x/server", 53, "TCP")


def test_a_named_port_is_filtered_by_the_rules_selector() -> None:
    """The named-port IP set is built from the endpoints the rule's selector matches."""
    rule = "- action: Allow\n  protocol: TCP\n  destination: {selector: app == 'other', ports: [http]}"
    assert not allowed(oracle_for(with_egress_rule(rule)), "x/good", "x/server", 80)


def test_a_named_port_on_ingress_matches_the_local_pod() -> None:
    """For an ingress rule the destination is the policy's own endpoint (§2.1: source = originator,
    destination = terminator)."""
    oracle = oracle_for(with_ingress_rule("- action: Allow\n  protocol: TCP\n  destination: {ports: [http]}"))
    assert allowed(oracle, "x/good", "x/server", 80)
    assert not allowed(oracle, "x/good", "x/server", 81)


@pytest.mark.parametrize(
    ("ports", "matches"),
    [("['1:65535']", True), ("['32768:60999']", True), ("[80]", False), ("['1:1024']", False)],
)
def test_source_ports_are_judged_against_the_whole_ephemeral_range(ports: str, matches: bool) -> None:
    """A probe's source port is ephemeral (32768-60999): a range covering all of it always matches, one
    missing it entirely never does (rules.py module docstring)."""
    oracle = oracle_for(with_egress_rule(f"- action: Allow\n  protocol: TCP\n  source: {{ports: {ports}}}"))
    assert allowed(oracle, "x/good", "x/server", 80) is matches


def test_source_not_ports_are_judged_against_the_whole_ephemeral_range() -> None:
    oracle = oracle_for(
        with_egress_rule("- action: Allow\n  protocol: TCP\n  source: {notPorts: ['1:1024']}")
    )
    assert allowed(oracle, "x/good", "x/server", 80)


def test_source_ports_covering_part_of_the_ephemeral_range_are_refused_at_the_rule() -> None:
    with pytest.raises(LocatedError) as raised:
        oracle_for(with_egress_rule("- action: Allow\n  protocol: TCP\n  source: {ports: ['40000:50000']}"))
    assert str(raised.value).startswith(f"{SOURCE}:")
    assert "cover only part of the ephemeral range 32768:60999" in str(raised.value)


def test_named_source_ports_are_refused() -> None:
    with pytest.raises(LocatedError, match="named source ports cannot be judged"):
        oracle_for(with_egress_rule("- action: Allow\n  protocol: TCP\n  source: {ports: [http]}"))


def test_services_rules_are_refused_with_their_location() -> None:
    rule = "- action: Allow\n  destination: {services: {name: kube-dns, namespace: kube-system}}"
    with pytest.raises(LocatedError, match="services rules are not supported by the oracle") as raised:
        oracle_for(with_egress_rule(rule))
    assert raised.value.location is not None
    assert raised.value.location.file == SOURCE


# --- §2.3 network sets ------------------------------------------------------------------------------------

GLOBAL_SET = """
      - apiVersion: projectcalico.org/v3
        kind: GlobalNetworkSet
        metadata: {name: partners, labels: {kind: partner}}
        spec: {nets: [192.0.2.0/24]}
      - apiVersion: projectcalico.org/v3
        kind: NetworkSet
        metadata: {name: office, namespace: y, labels: {kind: office}}
        spec: {nets: [198.51.100.0/24, 10.0.0.11/32]}"""


def test_a_selector_matches_addresses_inside_a_global_network_set() -> None:
    """§2.3: network sets "match by their nets CIDRs"; a GlobalNetworkSet carries only its own labels."""
    oracle = oracle_for(
        with_egress_rule("- action: Allow\n  destination: {selector: kind == 'partner'}", extra=GLOBAL_SET)
    )
    assert allowed(oracle, "x/good", "192.0.2.77")
    assert not allowed(oracle, "x/good", "203.0.113.1")


def test_global_namespace_selector_matches_only_non_namespaced_sets() -> None:
    """§2.2 table: `namespaceSelector: global()` matches "only non-namespaced: GlobalNetworkSets"."""
    rule = "- action: Allow\n  destination: {namespaceSelector: global()}"
    oracle = oracle_for(with_egress_rule(rule, extra=GLOBAL_SET))
    assert allowed(oracle, "x/good", "192.0.2.77")
    assert not allowed(oracle, "x/good", "198.51.100.7")  # a namespaced NetworkSet
    assert not allowed(oracle, "x/good", "y/other")


def test_a_negative_namespace_selector_also_matches_global_network_sets() -> None:
    """§2.2 notes: `namespaceSelector: "env != 'prod'"` becomes `pcns.env != "prod"`, "which is true for
    GlobalNetworkSets/HEPs (they have no pcns.* labels)"."""
    rule = "- action: Allow\n  destination: {namespaceSelector: team != 'b'}"
    oracle = oracle_for(with_egress_rule(rule, extra=GLOBAL_SET))
    assert allowed(oracle, "x/good", "192.0.2.77")
    assert allowed(oracle, "x/good", "x/server")
    assert not allowed(oracle, "x/good", "y/other")


def test_a_namespaced_network_set_is_matched_from_its_own_namespace_only() -> None:
    """§2.2 table: `selector: S` in a NetworkPolicy matches "WEPs and NetworkSets of X"."""
    rule = "- action: Allow\n  destination: {selector: kind == 'office'}"
    in_x = oracle_for(with_egress_rule(rule, kind="NetworkPolicy", extra=GLOBAL_SET))
    assert not allowed(in_x, "x/good", "198.51.100.7")  # the set lives in y
    from_y = oracle_for(
        with_egress_rule(
            "- action: Allow\n  destination: {namespaceSelector: team == 'b', selector: kind == 'office'}",
            kind="NetworkPolicy",
            extra=GLOBAL_SET,
        )
    )
    assert allowed(from_y, "x/good", "198.51.100.7")


def test_a_pod_inside_a_network_set_is_matched_through_the_set_too() -> None:
    """endpoints.py: felix IP sets hold the pod's /32 and the set's CIDR side by side, so a selector
    matching the set matches traffic of a pod whose IP it contains (x/good is 10.0.0.11, in `office`)."""
    rule = "- action: Allow\n  source: {selector: kind == 'office'}"
    oracle = oracle_for(with_ingress_rule(rule, kind="GlobalNetworkPolicy", extra=GLOBAL_SET))
    assert allowed(oracle, "x/good", "x/server")
    assert not allowed(oracle, "x/bad", "x/server")


def test_a_pods_own_pcns_label_shadows_the_inherited_one() -> None:
    """§2.3: "Pod labels are copied without filtering, so a pod could carry its own pcns.* label and shadow
    the namespace one" (own labels take priority over inherited ones)."""
    cluster = with_ingress_rule("- action: Allow\n  source: {namespaceSelector: team == 'b'}")
    shadowing = cluster.replace(
        "{name: bad, namespace: x, labels: {app: bad}",
        "{name: bad, namespace: x, labels: {app: bad, pcns.team: b}",
    )
    oracle = oracle_for(shadowing)
    assert allowed(oracle, "x/bad", "x/server")
    assert not allowed(oracle, "x/good", "x/server")


def test_the_deciding_rule_is_named_with_its_line() -> None:
    oracle = oracle_for(with_ingress_rule("- action: Allow\n  source: {selector: app == 'good'}"))
    decision = verdict(oracle, "x/good", "x/server").ingress
    assert (decision.reason, decision.policy, decision.rule_index, decision.action) == (
        "rule",
        "NetworkPolicy x/guard",
        0,
        "Allow",
    )
    assert decision.location is not None
    assert decision.location.file == SOURCE
    assert f"rule 0 (Allow) at {SOURCE}:{decision.location.line}" in str(decision)
