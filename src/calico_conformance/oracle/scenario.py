"""Scenario files (the input of `simulate` and of the oracle's case corpora) into a `Scenario`.

A scenario is a small cluster on paper: namespaces, pods with labels, IPs and container ports, the
policy manifests in force, and the probes to judge. The format is the one in ARCHITECTURE.md
("Scenario file"). Loading is as strict as manifest loading, for the same reason: a scenario that says
something other than its author meant gives a confident, wrong answer. So duplicate pods, pods in
undeclared namespaces, clashing IPs and probes to nowhere are errors naming `file:line`.

Inline `resources:` go through the manifest loader with their line numbers in the scenario file; an
entry `{file: path}` loads a manifest file or directory relative to the scenario file.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.loader import ManifestReader
from calico_conformance.oracle.loader_document import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    parse_calico_version,
    read_labels,
    version_text,
)
from calico_conformance.oracle.loader_k8s import NAMESPACE_NAME_LABEL
from calico_conformance.oracle.model import (
    DEFAULT_CALICO_VERSION,
    ContainerPort,
    IPAddress,
    Labels,
    Namespace,
    Pod,
    ProbeSpec,
    ResourceSet,
    Scenario,
)
from calico_conformance.oracle.yamlsrc import Node, load_file

# Where pods without an `ip` get one: the pod CIDR of the finland cluster (ARCHITECTURE.md).
POD_ADDRESS_POOL = ipaddress.ip_network("10.244.0.0/16")
PROBE_PROTOCOLS = ("TCP", "UDP", "SCTP", "ICMP")
CONTAINER_PORT_PROTOCOLS = ("TCP", "UDP", "SCTP")
DEFAULT_SERVICE_ACCOUNT = "default"
_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")  # IANA_SVC_NAME, as for container ports

SCENARIO_FIELDS = frozenset({"calicoVersion", "description", "namespaces", "pods", "resources", "probes"})
NAMESPACE_FIELDS = frozenset({"name", "labels"})
POD_FIELDS = frozenset({"name", "namespace", "labels", "ip", "serviceAccount", "node", "ports"})
CONTAINER_PORT_FIELDS = frozenset({"name", "containerPort", "protocol"})
PROBE_FIELDS = frozenset({"from", "to", "port", "protocol"})


def load_scenario(path: str | Path, *, expand_default_probes: bool = True) -> Scenario:
    """Read and validate a scenario file; any bad input raises LocatedError (`file:line: why`).

    A file without `probes` means every ordered pair of distinct pods x each destination container port;
    with `expand_default_probes=False` those are not listed (`Scenario.default_probes` says so) and the
    caller enumerates them itself, as `simulate` does for thousands of pods."""
    documents = load_file(path)
    if len(documents) != 1:
        raise LocatedError(
            Location(str(path)), f"a scenario file holds one YAML document, not {len(documents)}"
        )
    return scenario_from_data(
        documents[0], str(path), base_directory=Path(path).parent, expand_default_probes=expand_default_probes
    )


def scenario_from_data(
    data: Any, source: str, *, base_directory: Path | None = None, expand_default_probes: bool = True
) -> Scenario:
    """A scenario from already-parsed data (a `yamlsrc` document keeps its line numbers; a plain dict
    works too, with errors naming only `source`). `{file: ...}` resources resolve against
    `base_directory` (default: the current directory)."""
    root = Node.root(data, source).fields(SCENARIO_FIELDS, what="a scenario")
    version_node = root.get("calicoVersion")
    version = DEFAULT_CALICO_VERSION
    if version_node is not None:
        version = version_text(parse_calico_version(version_node.value, version_node.location))
    description = root.get("description")
    if description is not None:
        description.string()

    resources = _resources(root.get("resources"), version, base_directory or Path())
    namespaces = _namespaces(root.get("namespaces"), resources)
    pods = _pods(root.get("pods"), namespaces, root)
    probes_node = root.get("probes")
    if probes_node is not None:
        probes = _probes(probes_node, pods)
    else:
        probes = _default_probes(pods) if expand_default_probes else ()
    return Scenario(
        calico_version=version,
        namespaces=tuple(namespaces.values()),
        pods=pods,
        resources=resources,
        probes=probes,
        service_accounts=resources.service_accounts,
        source=source,
        default_probes=probes_node is None,
    )


def _resources(node: Node | None, version: str, base_directory: Path) -> ResourceSet:
    reader = ManifestReader(version)
    for item in node.items("resources") if node is not None else []:
        if isinstance(item.value, dict) and set(item.value) == {"file"}:
            file_node = item.require("file")
            target = base_directory / file_node.string()
            if not target.exists():
                raise file_node.error(f"no such file or directory: {target}")
            reader.add_paths([target])
        else:
            reader.add_document(item.value, item.location.file, item.path)
    return reader.resource_set()


def _namespaces(node: Node | None, resources: ResourceSet) -> dict[str, Namespace]:
    """Declared namespaces plus v1 Namespace manifests; each gets `kubernetes.io/metadata.name`."""
    namespaces: dict[str, Namespace] = {}
    for item in node.items("namespaces") if node is not None else []:
        item.fields(NAMESPACE_FIELDS, what="a namespace")
        name_node = item.require("name")
        name = name_node.string()
        if len(name) > 63 or not DNS_LABEL.match(name):
            raise name_node.error(f"invalid namespace name {name!r}: must be a DNS label")
        if name in namespaces:
            raise name_node.error(
                f"namespace {name!r} is declared twice (first at {namespaces[name].location})"
            )
        labels = {**read_labels(item.get("labels")).as_dict(), NAMESPACE_NAME_LABEL: name}
        namespaces[name] = Namespace(name, Labels.of(labels), location=item.location)
    for namespace in resources.namespaces:
        if namespace.name in namespaces:
            first = namespaces[namespace.name].location
            raise LocatedError(
                namespace.location, f"namespace {namespace.name!r} is declared twice (first at {first})"
            )
        namespaces[namespace.name] = namespace
    return namespaces


def _pods(node: Node | None, namespaces: Mapping[str, Namespace], root: Node) -> tuple[Pod, ...]:
    items = node.items("pods") if node is not None else []
    declared: list[tuple[Node, IPAddress | None]] = []
    addresses: dict[IPAddress, Node] = {}
    for item in items:
        item.fields(POD_FIELDS, what="a pod")
        ip_node = item.get("ip")
        address = None
        if ip_node is not None:
            address = _address(ip_node)
            if address in addresses:
                raise ip_node.error(
                    f"IP {address} is already used by the pod at {addresses[address].location}"
                )
            addresses[address] = item
        declared.append((item, address))
    free = (host for host in POD_ADDRESS_POOL.hosts() if host not in addresses)
    pods: dict[str, Pod] = {}
    for item, address in declared:
        pod = _pod(item, address if address is not None else _next_free(free, root), namespaces)
        if pod.key in pods:
            raise item.error(f"pod {pod.key} is declared twice (first at {pods[pod.key].location})")
        pods[pod.key] = pod
    return tuple(pods.values())


def _next_free(free: Any, root: Node) -> IPAddress:
    address: IPAddress | None = next(free, None)
    if address is None:
        raise root.error(f"more pods without an ip than addresses in {POD_ADDRESS_POOL}")
    return address


def _address(node: Node) -> IPAddress:
    text = node.string()
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise node.error(f"invalid IP address {text!r}") from None


def _pod(item: Node, address: IPAddress, namespaces: Mapping[str, Namespace]) -> Pod:
    name_node, namespace_node = item.require("name"), item.require("namespace")
    name, namespace = name_node.string(), namespace_node.string()
    if len(name) > 253 or not DNS_SUBDOMAIN.match(name):
        raise name_node.error(f"invalid pod name {name!r}: must be a DNS subdomain")
    if namespace not in namespaces:
        declared = ", ".join(sorted(namespaces)) or "none"
        raise namespace_node.error(f"namespace {namespace!r} is not declared (declared: {declared})")
    account_node, node_node = item.get("serviceAccount"), item.get("node")
    account = account_node.string() if account_node is not None else DEFAULT_SERVICE_ACCOUNT
    if account_node is not None and not DNS_SUBDOMAIN.match(account):
        raise account_node.error(f"invalid service account name {account!r}: must be a DNS subdomain")
    ports_node = item.get("ports")
    return Pod(
        name=name,
        namespace=namespace,
        ip=address,
        labels=read_labels(item.get("labels")),
        service_account=account,
        node=node_node.string() if node_node is not None else None,
        ports=_container_ports(ports_node) if ports_node is not None else (),
        location=item.location,
    )


def _container_ports(node: Node) -> tuple[ContainerPort, ...]:
    ports: list[ContainerPort] = []
    names: set[str] = set()
    for item in node.items("ports"):
        item.fields(CONTAINER_PORT_FIELDS, what="a container port")
        number_node = item.require("containerPort")
        number = number_node.integer()
        if not 1 <= number <= 65535:
            raise number_node.error(f"port {number} is out of range: must be between 1 and 65535")
        protocol_node = item.get("protocol")
        protocol = protocol_node.string() if protocol_node is not None else "TCP"
        if protocol not in CONTAINER_PORT_PROTOCOLS:
            raise (protocol_node or item).error(
                f"unsupported protocol {protocol!r}; a container port takes {', '.join(CONTAINER_PORT_PROTOCOLS)}"
            )
        name_node = item.get("name")
        name = name_node.string() if name_node is not None else None
        if name_node is not None and name is not None:
            if len(name) > 15 or not _PORT_NAME.match(name) or "--" in name or not re.search("[a-z]", name):
                raise name_node.error(
                    f"invalid port name {name!r}: at most 15 lowercase alphanumeric characters or '-', "
                    "with at least one letter"
                )
            if name in names:
                raise name_node.error(f"port name {name!r} is used twice in this pod")
            names.add(name)
        ports.append(ContainerPort(number, protocol, name))
    return tuple(ports)


def _probes(node: Node, pods: tuple[Pod, ...]) -> tuple[ProbeSpec, ...]:
    keys = {pod.key for pod in pods}
    probes: list[ProbeSpec] = []
    for item in node.items("probes"):
        item.fields(PROBE_FIELDS, what="a probe")
        source = _endpoint(item.require("from"), keys)
        destination = _endpoint(item.require("to"), keys)
        if source not in keys and destination not in keys:
            raise item.error("a probe needs a pod on at least one end (both ends are outside the cluster)")
        protocol_node = item.require("protocol")
        protocol = protocol_node.string()
        if protocol not in PROBE_PROTOCOLS:
            raise protocol_node.error(
                f"unsupported protocol {protocol!r}; expected {', '.join(PROBE_PROTOCOLS)}"
            )
        port_node = item.get("port")
        port = None
        if protocol == "ICMP":
            if port_node is not None:
                raise port_node.error("an ICMP probe has no port")
        else:
            if port_node is None:
                raise item.error(f"a {protocol} probe needs a port")
            port = port_node.integer()
            if not 1 <= port <= 65535:
                raise port_node.error(f"port {port} is out of range: must be between 1 and 65535")
        probes.append(ProbeSpec(source, destination, port, protocol, location=item.location))
    return tuple(probes)


def _endpoint(node: Node, pod_keys: set[str]) -> str:
    """`namespace/pod` of a declared pod, or an IP literal (normalised) outside the cluster."""
    text = node.string()
    if text in pod_keys:
        return text
    if "/" in text:
        raise node.error(f"no pod {text!r} in this scenario")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise node.error(f"{text!r} is neither a pod (namespace/name) nor an IP address") from None


def _default_probes(pods: tuple[Pod, ...]) -> tuple[ProbeSpec, ...]:
    """Every ordered pair of distinct pods x every container port (and its protocol) of the destination."""
    return tuple(
        ProbeSpec(source.key, destination.key, port.port, port.protocol, location=destination.location)
        for source in pods
        for destination in pods
        if source.key != destination.key
        for port in destination.ports
    )
