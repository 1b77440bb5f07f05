"""What a live run created, how it is removed, and the check that nothing of it is left.

The kubeconfig target runs against clusters people depend on, so it keeps three promises:

* it creates only objects labelled with its run id (`probe_pods.run_labels`), in namespaces named with
  the run id — or, with `--probe-existing-namespaces`, probe pods in existing namespaces;
* it deletes only what it recorded creating, and only after checking that the live object still is
  that one (same uid, still carrying the run label): an object it did not create is never touched;
* at the end a leak check lists everything still labelled with the run id, and any leftover fails the
  run, naming each object.

Removal order matters: namespaced policies, then global policies and sets, then tiers (Calico refuses
to delete a tier that still has policies), then pods and config maps, namespaces last. The cluster
side is behind the `ObjectApi` protocol (`cluster/kube.py` implements it); the tests drive this logic
with a fake API, which proves the ordering and ownership rules, not what a real API server does.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from calico_conformance.cluster.probe_pods import RUN_LABEL, run_selector

# Lower first. Anything unlisted goes with pods and config maps.
DELETION_RANK: Mapping[str, int] = {
    "NetworkPolicy": 0,
    "StagedNetworkPolicy": 0,
    "NetworkSet": 0,
    "GlobalNetworkPolicy": 1,
    "GlobalNetworkSet": 1,
    "Tier": 2,
    "Namespace": 4,
}
DEFAULT_RANK = 3

CLUSTER_SCOPED_CALICO_KINDS = frozenset({"GlobalNetworkPolicy", "GlobalNetworkSet", "Tier"})


@dataclass(frozen=True, order=True)
class ObjectRef:
    """One object, as recorded at creation."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None
    uid: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        place = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {place}{self.name}"

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectRef:
        metadata = obj.get("metadata", {})
        return cls(
            obj["apiVersion"], obj["kind"], metadata["name"], metadata.get("namespace"), metadata.get("uid")
        )


class ObjectApi(Protocol):
    """The part of the Kubernetes API the cleanup needs."""

    def get(self, ref: ObjectRef) -> Mapping[str, Any] | None: ...

    def delete(self, ref: ObjectRef) -> None: ...

    def list_labelled(self, kinds: Sequence[tuple[str, str]], label_selector: str) -> list[Mapping[str, Any]]:
        """Every object of the (apiVersion, kind) pairs matching the selector, in any namespace."""
        ...


class NotOurs(RuntimeError):
    """An attempt to change an object this run did not create."""


@dataclass
class Inventory:
    """Objects this run created, in creation order. Thread-safe: probe set-up runs in parallel."""

    run_id: str
    created: list[ObjectRef] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, obj: Mapping[str, Any]) -> ObjectRef:
        """Remember a created object (the API's answer, which carries the uid)."""
        ref = ObjectRef.of(obj)
        with self._lock:
            self.created.append(ref)
        return ref

    def owns(self, live: Mapping[str, Any] | None, ref: ObjectRef) -> bool:
        """True when `live` is the very object recorded as `ref` and still carries this run's label."""
        if live is None or ref not in self.created:
            return False
        metadata = live.get("metadata", {})
        recorded = next(item for item in self.created if item == ref)
        same_uid = recorded.uid is None or metadata.get("uid") == recorded.uid
        return same_uid and (metadata.get("labels") or {}).get(RUN_LABEL) == self.run_id

    def kinds(self) -> list[tuple[str, str]]:
        return sorted({(ref.api_version, ref.kind) for ref in self.created})

    def deletion_order(self) -> list[ObjectRef]:
        """Dependants before what they depend on; within a rank, the newest first."""
        newest_first = list(reversed(self.created))
        return sorted(newest_first, key=lambda ref: DELETION_RANK.get(ref.kind, DEFAULT_RANK))


@dataclass(frozen=True)
class CleanupReport:
    deleted: tuple[ObjectRef, ...]
    already_gone: tuple[ObjectRef, ...]
    not_ours: tuple[ObjectRef, ...]  # same name, but not the object this run created: left alone
    failed: tuple[tuple[ObjectRef, str], ...]

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        lines = [f"deleted {len(self.deleted)}, already gone {len(self.already_gone)}"]
        lines += [f"left alone (not created by this run): {ref}" for ref in self.not_ours]
        lines += [f"could not delete {ref}: {why}" for ref, why in self.failed]
        return "\n".join(lines)


def cleanup(inventory: Inventory, api: ObjectApi) -> CleanupReport:
    """Delete every recorded object this run still owns, in dependency order. Never raises for one object."""
    deleted, gone, not_ours, failed = [], [], [], []
    for ref in inventory.deletion_order():
        try:
            live = api.get(ref)
            if live is None:
                gone.append(ref)
                continue
            if not inventory.owns(live, ref):
                not_ours.append(ref)
                continue
            api.delete(ref)
            deleted.append(ref)
        except Exception as error:  # one stuck object must not stop the rest of the cleanup
            failed.append((ref, f"{type(error).__name__}: {error}"))
    return CleanupReport(tuple(deleted), tuple(gone), tuple(not_ours), tuple(failed))


def guarded_delete(inventory: Inventory, api: ObjectApi, ref: ObjectRef) -> None:
    """Delete one object mid-run (e.g. a scenario's policy), refusing anything this run did not create."""
    live = api.get(ref)
    if live is None:
        return
    if not inventory.owns(live, ref):
        raise NotOurs(f"{ref} was not created by run {inventory.run_id}; refusing to delete it")
    api.delete(ref)


@dataclass(frozen=True)
class Leak:
    ref: ObjectRef
    why: str

    def __str__(self) -> str:
        return f"{self.ref}: {self.why}"


def leak_check(
    inventory: Inventory, api: ObjectApi, *, extra_kinds: Sequence[tuple[str, str]] = ()
) -> list[Leak]:
    """Everything of this run still in the cluster: recorded objects not gone, and any object labelled
    with the run id (also ones the inventory never heard of, e.g. created just before a crash)."""
    leaks: dict[ObjectRef, Leak] = {}
    for ref in inventory.created:
        live = api.get(ref)
        if live is not None and inventory.owns(live, ref):
            leaks[ref] = Leak(ref, "created by this run and still present" + _terminating(live))
    kinds = sorted({*inventory.kinds(), *extra_kinds})
    for obj in api.list_labelled(kinds, run_selector(inventory.run_id)):
        ref = ObjectRef.of(obj)
        if ref not in leaks:
            leaks[ref] = Leak(
                ref, f"labelled {RUN_LABEL}={inventory.run_id} and still present" + _terminating(obj)
            )
    return sorted(leaks.values(), key=lambda leak: leak.ref)


def _terminating(obj: Mapping[str, Any]) -> str:
    """Called after the cleanup has waited for deletions: an object still terminating is stuck."""
    return " (still terminating)" if obj.get("metadata", {}).get("deletionTimestamp") else ""


def refuse_cluster_scoped(manifests: Sequence[Mapping[str, Any]], allowed: bool) -> None:
    """Cluster-scoped Calico objects (tiers, global policies and sets) only with --allow-cluster-scoped."""
    if allowed:
        return
    scoped = [
        f"{m['kind']} {m.get('metadata', {}).get('name')}"
        for m in manifests
        if m.get("kind") in CLUSTER_SCOPED_CALICO_KINDS
    ]
    if scoped:
        raise NotOurs(f"creating cluster-scoped objects needs --allow-cluster-scoped: {', '.join(scoped)}")
