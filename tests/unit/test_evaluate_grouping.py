"""The grouped all-pairs fast path gives exactly the per-pair verdicts of the slow path.

`Oracle.all_pairs` groups pods no selector, CIDR or named port can tell apart and evaluates masks of
groups; `Oracle.verdict` walks the §1.2 pipeline for one flow. The fast path is only worth having if it
is the same function, so random clusters (seeded, so a failure reproduces) built to exercise every
feature the grouping must respect are evaluated both ways, pair by pair: namespace-scoped and global
policies in several tiers, Pass/Log/Deny/Allow, notSelectors, namespaceSelectors including all() and
global(), service accounts, nets that split pods, named ports, network sets containing pod IPs, and pods
whose own `pcns.*` label shadows their namespace's.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable

import pytest

from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.model import (
    PROTOCOL_NUMBERS,
    ContainerPort,
    Direction,
    EntityRule,
    Labels,
    NamedPort,
    Namespace,
    NetworkSet,
    Policy,
    PortRange,
    ResourceSet,
    Rule,
    ServiceAccount,
    ServiceAccountMatch,
    Tier,
)
from calico_conformance.oracle.model import Pod as PodModel
from calico_conformance.oracle.selector import Selector, parse_selector

SEEDS = range(80)
SERVICES = [(80, "TCP"), (53, "UDP"), (8080, "TCP"), (None, "ICMP")]
NAMESPACES = ("alpha", "beta", "gamma", "delta")
POD_SELECTORS = (
    "app == 'web'",
    "app != 'web'",
    "has(role)",
    "role in {'db', 'cache'}",
    "all()",
    "app == 'api'",
)
NAMESPACE_SELECTORS = ("env == 'prod'", "env != 'prod'", "all()", "global()", "team in {'a'}", "!has(env)")


def random_cluster(seed: int) -> Oracle:
    """A small cluster where every grouping-relevant feature shows up with fair probability."""
    rng = random.Random(seed)
    pick: Callable[[tuple[str, ...]], str] = rng.choice

    namespaces = [
        Namespace(
            name,
            Labels.of(
                {"kubernetes.io/metadata.name": name, **_maybe(rng, env=("prod", "dev"), team=("a", "b"))}
            ),
        )
        for name in NAMESPACES
    ]
    accounts = [
        ServiceAccount("robot", name, Labels.of({"trusted": rng.choice(("yes", "no"))}))
        for name in NAMESPACES
    ]
    # Pods are stamped from a few templates (namespace, labels, service account) so that many share
    # every label and differ only in IP or ports: the facts the grouping must not overlook.
    templates = []
    for _ in range(rng.randint(3, 6)):
        labels = _maybe(rng, app=("web", "api", "db"), role=("db", "cache", "front"))
        if rng.random() < 0.1:
            labels["pcns.env"] = "prod"  # shadows the namespace's env
        templates.append((rng.choice(NAMESPACES), Labels.of(labels), rng.choice(("default", "robot"))))
    port_choices = [
        ContainerPort(80, "TCP", "http"),
        ContainerPort(53, "UDP", "dns"),
        ContainerPort(8080, "TCP", "http"),
    ]
    pods = []
    for index in range(rng.randint(12, 24)):
        namespace, labels, account = rng.choice(templates)
        pods.append(
            PodModel(
                f"p{index}",
                namespace,
                ipaddress.ip_address(f"10.{rng.randint(0, 1)}.{rng.randint(0, 3)}.{index + 1}"),
                labels,
                service_account=account,
                ports=tuple(rng.sample(port_choices, k=rng.randint(0, 2))),
            )
        )
    sets = (
        NetworkSet("outside", None, (ipaddress.ip_network("10.1.0.0/22"),), Labels.of({"kind": "ext"})),
        NetworkSet(
            "local", "beta", (ipaddress.ip_network("10.0.2.0/24"),), Labels.of({"kind": "ext", "app": "web"})
        ),
    )
    tiers = (Tier("security", 10.0, "Deny"), Tier("platform", None, "Pass"), Tier("early", 10.0, "Pass"))
    policies = tuple(_random_policy(rng, number, pick) for number in range(rng.randint(3, 9)))
    return Oracle(
        namespaces=namespaces,
        pods=pods,
        resources=ResourceSet(policies=policies, tiers=tiers, network_sets=sets),
        calico_version="3.30",
        service_accounts=accounts,
    )


def _maybe(rng: random.Random, **choices: tuple[str, ...]) -> dict[str, str]:
    return {key: rng.choice(values) for key, values in choices.items() if rng.random() < 0.6}


def _selector(rng: random.Random, options: tuple[str, ...]) -> Selector:
    return parse_selector(rng.choice(options))


def _entity(rng: random.Random, ports: bool) -> EntityRule:
    fields: dict[str, object] = {}
    if rng.random() < 0.4:
        fields["selector"] = _selector(rng, (*POD_SELECTORS, "kind == 'ext'"))
    if rng.random() < 0.2:
        fields["not_selector"] = _selector(rng, POD_SELECTORS)
    if rng.random() < 0.25:
        fields["namespace_selector"] = _selector(rng, NAMESPACE_SELECTORS)
    if rng.random() < 0.15:
        fields["service_accounts"] = ServiceAccountMatch(("robot",), parse_selector("trusted == 'yes'"))
    if rng.random() < 0.2:
        fields["nets"] = (ipaddress.ip_network(rng.choice(("10.0.0.0/16", "10.0.1.0/24", "10.1.0.0/16"))),)
    if rng.random() < 0.15:
        fields["not_nets"] = (ipaddress.ip_network(rng.choice(("10.0.3.0/24", "10.1.2.0/23"))),)
    if ports and rng.random() < 0.4:
        fields["ports"] = (
            rng.choice((PortRange(80, 80), PortRange(50, 60), NamedPort("http"), NamedPort("dns"))),
        )
    if ports and rng.random() < 0.1:
        fields["not_ports"] = (rng.choice((PortRange(8080, 8080), NamedPort("http"))),)
    return EntityRule(**fields)  # type: ignore[arg-type]


def _random_rule(rng: random.Random) -> Rule:
    protocol = rng.choice((None, "TCP", "UDP", "ICMP"))
    number = PROTOCOL_NUMBERS[protocol] if protocol else None
    ports = protocol in ("TCP", "UDP")
    return Rule(
        action=rng.choice(("Allow", "Allow", "Deny", "Pass", "Log")),  # type: ignore[arg-type]
        protocol=number,
        source=_entity(rng, ports=False),
        destination=_entity(rng, ports=ports),
    )


def _random_policy(rng: random.Random, number: int, pick: Callable[[tuple[str, ...]], str]) -> Policy:
    kind = rng.choice(("NetworkPolicy", "GlobalNetworkPolicy", "KubernetesNetworkPolicy"))
    tier = (
        "default"
        if kind == "KubernetesNetworkPolicy"
        else rng.choice(("default", "security", "platform", "early"))
    )
    name = f"p{number}" if tier == "default" else f"{tier}.p{number}"
    types = rng.choice(
        (
            frozenset({Direction.INGRESS}),
            frozenset({Direction.EGRESS}),
            frozenset({Direction.INGRESS, Direction.EGRESS}),
        )
    )
    rules = {direction: tuple(_random_rule(rng) for _ in range(rng.randint(0, 3))) for direction in Direction}
    if kind == "KubernetesNetworkPolicy":
        rules = {
            d: tuple(Rule("Allow", r.protocol, source=r.source, destination=r.destination) for r in rs)
            for d, rs in rules.items()
        }
    return Policy(
        kind=kind,  # type: ignore[arg-type]
        name=name,
        namespace=None if kind == "GlobalNetworkPolicy" else pick(NAMESPACES),
        tier=tier,
        order=rng.choice((None, 1.0, 100.0, 1000.0)) if kind != "KubernetesNetworkPolicy" else 1000.0,
        selector=_selector(rng, POD_SELECTORS),
        types=types,
        ingress=rules[Direction.INGRESS],
        egress=rules[Direction.EGRESS],
        namespace_selector=_selector(rng, ("env == 'prod'", "all()"))
        if kind == "GlobalNetworkPolicy" and rng.random() < 0.3
        else None,
        service_account_selector=parse_selector("trusted == 'yes'") if rng.random() < 0.1 else None,
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_grouped_all_pairs_equals_the_per_pair_verdict(seed: int) -> None:
    oracle = random_cluster(seed)
    for port, protocol in SERVICES:
        fast = oracle.all_pairs(port, protocol)
        slow = {
            (source.key, destination.key): oracle.verdict(source, destination, port, protocol).allowed
            for source in oracle.pods
            for destination in oracle.pods
            if source.key != destination.key
        }
        wrong = {pair: value for pair, value in fast.items() if slow[pair] != value}
        assert fast.keys() == slow.keys()
        assert not wrong, f"seed {seed}, {port}/{protocol}: fast path differs on {sorted(wrong)[:5]}"
        assert oracle.pair_matrix(port, protocol).allowed_count() == sum(slow.values())


def test_the_random_clusters_are_neither_all_allowed_nor_all_denied() -> None:
    """Guard against a generator so tame that agreement proves nothing."""
    outcomes = set()
    for seed in SEEDS:
        outcomes.update(random_cluster(seed).all_pairs(80, "TCP").values())
    assert outcomes == {True, False}


def test_a_subset_of_pods_gives_the_same_cells_as_the_whole_cluster() -> None:
    oracle = random_cluster(7)
    whole = oracle.all_pairs(80, "TCP")
    chosen = oracle.pods[::2]
    part = oracle.all_pairs(80, "TCP", chosen)
    assert part == {pair: whole[pair] for pair in part}
    assert len(part) == len(chosen) * (len(chosen) - 1)


def test_pods_no_selector_tells_apart_share_one_group() -> None:
    """The cost claim: 200 pods in two namespaces with two label sets are four groups, not 200."""
    namespaces = [Namespace("a"), Namespace("b")]
    pods = [
        PodModel(
            f"p{i}",
            "ab"[i % 2],
            ipaddress.ip_address(f"10.0.{i // 250}.{i % 250 + 1}"),
            Labels.of({"app": "web" if i % 4 < 2 else "db"}),
        )
        for i in range(200)
    ]
    policy = Policy(
        kind="KubernetesNetworkPolicy",
        name="only-web",
        namespace="a",
        tier="default",
        order=1000.0,
        selector=parse_selector("projectcalico.org/orchestrator == 'k8s'"),
        types=frozenset({Direction.INGRESS}),
        ingress=(Rule("Allow", source=EntityRule(selector=parse_selector("app == 'web'"))),),
    )
    oracle = Oracle(namespaces=namespaces, pods=pods, resources=ResourceSet(policies=(policy,)))
    matrix = oracle.pair_matrix(80, "TCP")
    assert matrix.classes == 4
    assert matrix.pairs == 200 * 199
    # Ingress to namespace a is allowed from web pods of a only: a pod (i % 2 == 0) is web when i % 4 == 0.
    assert matrix.allowed("a/p4", "a/p0")
    assert not matrix.allowed("a/p2", "a/p0")
    assert not matrix.allowed("b/p1", "a/p0")
    assert matrix.allowed("a/p2", "b/p1")


@pytest.mark.parametrize("count", [0, 1, 2])
def test_tiny_clusters_have_no_self_pairs(count: int) -> None:
    pods = [PodModel(f"p{i}", "a", ipaddress.ip_address(f"10.0.0.{i + 1}")) for i in range(count)]
    oracle = Oracle(namespaces=[Namespace("a")], pods=pods, resources=ResourceSet())
    assert oracle.all_pairs(80, "TCP") == {(a.key, b.key): True for a in pods for b in pods if a != b}
