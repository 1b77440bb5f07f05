"""An outside -> pod flow is never a pass unless the destination saw it come from outside (issue 9, item 5).

The outside stand-in sends from its node's address (`ProbeEndpoint.source_address`, the agent's `bind`).
If that did not take — the packet left through vxlan.calico with the node's tunnel address, which Calico
allocates from the pod IP pool (projectcalico/calico v3.31.7 felix/dataplane/linux/vxlan_mgr.go) — a
policy hole for "everything but the pod network" would go unseen. So every answer must report the bound
address as its peer, and the sender's own source control (to the control pod, also bound) must too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from calico_conformance.probe.runner import ProbeEndpoint, plan_round, run_matrix
from calico_conformance.reachability import Expectation, ExpectedMatrix, Flow, ProbeVerdict

NODE_ADDRESS = "172.18.0.4"  # the kind node the echo runs on (outside 10.244.0.0/16)
TUNNEL_ADDRESS = "10.244.2.0"  # that node's vxlan.calico address: inside the pod pool
ECHO = "cc-r1-control/outside-echo-1"
SHOP = "customer-a/shop"
CONTROL = "cc-r1-control/control"
ENDPOINTS = {
    ECHO: ProbeEndpoint(
        "cc-r1-control/cc-r1-outside-echo-1", NODE_ADDRESS, "w2", source_address=NODE_ADDRESS
    ),
    SHOP: ProbeEndpoint("customer-a/shop", "10.244.1.5", "w1"),
    "customer-a/web": ProbeEndpoint("customer-a/web", "10.244.1.6", "w1"),
    CONTROL: ProbeEndpoint("cc-r1-control/control", "10.244.1.9", "w1"),
}
INTO_SHOP = Flow(ECHO, SHOP, 8443, "TCP")
SOURCE_CONTROL = (CONTROL, 9999, "TCP")


class Dataplane:
    """Answers as the network would: `seen_from` is the source address servers see for bound probes."""

    def __init__(self, seen_from: str, shop_admits_outside: bool, shop_admits_all: bool = False) -> None:
        self.seen_from = seen_from
        self.shop_admits_outside = shop_admits_outside
        self.shop_admits_all = shop_admits_all
        self.jobs: list[dict[str, Any]] = []

    def run_batch(
        self, source: str, jobs: Sequence[dict[str, Any]], *, deadline_s: float
    ) -> list[dict[str, Any]]:
        results = []
        for job in jobs:
            self.jobs.append(job)
            key = next(k for k, e in ENDPOINTS.items() if e.ip == job["ip"])
            to_shop = key == SHOP and source == ENDPOINTS[ECHO].handle
            # A policy hole "allow from notNets [10.244.0.0/16]": admits the node address, not the tunnel's.
            admitted = not to_shop or self.shop_admits_all
            admitted = admitted or (self.shop_admits_outside and not self.seen_from.startswith("10.244."))
            peer = self.seen_from if "bind" in job else "10.244.1.9"
            results.append({"id": job["id"], "verdict": "allowed" if admitted else "dropped",
                            "identity": {"namespace": key.split("/")[0], "pod": key.split("/")[1]} if admitted else None,
                            "peer": peer if admitted else None})  # fmt: skip
        return results


def _run(dataplane: Dataplane, expected: ExpectedMatrix) -> Any:
    return run_matrix(dataplane, ENDPOINTS, expected, timeout_s=1.0, converge_timeout_s=0.3, round_interval_s=0.0,
                      control_source=CONTROL, source_control=SOURCE_CONTROL)  # fmt: skip


def test_the_stand_in_binds_every_probe_to_its_node_address() -> None:
    plan = plan_round(ENDPOINTS, ExpectedMatrix({INTO_SHOP: Expectation(False)}), timeout_s=1.0,
                      control_source=CONTROL, source_control=SOURCE_CONTROL)  # fmt: skip
    sent = plan.batches[ENDPOINTS[ECHO].handle]
    assert [(probe.job["ip"], probe.job["bind"], probe.expected_peer) for probe in sent] == [
        ("10.244.1.5", NODE_ADDRESS, NODE_ADDRESS),  # the flow
        ("10.244.1.9", NODE_ADDRESS, NODE_ADDRESS),  # its source control
    ]


def test_an_outside_flow_seen_from_inside_the_pool_is_never_a_pass() -> None:
    # The hole is there (the shop admits outside traffic), but the probes leave with the tunnel address,
    # so the hole never matches and the shop drops them: the expected deny must not pass.
    expected = ExpectedMatrix({INTO_SHOP: Expectation(False)})
    result = _run(Dataplane(seen_from=TUNNEL_ADDRESS, shop_admits_outside=True), expected)
    assert result.observed[INTO_SHOP].verdict is ProbeVerdict.ERROR
    assert not result.comparison().ok
    control = result.rounds[0].sent[ECHO]
    assert control.verdict is ProbeVerdict.ERROR
    assert f"saw the probe come from {TUNNEL_ADDRESS}, not {NODE_ADDRESS}" in control.detail


def test_an_allowed_answer_seen_from_inside_the_pool_is_an_error() -> None:
    expected = ExpectedMatrix({INTO_SHOP: Expectation(True)})
    result = _run(
        Dataplane(seen_from=TUNNEL_ADDRESS, shop_admits_outside=False, shop_admits_all=True), expected
    )
    # The shop answered, but it saw the tunnel address: that says nothing about traffic from outside.
    assert result.observed[INTO_SHOP].verdict is ProbeVerdict.ERROR
    assert f"saw the probe come from {TUNNEL_ADDRESS}" in result.observed[INTO_SHOP].detail
    assert not result.comparison().ok


def test_seen_from_the_node_address_the_hole_is_caught_and_the_deny_counts_when_there_is_none() -> None:
    expected = ExpectedMatrix({INTO_SHOP: Expectation(False)})
    leak = _run(Dataplane(seen_from=NODE_ADDRESS, shop_admits_outside=True), expected)
    assert leak.observed[INTO_SHOP].verdict is ProbeVerdict.ALLOWED  # the hole, seen
    assert not leak.comparison().ok
    sound = run_matrix(Dataplane(seen_from=NODE_ADDRESS, shop_admits_outside=False), ENDPOINTS, expected,
                       timeout_s=1.0, converge_timeout_s=5.0, round_interval_s=0.0, control_source=CONTROL,
                       source_control=SOURCE_CONTROL)  # fmt: skip
    assert sound.ok, sound.failure
    assert sound.observed[INTO_SHOP].verdict is ProbeVerdict.DROPPED
