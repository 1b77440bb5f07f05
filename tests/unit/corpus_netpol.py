"""The upstream Kubernetes netpol e2e cases, turned into oracle scenarios and expected truth tables.

`tests/data/k8s-netpol-cases.yaml` transcribes the upstream suite (`test/e2e/network/netpol`): for each
reachability case the policies, the ordered `Expect*` ops that build each expected table, and the
exceptions those ops produce; plus the endPort API-validation case.
This module is the harness that replays a case the way upstream does, but against the oracle instead of a
cluster: it renders the `x`/`y`/`z` placeholders to real namespace names (as the e2e framework does),
fills in `{podIP(...)}`-style placeholders, walks the steps (create policy, relabel a namespace, delete
policies, validate) and, at each `validate`, yields the scenario data and the expected table.

Expectations come only from the case file: the ops are expanded with the semantics of upstream
`reachability.go` (the reference expander in `anchor-k8s-e2e-netpol.md`), and the expansion is itself
checked against the file's precomputed `exceptions`, so the harness cannot drift from the transcription.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.yamlsrc import load_file, location_of

CASES_FILE = Path(__file__).parents[1] / "data" / "k8s-netpol-cases.yaml"
SHARED_CASES_FILE = Path(__file__).parents[2].parent / "shared" / "reference" / "k8s-netpol-cases.yaml"

PLACEHOLDER_NAMESPACES = ("x", "y", "z")
POD_NAMES = ("a", "b", "c")
FULL_MODEL_PODS = tuple(f"{ns}/{pod}" for ns in PLACEHOLDER_NAMESPACES for pod in POD_NAMES)
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

# Upstream namespaces are `<f.BaseName>-<placeholder>-<random suffix>`; the base depends on the Describe
# block. A fixed suffix keeps test ids and failure tables stable from run to run.
SUITE_BASE_NAMES = {"tcp": "netpol", "udp": "udp-network-policy", "sctp": "sctp-network-policy"}
NAMESPACE_SUFFIX = "7x2kq"

# Every namespace upstream creates carries this label (f.NamespacePodSecurityLevel); no policy selects it,
# but a real namespace has it, so the scenario has it too.
UPSTREAM_NAMESPACE_LABELS = {"pod-security.kubernetes.io/enforce": "baseline"}

# The oracle has no propagation delay, so upstream's `sleep` step ("a hack to keep CI stable") is a no-op.
NO_OP_ACTIONS = frozenset({"sleep"})

Table = dict[tuple[str, str], bool]


def load_cases_document(path: Path = CASES_FILE) -> Mapping[str, Any]:
    """The cases file, read strictly (a duplicate key in the transcription is an error, not a loss)."""
    documents = load_file(path)
    if len(documents) != 1 or not isinstance(documents[0], Mapping):
        raise LocatedError(Location(str(path), 1), "expected exactly one mapping document")
    document: Mapping[str, Any] = documents[0]
    return document


def plain(value: Any) -> Any:
    """A copy made of plain dicts and lists (the strict reader's located containers do not serialise)."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def slug(text: str) -> str:
    """A case name as a `-k`-friendly test id: lower case, words joined by dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def case_id(case: Mapping[str, Any]) -> str:
    return f"{case['id']}-{slug(case['name'])}"


# --- expectations: the reference expander of reachability.go ---------------------------------------


def _peer_matches(peer: Mapping[str, str], pod: str) -> bool:
    """An upstream `Peer`: a missing (or empty) namespace or pod is a wildcard."""
    namespace, name = pod.split("/")
    return peer.get("namespace", namespace) in ("", namespace) and peer.get("pod", name) in ("", name)


def expand_ops(ops: Sequence[Mapping[str, Any]], pods: Sequence[str], default: bool = True) -> Table:
    """Apply `Expect*` ops in order to a table that starts at `default`; later ops overwrite cells."""
    table = {(source, destination): default for source in pods for destination in pods}

    def put(source: str, destination: str, connected: bool) -> None:
        # An op about a pod the topology lacks (minimal topologies) has no cell to set.
        if (source, destination) in table:
            table[(source, destination)] = connected

    for op in ops:
        connected = op["connected"]
        kind = op["op"]
        if kind == "ExpectPeer":
            for source, destination in table:
                if _peer_matches(op["from"], source) and _peer_matches(op["to"], destination):
                    table[(source, destination)] = connected
        elif kind == "ExpectAllIngress":
            for source in pods:
                put(source, op["pod"], connected)
        elif kind == "ExpectAllEgress":
            for destination in pods:
                put(op["pod"], destination, connected)
        elif kind == "Expect":
            put(op["from"], op["to"], connected)
        else:
            raise LocatedError(location_of(op), f"unknown expectation op {kind!r}")
    return table


def exception_keys(table: Table, default: bool = True) -> tuple[dict[str, bool], dict[str, bool]]:
    """The cells that differ from `default`, as the file lists them: (scored, loopback)."""
    scored: dict[str, bool] = {}
    loopback: dict[str, bool] = {}
    for (source, destination), connected in table.items():
        if connected != default:
            (loopback if source == destination else scored)[f"{source} -> {destination}"] = connected
    return scored, loopback


# --- rendering placeholders to a concrete cluster ---------------------------------------------------


def pod_ip(pod: str) -> ipaddress.IPv4Address:
    """x/a -> 10.244.1.10, y/c -> 10.244.2.12: one /24 per namespace, like a node's IPAM block."""
    namespace, name = pod.split("/")
    return ipaddress.IPv4Address(
        f"10.244.{PLACEHOLDER_NAMESPACES.index(namespace) + 1}.{10 + POD_NAMES.index(name)}"
    )


@dataclass(frozen=True)
class Topology:
    """The concrete cluster one case runs on: real namespace names and pod IPs for the placeholders."""

    namespaces: Mapping[str, str]  # placeholder -> real name
    pods: tuple[str, ...]  # placeholder pod keys, e.g. ("x/a", "x/b")
    ips: Mapping[str, ipaddress.IPv4Address]  # placeholder pod key -> IP

    @classmethod
    def for_case(cls, case: Mapping[str, Any], pods: Sequence[str]) -> Topology:
        suite = str(case["id"]).split("-")[0]
        base = SUITE_BASE_NAMES[suite]
        namespaces = {ns: f"{base}-{ns}-{NAMESPACE_SUFFIX}" for ns in PLACEHOLDER_NAMESPACES}
        # Every pod IP lies in 10.244.0.0/16, hence in the /4 `makeLargeCIDRForIP` builds around any one
        # of them, as upstream's except-clause case assumes.
        ips = {pod: pod_ip(pod) for pod in pods}
        return cls(namespaces, tuple(pods), ips)

    def real_pod(self, pod: str) -> str:
        namespace, name = pod.split("/")
        return f"{self.namespaces[namespace]}/{name}"

    def real_table(self, table: Table) -> Table:
        return {(self.real_pod(s), self.real_pod(d)): v for (s, d), v in table.items()}

    def placeholder_value(self, expression: str, where: Location | None) -> str:
        """`podIP(x/b)`, `hostMask`, `largeCIDR(<expression>)` as documented in the file's meta."""
        if expression == "hostMask":
            return "32"  # the model is single-stack IPv4
        call = re.fullmatch(r"(\w+)\((.*)\)", expression)
        if call is None:
            raise LocatedError(where, f"unknown placeholder {{{expression}}}")
        function, argument = call.groups()
        if function == "podIP":
            if argument not in self.ips:
                raise LocatedError(where, f"{{podIP({argument})}} names a pod this topology does not have")
            return str(self.ips[argument])
        if function == "largeCIDR":
            return str(ipaddress.ip_network(f"{self.placeholder_value(argument, where)}/4", strict=False))
        raise LocatedError(where, f"unknown placeholder function {function!r}")

    def render_text(self, text: str, where: Location | None) -> str:
        return re.sub(r"\{([^{}]+)\}", lambda m: self.placeholder_value(m.group(1), where), text)


def _render_namespace_selector(selector: dict[str, Any], topology: Topology) -> None:
    """Namespace placeholders appear as values of `kubernetes.io/metadata.name` in namespaceSelectors."""
    labels = selector.get("matchLabels") or {}
    if NAMESPACE_NAME_LABEL in labels:
        labels[NAMESPACE_NAME_LABEL] = topology.namespaces[labels[NAMESPACE_NAME_LABEL]]
    for expression in selector.get("matchExpressions") or []:
        if expression.get("key") == NAMESPACE_NAME_LABEL:
            expression["values"] = [topology.namespaces[v] for v in expression.get("values", [])]


def _render_tree(value: Any, topology: Topology, where: Location | None) -> Any:
    if isinstance(value, dict):
        rendered = {}
        for key, item in value.items():
            item_where = location_of(value, key) or where
            rendered[key] = _render_tree(item, topology, item_where)
            if key == "namespaceSelector" and isinstance(rendered[key], dict):
                _render_namespace_selector(rendered[key], topology)
        return rendered
    if isinstance(value, list):
        return [_render_tree(item, topology, location_of(value) or where) for item in value]
    if isinstance(value, str):
        return topology.render_text(value, where)
    return value


def _leftover_placeholders(value: Any, path: str = "") -> Iterator[str]:
    """Paths where a bare namespace placeholder survived rendering: a case the renderer does not know."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leftover_placeholders(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leftover_placeholders(item, f"{path}[{index}]")
    elif isinstance(value, str) and (value in PLACEHOLDER_NAMESPACES or "{" in value):
        yield f"{path} = {value!r}"


def render_policy(policy: Mapping[str, Any], topology: Topology) -> dict[str, Any]:
    """The policy with real namespace names and addresses, refusing any placeholder it cannot place."""
    where = location_of(policy)
    rendered: dict[str, Any] = _render_tree(copy.deepcopy(dict(policy)), topology, where)
    metadata = rendered["metadata"]
    metadata["namespace"] = topology.namespaces[metadata["namespace"]]
    leftovers = list(_leftover_placeholders(rendered))
    if leftovers:
        raise LocatedError(where, "placeholders the harness cannot render: " + "; ".join(leftovers))
    return rendered


# --- walking the steps ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Validation:
    """One `validate` step: the cluster as it is at that point, and what upstream expects of it."""

    step: int
    port: int
    protocol: str
    scenario: dict[str, Any]  # scenario-file data (ARCHITECTURE.md format), real names
    expected: Table  # real pod keys, loopback pairs left out
    where: Location | None

    @property
    def label(self) -> str:
        return f"step {self.step}: {self.port}/{self.protocol}"


def container_ports(case: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One container port per (port, protocol) the case serves, named as upstream names them."""
    return [
        {"name": f"serve-{port}-{protocol.lower()}", "containerPort": port, "protocol": protocol}
        for port in case["model_ports"]
        for protocol in case["model_protocols"]
    ]


def validations(case: Mapping[str, Any], *, minimal_topology: bool = False) -> Iterator[Validation]:
    """Replay a case's steps and yield every validation with its scenario and expected table."""
    pods = tuple(case["topology_minimal"]) if minimal_topology else FULL_MODEL_PODS
    topology = Topology.for_case(case, pods)
    namespace_labels: dict[str, dict[str, str]] = {
        ns: dict(UPSTREAM_NAMESPACE_LABELS) for ns in PLACEHOLDER_NAMESPACES
    }
    policies: dict[tuple[str, str], dict[str, Any]] = {}
    for index, step in enumerate(case["steps"]):
        action = step["action"]
        where = location_of(step)
        if action in ("create_policy", "update_policy"):
            policy = render_policy(step["policy"], topology)
            key = (policy["metadata"]["namespace"], policy["metadata"]["name"])
            if (key in policies) != (action == "update_policy"):
                raise LocatedError(
                    where,
                    f"{action} of {key[0]}/{key[1]}, which does{'' if key in policies else ' not'} exist",
                )
            policies[key] = policy
        elif action == "delete_all_policies":
            doomed = {topology.namespaces[ns] for ns in step["namespaces"]}
            policies = {key: policy for key, policy in policies.items() if key[0] not in doomed}
        elif action == "add_namespace_label":
            namespace_labels[step["namespace"]].update(step["labels"])
        elif action == "delete_namespace_label":
            namespace_labels[step["namespace"]].pop(step["key"], None)
        elif action == "validate":
            reachability = step["reachability"]
            ops_key = (
                "ops_minimal_topology"
                if minimal_topology and "ops_minimal_topology" in reachability
                else "ops"
            )
            table = expand_ops(reachability[ops_key], pods, reachability["default"])
            scored = {pair: allowed for pair, allowed in table.items() if pair[0] != pair[1]}
            yield Validation(
                step=index,
                port=step["port"],
                protocol=step["protocol"],
                scenario=scenario_data(case, topology, namespace_labels, list(policies.values())),
                expected=topology.real_table(scored),
                where=where,
            )
        elif action not in NO_OP_ACTIONS:
            raise LocatedError(where, f"unknown step action {action!r}")


def scenario_data(
    case: Mapping[str, Any],
    topology: Topology,
    namespace_labels: Mapping[str, Mapping[str, str]],
    policies: list[dict[str, Any]],
) -> dict[str, Any]:
    """The scenario file a user would write for this cluster state (namespace name labels are added by the
    scenario loader, as the API server adds them)."""
    ports = container_ports(case)
    return {
        "namespaces": [
            {"name": topology.namespaces[ns], "labels": dict(namespace_labels[ns])}
            for ns in PLACEHOLDER_NAMESPACES
        ],
        "pods": [
            {
                "name": pod.split("/")[1],
                "namespace": topology.namespaces[pod.split("/")[0]],
                "labels": {"pod": pod.split("/")[1]},
                "ip": str(topology.ips[pod]),
                "ports": copy.deepcopy(ports),
            }
            for pod in topology.pods
        ],
        "resources": copy.deepcopy(policies),
    }
