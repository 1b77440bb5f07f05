"""What Calico selectors see: the label map of every pod and network set, and which of them own an IP.

Felix never matches a selector against a packet; it matches it against *known resources* and turns the
result into IP sets (calico-semantics.md §2.2 "Selectors match known resources"). So the oracle needs two
things about the cluster: the exact label map felix gives each object (§2.3: own labels, the pseudo-labels
and the `pcns.` / `pcsa.` labels inherited from the namespace and service-account profiles) and, for an
IP address, every object whose IP set entry covers it (a pod by its IP, a network set by CIDR containment).

A pod whose IP also falls into a network set's CIDR is in both objects' IP sets, exactly as in felix
(`hash:net` IP sets hold the pod's /32 and the set's CIDR side by side), so a selector matching either
object matches that pod's traffic. `resources_at` therefore returns both label maps.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from calico_conformance.oracle.errors import LocatedError
from calico_conformance.oracle.model import IPAddress, Labels, Namespace, NetworkSet, Pod, ServiceAccount
from calico_conformance.oracle.selector import (
    NAMESPACE_LABEL,
    NAMESPACE_PREFIX,
    ORCHESTRATOR_LABEL,
    SERVICE_ACCOUNT_LABEL,
    SERVICE_ACCOUNT_PREFIX,
)

# The label the API server puts on every namespace (Kubernetes >= 1.21); felix sees it as
# `pcns.kubernetes.io/metadata.name`, and upstream netpol tests select namespaces by it.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# Profile labels naming the namespace / service account (`NamespaceToProfile`, `ServiceAccountToProfile`).
PROFILE_NAME_LABEL = "projectcalico.org/name"
ORCHESTRATOR_K8S = "k8s"
# A pod gets `projectcalico.org/serviceaccount` only when its account name is shorter than this (§2.3).
SERVICE_ACCOUNT_LABEL_MAX = 63

LabelMap = Mapping[str, str]


def namespace_profile_labels(namespace: Namespace) -> dict[str, str]:
    """The labels a pod inherits from its `kns.<ns>` profile: `pcns.<key>` and `pcns.projectcalico.org/name`."""
    labels = {f"{NAMESPACE_PREFIX}{key}": value for key, value in namespace.labels.items()}
    labels[f"{NAMESPACE_PREFIX}{PROFILE_NAME_LABEL}"] = namespace.name
    return labels


def with_api_server_labels(namespace: Namespace) -> Namespace:
    """The namespace as the API server stores it: `kubernetes.io/metadata.name` is always set to its name."""
    if namespace.labels.get(NAMESPACE_NAME_LABEL) == namespace.name:
        return namespace
    labels = {**namespace.labels.as_dict(), NAMESPACE_NAME_LABEL: namespace.name}
    return Namespace(namespace.name, Labels.of(labels), namespace.location)


@dataclass(frozen=True)
class AddressView:
    """Everything rule matching may ask about one end of a packet: its IP, the label maps of the objects
    whose IP sets cover it, and the pod that owns it (named ports are matched against pods only)."""

    ip: IPAddress
    owners: tuple[LabelMap, ...]
    pod: Pod | None = None
    pod_labels: LabelMap | None = None


@dataclass(frozen=True)
class NamespaceFacts:
    """What a namespace contributes to its endpoints' label maps, for selectors that read only that part."""

    namespace: Namespace
    labels: LabelMap  # inherited pcns.* labels plus projectcalico.org/namespace, as endpoints carry them


class EndpointIndex:
    """Label maps of pods and network sets, and the lookup from an IP address to the objects owning it."""

    def __init__(
        self,
        namespaces: Iterable[Namespace],
        pods: Iterable[Pod],
        service_accounts: Iterable[ServiceAccount],
        network_sets: Iterable[NetworkSet],
        *,
        strict: bool,
        problems: list[LocatedError],
    ) -> None:
        self.namespaces: dict[str, NamespaceFacts] = {}
        for namespace in namespaces:
            self._add_namespace(with_api_server_labels(namespace), strict=strict, problems=problems)
        accounts: dict[tuple[str, str], ServiceAccount] = {}
        for account in service_accounts:
            accounts.setdefault((account.namespace, account.name), account)
        self.pods: dict[str, Pod] = {}
        self.pod_labels: dict[str, LabelMap] = {}
        self._pod_by_ip: dict[IPAddress, Pod] = {}
        for pod in pods:
            self._add_pod(pod, accounts, strict=strict, problems=problems)
        self.network_sets: tuple[NetworkSet, ...] = tuple(network_sets)
        self.network_set_labels: tuple[LabelMap, ...] = tuple(self._set_labels(s) for s in self.network_sets)
        self._view_cache: dict[IPAddress, AddressView] = {}

    # --- construction ---------------------------------------------------------------------------

    def _add_namespace(self, namespace: Namespace, *, strict: bool, problems: list[LocatedError]) -> None:
        known = self.namespaces.get(namespace.name)
        if known is not None:
            if known.namespace.labels == namespace.labels:
                return  # the same namespace given twice (scenario and manifests): harmless
            error = LocatedError(
                namespace.location,
                f"namespace {namespace.name} is declared twice with different labels"
                f" (first at {known.namespace.location or 'an unknown place'})",
            )
            if strict:
                raise error
            problems.append(error)
            return
        labels = namespace_profile_labels(namespace)
        labels[NAMESPACE_LABEL] = namespace.name
        self.namespaces[namespace.name] = NamespaceFacts(namespace, labels)

    def _add_pod(
        self,
        pod: Pod,
        accounts: Mapping[tuple[str, str], ServiceAccount],
        *,
        strict: bool,
        problems: list[LocatedError],
    ) -> None:
        def refuse(why: str) -> None:
            if strict:
                raise LocatedError(pod.location, why)
            problems.append(LocatedError(pod.location, why))

        if pod.key in self.pods:
            refuse(f"pod {pod.key} is declared twice")
            return
        if pod.namespace not in self.namespaces:
            refuse(f"pod {pod.key} is in namespace {pod.namespace}, which is not declared")
            # Non-strict: carry on as the API server would have created it, with no labels of its own.
            self._add_namespace(
                with_api_server_labels(Namespace(pod.namespace)), strict=False, problems=problems
            )
        owner = self._pod_by_ip.get(pod.ip)
        if owner is not None:
            # Two pods with one IP cannot exist; which one a selector sees would be a guess.
            refuse(f"pod {pod.key} has IP {pod.ip}, which pod {owner.key} already has")
            return
        account = accounts.get((pod.namespace, pod.service_account))
        self.pods[pod.key] = pod
        self.pod_labels[pod.key] = self._pod_labels(pod, account)
        self._pod_by_ip[pod.ip] = pod

    def _pod_labels(self, pod: Pod, account: ServiceAccount | None) -> LabelMap:
        """§2.3: inherited profile labels, overridden by the pod's own, overridden by the pseudo-labels."""
        labels = namespace_profile_labels(self.namespaces[pod.namespace].namespace)
        if account is not None:
            labels.update({f"{SERVICE_ACCOUNT_PREFIX}{k}": v for k, v in account.labels.items()})
        labels[f"{SERVICE_ACCOUNT_PREFIX}{PROFILE_NAME_LABEL}"] = pod.service_account
        # "endpoints have their own labels; these take priority" (felix's label inheritance index)
        labels.update(pod.labels)
        # The converter writes the pseudo-labels after copying the pod's labels, so they always win; the
        # service-account one only "if less than 63 characters" (`workload_endpoint_default.go`), so a
        # longer name leaves the pod without it (or with its own label of that key).
        labels[NAMESPACE_LABEL] = pod.namespace
        labels[ORCHESTRATOR_LABEL] = ORCHESTRATOR_K8S
        if 0 < len(pod.service_account) < SERVICE_ACCOUNT_LABEL_MAX:
            labels[SERVICE_ACCOUNT_LABEL] = pod.service_account
        return labels

    def _set_labels(self, network_set: NetworkSet) -> LabelMap:
        """A GlobalNetworkSet has only its own labels; a NetworkSet also its namespace's (§2.3)."""
        if network_set.namespace is None:
            return network_set.labels.as_dict()
        facts = self.namespaces.get(network_set.namespace)
        labels = namespace_profile_labels(facts.namespace) if facts else {}
        labels.update(network_set.labels)
        labels[NAMESPACE_LABEL] = network_set.namespace
        return labels

    # --- queries --------------------------------------------------------------------------------

    def pod(self, key: str) -> Pod:
        try:
            return self.pods[key]
        except KeyError:
            raise LocatedError(None, f"no pod {key!r} in the scenario") from None

    def pod_at(self, ip: IPAddress) -> Pod | None:
        return self._pod_by_ip.get(ip)

    def network_sets_at(self, ip: IPAddress) -> tuple[int, ...]:
        """Indices (into `network_sets`) of the sets whose CIDRs contain `ip`."""
        return tuple(
            index
            for index, network_set in enumerate(self.network_sets)
            if any(ip.version == net.version and ip in net for net in network_set.nets)
        )

    def view(self, ip: IPAddress) -> AddressView:
        """What selectors see at `ip`: the pod with that IP (if any) first, then every network set whose
        CIDRs contain it. An address no object claims has no owners, so only nets can match it."""
        cached = self._view_cache.get(ip)
        if cached is None:
            pod = self._pod_by_ip.get(ip)
            owners = [self.pod_labels[pod.key]] if pod is not None else []
            owners.extend(self.network_set_labels[index] for index in self.network_sets_at(ip))
            labels = self.pod_labels[pod.key] if pod is not None else None
            cached = self._view_cache[ip] = AddressView(ip, tuple(owners), pod, labels)
        return cached


def parse_address(text: str) -> IPAddress | None:
    """An IP literal, or None when `text` is not one (then it names a pod)."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def distinct_pods(pods: Sequence[Pod]) -> tuple[Pod, ...]:
    """The pods in order, each once (a caller may pass a pod twice by accident)."""
    seen: set[str] = set()
    unique = []
    for pod in pods:
        if pod.key not in seen:
            seen.add(pod.key)
            unique.append(pod)
    return tuple(unique)
