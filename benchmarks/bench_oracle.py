"""How long the oracle takes to decide every pair of pods in a large cluster (the issue's Performance section).

A seeded generator builds a multi-tenant cluster: 500 namespaces of 10 pods (web, api, db, cache,
worker, batch; each pod with a unique `pod-name` label no selector reads) and 2,000 policies: three
Kubernetes NetworkPolicies per namespace (default-deny, an app-to-app allowance with a named or numbered
port, a cross-namespace or ipBlock rule) and 500 Calico GlobalNetworkPolicies in three tiers (`security`
denies and passes, `platform` with defaultAction Pass, `default` next to the KNPs). The oracle is built
from these objects and computes the full matrix for one port and protocol: every ordered pair of
distinct pods (24,995,000 for 5,000 pods).

`wall_s` (checked against `BUDGET_S`) is building the oracle from the objects plus computing the full
matrix: every ordered pair decided and stored per pair of groups (`Oracle.pair_matrix`), then the allowed
pairs counted over it. `cpu_s` is the CPU time of the same work, which stays put when other processes
load the machine. `all_pairs_dict_s` is the extra time `Oracle.all_pairs` takes to write the same matrix
out as a Python dict with one entry per pair: linear in pairs (25 million tuples), so it is reported,
and cross-checked against the matrix, but not what the budget bounds. Generating the objects is not
counted. The same is measured for a 1,000-pod cluster (100 namespaces, 400 policies) so the growth is
visible. Figures are printed and merged under "oracle" into reports/bench.json; the run fails (exit 1)
when `wall_s` exceeds `BUDGET_S`.
"""

from __future__ import annotations

import ipaddress
import json
import random
import sys
import time
from dataclasses import dataclass

from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.model import (
    PROTOCOL_NUMBERS,
    ContainerPort,
    Direction,
    EntityRule,
    Labels,
    NamedPort,
    Namespace,
    Pod,
    Policy,
    PortRange,
    ResourceSet,
    Rule,
    Tier,
)
from calico_conformance.oracle.selector import parse_selector
from figures import record

SEED = 20_260_502
BUDGET_S = 60.0  # the bound for the 5,000-pod run on a 2-core machine
PODS_PER_NAMESPACE = 10
KNPS_PER_NAMESPACE = 3
PORT, PROTOCOL = 80, "TCP"

APPS = ("web", "api", "db", "cache", "worker", "batch")
APP_PORTS = {
    "web": (ContainerPort(80, "TCP", "http"),),
    "api": (ContainerPort(8080, "TCP", "http"), ContainerPort(9090, "TCP", "metrics")),
    "db": (ContainerPort(5432, "TCP", "postgres"),),
    "cache": (ContainerPort(6379, "TCP", "redis"),),
    "worker": (ContainerPort(9090, "TCP", "metrics"),),
    "batch": (),
}
TCP = PROTOCOL_NUMBERS["TCP"]
UDP = PROTOCOL_NUMBERS["UDP"]
K8S = "projectcalico.org/orchestrator == 'k8s'"
TIERS = (Tier("security", 100.0, "Deny"), Tier("platform", 500.0, "Pass"))


@dataclass(frozen=True)
class Cluster:
    namespaces: tuple[Namespace, ...]
    pods: tuple[Pod, ...]
    resources: ResourceSet


def generate(namespace_count: int, seed: int = SEED) -> Cluster:
    """A cluster of `namespace_count` x 10 pods and `namespace_count` x 4 policies."""
    rng = random.Random(seed)
    teams = max(1, namespace_count // 20)
    namespaces = tuple(
        Namespace(
            f"ns-{i:03d}",
            Labels.of(
                {
                    "kubernetes.io/metadata.name": f"ns-{i:03d}",
                    "env": rng.choice(("prod", "prod", "staging", "dev")),
                    "team": f"team-{i % teams}",
                }
            ),
        )
        for i in range(namespace_count)
    )
    pods = []
    for n, namespace in enumerate(namespaces):
        for p in range(PODS_PER_NAMESPACE):
            app = APPS[(p + n) % len(APPS)] if p < len(APPS) else rng.choice(APPS)
            labels = {"app": app, "version": rng.choice(("v1", "v2")), "pod-name": f"{app}-{n}-{p}"}
            pods.append(
                Pod(
                    f"{app}-{p}",
                    namespace.name,
                    ipaddress.ip_address(f"10.244.{n // 25}.{(n % 25) * PODS_PER_NAMESPACE + p + 1}"),
                    Labels.of(labels),
                    service_account=app if rng.random() < 0.5 else "default",
                    ports=APP_PORTS[app],
                )
            )
    policies = [knp for namespace in namespaces for knp in _kubernetes_policies(rng, namespace.name, teams)]
    policies.extend(_global_policy(rng, number, teams) for number in range(namespace_count))
    return Cluster(namespaces, tuple(pods), ResourceSet(policies=tuple(policies), tiers=TIERS))


def _knp(
    name: str, namespace: str, selector: str, types: set[Direction], **rules: tuple[Rule, ...]
) -> Policy:
    return Policy(
        kind="KubernetesNetworkPolicy",
        name=name,
        namespace=namespace,
        tier="default",
        order=1000.0,
        selector=parse_selector(selector),
        types=frozenset(types),
        **rules,  # type: ignore[arg-type]
    )


def _kubernetes_policies(rng: random.Random, namespace: str, teams: int) -> list[Policy]:
    """Three KNPs per namespace, converted as Calico converts them (calico-semantics.md §1.5)."""
    server, client = rng.sample(APPS, 2)
    port = NamedPort("http") if server in ("web", "api") and rng.random() < 0.5 else PortRange(80, 80)
    app_to_app = _knp(
        f"allow-{server}-from-{client}",
        namespace,
        f"{K8S} && app == '{server}'",
        {Direction.INGRESS},
        ingress=(
            Rule(
                "Allow",
                TCP,
                source=EntityRule(selector=parse_selector(f"{K8S} && app == '{client}'")),
                destination=EntityRule(ports=(port,)),
            ),
        ),
    )
    if rng.random() < 0.7:
        third = _knp(
            "allow-team-web",
            namespace,
            f"{K8S} && app in {{'web', 'api'}}",
            {Direction.INGRESS},
            ingress=(
                Rule(
                    "Allow",
                    TCP,
                    source=EntityRule(
                        selector=parse_selector(K8S),
                        namespace_selector=parse_selector(f"team == 'team-{rng.randrange(teams)}'"),
                    ),
                    destination=EntityRule(ports=(PortRange(80, 80), PortRange(8080, 8080))),
                ),
            ),
        )
    else:
        third = _knp(
            "egress-internal",
            namespace,
            f"{K8S} && app == '{rng.choice(APPS)}'",
            {Direction.INGRESS, Direction.EGRESS},
            egress=(
                Rule(
                    "Allow",
                    destination=EntityRule(
                        nets=(ipaddress.ip_network("10.244.0.0/16"),),
                        not_nets=(ipaddress.ip_network(f"10.244.{rng.randrange(20)}.0/24"),),
                    ),
                ),
            ),
        )
    default_deny = _knp("default-deny", namespace, K8S, {Direction.INGRESS})
    return [default_deny, app_to_app, third]


def _global_policy(rng: random.Random, number: int, teams: int) -> Policy:
    """One Calico GlobalNetworkPolicy; the tier and shape rotate so every tier holds many."""
    shape = number % 5
    app, other = rng.sample(APPS, 2)
    if shape == 0:  # security: dev namespaces never reach prod apps; others pass to the next tier
        tier, selector, types = "security", f"app == '{app}'", {Direction.INGRESS}
        ingress = (
            Rule("Deny", source=EntityRule(namespace_selector=parse_selector("env == 'dev'"))),
            Rule("Pass"),
        )
        extra = {"ingress": ingress, "namespace_selector": parse_selector("env == 'prod'")}
    elif shape == 1:  # security: quarantine an old version's egress except to one team
        tier, selector, types = "security", f"app == '{app}' && version == 'v1'", {Direction.EGRESS}
        egress = (
            Rule("Log"),
            Rule(
                "Pass",
                destination=EntityRule(
                    namespace_selector=parse_selector(f"team == 'team-{rng.randrange(teams)}'")
                ),
            ),
            Rule("Deny", TCP, destination=EntityRule(nets=(ipaddress.ip_network("10.244.0.0/16"),))),
        )
        extra = {"egress": egress}
    elif shape == 2:  # platform (defaultAction Pass): monitoring may scrape named metrics ports
        tier, selector, types = "platform", f"app == '{app}'", {Direction.INGRESS}
        ingress = (
            Rule(
                "Allow",
                TCP,
                source=EntityRule(
                    selector=parse_selector(f"app == '{other}'"), namespace_selector=parse_selector("all()")
                ),
                destination=EntityRule(ports=(NamedPort("metrics"),)),
            ),
        )
        extra = {"ingress": ingress}
    elif shape == 3:  # platform: DNS egress allowed for everyone, the rest passed on
        tier, selector, types = "platform", "all()", {Direction.EGRESS}
        egress = (Rule("Allow", UDP, destination=EntityRule(ports=(PortRange(53, 53),))), Rule("Pass"))
        extra = {"egress": egress}
    else:  # default tier, before the KNPs: web may be reached from anywhere but one app
        tier, selector, types = (
            "default",
            f"app == '{app}' && version == '{rng.choice(('v1', 'v2'))}'",
            {Direction.INGRESS},
        )
        ingress = (
            Rule("Deny", TCP, source=EntityRule(selector=parse_selector(f"app == '{other}'"))),
            Rule("Allow", TCP, destination=EntityRule(ports=(PortRange(80, 80), PortRange(443, 443)))),
        )
        extra = {"ingress": ingress}
    name = f"gnp-{number}" if tier == "default" else f"{tier}.gnp-{number}"
    return Policy(
        kind="GlobalNetworkPolicy",
        name=name,
        namespace=None,
        tier=tier,
        order=float(rng.choice((10, 100, 500, 900))),
        selector=parse_selector(selector),
        types=frozenset(types),
        **extra,  # type: ignore[arg-type]
    )


def measure(namespace_count: int) -> dict[str, float | int]:
    cluster = generate(namespace_count)
    started, cpu_started = time.perf_counter(), time.process_time()
    oracle = Oracle(namespaces=cluster.namespaces, pods=cluster.pods, resources=cluster.resources)
    built = time.perf_counter()
    matrix = oracle.pair_matrix(PORT, PROTOCOL)
    allowed = matrix.allowed_count()
    computed, cpu_computed = time.perf_counter(), time.process_time()
    pairs = oracle.all_pairs(PORT, PROTOCOL)
    listed = time.perf_counter()
    if len(pairs) != matrix.pairs or sum(pairs.values()) != allowed:
        raise AssertionError("all_pairs and the grouped matrix disagree")
    return {
        "pods": len(cluster.pods),
        "namespaces": len(cluster.namespaces),
        "policies": len(cluster.resources.policies),
        "pairs": matrix.pairs,
        "allowed_pairs": allowed,
        "groups": matrix.classes,
        "build_s": round(built - started, 2),
        "matrix_s": round(computed - built, 2),
        "wall_s": round(computed - started, 2),
        "cpu_s": round(cpu_computed - cpu_started, 2),
        "all_pairs_dict_s": round(listed - computed, 2),
    }


def main() -> int:
    small = measure(100)
    print(f"oracle small: {json.dumps(small)}", flush=True)
    large = measure(500)
    print(f"oracle large: {json.dumps(large)}", flush=True)
    record("oracle", {**large, "small": small, "budget_s": BUDGET_S})
    if large["wall_s"] > BUDGET_S:
        print(f"FAIL: {large['pods']} pods took {large['wall_s']} s, over the {BUDGET_S:.0f} s budget")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
