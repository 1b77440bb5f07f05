"""The cluster stand-in's Felix: each pod's ingress and egress programmed into nftables on its node.

The verdict for every (source pod, destination pod, port, protocol) comes from the project's own
oracle (`calico_conformance.oracle`) over the policies, namespaces, service accounts and pods in the
stand-in's API. This makes the stand-in agree with the oracle BY CONSTRUCTION: a run against it tests
the live code's plumbing (deploying, waiting, exec, the probe runner, convergence, reports, cleanup),
not Calico's policy semantics, which only a real cluster can test.

Per node, table `inet standin_policy`: established/related traffic passes (Calico keeps existing
connections through policy changes too); a packet from a local pod must be in the `egress` set, a
packet to a local pod in the `ingress` set, each keyed by (source, destination, protocol, port) (ICMP: by source and destination), so
egress is enforced on the source's node and ingress on the destination's, as Felix does. Ports
enumerated are every container port of every pod; anything else from or to a programmed pod drops.
A hostNetwork pod (the live targets' outside echo) is its node's address: flows between it and pods are
judged by the oracle with that address as an outside endpoint, as Calico sees a node's address when no
host endpoint is defined (a node reaching a pod on its own node is never policed, calico-semantics.md
§1.1: here that traffic never crosses the forward hook).

Fault switches (`standin_cluster.Faults`): an ignored policy is left out of the oracle's input;
`programming_delay_s` holds every policy change back that long (Felix lag); with
`new_pod_programming_delay_s` a new pod is programmed only that long after it starts, and until then
its packets drop (an interface Felix has not programmed yet drops everything, felix rules/dispatch.go).
"""

from __future__ import annotations

import heapq
import ipaddress
import json
import threading
import time
from typing import Any

from standin_store import Key, Obj, ObjectStore

from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.loader import load_manifest_text
from calico_conformance.oracle.model import ContainerPort, IPAddress, Labels, Namespace, Pod, ServiceAccount
from calico_conformance.probe.netns_lab import NetnsLab

TABLE = "standin_policy"
POLICY_KINDS = (
    ("networking.k8s.io/v1", "networkpolicies"),
    ("projectcalico.org/v3", "tiers"),
    ("projectcalico.org/v3", "networkpolicies"),
    ("projectcalico.org/v3", "globalnetworkpolicies"),
    ("projectcalico.org/v3", "networksets"),
    ("projectcalico.org/v3", "globalnetworksets"),
)
WATCHED = {*POLICY_KINDS, ("v1", "namespaces"), ("v1", "serviceaccounts")}
PROTOCOL_NUMBERS = {"TCP": 6, "UDP": 17, "SCTP": 132}


def _address(end: Pod | IPAddress) -> str:
    return str(end.ip if isinstance(end, Pod) else end)


def policy_id(key: Key) -> str:
    """`plural/namespace/name`, the form `Faults.ignored_policies` uses."""
    return f"{key[1]}/{key[2]}/{key[3]}"


class PolicyProgrammer:
    """Reprograms every node whenever policies, namespaces, accounts or pods change (see the docstring)."""

    def __init__(self, store: ObjectStore, lab: NetnsLab, faults: Any) -> None:
        self.store, self.lab, self.faults = store, lab, faults
        self.kubelet: Any = None  # set by the cluster: where each pod's sandbox (address, node) is
        self._due: list[float] = []  # when to program next (a heap)
        self._visible_at: dict[Key, float] = {}  # when a lagging Felix acts on each object's last change
        self._wake = threading.Condition()
        self._stopping = False
        self.programmed_version = 0  # increments with every programming pass, for tests
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._loop, name="standin-felix", daemon=True)
        store.listeners.append(self._changed)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        self._thread.join(timeout=30)

    def _changed(self, event: str, key: Key, obj: Obj) -> None:
        if (key[0], key[1]) in WATCHED:
            now = time.monotonic()
            delay = self.faults.programming_delay_s
            self._visible_at[key] = now + delay  # a lagging Felix acts on this change only then
            self._schedule(now)
            self._schedule(now + delay)

    def pods_changed(self) -> None:
        now = time.monotonic()
        self._schedule(now)
        if self.faults.new_pod_programming_delay_s:
            self._schedule(now + self.faults.new_pod_programming_delay_s)

    def _schedule(self, due: float) -> None:
        with self._wake:
            heapq.heappush(self._due, due)
            self._wake.notify_all()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and (not self._due or self._due[0] > time.monotonic()):
                    self._wake.wait(timeout=max(0.0, self._due[0] - time.monotonic()) if self._due else 1.0)
                if self._stopping:
                    return
                now = time.monotonic()
                while self._due and self._due[0] <= now:
                    heapq.heappop(self._due)
            try:
                self.program()
            except Exception as error:  # recorded for the tests; the stand-in keeps its last rules
                self.errors.append(f"{type(error).__name__}: {error}")

    def _visible(self, key: Key) -> bool:
        """Whether a lagging Felix has seen this object's latest change yet."""
        return self._visible_at.get(key, 0.0) <= time.monotonic() + 0.01

    # --- one programming pass ---------------------------------------------------------------------------

    def program(self) -> None:
        sandboxes = dict(self.kubelet.sandboxes) if self.kubelet else {}
        pods, hosts, served = self._endpoints(sandboxes)
        oracle = Oracle(
            namespaces=[
                Namespace(n["metadata"]["name"], Labels.of(n["metadata"].get("labels") or {}))
                for n in self.store.items("v1", "namespaces")
            ],
            pods=pods,
            resources=self._resources(),
            service_accounts=[
                ServiceAccount(a["metadata"]["name"], a["metadata"]["namespace"], Labels.of(a["metadata"].get("labels") or {}))
                for a in self.store.items("v1", "serviceaccounts")
            ],
        )  # fmt: skip
        services = sorted(served)
        egress: list[str] = []
        ingress: list[str] = []
        egress_icmp: list[str] = []
        ingress_icmp: list[str] = []
        pairs: list[tuple[Pod | IPAddress, Pod | IPAddress]] = [(s, d) for s in pods for d in pods if s is not d]
        pairs += [pair for pod in pods for host in hosts for pair in ((pod, host), (host, pod))]
        for source, destination in pairs:
            source_ip, destination_ip = _address(source), _address(destination)
            icmp = oracle.verdict(source, destination, None, "ICMP")
            if icmp.egress.allowed:
                egress_icmp.append(f"{source_ip} . {destination_ip}")
            if icmp.ingress.allowed:
                ingress_icmp.append(f"{source_ip} . {destination_ip}")
            for protocol, port in services:
                verdict = oracle.verdict(source, destination, port, protocol)
                element = f"{source_ip} . {destination_ip} . {PROTOCOL_NUMBERS[protocol]} . {port}"
                if verdict.egress.allowed:
                    egress.append(element)
                if verdict.ingress.allowed:
                    ingress.append(element)
        for node in self.lab.nodes.values():
            local = [str(p.ip) for p in pods if p.node == node.name]
            self._install(node.netns, local, (egress, ingress), (egress_icmp, ingress_icmp))
        self.programmed_version += 1

    def _endpoints(
        self, sandboxes: dict[tuple[str, str], Any]
    ) -> tuple[list[Pod], list[IPAddress], set[tuple[str, int]]]:
        """The programmed pods; the node addresses hostNetwork pods run on, as the oracle's address
        endpoints (outside the pod network: no pod selector matches them, `nets` and `notSelector: all()`
        rules do); and every port any of them serves."""
        pods: list[Pod] = []
        hosts: set[str] = set()
        services: set[tuple[str, int]] = set()
        for obj in self.store.items("v1", "pods"):
            metadata, spec = obj["metadata"], obj["spec"]
            sandbox = sandboxes.get((metadata["namespace"], metadata["name"]))
            if sandbox is None:
                continue
            ports = tuple(
                ContainerPort(int(p["containerPort"]), p.get("protocol", "TCP"), p.get("name"))
                for c in spec["containers"]
                for p in c.get("ports") or ()
            )
            if spec.get("hostNetwork"):
                hosts.add(sandbox.ip)
            elif sandbox.programmable_at > time.monotonic() + 0.01:
                continue  # not programmed yet: with the fault on, its interface drops everything
            else:
                labels = {k: v for k, v in (metadata.get("labels") or {}).items()}
                pods.append(Pod(metadata["name"], metadata["namespace"], ipaddress.ip_address(sandbox.ip), Labels.of(labels),
                                spec.get("serviceAccountName") or "default", sandbox.node, ports))  # fmt: skip
            services |= {(port.protocol, port.port) for port in ports}
        return pods, [ipaddress.ip_address(host) for host in sorted(hosts)], services

    def _resources(self) -> Any:
        manifests = []
        for group_version, plural in POLICY_KINDS:
            for obj in self.store.items(group_version, plural):
                key = (group_version, plural, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                if policy_id(key) in self.faults.ignored_policies or not self._visible(key):
                    continue
                metadata = {
                    k: obj["metadata"][k] for k in ("name", "namespace", "labels") if k in obj["metadata"]
                }
                manifests.append({"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": metadata,
                                  "spec": obj.get("spec") or {}})  # fmt: skip
        text = "\n---\n".join(json.dumps(m) for m in manifests) or "{}"
        if not manifests:
            return load_manifest_text("", "stand-in API")
        return load_manifest_text(text, "stand-in API")

    def _install(
        self,
        netns: str,
        local: list[str],
        ports: tuple[list[str], list[str]],
        icmp: tuple[list[str], list[str]],
    ) -> None:
        def elements(items: list[str]) -> str:
            return f"elements = {{ {', '.join(items)} }}" if items else ""

        # A local pod's packets enter (and leave) through the node's bridge, whatever its veth is called;
        # one not in `local` is not programmed yet, and with the fault on it can neither send nor receive.
        unprogrammed = bool(self.faults.new_pod_programming_delay_s)
        drop_unprogrammed = 'iifname "br0" drop' if unprogrammed else ""
        drop_to_unprogrammed = 'oifname "br0" drop' if unprogrammed else ""
        script = f"""table inet {TABLE}
delete table inet {TABLE}
table inet {TABLE} {{
  set local {{ type ipv4_addr; {elements(local)} }}
  set egress {{ type ipv4_addr . ipv4_addr . inet_proto . inet_service; {elements(ports[0])} }}
  set ingress {{ type ipv4_addr . ipv4_addr . inet_proto . inet_service; {elements(ports[1])} }}
  set egress_icmp {{ type ipv4_addr . ipv4_addr; {elements(icmp[0])} }}
  set ingress_icmp {{ type ipv4_addr . ipv4_addr; {elements(icmp[1])} }}
  chain egress_check {{
    ip saddr . ip daddr . meta l4proto . th dport @egress return
    meta l4proto icmp ip saddr . ip daddr @egress_icmp return
    drop
  }}
  chain ingress_check {{
    ip saddr . ip daddr . meta l4proto . th dport @ingress return
    meta l4proto icmp ip saddr . ip daddr @ingress_icmp return
    drop
  }}
  chain forward {{
    type filter hook forward priority 0; policy accept;
    ct state established,related accept
    ip saddr @local jump egress_check
    {drop_unprogrammed}
    ip daddr @local jump ingress_check
    {drop_to_unprogrammed}
  }}
}}
"""
        self.lab.nft(netns, script)
