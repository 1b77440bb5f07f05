"""One manifest document as the loaders see it: its identity, its metadata, and what the API server checks.

Every kind the oracle loads starts the same way: `apiVersion`, `kind` and `metadata` are read, names and
labels are validated the way the Kubernetes API server and Calico's validator do, and the Calico version
the documents are loaded for decides which names and kinds exist at all. Keeping that here means the
Kubernetes and Calico loaders contain only what is particular to their kinds.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.model import IPNetwork, Labels
from calico_conformance.oracle.yamlsrc import Node

# Versions whose semantics calico-semantics.md describes; 3.31 is the version the suite installs.
OLDEST_CALICO_VERSION = (3, 27)
NEWEST_CALICO_VERSION = (3, 31)
# `Tier`, `spec.tier` and dotted policy names arrive in 3.29 (calico-semantics.md §0, §1.10).
TIERS_SINCE = (3, 29)
# From 3.29 clientv3 requires a policy of tier T to be named `T.<name>` (calico-semantics.md §1.10,
# `ValidateTieredPolicyName`; calico-install.md repeats it), and felix places a policy in the tier its
# NAME names: an unprefixed name would land in `default` whatever `spec.tier` says. Our notes describe no
# version that relaxes this, so every modelled version (up to 3.31) requires the prefix; the constant
# marks where to change it once a relaxing version is researched.
TIER_PREFIX_OPTIONAL_SINCE = (3, 32)

# kubectl puts a namespaced object without `metadata.namespace` into the context's namespace, which is
# `default` unless configured otherwise; the oracle assumes the default context.
NAMESPACE_WHEN_OMITTED = "default"

# Kubernetes' and Calico's patterns (apimachinery validation.IsDNS1123Label/Subdomain, IsQualifiedName,
# IsValidLabelValue) are Go regexps, whose `$` matches only at the end of the text. Python's `$` also
# matches before a trailing newline, which a YAML block scalar (`name: |`) leaves: hence `\Z`.
_VERSION = re.compile(r"^v?([0-9]+)\.([0-9]+)(?:\.([0-9]+))?\Z")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")

# ObjectMeta fields a manifest (or `kubectl get -o yaml` output) may carry; all but name, namespace and
# labels are irrelevant to policy and ignored, anything else is a typo worth reporting.
METADATA_FIELDS = frozenset(
    {
        "name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation",
        "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields",
        "ownerReferences", "finalizers", "generateName", "selfLink",
    }
)  # fmt: skip

CalicoVersion = tuple[int, int]

# The name Calico gives a Kubernetes NetworkPolicy in its own model (libcalico-go names/policy.go,
# v3.31.7 line 32; backend/k8s/conversion in v3.27.5). A projectcalico.org/v3 NetworkPolicy with this
# prefix is refused by the Calico API server's storage, "kubernetes network policies must be managed
# through the kubernetes API" (apiserver/pkg/storage/calico/policy_storage.go, v3.31.7 line 29,
# v3.27.5 line 33), while calicoctl, writing through libcalico-go's clientv3, accepts it:
# `ValidateTieredPolicyName` passes any knp.default. name (names/policy.go v3.31.7 lines 107-113, 170-176).
KNP_PREFIX = "knp.default."
KNP_NAME_REFUSED = (
    "invalid name {name!r}: 'knp.default.' names the Kubernetes NetworkPolicy {short!r} in Calico's "
    "model. The Calico API server (kubectl apply) refuses to create a projectcalico.org/v3 NetworkPolicy "
    "so named ('kubernetes network policies must be managed through the kubernetes API'); calicoctl "
    "would accept it, but then it stands in the place of a Kubernetes policy. Write a networking.k8s.io/v1 "
    "NetworkPolicy named {short!r}, or give this policy another name"
)


def parse_calico_version(text: object, location: Location | None = None) -> CalicoVersion:
    """`"3.27"`, `"v3.27.5"`, `"3.31"` -> (3, 27) ...; anything else, or a version not modelled, is an error.

    Only strings: an unquoted YAML `3.30` is the number 3.3, which would silently mean another version.
    """
    if isinstance(text, float):
        raise LocatedError(
            location, f'write the Calico version as a string, e.g. "3.30": unquoted it is the number {text}'
        )
    match = _VERSION.match(text) if isinstance(text, str) else None
    if match is None:
        raise LocatedError(location, f"invalid Calico version {text!r}: expected e.g. '3.31' or 'v3.27.5'")
    version = (int(match.group(1)), int(match.group(2)))
    if not OLDEST_CALICO_VERSION <= version <= NEWEST_CALICO_VERSION:
        oldest, newest = (".".join(map(str, v)) for v in (OLDEST_CALICO_VERSION, NEWEST_CALICO_VERSION))
        raise LocatedError(
            location, f"Calico version {text} is not modelled by the oracle (supported: {oldest} to {newest})"
        )
    return version


def version_text(version: CalicoVersion) -> str:
    return f"{version[0]}.{version[1]}"


def validate_label_key(node: Node, key: str) -> None:
    """A Kubernetes qualified name: optional DNS-subdomain prefix and `/`, then a name of <= 63 chars."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
        raise node.error(f"invalid label key {key!r}: the prefix must be a DNS subdomain")
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        raise node.error(
            f"invalid label key {key!r}: the name must be 1-63 characters, alphanumeric, '-', '_' or '.', "
            "starting and ending with an alphanumeric character"
        )


def validate_label_value(node: Node, key: str, value: str) -> None:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise node.error(
            f"invalid value {value!r} for label {key!r}: at most 63 characters, alphanumeric, '-', '_' "
            "or '.', starting and ending with an alphanumeric character"
        )


def read_labels(node: Node | None) -> Labels:
    """A validated label map (metadata.labels, matchLabels)."""
    if node is None:
        return Labels()
    labels = node.string_map("labels")
    for key, value in labels.items():
        where = node.get(key) or node
        validate_label_key(where, key)
        validate_label_value(where, key, value)
    return Labels.of(labels)


def parse_cidr(node: Node) -> IPNetwork:
    """A CIDR with a `/`, as Go's `net.ParseCIDR` reads it for Kubernetes' ipBlock: host bits are
    masked off, a bare address and an IPv6 zone (`fe80::1%eth0/64`) are refused (`ParseCIDR` parses
    the address with `parseIPv6(addr, false)`: zones not allowed)."""
    text = _address_text(node)
    if "/" not in text:
        raise node.error(f"invalid CIDR {text!r}: expected address/prefix-length, e.g. {text}/32")
    return _network(node, text, strict=False)


def parse_rule_net(node: Node) -> IPNetwork:
    """A Calico rule's `nets`/`notNets` item, exactly as Calico v3.27.5 and v3.31.7 validate it.

    Two checks of libcalico-go `lib/validator/v3/validator.go` apply (both versions alike):
    * the field tag `net` (api `projectcalico/v3/policy_common.go` lines 112 and 166) is
      `validateIPNetwork` (v3.31.7 lines 232, 693-703; v3.27.5 lines 216, 636-646): `ParseCIDROrIP`,
      then `ipn.IP.String() == ipa.String()`, so a CIDR with host bits set (`10.0.0.1/8`) is refused;
    * the rule's struct validator `validateRule` parses every item with `cnet.ParseCIDR` (v3.31.7
      line 1359, v3.27.5 line 1221) and reports "invalid CIDR" on failure, so a bare address, which
      the field tag alone would take as a /32, is refused too.
    """
    text = _address_text(node)
    if "/" not in text:
        raise node.error(
            f"invalid CIDR {text!r}: Calico's rule validator needs address/prefix-length (validateRule "
            f"parses rule nets with net.ParseCIDR, which has no bare-address form); write {text}/"
            f"{32 if ':' not in text else 128}"
        )
    network = _network(node, text, strict=False)
    if ipaddress.ip_interface(text).ip != network.network_address:
        raise node.error(
            f"invalid CIDR {text!r}: host bits are set; Calico's validator refuses rule nets that are not "
            f"strictly masked (validateIPNetwork); write {network}"
        )
    return network


def parse_network_set_net(node: Node) -> IPNetwork:
    """A NetworkSet or GlobalNetworkSet `nets` item: the field tag `cidr` (api
    `projectcalico/v3/networkset.go` line 49, `globalnetworkset.go` line 51) is `validateCIDR`
    (libcalico-go validator.go v3.31.7 lines 240, 752; v3.27.5 lines 222, 695): `ParseCIDROrIP`
    (`lib/net/ipnet.go` v3.31.7 line 113, v3.27.5 line 109), not strictly masked. So a bare address is
    the /32 (or /128) of it, and host bits are masked off as `ParseCIDR` does."""
    text = _address_text(node)
    if "/" not in text:
        text = f"{text}/{128 if ':' in text else 32}"
    return _network(node, text, strict=False)


def _address_text(node: Node) -> str:
    text = node.string()
    if "%" in text:
        raise node.error(
            f"invalid CIDR {text!r}: an IPv6 zone (%...) is not accepted; Go's net.ParseCIDR and ParseIP, "
            "which Kubernetes and Calico use, parse addresses without zones"
        )
    if not text.isascii() or text != text.strip():
        raise node.error(f"invalid CIDR {text!r}: only ASCII hex digits, '.', ':' and '/' are allowed")
    return text


def _network(node: Node, text: str, *, strict: bool) -> IPNetwork:
    try:
        return ipaddress.ip_network(text, strict=strict)
    except ValueError:
        raise node.error(f"invalid CIDR {text!r}") from None


@dataclass(frozen=True)
class Document:
    """A manifest document with its identity read and checked; `node` is its root."""

    node: Node
    api_version: str
    kind: str
    name: str
    namespace: str | None  # None for cluster-scoped kinds
    labels: Labels
    version: CalicoVersion

    @property
    def location(self) -> Location:
        return self.node.location

    @property
    def display(self) -> str:
        scoped = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {scoped}"


def read_document(
    node: Node,
    *,
    api_version: str,
    kind: str,
    version: CalicoVersion,
    namespaced: bool,
    name_pattern: re.Pattern[str] = DNS_SUBDOMAIN,
    name_rule: str = "a DNS subdomain (lowercase alphanumeric, '-' and '.')",
) -> Document:
    """Read `metadata` of a document whose apiVersion and kind are already known."""
    metadata = node.require("metadata").fields(METADATA_FIELDS, what="metadata")
    name_node = metadata.get("name")
    if name_node is None:
        raise metadata.error("'name' is required (generateName cannot be resolved without a cluster)")
    name = name_node.string()
    if kind == "NetworkPolicy" and api_version != "networking.k8s.io/v1" and name.startswith(KNP_PREFIX):
        raise name_node.error(KNP_NAME_REFUSED.format(name=name, short=name.removeprefix(KNP_PREFIX)))
    if len(name) > 253 or not name_pattern.match(name):
        raise name_node.error(f"invalid name {name!r}: a {kind} name must be {name_rule}")
    namespace_node = metadata.get("namespace")
    namespace: str | None = None
    if namespaced:
        namespace = namespace_node.string() if namespace_node is not None else NAMESPACE_WHEN_OMITTED
        if len(namespace) > 63 or not DNS_LABEL.match(namespace):
            raise (namespace_node or metadata).error(f"invalid namespace {namespace!r}: must be a DNS label")
    elif namespace_node is not None:
        raise namespace_node.error(f"a {kind} is cluster-scoped and has no namespace")
    annotations = metadata.get("annotations")
    if annotations is not None:
        annotations.string_map("annotations")
    return Document(
        node=node,
        api_version=api_version,
        kind=kind,
        name=name,
        namespace=namespace,
        labels=read_labels(metadata.get("labels")),
        version=version,
    )
