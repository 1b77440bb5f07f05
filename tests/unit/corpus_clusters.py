"""Random small clusters for the oracle's property tests: scenario data a user could have written.

Hypothesis draws namespaces, pods, Kubernetes NetworkPolicies and Calico (Global)NetworkPolicies with
tiers from a deliberately small vocabulary, so that selectors, CIDRs and named ports actually hit the
pods they are drawn with. Everything comes out as scenario-file data and goes through the real loader
(`scenario_from_data`), so the properties exercise the same path a user's file takes.

Two knobs serve particular properties:

* `guard_exempt`: every drawn policy also requires `!has(exempt)` of the pods it selects, and two extra
  pods labelled `exempt` are added, so the test knows (by construction, not from the oracle) that no
  policy in any tier selects them;
* `kubernetes_only`: no Calico resources, so an independent Kubernetes reference model applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.scenario import scenario_from_data

NAMESPACES = ("alpha", "beta", "gamma")
APPS = ("web", "db", "api")
ENVS = ("prod", "dev")
TEAMS = ("red", "blue")
SERVICE_ACCOUNTS = ("default", "robot")
USER_TIERS = ("tier-a", "tier-b")
EXEMPT_LABEL = "exempt"
# Every user tier order drawn is at least this, so a tier of a lower order is known to come first.
LOWEST_DRAWN_TIER_ORDER = 10

# What a pod serves: the named port `http` sits on different numbers on different pods, so named-port
# rules really depend on the destination.
SERVED_PORTS = (
    ({"name": "http", "containerPort": 80, "protocol": "TCP"},),
    ({"name": "http", "containerPort": 8080, "protocol": "TCP"},),
    (
        {"name": "http", "containerPort": 80, "protocol": "TCP"},
        {"name": "dns", "containerPort": 53, "protocol": "UDP"},
    ),
)
# (port, protocol) pairs a property may judge; ICMP has no port.
SERVICES = ((80, "TCP"), (8080, "TCP"), (53, "UDP"), (53, "TCP"), (80, "SCTP"), (None, "ICMP"))

ENDPOINT_SELECTORS = (
    "app == 'web'",
    "app != 'db'",
    "has(env)",
    "!has(env)",
    "env in {'prod'}",
    "env not in {'prod'}",
    "all()",
    "app == 'api' || env == 'dev'",
    "pcns.team == 'red'",
)
NAMESPACE_SELECTORS = (
    "team == 'red'",
    "team != 'blue'",
    "all()",
    "projectcalico.org/name == 'alpha'",
    "has(team)",
)
NETS = ("10.244.0.0/16", "10.244.0.0/30", "10.244.0.4/30", "192.0.2.0/24")
CALICO_PORTS = (80, 8080, 53, "http", "1:100", "8000:9000")


@dataclass
class ClusterDraw:
    """One drawn cluster, as scenario data, plus what the drawing knows by construction."""

    data: dict[str, Any]
    exempt_pods: tuple[str, ...] = ()
    namespaces_with_knps: tuple[str, ...] = ()

    def oracle(self) -> Oracle:
        return oracle_for(self.data)


def oracle_for(data: dict[str, Any]) -> Oracle:
    return Oracle.from_scenario(scenario_from_data(data, "<hypothesis cluster>"))


def _guarded(selector: str, guard: bool) -> str:
    return f"({selector}) && !has({EXEMPT_LABEL})" if guard else selector


POD_LABEL_VALUES = {"app": APPS, "env": ENVS}
NAMESPACE_LABEL_VALUES = {"team": TEAMS, "kubernetes.io/metadata.name": NAMESPACES}


@st.composite
def label_selectors(draw: st.DrawFn, values_by_key: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """A Kubernetes LabelSelector: empty, matchLabels, or one matchExpression, over keys and values the
    drawn objects really carry."""
    # Expressions carry the subtle semantics (NotIn and DoesNotExist match pods without the key): draw
    # them twice as often.
    kind = draw(st.sampled_from(("empty", "labels", "expression", "expression")))
    if kind == "empty":
        return {}
    key = draw(st.sampled_from(sorted(values_by_key)))
    values = values_by_key[key]
    if kind == "labels":
        return {"matchLabels": {key: draw(st.sampled_from(values))}}
    operator = draw(st.sampled_from(("In", "NotIn", "Exists", "DoesNotExist")))
    expression: dict[str, Any] = {"key": key, "operator": operator}
    if operator in ("In", "NotIn"):
        expression["values"] = draw(st.lists(st.sampled_from(values), min_size=1, max_size=2, unique=True))
    return {"matchExpressions": [expression]}


@st.composite
def knp_peers(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(("pods", "namespaces", "both", "ipBlock")))
    if kind == "ipBlock":
        block: dict[str, Any] = {"cidr": draw(st.sampled_from(("10.244.0.0/16", "10.244.0.0/29")))}
        if draw(st.booleans()):
            block["except"] = [block["cidr"].rsplit("/", 1)[0] + "/31"]
        return {"ipBlock": block}
    peer: dict[str, Any] = {}
    if kind in ("pods", "both"):
        peer["podSelector"] = draw(label_selectors(POD_LABEL_VALUES))
    if kind in ("namespaces", "both"):
        peer["namespaceSelector"] = draw(label_selectors(NAMESPACE_LABEL_VALUES))
    return peer


@st.composite
def knp_ports(draw: st.DrawFn) -> dict[str, Any]:
    port: dict[str, Any] = {"protocol": draw(st.sampled_from(("TCP", "UDP", "SCTP")))}
    number = draw(st.sampled_from((80, 8080, 53, "http", "dns", None)))
    if number is not None:
        port["port"] = number
        if isinstance(number, int) and draw(st.booleans()):
            port["endPort"] = number + draw(st.sampled_from((0, 10, 8000)))
    return port


@st.composite
def knp_rules(draw: st.DrawFn, peer_key: str) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if draw(st.booleans()):
        rule[peer_key] = draw(st.lists(knp_peers(), min_size=1, max_size=2))
    if draw(st.booleans()):
        rule["ports"] = draw(st.lists(knp_ports(), min_size=1, max_size=2))
    return rule


@st.composite
def kubernetes_policies(draw: st.DrawFn, name: str, namespace: str, guard: bool) -> dict[str, Any]:
    selector = draw(label_selectors(POD_LABEL_VALUES))
    if guard:
        expressions = selector.setdefault("matchExpressions", [])
        expressions.append({"key": EXEMPT_LABEL, "operator": "DoesNotExist"})
    types = draw(st.sampled_from((["Ingress"], ["Egress"], ["Ingress", "Egress"])))
    spec: dict[str, Any] = {"podSelector": selector, "policyTypes": types}
    if "Ingress" in types:
        spec["ingress"] = draw(st.lists(knp_rules("from"), max_size=2))
    if "Egress" in types:
        spec["egress"] = draw(st.lists(knp_rules("to"), max_size=2))
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


@st.composite
def entity_rules(draw: st.DrawFn, with_ports: bool) -> dict[str, Any]:
    entity: dict[str, Any] = {}
    for key, values in (
        ("selector", ENDPOINT_SELECTORS),
        ("notSelector", ENDPOINT_SELECTORS),
        ("namespaceSelector", NAMESPACE_SELECTORS),
    ):
        if draw(st.integers(0, 3)) == 0:
            entity[key] = draw(st.sampled_from(values))
    if draw(st.integers(0, 3)) == 0:
        entity["nets"] = [draw(st.sampled_from(NETS))]
    if draw(st.integers(0, 4)) == 0:
        entity["notNets"] = [draw(st.sampled_from(NETS))]
    if with_ports and draw(st.booleans()):
        entity["ports"] = draw(st.lists(st.sampled_from(CALICO_PORTS), min_size=1, max_size=2, unique=True))
    return entity


@st.composite
def calico_rules(draw: st.DrawFn) -> dict[str, Any]:
    rule: dict[str, Any] = {"action": draw(st.sampled_from(("Allow", "Deny", "Pass", "Log")))}
    protocol = draw(st.sampled_from((None, "TCP", "UDP")))
    if protocol is not None:
        rule["protocol"] = protocol
    for side in ("source", "destination"):
        entity = draw(entity_rules(with_ports=protocol is not None and side == "destination"))
        if entity:
            rule[side] = entity
    return rule


@st.composite
def calico_policies(
    draw: st.DrawFn, index: int, namespaces: list[str], tiers: tuple[str, ...], guard: bool
) -> dict[str, Any]:
    tier = draw(st.sampled_from(("default", *tiers)))
    short = f"p{index}"
    name = short if tier == "default" else f"{tier}.{short}"
    types = draw(st.sampled_from((["Ingress"], ["Egress"], ["Ingress", "Egress"])))
    spec: dict[str, Any] = {
        "selector": _guarded(draw(st.sampled_from(ENDPOINT_SELECTORS)), guard),
        "types": types,
    }
    if tier != "default":
        spec["tier"] = tier
    order = draw(st.sampled_from((None, 10, 100, 1000, 1000.5)))
    if order is not None:
        spec["order"] = order
    for direction in types:
        spec[direction.lower()] = draw(st.lists(calico_rules(), max_size=3))
    metadata: dict[str, Any] = {"name": name}
    kind = draw(st.sampled_from(("GlobalNetworkPolicy", "NetworkPolicy")))
    if kind == "NetworkPolicy":
        metadata["namespace"] = draw(st.sampled_from(namespaces))
    else:
        if draw(st.booleans()):
            spec["namespaceSelector"] = draw(st.sampled_from(NAMESPACE_SELECTORS))
        spec.update(draw(st.sampled_from(_host_flags(types))))
    return {"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": metadata, "spec": spec}


# A GlobalNetworkPolicy's host-endpoint flags, as the validator accepts them (calico-semantics.md §1.8):
# none (most often), applyOnForward alone, doNotTrack, or preDNAT (ingress only).
def _host_flags(types: list[str]) -> list[dict[str, bool]]:
    flags: list[dict[str, bool]] = [{}, {}, {}, {"applyOnForward": True}]
    flags.append({"applyOnForward": True, "doNotTrack": True})
    if types == ["Ingress"]:
        flags.append({"applyOnForward": True, "preDNAT": True})
    return flags


@st.composite
def tiers(draw: st.DrawFn) -> list[dict[str, Any]]:
    chosen = draw(st.lists(st.sampled_from(USER_TIERS), unique=True, max_size=len(USER_TIERS)))
    manifests = []
    for name in chosen:
        spec: dict[str, Any] = {"defaultAction": draw(st.sampled_from(("Deny", "Pass")))}
        order = draw(st.sampled_from((LOWEST_DRAWN_TIER_ORDER, 100, 2_000_000, None)))
        if order is not None:
            spec["order"] = order
        manifests.append(
            {"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": name}, "spec": spec}
        )
    return manifests


@st.composite
def clusters(
    draw: st.DrawFn,
    *,
    kubernetes_only: bool = False,
    guard_exempt: bool = False,
    max_policies: int = 4,
    min_knps: int = 0,
    min_pods: int = 2,
) -> ClusterDraw:
    """A cluster of `min_pods`-6 pods in 2-3 namespaces with up to `max_policies` policies of each family."""
    namespaces = draw(st.lists(st.sampled_from(NAMESPACES), min_size=2, max_size=3, unique=True))
    namespace_data = []
    for name in namespaces:
        labels = {}
        if draw(st.booleans()):
            labels["team"] = draw(st.sampled_from(TEAMS))
        namespace_data.append({"name": name, "labels": labels})
    pods = []
    for index in range(draw(st.integers(min_pods, 6))):
        labels = {"app": draw(st.sampled_from(APPS))}
        if draw(st.booleans()):
            labels["env"] = draw(st.sampled_from(ENVS))
        pods.append(
            {
                "name": f"pod-{index}",
                "namespace": draw(st.sampled_from(namespaces)),
                "labels": labels,
                "serviceAccount": draw(st.sampled_from(SERVICE_ACCOUNTS)),
                "ports": [dict(port) for port in draw(st.sampled_from(SERVED_PORTS))],
            }
        )
    exempt = []
    if guard_exempt:
        for index in range(2):
            namespace = draw(st.sampled_from(namespaces))
            pods.append(
                {
                    "name": f"exempt-{index}",
                    "namespace": namespace,
                    "labels": {"app": "web", EXEMPT_LABEL: "yes"},
                }
            )
            exempt.append(f"{namespace}/exempt-{index}")

    resources: list[dict[str, Any]] = []
    knp_count = draw(st.integers(min_knps, max(min_knps, max_policies)))
    knp_namespaces = []
    for index in range(knp_count):
        namespace = draw(st.sampled_from(namespaces))
        knp_namespaces.append(namespace)
        resources.append(draw(kubernetes_policies(f"knp-{index}", namespace, guard_exempt)))
    user_tiers: tuple[str, ...] = ()
    if not kubernetes_only:
        tier_manifests = draw(tiers())
        user_tiers = tuple(t["metadata"]["name"] for t in tier_manifests)
        resources.extend(tier_manifests)
        for index in range(draw(st.integers(0, max_policies))):
            resources.append(draw(calico_policies(index, namespaces, user_tiers, guard_exempt)))
    data = {"namespaces": namespace_data, "pods": pods, "resources": resources}
    return ClusterDraw(data, tuple(exempt), tuple(sorted(set(knp_namespaces))))


def services() -> st.SearchStrategy[tuple[int | None, str]]:
    return st.sampled_from(SERVICES)
