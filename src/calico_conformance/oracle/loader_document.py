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

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

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
    """A CIDR with a `/` (Calico's validator calls a bare IP "invalid CIDR"); host bits are masked off,
    as Go's `net.ParseCIDR` does for both Kubernetes and Calico."""
    text = node.string()
    if "/" not in text:
        raise node.error(f"invalid CIDR {text!r}: expected address/prefix-length, e.g. {text}/32")
    try:
        return ipaddress.ip_network(text, strict=False)
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
