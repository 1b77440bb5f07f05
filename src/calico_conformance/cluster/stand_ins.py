"""Stand-ins for destinations a cluster does not have: another DNS server, and the outside.

The layout names them as IP literals: `dns.otherServers` (DNS servers nobody may query) and
`canary.outside` (addresses outside the cluster). Those are documentation addresses that never answer,
which the static target needs (the oracle judges any address) but a live probe cannot use: silence from
an address where nothing listens proves no deny, so such flows could only come out `error`. Live targets
therefore deploy servers that do answer and send those flows to them instead:

* the **rogue DNS** pod: a probe pod in the run's control namespace that is a real resolver (the agent's
  `serve --dns-udp 53 --dns-tcp 53 --dns-answer ROGUE_DNS_ANSWER`) and also answers connect probes with
  its identity. Its labels (`app=rogue-dns`, role `rogue-dns`) and its namespace match no policy of the
  reference set, so only the clients' own egress rules can keep them from it. Flows to `otherServers`
  go to it on the same ports.
* the **outside echo** pods: the agent in the node's network namespace (hostNetwork), one per probe
  node, on the ports the layout's outside flows use. A node's address is outside the pod network and
  kind nodes have no host endpoint policy, so it stands for "anywhere outside" as policy sees it:
  `notSelector: all()` and `nets` rules match it, pod selectors never do. A flow to an `outside`
  address goes to the echo on another node than its source where there is one (the realistic path:
  leaving the node, SNATed by natOutgoing). hostNetwork pods may be refused by Pod Security on shared
  clusters, so on kubeconfig targets this is opt-in (`--outside-echo`); without it outside flows are
  NOT_SUPPORTED, with the reason. The echo is also the *client* of flows from `outside` into the
  cluster: from another node than the destination's (a host reaching a pod on its own node is always
  allowed, calico-semantics.md §1.1), and only for the layout's own outside addresses, which stand for
  "anywhere outside"; an address a policy names stands for itself, which a node's address cannot, so
  those flows are NOT_SUPPORTED, as are all of them without an echo or with one node only.
  The echo sends from its node's own address (its probes bind to it): unbound, traffic to a pod on
  another node would leave through `vxlan.calico` with the node's tunnel address, which Calico takes
  from the pod IP pool (felix dataplane/linux/vxlan_mgr.go), and a hole such as `notNets: [<pod CIDR>]`
  would then pass "the internet is no exception" falsely. Every answer must report that the server saw
  the node address (`probe.convergence.observe`, `expected_peer`), the echo's own source control proves
  its return path each round, and an echo whose address lies inside a pod network makes its flows
  NOT_SUPPORTED, with the reason: never a pass.

* the **upstream resolver** (kind only): the cluster DNS server's own upstream, as the node's
  /etc/resolv.conf names it. On kind that address is the Docker host (or the kind network's gateway),
  whose port 53 the node DNATs to Docker's embedded DNS at 127.0.0.11 on a port of Docker's choosing
  (kubernetes-sigs/kind v0.27.0 images/base/files/usr/local/bin/entrypoint:446-476), also for pod
  traffic. Calico's policy sees the packet after that DNAT, so the reference `platform.kube-dns` egress
  rule (`notSelector: all()`, ports 53) does not match CoreDNS's real upstream queries, while a probe
  to the outside echo on 53 passes it. So the DNS server's 53/UDP and 53/TCP flows to outside
  addresses are probed at the real upstream, with a DNS query (for the control-plane node's name, which
  Docker's embedded DNS resolves without the internet; any DNS response is an answer).

The runner's control source is the positive control for both (the control tier lets it reach every
pod, and nothing polices a node's input here), so a deny towards them is believed only when the
control source got an answer in the same round. `probed_flows` is pure and unit-tested.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any

from calico_conformance.cluster.commands import KubeAccess, kubectl_exec_probe, shell_line
from calico_conformance.cluster.probe_pods import ProbePod
from calico_conformance.probe.jobs import flow_job
from calico_conformance.probe.kube_executor import encode_batch, probe_command
from calico_conformance.probe.runner import ProbeEndpoint
from calico_conformance.reachability import Expectation, ExpectedMatrix, Flow
from calico_conformance.tenancy.layout import Service, TenancyLayout

ROGUE_DNS_WORKLOAD = "rogue-dns"
ROGUE_DNS_ROLE = "rogue-dns"
ROGUE_DNS_ANSWER = "192.0.2.1"  # TEST-NET-1: what every A query gets; nothing real is ever named by it
OUTSIDE_ECHO_WORKLOAD = "outside-echo"
OUTSIDE_ECHO_ROLE = "outside-echo"
STAND_IN_ROLES = (ROGUE_DNS_ROLE, OUTSIDE_ECHO_ROLE)
NO_OUTSIDE_ECHO = (
    "nothing outside the cluster answers probes: the outside stand-in (a hostNetwork agent pod) needs "
    "--outside-echo, which Pod Security may forbid on shared clusters"
)


@dataclass(frozen=True)
class StandIns:
    """The stand-ins of one cluster's deployment: where they run, and why one is missing."""

    endpoints: Mapping[str, ProbeEndpoint] = field(default_factory=dict)  # stand-in key -> endpoint
    rogue_dns: str | None = None  # key of the rogue DNS pod
    outside: tuple[str, ...] = ()  # keys of the outside echo pods, one per node
    no_outside_reason: str = NO_OUTSIDE_ECHO
    upstream_dns: str | None = None  # key of the cluster DNS server's upstream resolver in `endpoints`

    def to_state(self) -> dict[str, Any]:
        return {
            "endpoints": {
                key: [e.handle, e.ip, e.node, e.source_address, e.dns_name] for key, e in self.endpoints.items()
            },
            "rogue_dns": self.rogue_dns,
            "outside": list(self.outside),
            "no_outside_reason": self.no_outside_reason,
            "upstream_dns": self.upstream_dns,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> StandIns:
        endpoints = {key: ProbeEndpoint(*entry) for key, entry in state.get("endpoints", {}).items()}
        return cls(
            endpoints,
            state.get("rogue_dns"),
            tuple(state.get("outside", ())),
            state.get("no_outside_reason", NO_OUTSIDE_ECHO),
            state.get("upstream_dns"),
        )


def probe_canary(layout: TenancyLayout) -> tuple[Service, ...]:
    """What every probe pod serves beside its workload's ports: the canary ports, the DNS ports, and every
    port any layout workload declares, unnamed. A layout matrix probes every pod of two namespaces on a
    port (`test_royal_bank_isolation[...-tcp-8080]` sends to ledger on the sentinels' 8080): a pod without a
    listener there refuses the control's positive probe, and the deny could never be proven (the stand-in
    API server's finding 9). Unnamed, so no named-port rule selects a pod by another workload's port name.
    """
    declared = [Service(s.port, s.protocol) for workload in layout.all_workloads for s in workload.ports]
    return tuple(dict.fromkeys([*layout.canary_services, *layout.dns.services, *declared]))


def outside_services(layout: TenancyLayout) -> tuple[Service, ...]:
    """Every port a flow to an outside address may use: the canary ports and the outside exceptions'."""
    services = [*layout.canary_services]
    for exception in layout.exceptions:
        if exception.destination.outside:
            services += exception.services
    return tuple(dict.fromkeys(services))


def stand_in_pods(
    layout: TenancyLayout,
    namespace: str,
    nodes: Sequence[str],
    *,
    outside_echo: bool,
    pod_name_prefix: str = "",
) -> list[ProbePod]:
    """The rogue DNS pod (on the first node) and, with `outside_echo`, an outside echo on every node."""
    if not nodes:
        raise ValueError("no schedulable node to place the stand-ins on")
    pods = [
        ProbePod(
            workload=f"{namespace}/{ROGUE_DNS_WORKLOAD}",
            namespace=namespace,
            pod_name=f"{pod_name_prefix}{ROGUE_DNS_WORKLOAD}",
            labels={"app": ROGUE_DNS_WORKLOAD},
            services=tuple(layout.canary_services),
            node=nodes[0],
            role=ROGUE_DNS_ROLE,
            dns_services=tuple(layout.dns.services),
            dns_answer=ROGUE_DNS_ANSWER,
        )
    ]
    if outside_echo:
        for index, node in enumerate(nodes):
            name = f"{OUTSIDE_ECHO_WORKLOAD}-{index}"  # node names may be too long for a pod name
            pods.append(
                ProbePod(
                    workload=f"{namespace}/{name}",
                    namespace=namespace,
                    pod_name=f"{pod_name_prefix}{name}",
                    labels={"app": OUTSIDE_ECHO_WORKLOAD},
                    services=outside_services(layout),
                    node=node,
                    role=OUTSIDE_ECHO_ROLE,
                    host_network=True,
                )
            )
    return pods


def stand_ins_from(
    pods: Iterable[ProbePod], endpoints: Mapping[str, ProbeEndpoint], *, outside_echo: bool
) -> StandIns:
    """The StandIns of started `pods` (`endpoints`: what `start_probe_pods` returned for them)."""
    chosen = [pod for pod in pods if pod.role in STAND_IN_ROLES]
    rogue = next((pod.workload for pod in chosen if pod.role == ROGUE_DNS_ROLE), None)
    outside = tuple(pod.workload for pod in chosen if pod.role == OUTSIDE_ECHO_ROLE)
    found = {pod.workload: endpoints[pod.workload] for pod in chosen}
    for key in outside:  # a hostNetwork pod's IP is its node's address: send from it, never from the tunnel's
        found[key] = replace(found[key], source_address=found[key].ip)
    return StandIns(
        found,
        rogue,
        outside,
        "" if outside_echo else NO_OUTSIDE_ECHO,
    )


@dataclass(frozen=True)
class ProbedFlows:
    """How a matrix is probed with stand-ins: the matrix sent to the runner and where each flow went."""

    expected: ExpectedMatrix  # flows as probed (stand-in destinations), each with its flow's expectation
    probed_as: Mapping[Flow, Flow]  # original flow -> the flow probed for it
    unsupported: Mapping[Flow, str]  # original flow -> why it cannot be probed on this cluster
    conflicts: Mapping[Flow, str]  # original flow -> why its probe cannot stand for it


def probed_flows(
    expected: ExpectedMatrix,
    layout: TenancyLayout,
    stand_ins: StandIns,
    endpoints: Mapping[str, ProbeEndpoint],
    pod_networks: Sequence[IPv4Network | IPv6Network] = (),
) -> ProbedFlows:
    """Send flows to `otherServers` to the rogue DNS pod, flows to `outside` to an outside echo, and
    flows from `outside` from an outside echo on another node than their destination (NOT_SUPPORTED,
    with the reason, where no echo can: none deployed, only one on the destination's node, or a source
    address a policy names, or an echo whose address lies inside one of `pod_networks`).

    Other flows are probed as they are. Several flows may become one probe (two `otherServers` from the
    same source): they must then expect the same, or each is a conflict (an `error`, never a verdict).
    """
    dns_servers = {str(address) for address in layout.dns.other_servers}
    outside = {str(address) for address in layout.outside_addresses}
    named_by_policy = {str(address) for address in layout.policy_outside_addresses}
    probed_as: dict[Flow, Flow] = {}
    unsupported: dict[Flow, str] = {}
    for flow in expected:
        source, destination = flow.source, flow.destination
        if source in outside:
            sender = _outside_sender_for(flow, named_by_policy, stand_ins, endpoints, pod_networks)
            if sender.why:
                unsupported[flow] = sender.why
                continue
            source = sender.key
        if destination in dns_servers and stand_ins.rogue_dns is not None:
            destination = stand_ins.rogue_dns
        elif destination in outside and _to_the_upstream_resolver(flow, layout, stand_ins):
            assert stand_ins.upstream_dns is not None
            destination = stand_ins.upstream_dns
        elif destination in outside:
            if not stand_ins.outside:
                unsupported[flow] = stand_ins.no_outside_reason or NO_OUTSIDE_ECHO
                continue
            destination = _outside_echo_for(flow.source, stand_ins, endpoints)
        probed_as[flow] = Flow(source, destination, flow.port, flow.protocol)
    groups: dict[Flow, list[Flow]] = {}
    for flow, probe in probed_as.items():
        groups.setdefault(probe, []).append(flow)
    cells: dict[Flow, Expectation] = {}
    kept: dict[Flow, Flow] = {}
    conflicts: dict[Flow, str] = {}
    for probe, flows in groups.items():
        if len({expected[flow].allowed for flow in flows}) > 1:
            why = f"probed as {probe}, which stands for {', '.join(map(str, flows))}: they expect differently"
            conflicts.update(dict.fromkeys(flows, why))
        else:
            cells[probe] = expected[flows[0]]
            kept.update(dict.fromkeys(flows, probe))
    return ProbedFlows(ExpectedMatrix(cells), kept, unsupported, conflicts)


UPSTREAM_DNS = "kind/upstream-dns"  # the key of the upstream resolver stand-in


def upstream_resolver(address: str, cluster: str) -> ProbeEndpoint:
    """The upstream resolver of a kind cluster's DNS as a destination: queried for the control-plane node's
    name, which Docker's embedded DNS answers for the containers of its network."""
    return ProbeEndpoint("", address, None, None, dns_name=f"{cluster}-control-plane")


def _to_the_upstream_resolver(flow: Flow, layout: TenancyLayout, stand_ins: StandIns) -> bool:
    """Whether `flow` is the cluster DNS server's query to its upstream (see the module docstring)."""
    return (
        stand_ins.upstream_dns is not None
        and flow.source == layout.dns.server
        and flow.port == 53
        and flow.protocol.upper() in ("UDP", "TCP")
    )


def reproduce_command(
    flow: Flow,
    plan: ProbedFlows,
    endpoints: Mapping[str, ProbeEndpoint],
    *,
    access: KubeAccess,
    agent_path: str,
    timeout_s: float,
) -> str:
    """The shell command that reruns `flow`'s probe by hand: as it was really probed, from and to the
    stand-in that took an outside or other-DNS end (sending from the stand-in's bound address), with a
    comment naming that stand-in. A flow that was not probed gets a comment saying why instead."""
    if flow in plan.unsupported:
        return f"# {flow} was not probed: {plan.unsupported[flow]}"
    if flow not in plan.probed_as:
        return f"# {flow} was not probed: {plan.conflicts.get(flow, 'it is not part of the probed matrix')}"
    probe = plan.probed_as[flow]
    source = endpoints[probe.source]
    address = endpoints[probe.destination].ip if probe.destination in endpoints else probe.destination
    resolver = endpoints[probe.destination].dns_name if probe.destination in endpoints else None
    batch = encode_batch(
        [flow_job("reproduce", probe, address, timeout_s=timeout_s, bind=source.source_address, dns_name=resolver)]
    )
    namespace, pod = source.handle.split("/", 1)
    exec_argv = kubectl_exec_probe(access, namespace, pod, probe_command(len(batch), agent_path))
    command = f"printf %s {shell_line([batch])} | {shell_line(exec_argv)}"
    via = stand_in_detail(flow, probe, endpoints)
    return f"{command}  # {via}" if via else command


def stand_in_detail(flow: Flow, probe: Flow, endpoints: Mapping[str, ProbeEndpoint]) -> str:
    """How the observation of `flow` was made, for its report: which end a stand-in took, and its address."""
    parts = []
    if probe.source != flow.source:
        parts.append(f"sent from the stand-in {probe.source} ({endpoints[probe.source].ip})")
    if probe.destination != flow.destination and endpoints[probe.destination].dns_name is not None:
        parts.append(f"probed at the DNS server's upstream resolver {endpoints[probe.destination].ip}, as the node "
                     f"names it, with a query for {endpoints[probe.destination].dns_name}")  # fmt: skip
    elif probe.destination != flow.destination:
        parts.append(f"probed at the stand-in {probe.destination} ({endpoints[probe.destination].ip})")
    return "; ".join(parts)


@dataclass(frozen=True)
class _Sender:
    key: str = ""  # the outside echo that sends in the outside address's place
    why: str = ""  # or why none can


def _outside_sender_for(
    flow: Flow,
    named_by_policy: set[str],
    stand_ins: StandIns,
    endpoints: Mapping[str, ProbeEndpoint],
    pod_networks: Sequence[IPv4Network | IPv6Network] = (),
) -> _Sender:
    """The outside echo that may send `flow` from outside: one on another node than its destination.

    The echo sends from its node's address. That stands for "anywhere outside" (the layout's own
    addresses) but not for an address a policy names, which a rule matches as itself. A host reaching a
    pod on its own node is always allowed, whatever the policy (calico-semantics.md §1.1), so an echo on
    the destination's node would prove nothing.
    """
    if not stand_ins.outside:
        return _Sender(why=stand_ins.no_outside_reason or NO_OUTSIDE_ECHO)
    if flow.protocol.upper() == "ICMP":
        return _Sender(
            why=f"{flow.source}: an ICMP echo cannot be sent from a chosen address here, and the kernel that "
            "answers it cannot report which source it saw, so nothing proves it came from outside the pod "
            "network (unbound, it leaves through vxlan.calico with a pod-pool address)"
        )
    if flow.source in named_by_policy:
        return _Sender(
            why=f"{flow.source} is an address a policy names: the outside stand-in sends from its node's "
            "address, so no probe here can come from it"
        )
    there = endpoints[flow.destination].node if flow.destination in endpoints else None
    elsewhere = [key for key in stand_ins.outside if stand_ins.endpoints[key].node != there]
    if not elsewhere:
        return _Sender(
            why=f"no outside stand-in on another node than {flow.destination}'s ({there}): a host's traffic to "
            "a pod on its own node is always allowed, whatever the policy (calico-semantics.md §1.1)"
        )
    for key in elsewhere:
        address = stand_ins.endpoints[key].source_address or stand_ins.endpoints[key].ip
        if not any(ip_address(address) in network for network in pod_networks):
            return _Sender(key=key)
    inside = ", ".join(f"{key} ({stand_ins.endpoints[key].ip})" for key in elsewhere)
    pools = ", ".join(map(str, pod_networks))
    return _Sender(
        why=f"the outside stand-ins that could send it ({inside}) have addresses inside the pod network "
        f"({pools}): traffic from them is not traffic from outside"
    )


def _outside_echo_for(source: str, stand_ins: StandIns, endpoints: Mapping[str, ProbeEndpoint]) -> str:
    """The outside echo on another node than `source` (leaving the node), else the first one."""
    here = endpoints[source].node if source in endpoints else None
    elsewhere = [key for key in stand_ins.outside if stand_ins.endpoints[key].node != here]
    return (elsewhere or list(stand_ins.outside))[0]
