"""Conformance: on a live cluster, Calico enforces what the upstream netpol catalogue and the oracle say.

The Kubernetes project's own NetworkPolicy e2e cases (`tests/data/k8s-netpol-cases.yaml`, transcribed
from `test/e2e/network/netpol`, with upstream's expected matrices) are replayed step by step in scratch
namespaces (`cc-<run id>-<case>-x|y|z`) of each cluster: pods `a`, `b`, `c` per namespace, the case's
policies created, namespaces relabelled or policies deleted between observations, exactly as upstream
does. Each observation is one assertion on the whole matrix against the oracle's expectation, and the
oracle itself must first agree with upstream's hand-written matrix — so a failure says whether the
oracle or the cluster is wrong. Upstream's `sleep` steps are dropped: the probe runner's convergence
rule (three matching rounds in a row, a leak after a match fails at once) replaces them.

Only live targets have a dataplane: on `--target=static` every case skips saying so, because the
oracle's agreement with this catalogue is already proven without a cluster (`tests/unit/test_netpol_cases.py`).
SCTP cases are NOT_SUPPORTED (most kind nodes lack the kernel module, and so does this project's CI).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from calico_conformance.cluster.live import LiveTarget
from calico_conformance.cluster.scratch import ScratchSpace, scratch_renames
from calico_conformance.config import RunConfig
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.model import Labels
from calico_conformance.oracle.scenario import scenario_from_data
from calico_conformance.reachability import Expectation, ExpectedMatrix, Flow, compare
from calico_conformance.report.outcomes import not_supported
from calico_conformance.suite.assertions import fail_unless_matches, failure_message
from calico_conformance.targets.base import Target
from calico_conformance.tenancy.layout import Service, Workload

pytestmark = [pytest.mark.conformance]

CATALOGUE = Path(__file__).resolve().parents[1] / "tests" / "data" / "k8s-netpol-cases.yaml"
NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
UNSUPPORTED_PROTOCOLS = {
    "SCTP": "SCTP needs the sctp kernel module on every node, which kind nodes and CI lack"
}
PLACEHOLDER = re.compile(
    r"\{(largeCIDR\(podIP\((?P<large>[a-z]/[a-z])\)\)|podIP\((?P<ip>[a-z]/[a-z])\)|hostMask)\}"
)


@dataclass(frozen=True)
class NetpolCase:
    id: str  # upstream order, e.g. tcp-03: the test id
    name: str  # upstream's It(...) text
    ports: tuple[int, ...]
    protocols: tuple[str, ...]
    steps: tuple[Mapping[str, Any], ...]


def load_cases(path: Path = CATALOGUE) -> tuple[NetpolCase, ...]:
    catalogue = yaml.safe_load(path.read_text())
    return tuple(
        NetpolCase(case["id"], case["name"], tuple(case["model_ports"]), tuple(case["model_protocols"]), tuple(case["steps"]))
        for case in catalogue["cases"]
    )  # fmt: skip


CASES = load_cases()


def model_workloads(case: NetpolCase) -> list[Workload]:
    """Upstream's model: pods a, b, c in x, y, z, labelled pod=<name>, serving serve-<port>-<proto>."""
    services = tuple(
        Service(port, protocol, f"serve-{port}-{protocol.lower()}")
        for port in case.ports
        for protocol in case.protocols
    )
    return [Workload(ns, pod, Labels.of({"pod": pod}), services) for ns in NAMESPACES for pod in PODS]


def upstream_matrix(case: NetpolCase, step: Mapping[str, Any]) -> ExpectedMatrix:
    """Upstream's expectation for one validate step: `default` everywhere but the listed exceptions."""
    reachability = step["reachability"]
    exceptions = {
        tuple(pair.split(" -> ")): allowed for pair, allowed in (reachability.get("exceptions") or {}).items()
    }
    keys = [f"{ns}/{pod}" for ns in NAMESPACES for pod in PODS]
    why = f"upstream e2e: {case.name}"
    return ExpectedMatrix(
        {
            Flow(source, destination, step["port"], step["protocol"]): Expectation(
                bool(exceptions.get((source, destination), reachability["default"])), why
            )
            for source in keys
            for destination in keys
            if source != destination  # upstream ignores loopback (kubernetes#95879)
        }
    )


def with_pod_ips(manifest: Mapping[str, Any], space: ScratchSpace) -> dict[str, Any]:
    """Fill upstream's `{podIP(ns/pod)}`, `{largeCIDR(...)}` and `{hostMask}` placeholders with live values."""

    def fill(match: re.Match[str]) -> str:
        if match["large"]:
            return str(ipaddress.ip_network(f"{space.pod_ip(match['large'])}/4", strict=False))
        if match["ip"]:
            return space.pod_ip(match["ip"])
        return "32"

    filled: dict[str, Any] = yaml.safe_load(PLACEHOLDER.sub(fill, yaml.safe_dump(dict(manifest))))
    return filled


def oracle_matrix(
    flows: ExpectedMatrix,
    labels: Mapping[str, Mapping[str, str]],
    policies: list[dict[str, Any]],
    space: ScratchSpace,
) -> ExpectedMatrix:
    """The oracle's expectation over the same objects, with the pods' live addresses."""
    data = {
        "namespaces": [{"name": ns, "labels": dict(labels[ns])} for ns in NAMESPACES],
        "pods": [
            {"name": w.name, "namespace": w.namespace, "labels": w.labels.as_dict(), "ip": space.pod_ip(w.key),
             "ports": [{"name": s.name, "containerPort": s.port, "protocol": s.protocol} for s in w.ports]}
            for w in space.workloads
        ],
        "resources": policies,
        "probes": [],
    }  # fmt: skip
    return Oracle.from_scenario(scenario_from_data(data, "<netpol case>")).expected_matrix(flows)


@pytest.fixture
def netpol_target(target: Target) -> LiveTarget:
    """The live target that replays the catalogue (skips on --target=static, saying why)."""
    if not isinstance(target, LiveTarget):
        pytest.skip(
            f"--target={target.name} has no dataplane: replaying the upstream netpol cases needs a live cluster; "
            "the oracle's agreement with them is tests/unit/test_netpol_cases.py"
        )
    return target


@pytest.mark.parametrize("netpol_case", CASES, ids=[case.id for case in CASES])
def test_upstream_netpol_case(
    netpol_case: NetpolCase, cluster: str, netpol_target: LiveTarget, run_config: RunConfig
) -> None:
    """One upstream NetworkPolicy e2e case, step by step, observed on the cluster and compared with the oracle."""
    for protocol in netpol_case.protocols:
        if protocol in UNSUPPORTED_PROTOCOLS:
            not_supported(f"{netpol_case.id}: {UNSUPPORTED_PROTOCOLS[protocol]}")
    renames = scratch_renames(run_config.run_id, netpol_case.id, NAMESPACES)
    labels: dict[str, dict[str, str]] = {ns: {} for ns in NAMESPACES}
    policies: list[dict[str, Any]] = []
    with netpol_target.scratch(cluster, renames, labels, model_workloads(netpol_case)) as space:
        for number, step in enumerate(netpol_case.steps, start=1):
            action = step["action"]
            if action == "create_policy":
                policy = with_pod_ips(step["policy"], space)
                space.apply(policy)
                policies.append(policy)
            elif action == "add_namespace_label":
                space.label_namespace(step["namespace"], step["labels"])
                labels[step["namespace"]].update(step["labels"])
            elif action == "delete_all_policies":
                space.delete_policies()
                policies.clear()
            elif action == "validate":
                _validate(netpol_case, number, step, cluster, labels, policies, space)
            elif action != "sleep":  # upstream's sleeps are replaced by the runner's convergence rule
                pytest.fail(
                    f"{netpol_case.id} step {number}: unknown action {action!r} in {CATALOGUE}", pytrace=False
                )


def _validate(
    case: NetpolCase,
    number: int,
    step: Mapping[str, Any],
    cluster: str,
    labels: Mapping[str, Mapping[str, str]],
    policies: list[dict[str, Any]],
    space: ScratchSpace,
) -> None:
    __tracebackhide__ = True
    upstream = upstream_matrix(case, step)
    expected = oracle_matrix(upstream, labels, policies, space)
    oracle_vs_upstream = compare(upstream, _as_observed(expected))
    fail_unless_matches(oracle_vs_upstream, lambda: f"{case.id} step {number}: the ORACLE disagrees with upstream's "
                        f"matrix (an oracle defect, not a cluster one):\n{oracle_vs_upstream.render()}")  # fmt: skip
    comparison = compare(expected, space.observe(expected, label=f"{case.id}-step-{number}"))
    fail_unless_matches(
        comparison,
        lambda: failure_message(
            comparison,
            cluster=cluster,
            summary=f"{case.id} step {number}: {case.name}",
            explain=lambda flow: expected[flow].why,
            reproduce=None,
        ),
    )


def _as_observed(expected: ExpectedMatrix) -> Any:
    """The oracle's verdicts as observations, to compare them with upstream's matrix."""
    from calico_conformance.reachability import Observation, ObservedMatrix, ProbeVerdict

    return ObservedMatrix(
        {
            flow: Observation(ProbeVerdict.ALLOWED if e.allowed else ProbeVerdict.DROPPED, why=e.why)
            for flow, e in expected.items()
        }
    )
