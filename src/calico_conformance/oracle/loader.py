"""Manifests into a `ResourceSet`: the strict front door of the oracle.

A policy set is only worth checking if it is read exactly as the cluster would read it, so loading is
strict: a duplicate key, an unknown field, an invalid selector or value, or a kind the oracle does not
model is an error naming `file:line`, never a silent skip. `load_manifests` stops at the first error;
`collect_manifests` keeps going and returns every error (the linter reports them all), leaving out
only the documents that failed.

Kinds are looked up in one registry (`KIND_READERS`), which also writes the "supported kinds" part of
the error for anything else. `List` documents (`kind: List`, `NetworkPolicyList`, ...) are expanded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.loader_calico import (
    read_calico_policy,
    read_network_set,
    read_tier,
)
from calico_conformance.oracle.loader_document import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    CalicoVersion,
    Document,
    parse_calico_version,
    read_document,
)
from calico_conformance.oracle.loader_k8s import (
    read_kubernetes_network_policy,
    read_namespace,
    read_service_account,
)
from calico_conformance.oracle.loader_staged import read_staged_policy
from calico_conformance.oracle.model import (
    DEFAULT_CALICO_VERSION,
    Namespace,
    NetworkSet,
    Policy,
    ResourceSet,
    ServiceAccount,
    StagedPolicy,
    Tier,
)
from calico_conformance.oracle.yamlsrc import Node, load_documents, load_file

Resource = Policy | Tier | NetworkSet | Namespace | ServiceAccount | StagedPolicy
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
CALICO_API_VERSIONS = ("projectcalico.org/v3", "crd.projectcalico.org/v1")
# 3.29+ policy names may carry one `tier.` prefix (calico-semantics.md §1.10); the version check on
# dots is in loader_calico, which knows the tier.
_POLICY_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)?$")
_POLICY_NAME_RULE = "lowercase alphanumeric and '-', optionally prefixed with '<tier>.'"


@dataclass(frozen=True)
class KindReader:
    read: Callable[[Document], Resource]
    namespaced: bool
    name_pattern: re.Pattern[str] = DNS_SUBDOMAIN
    name_rule: str = "a DNS subdomain (lowercase alphanumeric, '-' and '.')"


_POLICY_NAMES: dict[str, Any] = {"name_pattern": _POLICY_NAME, "name_rule": _POLICY_NAME_RULE}
_LABEL_NAMES: dict[str, Any] = {
    "name_pattern": DNS_LABEL,
    "name_rule": "a DNS label (lowercase alphanumeric and '-')",
}

KIND_READERS: Mapping[tuple[str, str], KindReader] = {
    ("networking.k8s.io/v1", "NetworkPolicy"): KindReader(read_kubernetes_network_policy, namespaced=True),
    ("v1", "Namespace"): KindReader(read_namespace, namespaced=False, **_LABEL_NAMES),
    ("v1", "ServiceAccount"): KindReader(read_service_account, namespaced=True),
    **{
        (api, kind): KindReader(read, namespaced, **names)
        for api in CALICO_API_VERSIONS
        for kind, read, namespaced, names in (
            ("NetworkPolicy", read_calico_policy, True, _POLICY_NAMES),
            ("GlobalNetworkPolicy", read_calico_policy, False, _POLICY_NAMES),
            ("Tier", read_tier, False, _LABEL_NAMES),
            ("NetworkSet", read_network_set, True, {}),
            ("GlobalNetworkSet", read_network_set, False, {}),
            # staged policies (3.30+) are kept aside, never enforced: loader_staged.py
            ("StagedNetworkPolicy", read_staged_policy, True, _POLICY_NAMES),
            ("StagedGlobalNetworkPolicy", read_staged_policy, False, _POLICY_NAMES),
            ("StagedKubernetesNetworkPolicy", read_staged_policy, True, {}),
        )
    },
}


def supported_kinds() -> str:
    kinds: dict[str, list[str]] = {}
    for api_version, kind in KIND_READERS:
        kinds.setdefault(kind, []).append(api_version)
    return ", ".join(f"{kind} ({' or '.join(apis)})" for kind, apis in kinds.items())


# --- documents ------------------------------------------------------------------------------------------


def _identity(node: Node, inherited: tuple[str, str] | None = None) -> tuple[str, str]:
    node.mapping("a manifest document")
    api_node, kind_node = node.get("apiVersion"), node.get("kind")
    if inherited is not None:  # items of a typed list may leave out apiVersion and kind
        return (
            api_node.string() if api_node is not None else inherited[0],
            kind_node.string() if kind_node is not None else inherited[1],
        )
    if api_node is None or kind_node is None:
        raise node.error("a manifest needs apiVersion and kind")
    return api_node.string(), kind_node.string()


def _expand(node: Node, inherited: tuple[str, str] | None = None) -> Iterable[tuple[Node, str, str]]:
    """(node, apiVersion, kind) of every object in a document, `List` documents expanded."""
    api_version, kind = _identity(node, inherited)
    if kind == "List" or (kind.endswith("List") and not node.has("spec")):
        node.fields({"apiVersion", "kind", "metadata", "items"}, what=f"a {kind}")
        item_kind = kind.removesuffix("List")
        item_identity = (api_version, item_kind) if item_kind else None
        items = node.get("items")
        for item in items.items("items") if items is not None else []:
            yield from _expand(item, item_identity)
        return
    yield node, api_version, kind


def read_resource(node: Node, api_version: str, kind: str, version: CalicoVersion) -> Resource:
    """One object of a supported kind; a LocatedError for anything else."""
    reader = KIND_READERS.get((api_version, kind))
    if reader is None:
        raise node.error(_unsupported(api_version, kind))
    document = read_document(
        node,
        api_version=api_version,
        kind=kind,
        version=version,
        namespaced=reader.namespaced,
        name_pattern=reader.name_pattern,
        name_rule=reader.name_rule,
    )
    return reader.read(document)


def _unsupported(api_version: str, kind: str) -> str:
    if any(known == kind for _, known in KIND_READERS):
        apis = " or ".join(api for api, known in KIND_READERS if known == kind)
        return f"apiVersion {api_version!r} is not supported for {kind}; use {apis}"
    return (
        f"kind {kind!r} ({api_version}) is not supported by the oracle; supported kinds: {supported_kinds()}"
    )


class ManifestReader:
    """Builds one ResourceSet from files and documents; a second object with the same identity is an
    error (the API server would replace the first with it, so one of the two is not what runs).

    With `keep_going` every error is collected in `errors` and the bad document left out; without it
    the first error is raised.
    """

    def __init__(self, calico_version: str = DEFAULT_CALICO_VERSION, *, keep_going: bool = False) -> None:
        self.version: CalicoVersion = parse_calico_version(calico_version)
        self.keep_going = keep_going
        self.errors: list[LocatedError] = []
        self.resources: list[Resource] = []
        self.seen: dict[tuple[str, str | None, str], Location | None] = {}

    def add_paths(self, paths: Iterable[str | Path]) -> None:
        """Files and directories (see `manifest_files`)."""
        for path in manifest_files(paths):
            try:
                documents = load_file(path)
            except LocatedError as error:
                self._fail(error)
                continue
            self.add_documents(documents, str(path))

    def add_documents(self, documents: Sequence[Any], source: str, path: str = "") -> None:
        """Documents already read by `yamlsrc`; with `path`, errors name `path[index].field...`."""
        for index, document in enumerate(documents):
            self.add_document(document, source, f"{path}[{index}]" if path else "")

    def add_document(self, document: Any, source: str, path: str = "") -> None:
        """One document; `path` names it in errors (a scenario's inline `resources[2]`)."""
        try:
            for item, api_version, kind in _expand(Node.root(document, source, path)):
                self._add(item, api_version, kind)
        except LocatedError as error:
            self._fail(error)

    def _add(self, node: Node, api_version: str, kind: str) -> None:
        try:
            resource = read_resource(node, api_version, kind, self.version)
            key = _identity_key(resource)
            if key in self.seen:
                first = self.seen[key]
                why = f"{kind} {_display(key)} is defined twice (first at {first})"
                raise node.error(why + _alternative_sets(first, node.location))
            self.seen[key] = resource.location
            self.resources.append(resource)
        except LocatedError as error:
            self._fail(error)

    def _fail(self, error: LocatedError) -> None:
        if not self.keep_going:
            raise error
        self.errors.append(error)

    def resource_set(self) -> ResourceSet:
        def of(kind: type[Any]) -> tuple[Any, ...]:
            return tuple(resource for resource in self.resources if isinstance(resource, kind))

        return ResourceSet(
            of(Policy), of(Tier), of(NetworkSet), of(Namespace), of(ServiceAccount), of(StagedPolicy)
        )


def _identity_key(resource: Resource) -> tuple[str, str | None, str]:
    """(kind, namespace, name) as the API server identifies objects; Calico stores default-tier policy
    `foo` and `default.foo` as the same object, so both spell one identity."""
    if isinstance(resource, Policy):
        name = (
            resource.name.removeprefix("default.")
            if resource.kind != "KubernetesNetworkPolicy"
            else resource.name
        )
        return resource.kind, resource.namespace, name
    if isinstance(resource, StagedPolicy):
        return resource.kind, resource.namespace, resource.name
    namespace = getattr(resource, "namespace", None)
    kind = type(resource).__name__
    if isinstance(resource, NetworkSet) and namespace is None:
        kind = "GlobalNetworkSet"
    return kind, namespace, resource.name


# How a duplicate says that two sibling directories were given as one policy set (the linter keys on it).
ALTERNATIVE_SETS = "two alternative sets in one directory"


def _alternative_sets(first: Location | None, second: Location) -> str:
    """What to say when the two definitions sit in sibling directories (`policies/reference/` and
    `policies/reference-v3.27/`): two alternative policy sets given as one, not a typo in either."""
    if first is None:
        return ""
    one, other = Path(first.file), Path(second.file)
    if one.parent == other.parent:  # one file, or two files of one directory
        return ""
    try:
        common = Path(os.path.commonpath([one, other]))
    except ValueError:  # one path absolute, the other relative: nothing to conclude
        return ""
    if common in (one.parent, other.parent):
        return ""
    sets = [common / path.relative_to(common).parts[0] for path in (one, other)]
    return (
        f": {sets[0]}/ and {sets[1]}/ look like {ALTERNATIVE_SETS};"
        f" pass one of them, not {common}/ as a whole"
    )


def _display(key: tuple[str, str | None, str]) -> str:
    return f"{key[1]}/{key[2]}" if key[1] else key[2]


# --- entry points -------------------------------------------------------------------------------------------


def manifest_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, directories searched recursively for *.yaml, *.yml, *.json, in sorted order.

    Inside a directory, names starting with a dot are skipped (`.github/` workflows, editor backups):
    they are never manifests, and reading them would turn a policy directory into a wall of errors.
    """
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(
                found
                for found in path.rglob("*")
                if found.is_file()
                and found.suffix in MANIFEST_SUFFIXES
                and not any(part.startswith(".") for part in found.relative_to(path).parts)
            )
        elif path.is_file():
            files.append(path)
        else:
            raise LocatedError(Location(str(path)), "no such file or directory")
    return files


def collect_manifests(
    paths: Iterable[str | Path], *, calico_version: str = DEFAULT_CALICO_VERSION
) -> tuple[ResourceSet, list[LocatedError]]:
    """Load what loads; every bad document is left out and its error collected."""
    reader = ManifestReader(calico_version, keep_going=True)
    reader.add_paths(paths)
    return reader.resource_set(), reader.errors


def load_manifests(
    paths: Iterable[str | Path], *, calico_version: str = DEFAULT_CALICO_VERSION
) -> ResourceSet:
    """Load files and directories of manifests; the first bad input raises LocatedError."""
    reader = ManifestReader(calico_version)
    reader.add_paths(paths)
    return reader.resource_set()


def load_manifest_text(
    text: str, source: str, *, calico_version: str = DEFAULT_CALICO_VERSION
) -> ResourceSet:
    """Load manifests from a string; `source` names it in errors."""
    reader = ManifestReader(calico_version)
    reader.add_documents(load_documents(text, source), source)
    return reader.resource_set()
