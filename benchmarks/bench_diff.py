"""How long `diff` takes on the 2,000-policy benchmark set against the same set with one policy changed.

The set is the oracle benchmark's (`bench_oracle.generate(500)`: 500 namespaces, 5,000 pods, 1,500
Kubernetes NetworkPolicies and 500 GlobalNetworkPolicies in three tiers). HEAD is the same set with one
policy edited the way a pull request would: one namespace exempted from one GlobalNetworkPolicy. Every pod serves one port (80/TCP, named `http`, as the oracle benchmark judges one port), so
the diff compares every ordered pair of distinct pods (24,995,000) under both sets.

`wall_s` is the whole comparison: both oracles built from the objects, the
object changes, every pair of both matrices compared per joint class, the changed flows explained and
attributed, and the text report rendered. `cpu_s` (checked against `BUDGET_S`) is its CPU time. Generating the objects is not
counted. Figures are merged under "diff_2000_policies" into reports/bench.json; the run fails (exit 1)
when `cpu_s` exceeds `BUDGET_S`: the comparison is single-threaded, so on an idle machine wall and
CPU time agree, and other processes loading the machine stretch only the wall time.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace

from bench_oracle import Cluster, generate
from calico_conformance.impact.clusters import ClusterImpact, Impact
from calico_conformance.impact.render import render_text
from calico_conformance.oracle.diff import diff_oracles, resource_changes
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.model import ContainerPort, Pod, ResourceSet
from calico_conformance.oracle.selector import NAMESPACE_LABEL, parse_selector
from figures import record

BUDGET_S = 5.0  # the bound on this 2-core machine
NAMESPACES = 500
HTTP = (ContainerPort(80, "TCP", "http"),)
TARGET_NAMESPACE = "ns-042"
SAMPLE_STRIDE = 7  # every 7th pod as a source when looking for a policy whose edit shows


def one_policy_changed(cluster: Cluster, pods: tuple[Pod, ...]) -> tuple[ResourceSet, str]:
    """The set with TARGET_NAMESPACE exempted from one GlobalNetworkPolicy that lets flows into it:
    `&& projectcalico.org/namespace != '...'` on its selector, as a pull request narrowing a global
    policy would. This set's global policies overlap (a dozen guard each app), so most single edits
    change nothing; the policy is the first one (by name) whose exemption flips a sampled flow into the
    namespace, found by asking the oracle before the timing starts."""
    resources = cluster.resources
    base = Oracle(namespaces=cluster.namespaces, pods=pods, resources=resources)
    targets = [pod for pod in pods if pod.namespace == TARGET_NAMESPACE]
    sample = [(source, target) for source in pods[::SAMPLE_STRIDE] for target in targets if source is not target]
    deciding = sorted(
        {
            str(verdict.ingress.policy)
            for source, target in sample
            if (verdict := base.verdict(source, target, 80, "TCP")).allowed
            and str(verdict.ingress.policy).startswith("GlobalNetworkPolicy")
        }
    )
    for name in deciding:
        head = _exempted(resources, name)
        oracle = Oracle(namespaces=cluster.namespaces, pods=pods, resources=head)
        if any(oracle.verdict(s, t, 80, "TCP").allowed != base.verdict(s, t, 80, "TCP").allowed for s, t in sample):
            return head, name
    raise SystemExit(f"no single GlobalNetworkPolicy exemption changes a flow into {TARGET_NAMESPACE}")


def _exempted(resources: ResourceSet, display_name: str) -> ResourceSet:
    policies = tuple(
        replace(p, selector=parse_selector(f"({p.selector}) && {NAMESPACE_LABEL} != '{TARGET_NAMESPACE}'"))
        if p.display_name == display_name
        else p
        for p in resources.policies
    )
    return replace(resources, policies=policies)


def measure() -> dict[str, float | int | str]:
    cluster = generate(NAMESPACES)
    pods = tuple(replace(pod, ports=HTTP) for pod in cluster.pods)
    head_resources, changed = one_policy_changed(cluster, pods)
    started, cpu_started = time.perf_counter(), time.process_time()
    base = Oracle(namespaces=cluster.namespaces, pods=pods, resources=cluster.resources)
    head = Oracle(namespaces=cluster.namespaces, pods=pods, resources=head_resources)
    changes = resource_changes(cluster.resources, head_resources)
    pairs = diff_oracles(base, head, changes)
    impact = Impact("base", "head", changes, (ClusterImpact("bench", tuple(pairs)),), judged_layout=False)
    text = render_text(impact)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if len(changes) != 1 or not pairs:
        raise SystemExit(f"expected one object change with flows, got {len(changes)} changes and {len(pairs)} pairs")
    return {
        "pods": len(pods),
        "policies": len(cluster.resources.policies),
        "pairs": len(pods) * (len(pods) - 1),
        "changed_policy": changed,
        "changed_flows": impact.flows,
        "report_lines": text.count("\n") + 1,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "budget_s": BUDGET_S,
    }


def main() -> int:
    figures = measure()
    print(f"diff_2000_policies: {json.dumps(figures)}", flush=True)
    record("diff_2000_policies", figures)
    if float(figures["cpu_s"]) > BUDGET_S:
        print(f"FAIL: the diff took {figures['cpu_s']} s of CPU, over the {BUDGET_S:.0f} s budget")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
