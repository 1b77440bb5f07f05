"""How long one round of a full probe matrix takes on a real dataplane: the issue's performance bound.

The matrix is the upstream netpol model's: 9 pods, every pod probing every pod (itself included), on 2
ports x 3 protocols = 486 probes, half of them dropped by nftables, with a 1-second probe timeout. One
round must finish within `ROUND_BUDGET_S` (the floor is one timeout: every source's dropped probes run
concurrently). This kernel may lack SCTP; then the third protocol is replaced by a third port of TCP and
UDP (3 ports x 2 protocols, still 486 probes), and the output says so.

The run goes through the real runner (`run_matrix`, three rounds, positive controls, convergence) over
the netns lab, so it also checks that the observed matrix equals the dropped set it installed. Needs
root; prints the figures, merges them under "probe_matrix" into reports/bench.json, and exits 1 when a
round is over budget or the matrix is wrong. Without root it says why, records that, and exits 0.
"""

from __future__ import annotations

import os
import statistics
import sys

from calico_conformance.probe.netns_executor import NetnsExecutor
from calico_conformance.probe.netns_lab import (
    PodSpec,
    missing_requirements,
    netns_lab,
    sctp_unsupported_reason,
)
from calico_conformance.probe.runner import run_matrix
from calico_conformance.reachability import Expectation, ExpectedMatrix, Flow
from figures import record

KEY = "probe_matrix"
ROUND_BUDGET_S = 2.5
TIMEOUT_S = 1.0
ROUNDS = 3  # the runner's required consecutive matches: three measured rounds
PODS = tuple(PodSpec("bench", f"p{index}", "node1" if index < 5 else "node2") for index in range(9))


def services() -> tuple[list[tuple[int, str]], str]:
    """The (port, protocol) pairs probed on every pod, and how they relate to the issue's 2 x 3."""
    why_not = sctp_unsupported_reason()
    if why_not is None:
        return [(port, protocol) for protocol in ("TCP", "UDP", "SCTP") for port in (80, 81)], "as specified"
    substitution = f"{why_not.split(';')[0]}: 3 ports x TCP+UDP instead of 2 ports x TCP+UDP+SCTP"
    return [(port, protocol) for protocol in ("TCP", "UDP") for port in (80, 81, 82)], substitution


def dropped_flows(keys: list[str], probed: list[tuple[int, str]]) -> set[Flow]:
    """Exactly half of all probes, none of them a pod to itself (that never crosses the node), and every
    destination service keeps allowed clients, so each deny has its positive control in every round."""
    drops: set[Flow] = set()
    groups = [(destination, service) for destination in keys for service in probed]
    for number, (destination, (port, protocol)) in enumerate(groups):
        clients = [key for key in keys if key != destination]
        count = 5 if number % 2 == 0 else 4  # 27 groups x 5 + 27 x 4 = 243 = 486 / 2 for 54 groups
        start = number % len(clients)
        for client in (clients + clients)[start : start + count]:
            drops.add(Flow(client, destination, port, protocol))
    return drops


def nft_script(drops: set[Flow], ips: dict[str, str]) -> str:
    elements = ",\n      ".join(
        f"{ips[flow.source]} . {ips[flow.destination]} . {flow.protocol.lower()} . {flow.port}"
        for flow in sorted(drops)
    )
    return (
        "table inet cc_bench {\n"
        "  set drops {\n    type ipv4_addr . ipv4_addr . inet_proto . inet_service\n"
        f"    elements = {{\n      {elements}\n    }}\n  }}\n"
        "  chain forward {\n    type filter hook forward priority 0; policy accept;\n"
        "    ip saddr . ip daddr . meta l4proto . th dport @drops drop\n  }\n}\n"
    )


def measure() -> dict[str, object]:
    probed, substitution = services()
    with netns_lab(PODS) as lab:
        keys = sorted(lab.pods)
        tcp = [port for port, protocol in probed if protocol == "TCP"]
        udp = [port for port, protocol in probed if protocol == "UDP"]
        sctp = [port for port, protocol in probed if protocol == "SCTP"]
        for key in keys:
            lab.serve(key, tcp=tcp, udp=udp, sctp=sctp)
        drops = dropped_flows(keys, probed)
        script = nft_script(drops, {key: pod.ip for key, pod in lab.pods.items()})
        for node in lab.nodes.values():
            lab.nft(node.netns, script)
        flows = [Flow(s, d, port, protocol) for s in keys for d in keys for port, protocol in probed]
        expected = ExpectedMatrix({flow: Expectation(flow not in drops) for flow in flows})
        result = run_matrix(
            NetnsExecutor(),
            lab.endpoints(),
            expected,
            timeout_s=TIMEOUT_S,
            converge_timeout_s=60.0,
            required_matches=ROUNDS,
            round_interval_s=0.0,
        )
    walls = [record.wall_s for record in result.rounds]
    worst = max(walls)
    return {
        "probes": len(flows),
        "dropped": len(drops),
        "pods": len(PODS),
        "services": [f"{port}/{protocol}" for port, protocol in probed],
        "substitution": substitution,
        "timeout_s": TIMEOUT_S,
        "wall_s": worst,
        "median_round_s": round(statistics.median(walls), 3),
        "rounds_wall_s": walls,
        "probes_per_s": round(len(flows) / worst, 1),
        "budget_s": ROUND_BUDGET_S,
        "matrix_ok": result.ok,
        "failure": result.failure,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    reason = missing_requirements()
    if reason is not None:
        print(f"SKIPPED {KEY}: {reason}")
        record(KEY, {"skipped": reason})
        return 0
    figures = measure()
    for name, value in figures.items():
        print(f"{name:18} {value}")
    record(KEY, figures)
    if not figures["matrix_ok"]:
        print(f"FAIL: the observed matrix is not the installed policy: {figures['failure']}")
        return 1
    if float(str(figures["wall_s"])) > ROUND_BUDGET_S:
        print(
            f"FAIL: a round of {figures['probes']} probes took {figures['wall_s']}s, over {ROUND_BUDGET_S}s"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
