"""How long `calico-conformance simulate` takes, and how much memory, on a scenario of 2,000 pods (issue 13).

The scenario lists no probes, so every ordered pair of distinct pods is probed on each destination port:
2,000 pods of one port each make 3,998,000 probes. The pods are those of the oracle benchmark's
generator (`bench_oracle.generate`: 200 namespaces of 10 pods, 800 policies in three tiers), written out
as a real scenario file with inline manifests, given one port each (80/TCP, named `http`) so the
benchmark is "all pairs, one port". The command runs as a user runs it, in a child process
(`python -m calico_conformance.cli simulate FILE --format json > /dev/null`), so the figures are the
whole command's: `wall_s` from start to exit, `cpu_s` the command's CPU time and `peak_rss_mb` its
maximum resident set (both from `getrusage(RUSAGE_CHILDREN)`). Its output (1.8 GB) is piped back and
counted as it comes: the JSON contract's first and last lines, one line per probe, the allowed ones.

Figures are merged under "simulate_2000_pods" into reports/bench.json; the run fails (exit 1) when the
command's CPU time or memory exceeds the issue's goal (`BUDGET_S`, `BUDGET_RSS_MB`). CPU time, not wall
time, is what is bounded: the command is single-threaded, so on an idle machine the two agree, and
other processes loading the machine (a CI runner, parallel builds) stretch only the wall time.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench_oracle import generate
from calico_conformance.oracle.model import PROTOCOL_NAMES, EntityRule, Policy, PortRange, Rule
from figures import record

NAMESPACES = 200  # x 10 pods = 2,000 pods
BUDGET_S = 15.0
BUDGET_RSS_MB = 1024.0
PORT = {"name": "http", "containerPort": 80, "protocol": "TCP"}


def _selector(selector: object) -> str:
    return str(selector)


def _entity(entity: EntityRule) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if entity.selector is not None:
        data["selector"] = _selector(entity.selector)
    if entity.namespace_selector is not None:
        data["namespaceSelector"] = _selector(entity.namespace_selector)
    if entity.nets:
        data["nets"] = [str(net) for net in entity.nets]
    if entity.not_nets:
        data["notNets"] = [str(net) for net in entity.not_nets]
    if entity.ports:
        data["ports"] = [str(port) if isinstance(port, PortRange) else port.name for port in entity.ports]
    return data


def _rule(rule: Rule) -> dict[str, Any]:
    data: dict[str, Any] = {"action": rule.action}
    if rule.protocol is not None:
        data["protocol"] = PROTOCOL_NAMES[rule.protocol]
    for side, entity in (("source", rule.source), ("destination", rule.destination)):
        if not entity.is_empty:
            data[side] = _entity(entity)
    return data


def manifest(policy: Policy) -> dict[str, Any]:
    """The generator's policy as a Calico manifest (a KNP as the Calico NetworkPolicy it converts to)."""
    spec: dict[str, Any] = {
        "tier": policy.tier,
        "order": policy.order,
        "selector": _selector(policy.selector),
        "types": sorted(str(direction) for direction in policy.types),
        "ingress": [_rule(rule) for rule in policy.ingress],
        "egress": [_rule(rule) for rule in policy.egress],
    }
    if policy.namespace_selector is not None:
        spec["namespaceSelector"] = _selector(policy.namespace_selector)
    kind = "GlobalNetworkPolicy" if policy.namespace is None else "NetworkPolicy"
    name = policy.name if policy.tier == "default" or policy.name.startswith(f"{policy.tier}.") else (
        f"{policy.tier}.{policy.name}"
    )
    metadata: dict[str, Any] = {"name": name}
    if policy.namespace is not None:
        metadata["namespace"] = policy.namespace
    return {"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": metadata, "spec": spec}


def scenario() -> dict[str, Any]:
    cluster = generate(NAMESPACES)
    tiers = [
        {"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": tier.name},
         "spec": {"order": tier.order, "defaultAction": tier.default_action}}
        for tier in cluster.resources.tiers
    ]
    return {
        "calicoVersion": "3.31",
        "namespaces": [
            {"name": namespace.name,
             "labels": {k: v for k, v in namespace.labels.items() if k != "kubernetes.io/metadata.name"}}
            for namespace in cluster.namespaces
        ],
        "pods": [
            {"name": pod.name, "namespace": pod.namespace, "labels": pod.labels.as_dict(), "ip": str(pod.ip),
             "serviceAccount": pod.service_account, "ports": [PORT]}
            for pod in cluster.pods
        ],
        "resources": tiers + [manifest(policy) for policy in cluster.resources.policies],
    }


def measure(path: Path) -> dict[str, Any]:
    """Run the command with its output piped back here, counted chunk by chunk (it is gigabytes)."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "calico_conformance.cli", "simulate", str(path), "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy(),
    )
    assert child.stdout is not None
    assert child.stderr is not None
    size = lines = allowed = 0
    head = tail = pending = b""
    while chunk := child.stdout.read(1 << 20):
        if not head:
            head = chunk[:4096]
        size += len(chunk)
        lines += chunk.count(b"\n")
        complete, _, pending = (pending + chunk).rpartition(b"\n")  # a record split across chunks waits
        allowed += complete.count(b'"allowed": true, "egress"')
        tail = (tail + chunk)[-4096:]
    errors = child.stderr.read()
    status = child.wait()
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"simulate failed ({status}): {errors.decode()[-2000:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kb = usage.ru_maxrss  # kilobytes on Linux
    pods = 10 * NAMESPACES
    first = json.loads(head.split(b"\n")[1].rstrip(b","))
    if not head.startswith(b'{"results": [') or not tail.endswith(b"\n]}\n") or "egress" not in first:
        raise SystemExit("simulate did not print the json contract")
    if lines - 2 != pods * (pods - 1):  # the opening and closing lines hold no record
        raise SystemExit(f"simulate printed {lines - 2} results, not {pods * (pods - 1)}")
    return {
        "pods": pods,
        "probes": lines - 2,
        "allowed": allowed,
        "output_mb": round(size / 2**20, 1),
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "budget_s": BUDGET_S,
        "budget_rss_mb": BUDGET_RSS_MB,
    }


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-simulate-") as scratch:
        path = Path(scratch) / "scenario.yaml"
        path.write_text(yaml.dump(scenario(), Dumper=yaml.CSafeDumper, sort_keys=False))
        figures = measure(path)
    print(f"simulate_2000_pods: {json.dumps(figures)}", flush=True)
    record("simulate_2000_pods", figures)
    if figures["cpu_s"] > BUDGET_S or figures["peak_rss_mb"] > BUDGET_RSS_MB:
        print(f"FAIL: over the goal of {BUDGET_S:.0f} s and {BUDGET_RSS_MB:.0f} MB")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
