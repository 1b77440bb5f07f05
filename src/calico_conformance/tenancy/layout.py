"""The tenancy layout file (`policies/tenancy.yaml`): read it strictly into a `TenancyLayout`.

The format is documented field by field in `policies/README.md`. Every bad value is a `LocatedError`
(`file:line: why`), and the cross-field rules a reviewer would otherwise check by eye are checked here
too (royal-bank is a customer, exceptions name declared workloads, the DNS server declares the DNS
ports, canary ports are ones nobody declares). The model itself is `layout_model.py`; its names are
re-exported here, so `from calico_conformance.tenancy.layout import TenancyLayout, load_layout` is the one import.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.loader_document import validate_label_key, validate_label_value
from calico_conformance.oracle.model import IPAddress, Labels
from calico_conformance.oracle.yamlsrc import Node, load_file
from calico_conformance.tenancy.model import (
    DEFAULT_SERVICE_ACCOUNT,
    NAMESPACE_NAME_LABEL,
    ROYAL_BANK,
    AllowedFlow,
    ClusterNetwork,
    DnsRequirement,
    Endpoint,
    LayoutNamespace,
    Role,
    Service,
    TenancyLayout,
    Workload,
)

__all__ = [
    "NAMESPACE_NAME_LABEL",
    "ROYAL_BANK",
    "AllowedFlow",
    "ClusterNetwork",
    "DnsRequirement",
    "Endpoint",
    "LayoutNamespace",
    "Role",
    "Service",
    "TenancyLayout",
    "Workload",
    "load_layout",
    "read_layout",
]

API_VERSION = "calico-conformance/v1"
KIND = "TenancyLayout"
PROBE_PROTOCOLS = ("TCP", "UDP")  # SCTP needs a kernel module most nodes (and this machine) lack
PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
ACCOUNT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")

TOP_FIELDS = (
    "apiVersion",
    "kind",
    "sentinel",
    "canary",
    "namespaces",
    "exceptions",
    "dns",
    "tiers",
    "clusters",
    "outsider",
)


def load_layout(path: str | Path) -> TenancyLayout:
    """Read and validate a layout file; the first problem is a `LocatedError`."""
    documents = load_file(path)
    if len(documents) != 1:
        raise LocatedError(Location(str(path)), f"a layout is one YAML document, found {len(documents)}")
    return read_layout(Node.root(documents[0], str(path)), str(path))


def read_layout(root: Node, source: str) -> TenancyLayout:
    root.fields(TOP_FIELDS, what="the layout")
    api_version = root.require("apiVersion")
    if api_version.string() != API_VERSION:
        raise api_version.error(f"must be {API_VERSION!r}")
    kind = root.require("kind")
    if kind.string() != KIND:
        raise kind.error(f"must be {KIND!r}")

    sentinel = root.require("sentinel")
    canary = root.require("canary").fields(("ports", "outside"), what="canary")
    canary_services = tuple(_service(item) for item in canary.require("ports").items())
    outside = tuple(_address(item) for item in canary.require("outside").items())
    namespaces = tuple(_namespace(item, sentinel) for item in root.require("namespaces").items())
    outsider = _outsider(root.require("outsider"), sentinel)
    _refuse_duplicates([(n.name, n.location) for n in (*namespaces, outsider)], "namespace")

    layout = TenancyLayout(
        source=source,
        namespaces=namespaces,
        exceptions=(),
        dns=_dns(root.require("dns")),
        tier_order=_tiers(root.require("tiers")),
        canary_services=canary_services,
        outside_addresses=outside,
        networks=_networks(root.require("clusters")),
        outsider=outsider,
    )
    exceptions_node = root.get("exceptions")
    exceptions = tuple(_exception(item, layout) for item in exceptions_node.items()) if exceptions_node else ()
    _refuse_duplicates([(e.name, e.location) for e in exceptions], "exception")
    layout = TenancyLayout(
        source,
        namespaces,
        exceptions,
        layout.dns,
        layout.tier_order,
        canary_services,
        outside,
        layout.networks,
        outsider,
    )
    _check_consistency(root, layout)
    return layout


def _name(node: Node, what: str) -> str:
    name = node.string()
    if not DNS_NAME.match(name) or len(name) > 63:
        raise node.error(f"{what} {name!r} is not a Kubernetes name (lower-case letters, digits, '-')")
    return name


def _service(node: Node) -> Service:
    node.fields(("port", "protocol", "name"), what="a port")
    port_node = node.require("port")
    port = port_node.integer()
    if not 1 <= port <= 65535:
        raise port_node.error(f"port {port} is outside 1-65535")
    protocol_node = node.require("protocol")
    protocol = protocol_node.string()
    if protocol not in PROBE_PROTOCOLS:
        raise protocol_node.error(f"protocol {protocol!r} cannot be probed; choose one of: {', '.join(PROBE_PROTOCOLS)}")
    name = node.get("name")
    if name is not None and not _is_port_name(name.string()):
        raise name.error(
            f"port name {name.value!r} is not a Kubernetes port name (IANA_SVC_NAME: at most 15 lower-case "
            "letters, digits and '-', at least one letter, no '--', no '-' at either end)"
        )
    return Service(port, protocol, name.string() if name else None)


def _is_port_name(text: str) -> bool:
    """Kubernetes' IsValidPortName (apimachinery validation), which a container port's name must pass."""
    return (
        len(text) <= 15
        and PORT_NAME.match(text) is not None
        and "--" not in text
        and any("a" <= char <= "z" for char in text)
    )


def _labels(node: Node | None) -> dict[str, str]:
    """A label map whose keys and values Kubernetes accepts (the probe pods carry them)."""
    if node is None:
        return {}
    labels = node.string_map("labels")
    for key, value in labels.items():
        where = node.get(key) or node
        validate_label_key(where, key)
        validate_label_value(where, key, value)
    return labels


def _address(node: Node) -> IPAddress:
    if "%" in node.string():  # Python takes an IPv6 zone, Go's net.ParseIP (Kubernetes, Calico) does not
        raise node.error(f"{node.value!r} is not an IP address: an IPv6 zone (%...) is not accepted")
    try:
        return ipaddress.ip_address(node.string())
    except ValueError:
        raise node.error(f"{node.value!r} is not an IP address") from None


def _workload(node: Node, namespace: str) -> Workload:
    node.fields(("name", "labels", "ports", "serviceAccount"), what="a workload")
    labels = node.get("labels")
    account = node.get("serviceAccount")
    ports = tuple(_service(item) for item in node.require("ports").items())
    _refuse_duplicates([(f"{p.port}/{p.protocol}", node.location) for p in ports], "port")
    return Workload(
        namespace=namespace,
        name=_name(node.require("name"), "workload name"),
        labels=Labels.of(_labels(labels)),
        ports=ports,
        location=node.location,
        service_account=_account_name(account) if account else DEFAULT_SERVICE_ACCOUNT,
    )


def _account_name(node: Node) -> str:
    """A ServiceAccount name: a DNS-1123 subdomain (what the API server accepts), at most 253 characters."""
    name = node.string()
    if not ACCOUNT_NAME.match(name) or len(name) > 253:
        raise node.error(f"serviceAccount {name!r} is not a Kubernetes name (lower-case letters, digits, '-', '.')")
    return name


def _namespace(node: Node, sentinel: Node) -> LayoutNamespace:
    node.fields(("name", "role", "labels", "resolvesDns", "workloads"), what="a namespace")
    name = _name(node.require("name"), "namespace name")
    role_node = node.require("role")
    tenancy_roles = [role.value for role in Role if role is not Role.OUTSIDER]
    if role_node.string() not in tenancy_roles:
        raise role_node.error(f"role {role_node.value!r} is not one of: {', '.join(tenancy_roles)}")
    role = Role(role_node.string())
    labels_node = node.get("labels")
    labels = _labels(labels_node)
    if NAMESPACE_NAME_LABEL in labels and labels[NAMESPACE_NAME_LABEL] != name:
        raise node.error(f"label {NAMESPACE_NAME_LABEL} must be the namespace name {name!r}")
    labels[NAMESPACE_NAME_LABEL] = name
    resolves = node.get("resolvesDns")
    workloads_node = node.get("workloads")
    workloads = (_workload(sentinel, name),) + (
        tuple(_workload(item, name) for item in workloads_node.items()) if workloads_node else ()
    )
    _refuse_duplicates([(w.name, w.location) for w in workloads], f"workload in namespace {name}")
    return LayoutNamespace(name, role, Labels.of(labels), resolves.boolean() if resolves else False, workloads, node.location)


def _outsider(node: Node, sentinel: Node) -> LayoutNamespace:
    name = _name(node, "outsider namespace name")
    return LayoutNamespace(
        name=name,
        role=Role.OUTSIDER,
        labels=Labels.of({NAMESPACE_NAME_LABEL: name}),
        resolves_dns=False,
        workloads=(_workload(sentinel, name),),
        location=node.location,
    )


def _endpoint(node: Node, *, allow_outside: bool) -> Endpoint:
    node.fields(("namespace", "workload", "outside"), what="an exception endpoint")
    outside = node.get("outside")
    if outside is not None and outside.boolean():
        if not allow_outside:
            raise outside.error("an exception's source cannot be outside the cluster")
        if node.has("namespace") or node.has("workload"):
            raise node.error("'outside: true' stands alone: no namespace or workload with it")
        return Endpoint(outside=True)
    workload = node.get("workload")
    return Endpoint(namespace=node.require("namespace").string(), workload=workload.string() if workload else None)


def _exception(node: Node, layout: TenancyLayout) -> AllowedFlow:
    node.fields(("name", "from", "to", "ports", "why"), what="an exception")
    exception = AllowedFlow(
        name=_name(node.require("name"), "exception name"),
        source=_endpoint(node.require("from"), allow_outside=False),
        destination=_endpoint(node.require("to"), allow_outside=True),
        services=tuple(_service(item) for item in node.require("ports").items()),
        why=node.require("why").string(),
        location=node.location,
    )
    for side, endpoint in (("from", exception.source), ("to", exception.destination)):
        side_node = node.require(side)
        _check_endpoint(side_node, endpoint, layout)
    return exception


def _check_endpoint(node: Node, endpoint: Endpoint, layout: TenancyLayout) -> None:
    if endpoint.outside or endpoint.namespace is None:
        return
    try:
        namespace = next(n for n in layout.namespaces if n.name == endpoint.namespace)
    except StopIteration:
        raise node.error(f"namespace {endpoint.namespace!r} is not in the layout's namespaces") from None
    if endpoint.workload is not None and endpoint.workload not in {w.name for w in namespace.workloads}:
        raise node.error(f"workload {endpoint.workload!r} is not declared in namespace {namespace.name}")


def _dns(node: Node) -> DnsRequirement:
    node.fields(("server", "ports", "otherServers"), what="dns")
    server = node.require("server").fields(("namespace", "workload"), what="dns.server")
    others = node.get("otherServers")
    return DnsRequirement(
        server=f"{server.require('namespace').string()}/{server.require('workload').string()}",
        services=tuple(_service(item) for item in node.require("ports").items()),
        other_servers=tuple(_address(item) for item in others.items()) if others else (),
        location=node.location,
    )


def _tiers(node: Node) -> tuple[str, ...]:
    tiers = tuple(_name(item, "tier name") for item in node.items("tiers"))
    _refuse_duplicates([(t, node.location) for t in tiers], "tier")
    if "default" in tiers:
        raise node.error("'default' is always the last tier (order 1000000); list only your own tiers")
    return tiers


def _networks(node: Node) -> dict[str, ClusterNetwork]:
    networks: dict[str, ClusterNetwork] = {}
    for cluster in node.mapping("clusters"):
        entry = node.require(cluster).fields(("networkMtu", "calicoMtu"), what=f"clusters.{cluster}")
        mtu_node = entry.require("networkMtu")
        calico = entry.get("calicoMtu")
        networks[cluster] = ClusterNetwork(
            cluster=cluster,
            network_mtu=_mtu(mtu_node),
            calico_mtu=_mtu(calico) if calico else None,
            location=entry.location,
        )
    return networks


def _mtu(node: Node) -> int:
    mtu = node.integer()
    if not 576 <= mtu <= 9216:  # IPv4 minimum datagram .. the largest jumbo frame NICs offer
        raise node.error(f"MTU {mtu} is outside 576-9216")
    return mtu


def _refuse_duplicates(named: list[tuple[str, Location | None]], what: str) -> None:
    seen: set[str] = set()
    for name, location in named:
        if name in seen:
            raise LocatedError(location, f"{what} {name!r} is declared twice")
        seen.add(name)


def _check_consistency(root: Node, layout: TenancyLayout) -> None:
    """Cross-field rules: the things a reviewer would otherwise have to check by eye."""
    names = {namespace.name for namespace in layout.namespaces}
    if ROYAL_BANK not in names or layout.namespace(ROYAL_BANK).role is not Role.CUSTOMER:
        raise root.require("namespaces").error(f"the layout must declare the customer namespace {ROYAL_BANK}")
    if len(layout.customers()) < 2:
        raise root.require("namespaces").error("isolation needs at least two customer namespaces")
    dns_node = root.require("dns")
    try:
        server = layout.workload(layout.dns.server)
    except KeyError:
        raise dns_node.error(f"dns.server {layout.dns.server} is not a workload of the layout") from None
    missing = [str(s) for s in layout.dns.services if s not in server.ports]
    if missing:
        raise dns_node.error(f"dns.server {server.key} does not declare port(s) {', '.join(missing)}")
    declared = {service for workload in layout.workloads for service in workload.ports}
    clash = [str(s) for s in layout.canary_services if s in declared]
    if clash:
        raise root.require("canary").error(f"canary port(s) {', '.join(clash)} are declared by a workload")
