"""`oracle/diff.py` on hand-written policy changes, each with the exact diff a reviewer should see.

One small cluster: namespace `shop` (team retail) with `web` (80/TCP) and `api` (8080/TCP, 8090/TCP),
namespace `bank` (team finance) with `ledger` (8443/TCP) and `web` (80/TCP). Each case is a BASE policy
set and a HEAD edit of it; the expected diff is written out by hand from Calico's semantics
(calico-semantics.md), never taken from the code under test: every flow whose verdict flips, the pair's
kind, the deciding rule (or tier end) before and after with its line, and the object change blamed.
"""

from __future__ import annotations

import ipaddress

from calico_conformance.oracle.diff import diff_oracles, resource_changes
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.explain import RULE, Verdict
from calico_conformance.oracle.loader import load_manifest_text
from calico_conformance.oracle.model import ContainerPort, Labels, Namespace, Pod, ResourceSet

NAMESPACES = (
    Namespace("shop", Labels.of({"kubernetes.io/metadata.name": "shop", "team": "retail"})),
    Namespace("bank", Labels.of({"kubernetes.io/metadata.name": "bank", "team": "finance"})),
)
PODS = (
    Pod("web", "shop", ipaddress.ip_address("10.244.1.10"), Labels.of({"app": "web"}), ports=(ContainerPort(80),)),
    Pod(
        "api",
        "shop",
        ipaddress.ip_address("10.244.1.11"),
        Labels.of({"app": "api"}),
        ports=(ContainerPort(8080), ContainerPort(8090)),
    ),
    Pod("ledger", "bank", ipaddress.ip_address("10.244.2.10"), Labels.of({"app": "ledger"}), ports=(ContainerPort(8443),)),
    Pod("web", "bank", ipaddress.ip_address("10.244.2.11"), Labels.of({"app": "web"}), ports=(ContainerPort(80),)),
)

DENY_INGRESS = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: %s}
spec: {podSelector: {}}
"""


def line_of(text: str, fragment: str) -> int:
    return text[: text.index(fragment)].count("\n") + 1


def summary(verdict: Verdict) -> str:
    """The deciding direction(s) of a verdict in a few words: `rule <policy> #<i> <action> @<line>` or
    `end of tier <t> @<line of first selecting policy>`, denied directions only when denied."""
    parts = []
    for decision in (verdict.egress, verdict.ingress):
        if verdict.allowed and decision.policy is None:
            continue
        if not verdict.allowed and decision.allowed:
            continue
        line = decision.location.line if decision.location else 0
        if decision.reason == RULE:
            parts.append(f"{decision.direction}: {decision.policy} #{decision.rule_index} {decision.action} @{line}")
        else:
            parts.append(f"{decision.direction}: {decision.reason}, {decision.policy} @{line}")
    return "; ".join(parts)


def diff(base_text: str, head_text: str) -> list[tuple[str, ...]]:
    base = load_manifest_text(base_text, "base.yaml")
    head = load_manifest_text(head_text, "head.yaml")
    pairs = diff_oracles(_oracle(base), _oracle(head), resource_changes(base, head))
    return [
        (
            f"{pair.source} -> {pair.destination}",
            pair.kind,
            f"{'opened' if change.opened else 'closed'} {change.flow.service}",
            summary(change.before),
            summary(change.after),
            ", ".join(str(cause) for cause in change.causes),
        )
        for pair in pairs
        for change in pair.ports
    ]


def _oracle(resources: ResourceSet) -> Oracle:
    return Oracle(namespaces=NAMESPACES, pods=PODS, resources=resources, calico_version="3.31")


# --- a widened port range -------------------------------------------------------------------------------

WEB_TO_API = (
    DENY_INGRESS % "shop"
    + """---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: allow-web-to-api, namespace: shop}
spec:
  selector: app == 'api'
  types: [Ingress]
  ingress:
    - action: Allow
      protocol: TCP
      source: {selector: app == 'web'}
      destination: {ports: [8080]}
"""
)


def test_a_widened_port_range_opens_the_ports_it_now_covers() -> None:
    head = WEB_TO_API.replace("ports: [8080]", "ports: ['8080:8090']")
    rule = line_of(WEB_TO_API, "- action: Allow")
    policy = line_of(WEB_TO_API, "apiVersion: projectcalico.org")
    assert diff(WEB_TO_API, head) == [
        (
            "shop/web -> shop/api",
            "changed",  # 8080 stays allowed
            "opened 8090/TCP",
            "Ingress: end of tier default, KubernetesNetworkPolicy shop/default-deny @1",
            f"Ingress: NetworkPolicy shop/allow-web-to-api #0 Allow @{rule}",
            f"NetworkPolicy shop/allow-web-to-api modified (head.yaml:{policy})",
        )
    ]


# --- a selector that loses its namespace scope ------------------------------------------------------------

RETAIL_WEB_TO_LEDGER = (
    DENY_INGRESS % "bank"
    + """---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: web-to-ledger}
spec:
  selector: app == 'ledger'
  types: [Ingress]
  ingress:
    - action: Allow
      protocol: TCP
      source: {selector: app == 'web', namespaceSelector: team == 'retail'}
      destination: {ports: [8443]}
"""
)


def test_a_rule_selector_without_its_namespace_selector_matches_every_namespace() -> None:
    head = RETAIL_WEB_TO_LEDGER.replace(", namespaceSelector: team == 'retail'", "")
    rule = line_of(RETAIL_WEB_TO_LEDGER, "- action: Allow")
    policy = line_of(RETAIL_WEB_TO_LEDGER, "apiVersion: projectcalico.org")
    assert diff(RETAIL_WEB_TO_LEDGER, head) == [
        (
            "bank/web -> bank/ledger",
            "added",  # bank/web reached the ledger on no port before
            "opened 8443/TCP",
            "Ingress: end of tier default, KubernetesNetworkPolicy bank/default-deny @1",
            f"Ingress: GlobalNetworkPolicy web-to-ledger #0 Allow @{rule}",
            f"GlobalNetworkPolicy web-to-ledger modified (head.yaml:{policy})",
        )
    ]


# --- a Pass turned into an Allow --------------------------------------------------------------------------

SECURITY_PASSES_WEB = (
    DENY_INGRESS % "bank"
    + """---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.gate}
spec:
  tier: security
  selector: app == 'ledger'
  types: [Ingress]
  ingress:
    - action: Pass
      source: {selector: app == 'web'}
"""
)


def test_a_pass_turned_into_allow_overrides_the_default_deny_of_the_next_tier() -> None:
    head = SECURITY_PASSES_WEB.replace("action: Pass", "action: Allow")
    rule = line_of(SECURITY_PASSES_WEB, "- action: Pass")
    policy = line_of(SECURITY_PASSES_WEB, "kind: GlobalNetworkPolicy") - 1
    expected = [
        (
            f"{source} -> bank/ledger",
            "added",
            "opened 8443/TCP",
            "Ingress: end of tier default, KubernetesNetworkPolicy bank/default-deny @1",
            f"Ingress: GlobalNetworkPolicy security.gate #0 Allow @{rule}",
            f"GlobalNetworkPolicy security.gate modified (head.yaml:{policy})",
        )
        for source in ("shop/web", "bank/web")  # no namespaceSelector in a global rule: every namespace
    ]
    assert diff(SECURITY_PASSES_WEB, head) == expected


# --- a tier reordered -------------------------------------------------------------------------------------

TWO_TIERS = """\
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: first}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: second}
spec: {order: 200}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: first.deny-web}
spec:
  tier: first
  selector: app == 'api'
  types: [Ingress]
  ingress:
    - action: Deny
      source: {selector: app == 'web'}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: second.allow-web}
spec:
  tier: second
  selector: app == 'api'
  types: [Ingress]
  ingress:
    - action: Allow
      source: {selector: app == 'web'}
"""


def test_a_tier_moved_behind_another_lets_the_other_decide_first() -> None:
    head = TWO_TIERS.replace("spec: {order: 100}", "spec: {order: 300}")
    deny = line_of(TWO_TIERS, "- action: Deny")
    allow = line_of(TWO_TIERS, "- action: Allow")
    expected = [
        (
            f"{source} -> shop/api",
            "added",
            f"opened {service}",
            f"Ingress: GlobalNetworkPolicy first.deny-web #0 Deny @{deny}",
            f"Ingress: GlobalNetworkPolicy second.allow-web #0 Allow @{allow}",
            "Tier first modified (head.yaml:1)",
        )
        for source in ("shop/web", "bank/web")
        for service in ("8080/TCP", "8090/TCP")
    ]
    assert diff(TWO_TIERS, head) == expected


# --- a NetworkSet grown -----------------------------------------------------------------------------------

PARTNERS = (
    DENY_INGRESS % "bank"
    + """---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: partners, labels: {role: partner}}
spec:
  nets: [192.0.2.0/24]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: partners-to-ledger}
spec:
  selector: app == 'ledger'
  types: [Ingress]
  ingress:
    - action: Allow
      source: {selector: role == 'partner'}
"""
)


def test_a_grown_network_set_lets_its_new_addresses_through_an_unchanged_rule() -> None:
    head = PARTNERS.replace("nets: [192.0.2.0/24]", "nets: [192.0.2.0/24, 10.244.1.0/24]")
    rule = line_of(PARTNERS, "- action: Allow")
    network_set = line_of(PARTNERS, "kind: GlobalNetworkSet") - 1
    expected = [
        (
            f"shop/{name} -> bank/ledger",
            "added",
            "opened 8443/TCP",
            "Ingress: end of tier default, KubernetesNetworkPolicy bank/default-deny @1",
            f"Ingress: GlobalNetworkPolicy partners-to-ledger #0 Allow @{rule}",
            # neither deciding policy changed: the grown set is what explains the flip
            f"GlobalNetworkSet partners modified (head.yaml:{network_set})",
        )
        for name in ("web", "api")
    ]
    assert diff(PARTNERS, head) == expected


def test_identical_sets_have_no_diff_even_written_in_other_files() -> None:
    base = load_manifest_text(TWO_TIERS, "base.yaml")
    head = load_manifest_text(TWO_TIERS, "elsewhere.yaml")
    assert resource_changes(base, head) == ()
    assert diff_oracles(_oracle(base), _oracle(head), ()) == []
