"""The cluster register: `kind-configs/<cluster>.yaml`, the one place the runbook's CIDRs are written.

Each file is a kind `Cluster` (kind.x-k8s.io/v1alpha4) config: the `kind` target creates the cluster
from it as is, the Installation's IP pool is derived from its `podSubnet`, and the CIDR suite checks
the register itself. Nothing else repeats a CIDR, so a change of allocation is one edit here. This
module only reads and validates: that ranges do not overlap is a *test* (`suites/test_cidr_allocation`),
not a load error, so a broken register fails a named test instead of stopping the run.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.yamlsrc import Node, load_file

KIND_API_VERSION = "kind.x-k8s.io/v1alpha4"
NODE_ROLES = ("control-plane", "worker")
# Fields of kind's v1alpha4 Cluster this suite understands; anything else is a typo or a feature the
# register should not depend on (kind ignores nothing silently either: it rejects unknown fields).
CLUSTER_FIELDS = ("kind", "apiVersion", "name", "networking", "nodes", "featureGates", "kubeadmConfigPatches")
NETWORKING_FIELDS = (
    "ipFamily",
    "podSubnet",
    "serviceSubnet",
    "disableDefaultCNI",
    "kubeProxyMode",
    "apiServerAddress",
    "apiServerPort",
    "dnsSearch",
)
# An image reference as `docker pull` takes it, loosely: no spaces, no upper case in the repository,
# an optional :tag and @sha256:digest. The registry checks the rest when the node is created.
IMAGE_REFERENCE = re.compile(r"[a-z0-9][a-z0-9._/:-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?")
NODE_FIELDS = ("role", "image", "extraMounts", "extraPortMappings", "labels", "kubeadmConfigPatches")


@dataclass(frozen=True)
class ClusterSpec:
    """One registered cluster, as its kind config declares it."""

    name: str  # the file stem: finland, germany, helsinki
    pod_subnet: IPv4Network
    service_subnet: IPv4Network
    config_path: Path
    nodes: tuple[str, ...]  # node roles in file order, e.g. ("control-plane", "worker", "worker")
    raw: Mapping[str, Any] = field(compare=False, repr=False)  # the parsed file, for the kind target
    disable_default_cni: bool = True
    pod_subnet_location: Location | None = field(default=None, compare=False)
    service_subnet_location: Location | None = field(default=None, compare=False)


def load_register(directory: Path) -> tuple[ClusterSpec, ...]:
    """Every `*.yaml` of `directory`, sorted by cluster name; a bad file is a `LocatedError`."""
    if not directory.is_dir():
        raise LocatedError(Location(str(directory)), "the cluster register (--kind-configs) is not a directory")
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        raise LocatedError(Location(str(directory)), "the cluster register has no <cluster>.yaml kind configs")
    return tuple(load_cluster(path) for path in paths)


def load_cluster(path: Path) -> ClusterSpec:
    documents = load_file(path)
    if len(documents) != 1:
        raise LocatedError(Location(str(path)), f"a kind config is one YAML document, found {len(documents)}")
    root = Node.root(documents[0], str(path)).fields(CLUSTER_FIELDS, what="a kind Cluster")
    kind = root.require("kind")
    if kind.string() != "Cluster":
        raise kind.error("must be 'Cluster'")
    api_version = root.require("apiVersion")
    if api_version.string() != KIND_API_VERSION:
        raise api_version.error(f"must be {KIND_API_VERSION!r}")
    name_node = root.get("name")
    if name_node is not None and name_node.string() != path.stem:
        raise name_node.error(f"name {name_node.value!r} differs from the file name; the register names by file")

    networking = root.require("networking").fields(NETWORKING_FIELDS, what="networking")
    family = networking.get("ipFamily")
    if family is not None and family.string() != "ipv4":
        raise family.error("only ipFamily ipv4 is in the register (the runbook allocates IPv4 ranges)")
    pod_node = networking.require("podSubnet")
    service_node = networking.require("serviceSubnet")
    cni = networking.get("disableDefaultCNI")
    nodes_node = root.require("nodes")
    nodes = tuple(_node_role(item) for item in nodes_node.items("nodes"))
    if nodes.count("control-plane") < 1:
        raise nodes_node.error("a cluster needs a control-plane node")
    return ClusterSpec(
        name=path.stem,
        pod_subnet=_network(pod_node),
        service_subnet=_network(service_node),
        config_path=path,
        nodes=nodes,
        raw=documents[0],
        disable_default_cni=cni.boolean() if cni else False,
        pod_subnet_location=pod_node.location,
        service_subnet_location=service_node.location,
    )


def _network(node: Node) -> IPv4Network:
    text = node.string()
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as error:
        raise node.error(f"{text!r} is not a CIDR ({error})") from None
    if not isinstance(network, IPv4Network):
        raise node.error(f"{text!r} is not an IPv4 range")
    return network


def _node_role(node: Node) -> str:
    node.fields(NODE_FIELDS, what="a node")
    role = node.require("role")
    if role.string() not in NODE_ROLES:
        raise role.error(f"role {role.value!r} is not one of: {', '.join(NODE_ROLES)}")
    image = node.get("image")
    if image is not None:
        text = image.string()  # an unquoted number is not an image
        if not text.isascii() or not IMAGE_REFERENCE.fullmatch(text):
            raise image.error(f"{text!r} is not an image reference like kindest/node:v1.31.0")
    return role.string()


def cluster_by_name(register: tuple[ClusterSpec, ...], name: str) -> ClusterSpec:
    for cluster in register:
        if cluster.name == name:
            return cluster
    raise KeyError(name)
