"""The session lab's layout, shared by the netns conftest and tests: pods, ports, timeouts, names.

Expected values in the tests come from here and from `netns_lab`'s topology constants, never from what
the agent reported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from calico_conformance.probe.netns_lab import UNDERLAY_MTU, PodSpec

SERVE_TCP = (80, 81)
SERVE_UDP = (80, 81)
CLOSED_PORT = 82  # nothing listens here on any pod
PROBE_TIMEOUT_S = 0.5  # short: every dropped probe costs one timeout
ROUND_INTERVAL_S = 0.05
DNS_DOMAIN = "lab.test"
DNS_RECORD = f"web-2.{DNS_DOMAIN}"  # answers with tenant-a/web-2's IP
CONTROL = "platform/control"  # no test policy drops it: the runner's control source

LAB_PODS = (
    PodSpec("tenant-a", "web-1", "node1"),
    PodSpec("tenant-b", "api-1", "node1"),
    PodSpec("platform", "control", "node1"),
    PodSpec("mtu", "big-1", "node1", mtu=UNDERLAY_MTU),
    PodSpec("tenant-a", "web-2", "node2"),
    PodSpec("tenant-b", "api-2", "node2"),
    PodSpec("kube-system", "dns", "node2"),
    PodSpec("mtu", "big-2", "node2", mtu=UNDERLAY_MTU),
    PodSpec("tenant-c", "idle", "node2"),
)
NO_AGENT = frozenset({"kube-system/dns", "tenant-c/idle"})  # dns runs dnsmasq; idle runs nothing

Policy = Callable[[Sequence[str]], None]  # the `policy` fixture: install nftables rules for one test
Probe = Callable[..., dict[str, object]]  # the `probe` fixture: one connect job, its result
