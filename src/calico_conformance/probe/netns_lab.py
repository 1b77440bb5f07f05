"""A Kubernetes-shaped dataplane built from network namespaces, for the netns tests and the benchmark.

Why: the probe engine has to be proven against real packets, real refusals and a real encapsulation, and
this machine has no cluster. The lab is the smallest topology with the properties that matter:

    <prefix>-node1                                   <prefix>-node2
      br0 10.244.1.1/24 (pod gateway)                  br0 10.244.2.1/24
      vxlan0 10.244.254.1  VNI 4096, MTU 1450  <===>   vxlan0 10.244.254.2
      ul0 10.244.250.1/30 ---- veth, MTU 1500 ----     ul0 10.244.250.2/30
    pods: <prefix>-<namespace>-<name>, eth0 = a veth whose peer is a port of its node's br0,
          10.244.<node>.<10+i>/32, route 10.244.0.0/16 via the gateway (onlink), no default route
          (with an underlay outside 10.244.0.0/16, `plan_lab(underlay_net=)`: a route to it too).

Like Calico, every pod-to-pod packet is routed by its node (pods hold a /32 and reach even same-node
peers through the gateway), so policy rules in a node's `inet` forward hook see all of it without
br_netfilter. The VXLAN device sits on a 1500-byte underlay, so the kernel gives it 1450 (50 bytes of
overhead, as Calico's VXLAN): a pod whose MTU is 1500 meets a real boundary on the way to the other node.

Every name carries a per-lab prefix (`ccl-<6 hex>`), so parallel runs never collide, and `netns_lab()`
tears everything down (processes, namespaces, /etc/netns files) even when the body fails.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from calico_conformance.probe.netns_executor import AgentServer, start_process, wait_for_listening
from calico_conformance.probe.runner import ProbeEndpoint

UNDERLAY_MTU = 1500
VXLAN_OVERHEAD = 50  # outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14, as Calico's VXLAN
VXLAN_MTU = UNDERLAY_MTU - VXLAN_OVERHEAD
VXLAN_VNI = 4096  # Calico's default VXLAN VNI
VXLAN_PORT = 4789
NODES = ("node1", "node2")
POD_NETWORK = "10.244.0.0/16"
NETNS_ETC = Path("/etc/netns")  # `ip netns exec` bind-mounts /etc/netns/<name>/* over /etc/*

# The lab must classify every refusal: Linux rate-limits ICMP errors per peer (a burst of 6, then 1/s),
# and a rate-limited port-unreachable is indistinguishable from a drop. Real clusters keep the limit;
# the agent's docstring says so.
ICMP_UNLIMITED = (
    "net.ipv4.icmp_ratelimit=0",
    "net.ipv4.icmp_msgs_per_sec=100000",
    "net.ipv4.icmp_msgs_burst=100000",
)
NODE_SYSCTLS = (
    "net.ipv4.ip_forward=1",
    # Same-node traffic enters and leaves br0: a redirect would teach the pod to bypass the node (and policy).
    "net.ipv4.conf.all.send_redirects=0",
    "net.ipv4.conf.default.send_redirects=0",
    *ICMP_UNLIMITED,
)
POD_SYSCTLS = (
    "net.ipv4.conf.all.accept_redirects=0",
    "net.ipv4.conf.default.accept_redirects=0",
    "net.ipv4.tcp_mtu_probing=0",  # the Linux default, pinned: a PMTU black hole must stall TCP here
    *ICMP_UNLIMITED,
)


class LabError(RuntimeError):
    """A lab command failed; the message holds the command and its stderr."""


@dataclass(frozen=True)
class PodSpec:
    """A pod to create: `mtu` defaults to what Calico gives pods on VXLAN."""

    namespace: str
    name: str
    node: str
    mtu: int = VXLAN_MTU

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class LabPod:
    spec: PodSpec
    netns: str
    ip: str

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def node(self) -> str:
        return self.spec.node

    @property
    def identity(self) -> dict[str, str]:
        return {"pod": self.spec.name, "namespace": self.spec.namespace, "node": self.spec.node}


@dataclass(frozen=True)
class LabNode:
    name: str
    netns: str
    index: int  # 1-based: the third octet of its pod /24
    underlay_net: str = "10.244.250"  # the first three octets of the nodes' underlay /30

    @property
    def gateway(self) -> str:
        return f"10.244.{self.index}.1"

    @property
    def vxlan_ip(self) -> str:
        return f"10.244.254.{self.index}"

    @property
    def underlay_ip(self) -> str:
        return f"{self.underlay_net}.{self.index}"


def run(argv: Sequence[str], stdin: str | None = None) -> str:
    completed = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise LabError(f"{' '.join(argv)}: exit {completed.returncode}: {completed.stderr.strip()}")
    return completed.stdout


def missing_requirements() -> str | None:
    """Why the lab cannot be built here, or None when it can."""
    if os.geteuid() != 0:
        return "the netns lab needs root (network namespaces, veth, VXLAN, nftables)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"the netns lab needs `{tool}` (Debian: apt-get install {'iproute2' if tool == 'ip' else 'nftables'})"
    return None


def sctp_unsupported_reason() -> str | None:
    """Why SCTP probes cannot run on this kernel, or None when they can."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132).close()
    except OSError as exc:
        return f"this kernel has no SCTP ({exc.strerror}); load the sctp module to run SCTP probes"
    return None


@dataclass
class NetnsLab:
    """A built lab: its nodes and pods by key, plus the servers and files it must clean up."""

    prefix: str
    nodes: dict[str, LabNode]
    pods: dict[str, LabPod]
    servers: list[AgentServer] = field(default_factory=list)
    processes: list[subprocess.Popen[str]] = field(default_factory=list)
    etc_dirs: list[Path] = field(default_factory=list)

    def endpoints(self) -> dict[str, ProbeEndpoint]:
        """Workload key -> where the runner sends a pod's batch (its netns) and its probes (its IP)."""
        return {key: ProbeEndpoint(pod.netns, pod.ip, pod.node) for key, pod in self.pods.items()}

    # --- workloads ---------------------------------------------------------------------------------------

    def serve(
        self,
        key: str,
        *,
        tcp: Sequence[int] = (),
        udp: Sequence[int] = (),
        sctp: Sequence[int] = (),
        identity: Mapping[str, str] | None = None,
        python: str = sys.executable,
    ) -> AgentServer:
        """Start `agent.py serve` in the pod (as itself, unless `identity` impersonates another)."""
        pod = self.pods[key]
        server = AgentServer.start(
            pod.netns, identity or pod.identity, tcp=tcp, udp=udp, sctp=sctp, python=python
        )
        self.servers.append(server)
        return server

    def start_dnsmasq(self, key: str, *, domain: str, records: Mapping[str, str]) -> subprocess.Popen[str]:
        """dnsmasq on the pod's IP, port 53 UDP and TCP: `records` answer, other names in `domain` are
        NXDOMAIN, and nothing is forwarded anywhere."""
        pod = self.pods[key]
        argv = [
            "ip", "netns", "exec", pod.netns, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
            "--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces", f"--listen-address={pod.ip}",
            "--port=53", "--pid-file=", "--user=root", "--log-facility=-", f"--local=/{domain}/",
        ]  # fmt: skip
        argv += [f"--host-record={name},{ip}" for name, ip in sorted(records.items())]
        process = start_process(argv)
        self.processes.append(process)
        wait_for_listening(pod.netns, 53, ("udp", "tcp"), process)
        return process

    def use_resolver(self, key: str, resolver_ip: str) -> None:
        """Give the pod an /etc/resolv.conf naming `resolver_ip` (what the kubelet does for a pod)."""
        directory = NETNS_ETC / self.pods[key].netns
        directory.mkdir(parents=True, exist_ok=True)
        self.etc_dirs.append(directory)
        (directory / "resolv.conf").write_text(f"nameserver {resolver_ip}\noptions ndots:5\n")

    # --- the dataplane -----------------------------------------------------------------------------------

    def nft(self, netns: str, script: str) -> None:
        run(["ip", "netns", "exec", netns, "nft", "-f", "-"], stdin=script)

    def apply_policy(self, table: str, rules: Sequence[str]) -> None:
        """Install `rules` in a forward chain of table `inet <table>` on every node, replacing any earlier
        version of that table: the lab's stand-in for Calico's per-node policy programming."""
        self.remove_policy(table)
        body = "\n    ".join(rules)
        script = (
            f"table inet {table} {{\n  chain forward {{\n    type filter hook forward priority 0; policy accept;\n"
            f"    {body}\n  }}\n}}\n"
        )
        for node in self.nodes.values():
            self.nft(node.netns, script)

    def remove_policy(self, table: str) -> None:
        for node in self.nodes.values():
            self.nft(node.netns, f"table inet {table}\ndelete table inet {table}\n")

    def suppress_fragmentation_needed(self, node: str) -> None:
        """Make the node drop the ICMP "fragmentation needed" it sends: a path-MTU black hole."""
        self.nft(
            self.nodes[node].netns,
            "table inet cc_pmtu_black_hole {\n  chain output {\n    type filter hook output priority 0;\n"
            "    icmp type destination-unreachable icmp code frag-needed drop\n  }\n}\n",
        )

    def restore_fragmentation_needed(self, node: str) -> None:
        table = "cc_pmtu_black_hole"
        self.nft(self.nodes[node].netns, f"table inet {table}\ndelete table inet {table}\n")

    def forget_path_mtu(self, key: str) -> None:
        """Flush the pod's route cache, so a path MTU learned by an earlier test does not linger."""
        run(["ip", "-n", self.pods[key].netns, "route", "flush", "cache"])

    def set_link(self, key: str, up: bool) -> None:
        """Bring the pod's eth0 up or down (down: the pod is gone from the network)."""
        pod = self.pods[key]
        run(["ip", "-n", pod.netns, "link", "set", "eth0", "up" if up else "down"])
        if up:
            for network in self._pod_routes(self.nodes[pod.node]):
                run(["ip", "-n", pod.netns, "route", "replace", network, "via", self.nodes[pod.node].gateway,
                     "dev", "eth0", "onlink"])  # fmt: skip

    # --- lifecycle ---------------------------------------------------------------------------------------

    def build(self) -> None:
        for netns in [node.netns for node in self.nodes.values()] + [pod.netns for pod in self.pods.values()]:
            run(["ip", "netns", "add", netns])
        node1, node2 = (self.nodes[name] for name in NODES)
        run(
            [
                "ip",
                "-n",
                node1.netns,
                "link",
                "add",
                "ul0",
                "type",
                "veth",
                "peer",
                "name",
                "ul0",
                "netns",
                node2.netns,
            ]
        )
        for node in self.nodes.values():
            self._build_node(node, peer=node2 if node is node1 else node1)
        for number, pod in enumerate(self.pods.values()):
            self._build_pod(pod, self.nodes[pod.node], port=f"vp{number}")

    def _build_node(self, node: LabNode, peer: LabNode) -> None:
        ns = ["ip", "-n", node.netns]
        run(["ip", "netns", "exec", node.netns, "sysctl", "-qw", *NODE_SYSCTLS])
        run([*ns, "link", "set", "lo", "up"])
        run([*ns, "addr", "add", f"{node.underlay_ip}/30", "dev", "ul0"])
        run([*ns, "link", "set", "ul0", "mtu", str(UNDERLAY_MTU), "up"])
        run([*ns, "link", "add", "br0", "type", "bridge"])
        run([*ns, "addr", "add", f"{node.gateway}/24", "dev", "br0"])
        run([*ns, "link", "set", "br0", "up"])
        # `dev ul0` makes the kernel derive the VXLAN MTU from the underlay: 1500 - 50.
        run([*ns, "link", "add", "vxlan0", "type", "vxlan", "id", str(VXLAN_VNI), "local", node.underlay_ip,
             "dev", "ul0", "dstport", str(VXLAN_PORT), "nolearning"])  # fmt: skip
        run([*ns, "addr", "add", f"{node.vxlan_ip}/24", "dev", "vxlan0"])
        run([*ns, "link", "set", "vxlan0", "up"])
        run(["ip", "netns", "exec", node.netns, "bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan0",
             "dst", peer.underlay_ip])  # fmt: skip
        run(
            [
                *ns,
                "route",
                "add",
                f"10.244.{peer.index}.0/24",
                "via",
                peer.vxlan_ip,
                "dev",
                "vxlan0",
                "onlink",
            ]
        )

    def _build_pod(self, pod: LabPod, node: LabNode, port: str) -> None:
        mtu = str(pod.spec.mtu)
        run(["ip", "netns", "exec", pod.netns, "sysctl", "-qw", *POD_SYSCTLS])
        run(
            [
                "ip",
                "-n",
                node.netns,
                "link",
                "add",
                port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                pod.netns,
            ]
        )
        run(["ip", "-n", node.netns, "link", "set", port, "mtu", mtu, "master", "br0", "up"])
        run(["ip", "-n", pod.netns, "link", "set", "lo", "up"])
        run(["ip", "-n", pod.netns, "link", "set", "eth0", "mtu", mtu, "up"])
        run(["ip", "-n", pod.netns, "addr", "add", f"{pod.ip}/32", "dev", "eth0"])
        for network in self._pod_routes(node):
            run(
                ["ip", "-n", pod.netns, "route", "add", network, "via", node.gateway, "dev", "eth0", "onlink"]
            )

    def _pod_routes(self, node: LabNode) -> list[str]:
        """What a pod routes through its gateway: the pod network, and the nodes' underlay when it lies
        outside it (a lab planned with another `underlay_net`), as a Calico pod reaches node addresses."""
        underlay = ipaddress.ip_network(f"{node.underlay_ip}/30", strict=False)
        inside = underlay.subnet_of(ipaddress.ip_network(POD_NETWORK))  # type: ignore[arg-type]
        return [POD_NETWORK] if inside else [POD_NETWORK, str(underlay)]

    def teardown(self) -> None:
        """Stop every process, delete every namespace and /etc/netns entry; report what could not go."""
        problems: list[str] = []
        for server in self.servers:
            server.stop()
        for process in self.processes:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for directory in self.etc_dirs:
            shutil.rmtree(directory, ignore_errors=True)
        existing = set(run(["ip", "netns", "list"]).split())
        for netns in [pod.netns for pod in self.pods.values()] + [node.netns for node in self.nodes.values()]:
            if netns in existing:
                try:
                    run(["ip", "netns", "delete", netns])
                except LabError as exc:
                    problems.append(str(exc))
        if problems:
            raise LabError("lab teardown left things behind:\n" + "\n".join(problems))


def plan_lab(
    pods: Sequence[PodSpec], prefix: str | None = None, *, underlay_net: str = "10.244.250"
) -> NetnsLab:
    """Names and addresses for `pods`, nothing created yet (`underlay_net`: see LabNode)."""
    prefix = prefix or f"ccl-{secrets.token_hex(3)}"
    nodes = {
        name: LabNode(name, f"{prefix}-{name}", index, underlay_net)
        for index, name in enumerate(NODES, start=1)
    }
    planned: dict[str, LabPod] = {}
    per_node = dict.fromkeys(NODES, 0)
    for spec in pods:
        if spec.node not in nodes:
            raise ValueError(f"pod {spec.key}: node must be one of {', '.join(NODES)}, got {spec.node!r}")
        if spec.key in planned:
            raise ValueError(f"pod {spec.key} is listed twice")
        host = 10 + per_node[spec.node]
        per_node[spec.node] += 1
        planned[spec.key] = LabPod(
            spec, f"{prefix}-{spec.namespace}-{spec.name}", f"10.244.{nodes[spec.node].index}.{host}"
        )
    return NetnsLab(prefix, nodes, planned)


@contextmanager
def netns_lab(pods: Sequence[PodSpec], prefix: str | None = None) -> Iterator[NetnsLab]:
    """Build the lab for `pods`, yield it, and tear it down however the body ends."""
    lab = plan_lab(pods, prefix)
    try:
        lab.build()
        yield lab
    finally:
        lab.teardown()
