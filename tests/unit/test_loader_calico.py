"""Calico NetworkPolicy, GlobalNetworkPolicy, Tier and NetworkSets: defaulting, version gates, validation.

Each expectation is a sentence of calico-semantics.md (§1.6 types defaulting, §1.10 tier naming, §2.1 rule
validation, §2.2 where `global()` is legal) or of Calico's validator as quoted there; line numbers are those
of the YAML in each test, counted by hand.
"""

from __future__ import annotations

import ipaddress

import pytest

from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.loader import load_manifest_text
from calico_conformance.oracle.model import (
    Direction,
    IcmpMatch,
    NamedPort,
    Policy,
    PortRange,
    ServiceAccountMatch,
    ServiceMatch,
)
from calico_conformance.oracle.selector import parse_selector

INGRESS, EGRESS = Direction.INGRESS, Direction.EGRESS


def calico(
    spec: str,
    *,
    kind: str = "NetworkPolicy",
    name: str = "p",
    api: str = "projectcalico.org/v3",
) -> str:
    """A Calico policy document; `spec` starts on line 6, indented by two spaces."""
    namespace = ", namespace: bank" if kind == "NetworkPolicy" else ""
    return f"apiVersion: {api}\nkind: {kind}\nmetadata: {{name: {name}{namespace}}}\n# spec follows\nspec:\n{spec}"


def rule(body: str, direction: str = "egress") -> str:
    """A policy with one rule of `direction`; the rule's first line is line 7, its fields indented 6."""
    return calico(f"  {direction}:\n    - " + body.replace("\n", "\n      ").rstrip(" "))


def load_policy(text: str, version: str = "3.31") -> Policy:
    (policy,) = load_manifest_text(text, "p.yaml", calico_version=version).policies
    return policy


def load_error(text: str, version: str = "3.31") -> LocatedError:
    with pytest.raises(LocatedError) as caught:
        load_manifest_text(text, "p.yaml", calico_version=version)
    return caught.value


# --- types defaulting (§1.6) ------------------------------------------------------------------------------

RULES = {"none": "", "ingress": "  ingress: [{action: Allow}]\n", "egress": "  egress: [{action: Allow}]\n"}
RULES["both"] = RULES["ingress"] + RULES["egress"]


@pytest.mark.parametrize(
    ("api", "rules", "types"),
    [
        # clientv3: no egress rules => [Ingress], even with no rules at all; egress only => [Egress]; both => both.
        ("projectcalico.org/v3", "none", {INGRESS}),
        ("projectcalico.org/v3", "ingress", {INGRESS}),
        ("projectcalico.org/v3", "egress", {EGRESS}),
        ("projectcalico.org/v3", "both", {INGRESS, EGRESS}),
        # felix, given empty types by a CRD written directly: "no Types means Ingress and Egress".
        ("crd.projectcalico.org/v1", "none", {INGRESS, EGRESS}),
        ("crd.projectcalico.org/v1", "ingress", {INGRESS, EGRESS}),
        ("crd.projectcalico.org/v1", "egress", {INGRESS, EGRESS}),
        ("crd.projectcalico.org/v1", "both", {INGRESS, EGRESS}),
    ],
)
@pytest.mark.parametrize("kind", ["NetworkPolicy", "GlobalNetworkPolicy"])
def test_types_default_by_who_wrote_the_policy(
    api: str, rules: str, types: set[Direction], kind: str
) -> None:
    policy = load_policy(calico("  selector: all()\n" + RULES[rules], kind=kind, api=api))
    assert policy.types == frozenset(types)
    assert policy.api_version == api


def test_written_types_are_kept_for_every_api_flavour() -> None:
    for api in ("projectcalico.org/v3", "crd.projectcalico.org/v1"):
        policy = load_policy(calico("  types: [Egress]\n" + RULES["ingress"], api=api))
        assert policy.types == frozenset({EGRESS})


def test_a_policy_without_spec_selects_everything_in_its_namespace_for_ingress() -> None:
    policy = load_policy(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p, namespace: a}\n"
    )
    assert (policy.selector, policy.order, policy.tier, policy.types) == (
        parse_selector("all()"),
        None,
        "default",
        frozenset({INGRESS}),
    )


def test_policy_level_selectors_are_kept_as_written() -> None:
    policy = load_policy(
        calico(
            "  order: 5.5\n  selector: app == 'x'\n  namespaceSelector: team == 'a'\n"
            "  serviceAccountSelector: role == 'api'\n",
            kind="GlobalNetworkPolicy",
        )
    )
    assert policy.order == 5.5
    assert policy.namespace is None
    assert policy.selector == parse_selector("app == 'x'")
    assert policy.namespace_selector == parse_selector("team == 'a'")
    assert policy.service_account_selector == parse_selector("role == 'api'")


# --- tiers and versions (§0, §1.10) -------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["3.29", "3.30", "v3.30.7", "3.31"])
def test_a_tiered_policy_named_tier_dot_name_loads_from_3_29(version: str) -> None:
    policy = load_policy(calico("  tier: security\n", name="security.p"), version)
    assert (policy.tier, policy.name) == ("security", "security.p")


@pytest.mark.parametrize("version", ["3.27", "v3.27.5", "3.28"])
def test_tiers_are_refused_before_3_29(version: str) -> None:
    error = load_error(calico("  tier: security\n", name="security.p"), version)
    assert error.location == Location("p.yaml", 6)
    assert "spec.tier needs Calico >= 3.29" in error.why


def test_even_the_default_tier_field_is_refused_before_3_29() -> None:
    # The v3.27.5 NetworkPolicy and GlobalNetworkPolicy CRDs have no `tier` field at all.
    error = load_error(calico("  tier: default\n"), "3.27")
    assert "spec.tier needs Calico >= 3.29" in error.why
    assert load_policy(calico(""), "3.27").tier == "default"


def test_policy_names_have_no_dots_before_3_29() -> None:
    error = load_error(calico("  selector: all()\n", name="default.p"), "3.28")
    assert error.location == Location("p.yaml", 3)
    assert "may not contain '.' before Calico 3.29" in error.why


def test_tier_objects_are_refused_before_3_29() -> None:
    error = load_error("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\n", "3.28")
    assert error.location == Location("p.yaml", 1)
    assert "Tier needs Calico >= 3.29" in error.why


@pytest.mark.parametrize("version", ["3.29", "3.30", "3.31"])
def test_from_3_29_a_tiered_policy_must_carry_the_tier_prefix(version: str) -> None:
    error = load_error(calico("  tier: security\n"), version)
    assert error.location == Location("p.yaml", 3)
    assert "must be named 'security.p'" in error.why


@pytest.mark.parametrize(
    ("name", "spec", "message"),
    [
        (
            "security.p",
            "  selector: all()\n",
            "places the policy in tier 'security' but its tier is 'default'",
        ),
        ("other.p", "  tier: security\n", "places the policy in tier 'other' but its tier is 'security'"),
    ],
)
def test_a_name_prefix_that_disagrees_with_the_tier_is_an_error(name: str, spec: str, message: str) -> None:
    error = load_error(calico(spec, name=name))
    assert error.location == Location("p.yaml", 3)
    assert message in error.why


def test_default_dot_name_is_a_default_tier_policy() -> None:
    assert load_policy(calico("  selector: all()\n", name="default.p")).tier == "default"


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("3.26", "is not modelled by the oracle"),
        ("3.32", "is not modelled by the oracle"),
        ("latest", "invalid Calico version"),
    ],
)
def test_unknown_calico_versions_are_refused(version: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_manifest_text("", "p.yaml", calico_version=version)


def test_tiers_load_with_order_and_default_action() -> None:
    text = (
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\nspec: {order: 100}\n---\n"
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: platform}\n"
        "spec: {defaultAction: Pass}\n"
    )
    security, platform = load_manifest_text(text, "p.yaml").tiers
    assert (security.name, security.order, security.default_action) == ("security", 100.0, "Deny")
    assert (platform.name, platform.order, platform.default_action) == ("platform", None, "Pass")
    assert platform.location == Location("p.yaml", 6)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{defaultAction: Allow}", "invalid defaultAction 'Allow'; expected Deny or Pass"),
        ("{order: -1}", "order -1 is negative"),
        ("{priority: 1}", "spec.priority: unknown field in a Tier spec"),
    ],
)
def test_invalid_tiers_are_errors(spec: str, message: str) -> None:
    error = load_error(f"apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: t}}\nspec: {spec}\n")
    assert error.location == Location("p.yaml", 4)
    assert message in error.why


def test_the_built_in_default_tier_keeps_its_fixed_order() -> None:
    error = load_error(
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: default}\nspec: {order: 5}\n"
    )
    assert "the default tier's order must be 1000000" in error.why


# --- rules (§2.1) -----------------------------------------------------------------------------------------------


def test_a_full_rule_loads_every_field() -> None:
    policy = load_policy(
        rule(
            "action: Deny\n"
            "protocol: TCP\n"
            "notProtocol: 17\n"
            "ipVersion: 4\n"
            "metadata: {annotations: {why: audit}}\n"
            "source:\n"
            "  nets: [10.0.0.0/8]\n"
            "  notNets: [10.1.0.0/16]\n"
            "  selector: app == 'a'\n"
            "  notSelector: has(legacy)\n"
            "  namespaceSelector: team == 'x'\n"
            "  serviceAccounts: {names: [api, web], selector: role == 'api'}\n"
            "  ports: ['1000:2000', http]\n"
            "destination:\n"
            "  ports: [80, '443']\n"
            "  notPorts: [8080]\n"
        )
    )
    (loaded,) = policy.egress
    assert (loaded.action, loaded.protocol, loaded.not_protocol, loaded.ip_version) == ("Deny", 6, 17, 4)
    assert loaded.location == Location("p.yaml", 7)
    source = loaded.source
    assert source.nets == (ipaddress.ip_network("10.0.0.0/8"),)
    assert source.not_nets == (ipaddress.ip_network("10.1.0.0/16"),)
    assert source.selector == parse_selector("app == 'a'")
    assert source.not_selector == parse_selector("has(legacy)")
    assert source.namespace_selector == parse_selector("team == 'x'")
    assert source.service_accounts == ServiceAccountMatch(("api", "web"), parse_selector("role == 'api'"))
    assert source.ports == (PortRange(1000, 2000), NamedPort("http"))
    assert loaded.destination.ports == (PortRange(80, 80), PortRange(443, 443))
    assert loaded.destination.not_ports == (PortRange(8080, 8080),)


@pytest.mark.parametrize(
    ("protocol", "number"),
    [("TCP", 6), ("UDP", 17), ("ICMP", 1), ("ICMPv6", 58), ("SCTP", 132), ("UDPLite", 136), ("47", 47)],
)
def test_protocols_become_iana_numbers(protocol: str, number: int) -> None:
    (loaded,) = load_policy(rule(f"action: Allow\nprotocol: {protocol}\n")).egress
    assert loaded.protocol == number


def test_icmp_type_and_code_load_with_icmp() -> None:
    (loaded,) = load_policy(
        rule("action: Allow\nprotocol: ICMP\nicmp: {type: 8, code: 0}\nnotICMP: {type: 3}\n")
    ).egress
    assert (loaded.icmp, loaded.not_icmp) == (IcmpMatch(8, 0), IcmpMatch(3, None))


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        pytest.param(
            "action: allow\n",
            7,
            "invalid action 'allow'; expected one of Allow, Deny, Pass, Log",
            id="action-case",
        ),
        pytest.param("protocol: TCP\n", 7, "'action' is required", id="no-action"),
        pytest.param("action: Allow\nprotocol: tcp\n", 8, "unknown protocol 'tcp'", id="protocol-case"),
        pytest.param(
            "action: Allow\nprotocol: 0\n", 8, "protocol number 0 is out of range", id="protocol-zero"
        ),
        pytest.param(
            "action: Allow\nnotProtocol: 256\n", 8, "protocol number 256 is out of range", id="protocol-256"
        ),
        pytest.param(
            "action: Allow\ndestination: {ports: [80]}\n",
            8,
            "ports need protocol TCP, UDP or SCTP (protocol is not set)",
            id="ports-without-protocol",
        ),
        pytest.param(
            "action: Allow\nprotocol: UDPLite\ndestination: {ports: [80]}\n",
            9,
            "(protocol is UDPLite)",
            id="udplite-has-no-ports",
        ),
        pytest.param(
            "action: Allow\nprotocol: ICMP\nsource: {notPorts: [80]}\n",
            9,
            "notPorts need protocol",
            id="icmp-has-no-ports",
        ),
        pytest.param(
            "action: Allow\nicmp: {type: 8}\n",
            8,
            "ICMP type/code need protocol ICMP or ICMPv6",
            id="icmp-without-icmp",
        ),
        pytest.param(
            "action: Allow\nprotocol: TCP\nnotICMP: {type: 8}\n",
            9,
            "need protocol ICMP",
            id="not-icmp-with-tcp",
        ),
        pytest.param(
            "action: Allow\nprotocol: ICMP\nicmp: {code: 0}\n",
            9,
            "an ICMP code needs an ICMP type",
            id="code-no-type",
        ),
        pytest.param(
            "action: Allow\nprotocol: ICMP\nicmp: {type: 255}\n",
            9,
            "ICMP type 255 is out of range",
            id="type-255",
        ),
        pytest.param(
            "action: Allow\nprotocol: ICMP\nipVersion: 6\nicmp: {type: 8}\n",
            10,
            "does not match ipVersion 6",
            id="icmp-v6",
        ),
        pytest.param("action: Allow\nipVersion: 5\n", 8, "invalid ipVersion 5", id="ip-version-5"),
        pytest.param(
            "action: Allow\nprotocol: TCP\ndestination: {ports: [0]}\n",
            9,
            "port 0 is out of range",
            id="port-zero",
        ),
        pytest.param(
            "action: Allow\nprotocol: TCP\ndestination: {ports: ['2000:1000']}\n",
            9,
            "invalid port range '2000:1000': the first port must not exceed the last",
            id="range-reversed",
        ),
        pytest.param(
            "action: Allow\nprotocol: TCP\ndestination: {ports: ['my port']}\n",
            9,
            "invalid port 'my port'",
            id="bad-port-name",
        ),
        pytest.param(
            "action: Allow\ndestination: {nets: [10.0.0.1]}\n", 8, "invalid CIDR '10.0.0.1'", id="bare-ip"
        ),
        pytest.param(
            "action: Allow\ndestination: {nets: [10.0.0.0/33]}\n",
            8,
            "invalid CIDR '10.0.0.0/33'",
            id="bad-cidr",
        ),
        pytest.param(
            "action: Allow\nsource: {nets: [10.0.0.0/8]}\ndestination: {nets: ['fd00::/8']}\n",
            7,
            "may not mix IPv4 and IPv6",
            id="mixed-families",
        ),
        pytest.param(
            "action: Allow\nipVersion: 6\ndestination: {nets: [10.0.0.0/8]}\n",
            7,
            "do not match ipVersion 6",
            id="family-vs-ip-version",
        ),
        pytest.param(
            "action: Allow\ndestination: {selector: global()}\n",
            8,
            "global() is not allowed here",
            id="global-selector",
        ),
        pytest.param(
            "action: Allow\ndestination: {namespaceSelector: global() && a == 'b'}\n",
            8,
            "global() may not be combined with other expressions",
            id="global-combined",
        ),
        pytest.param(
            "action: Allow\ndestination: {serviceAccounts: {selector: global()}}\n",
            8,
            "global() is not allowed here",
            id="global-service-accounts",
        ),
        pytest.param(
            "action: Allow\ndestination: {services: {name: dns}, selector: a == 'b'}\n",
            8,
            "services may not be combined with selector",
            id="services-with-selector",
        ),
        pytest.param(
            "action: Allow\nprotocol: UDP\ndestination:\n  services: {name: dns}\n  ports: [53]\n",
            11,
            "cannot specify ports with a services match",
            id="services-with-ports",
        ),
        pytest.param(
            "action: Allow\nsource: {services: {name: dns}}\n",
            8,
            "services may not be used as an egress source",
            id="services-egress-source",
        ),
        pytest.param(
            "action: Allow\nhttp: {methods: [GET]}\n",
            8,
            "http rules need application-layer policy",
            id="http",
        ),
        pytest.param(
            "action: Allow\ndestination: {domains: [example.com]}\n",
            8,
            "Calico Enterprise feature",
            id="domains",
        ),
        pytest.param(
            "action: Allow\nports: [80]\n",
            8,
            "ports belong under source or destination",
            id="rule-level-ports",
        ),
        pytest.param(
            "action: Allow\nmetadata: {labels: {a: b}}\n",
            8,
            "metadata.labels: unknown field",
            id="rule-metadata",
        ),
    ],
)
def test_invalid_rules_are_errors_at_their_line(body: str, line: int, message: str) -> None:
    error = load_error(rule(body))
    assert error.location == Location("p.yaml", line)
    assert message in error.why


def test_global_alone_is_a_legal_namespace_selector() -> None:
    (loaded,) = load_policy(rule("action: Allow\ndestination: {namespaceSelector: global()}\n")).egress
    assert loaded.destination.namespace_selector == parse_selector("global()")


def test_services_on_an_ingress_destination_are_an_error() -> None:
    error = load_error(rule("action: Allow\ndestination: {services: {name: api}}\n", "ingress"))
    assert "services may not be used as an ingress destination" in error.why


def test_a_namespaced_services_match_defaults_to_the_policy_namespace() -> None:
    (loaded,) = load_policy(rule("action: Allow\ndestination: {services: {name: dns}}\n")).egress
    assert loaded.destination.services == ServiceMatch("dns", "bank")


def test_a_global_services_match_needs_a_namespace() -> None:
    error = load_error(
        calico(
            "  egress:\n    - action: Allow\n      destination: {services: {name: dns}}\n",
            kind="GlobalNetworkPolicy",
        )
    )
    assert error.location == Location("p.yaml", 8)
    assert "needs a namespace" in error.why


def test_an_invalid_selector_names_path_position_and_reason() -> None:
    text = calico(
        '  egress:\n    - action: Allow\n      destination:\n        namespaceSelector: name = "x"\n'
    )
    error = load_error(text)
    assert error.location == Location("p.yaml", 9)
    assert str(error).startswith(
        """p.yaml:9: spec.egress[0].destination.namespaceSelector: invalid selector 'name = "x"' at position 5: """
    )


# --- policy-level validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "kind", "line", "message"),
    [
        ("  order: -5\n", "NetworkPolicy", 6, "order -5 is negative"),
        ("  types: [Ingress, Ingress]\n", "NetworkPolicy", 6, "policy type Ingress is listed twice"),
        ("  types: [ingress]\n", "NetworkPolicy", 6, "invalid policy type 'ingress'"),
        ("  selector: global()\n", "NetworkPolicy", 6, "global() is not allowed here"),
        ("  namespaceSelector: global()\n", "GlobalNetworkPolicy", 6, "global() is not allowed here"),
        ("  serviceAccountSelector: global()\n", "NetworkPolicy", 6, "global() is not allowed here"),
        ("  namespaceSelector: a == 'b'\n", "NetworkPolicy", 6, "spec.namespaceSelector: unknown field"),
        ("  selector: a == \n", "NetworkPolicy", 6, "invalid selector 'a =='"),
        ("  preDNAT: true\n", "GlobalNetworkPolicy", 5, "applyOnForward must be true"),
        (
            "  preDNAT: true\n  doNotTrack: true\n  applyOnForward: true\n",
            "GlobalNetworkPolicy",
            5,
            "cannot both be true",
        ),
    ],
)
def test_invalid_policies_are_errors_at_their_line(spec: str, kind: str, line: int, message: str) -> None:
    error = load_error(calico(spec, kind=kind))
    assert error.location == Location("p.yaml", line)
    assert message in error.why


def test_a_global_network_policy_may_not_have_a_namespace() -> None:
    text = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: g, namespace: x}\n"
    error = load_error(text)
    assert "a GlobalNetworkPolicy is cluster-scoped" in error.why


# --- network sets ------------------------------------------------------------------------------------------------


def test_network_sets_carry_labels_and_nets() -> None:
    text = (
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\n"
        "metadata: {name: metadata-service, labels: {role: metadata}}\nspec: {nets: [169.254.169.254/32]}\n---\n"
        "apiVersion: projectcalico.org/v3\nkind: NetworkSet\n"
        "metadata: {name: partners, namespace: bank, labels: {role: partner}}\nspec: {nets: [192.0.2.0/24, '2001:db8::/32']}\n"
    )
    global_set, namespaced = load_manifest_text(text, "p.yaml").network_sets
    assert (global_set.namespace, global_set.labels.as_dict()) == (None, {"role": "metadata"})
    assert global_set.nets == (ipaddress.ip_network("169.254.169.254/32"),)
    assert (namespaced.namespace, namespaced.labels.as_dict()) == ("bank", {"role": "partner"})
    assert namespaced.nets == (ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("2001:db8::/32"))
    assert namespaced.location == Location("p.yaml", 6)


def test_a_network_set_with_a_bad_cidr_is_an_error() -> None:
    text = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: s}\nspec:\n  nets:\n    - 300.0.0.0/8\n"
    error = load_error(text)
    assert error.location == Location("p.yaml", 6)
    assert "spec.nets[0]: invalid CIDR '300.0.0.0/8'" in str(error)


def test_a_built_in_tier_written_without_order_keeps_its_fixed_order() -> None:
    (tier,) = load_manifest_text(
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: default}\n", "p.yaml"
    ).tiers
    assert (tier.name, tier.order) == ("default", 1_000_000.0)


def test_a_block_scalar_selector_keeps_its_newline_and_calico_rejects_it() -> None:
    """§3: "A newline is an invalid character (e.g. a YAML `|` block scalar leaves a trailing `\\n`)"."""
    error = load_error(calico("  selector: |\n    app == 'x'\n"))
    assert error.location == Location("p.yaml", 6)
    assert "spec.selector: invalid selector" in str(error)


def test_performance_hints_are_checked_and_otherwise_ignored() -> None:
    assert load_policy(calico("  performanceHints: [AssumeNeededOnEveryNode]\n")).name == "p"
    error = load_error(calico("  performanceHints: [GoFast]\n"))
    assert "unknown performance hint 'GoFast'" in error.why
