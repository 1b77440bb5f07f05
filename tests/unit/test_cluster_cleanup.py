"""Cleanup and leak check of the kubeconfig target: ordering, ownership, leftovers.

`FakeObjectApi` is a fake Kubernetes API. It exists ONLY to test this suite's own logic — which objects
the cleanup deletes, in which order, what it refuses to touch, what the leak check reports — and it
proves nothing about a real API server (finalizers, cascading namespace deletion, Calico refusing to
delete a non-empty tier). It does model the one rule the ordering exists for: deleting a Tier that still
has policies fails, as Calico's API server does.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.cluster_fake_api import ServedFakeApi

from calico_conformance.cluster.inventory import (
    Inventory,
    NotOurs,
    ObjectRef,
    cleanup,
    guarded_delete,
    leak_check,
    refuse_cluster_scoped,
)
from calico_conformance.cluster.probe_pods import RUN_LABEL, run_labels

RUN = "r1"


class FakeObjectApi(ServedFakeApi):
    """A fake API for testing cleanup logic only (see module docstring); it serves only what Calico
    v3.31.7 serves (`ServedFakeApi`)."""

    def __init__(self) -> None:
        super().__init__("v3.31.7")
        self.deleted: list[ObjectRef] = []

    def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        return super().get(ref)

    def delete(self, ref: ObjectRef) -> None:
        self.resource(ref.api_version, ref.kind)
        if ref.kind == "Tier":
            prefix = f"{ref.name}."
            if any(
                other.name.startswith(prefix)
                for other in self.objects
                if other.kind.endswith("NetworkPolicy")
            ):
                raise RuntimeError(f"tier {ref.name} still has policies")
        del self.objects[ref]
        self.deleted.append(ref)


def manifest(
    kind: str, name: str, namespace: str | None = None, *, api: str = "v1", ours: bool = True
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": run_labels(RUN, "test") if ours else {"team": "ops"}}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": api, "kind": kind, "metadata": metadata}


CALICO = "projectcalico.org/v3"


def created_run(api: FakeObjectApi) -> Inventory:
    inventory = Inventory(RUN)
    for m in [
        manifest("Namespace", "cc-r1-x"),
        manifest("ConfigMap", "agent", "cc-r1-x"),
        manifest("Pod", "a", "cc-r1-x"),
        manifest("Tier", "cc-r1-security", api=CALICO),
        manifest("GlobalNetworkPolicy", "cc-r1-security.deny", api=CALICO),
        manifest("NetworkPolicy", "cc-r1-security.allow", "cc-r1-x", api=CALICO),
        manifest("GlobalNetworkSet", "cc-r1-outside", api=CALICO),
    ]:
        inventory.record(api.create(m))
    return inventory


def test_cleanup_deletes_policies_before_their_tier_and_the_namespace_last() -> None:
    api = FakeObjectApi()
    inventory = created_run(api)

    report = cleanup(inventory, api)

    assert report.ok, str(report)
    assert [str(ref) for ref in api.deleted] == [
        "NetworkPolicy cc-r1-x/cc-r1-security.allow",
        "GlobalNetworkSet cc-r1-outside",
        "GlobalNetworkPolicy cc-r1-security.deny",
        "Tier cc-r1-security",
        "Pod cc-r1-x/a",
        "ConfigMap cc-r1-x/agent",
        "Namespace cc-r1-x",
    ]
    assert api.objects == {}
    assert leak_check(inventory, api) == []


def test_creation_order_alone_would_fail_on_the_tier() -> None:
    # The point of the ordering: deleting in reverse creation order hits the tier while a policy remains.
    api = FakeObjectApi()
    inventory = created_run(api)
    tier = next(ref for ref in inventory.created if ref.kind == "Tier")
    with pytest.raises(RuntimeError, match="still has policies"):
        api.delete(tier)


def test_an_object_replaced_by_someone_else_is_left_alone() -> None:
    api = FakeObjectApi()
    inventory = Inventory(RUN)
    inventory.record(api.create(manifest("ConfigMap", "shared", "team-ns")))
    # Someone deletes ours and creates their own with the same name (new uid, their labels).
    del api.objects[ObjectRef("v1", "ConfigMap", "shared", "team-ns")]
    theirs = api.create(manifest("ConfigMap", "shared", "team-ns", ours=False))

    report = cleanup(inventory, api)

    assert [str(ref) for ref in report.not_ours] == ["ConfigMap team-ns/shared"]
    assert api.deleted == []
    assert api.objects[ObjectRef.of(theirs)] is theirs
    assert "left alone (not created by this run): ConfigMap team-ns/shared" in str(report)


def test_same_name_same_labels_but_another_uid_is_not_ours_either() -> None:
    api = FakeObjectApi()
    inventory = Inventory(RUN)
    inventory.record(api.create(manifest("Pod", "a", "x")))
    del api.objects[ObjectRef("v1", "Pod", "a", "x")]
    api.create(manifest("Pod", "a", "x"))  # recreated (e.g. by a controller): a different object

    assert [str(ref) for ref in cleanup(inventory, api).not_ours] == ["Pod x/a"]


def test_objects_never_recorded_are_never_deleted_even_when_asked() -> None:
    api = FakeObjectApi()
    inventory = Inventory(RUN)
    existing = api.create(manifest("Namespace", "royal-bank", ours=False))

    with pytest.raises(
        NotOurs, match="Namespace royal-bank was not created by run r1; refusing to delete it"
    ):
        guarded_delete(inventory, api, ObjectRef.of(existing))
    assert api.deleted == []


def test_guarded_delete_removes_our_own_object() -> None:
    api = FakeObjectApi()
    inventory = Inventory(RUN)
    ref = inventory.record(api.create(manifest("NetworkPolicy", "p", "cc-r1-x", api=CALICO)))

    guarded_delete(inventory, api, ref)

    assert api.deleted == [ref]


def test_one_failing_delete_does_not_stop_the_rest_and_is_reported() -> None:
    api = FakeObjectApi()
    inventory = created_run(api)
    failing = next(ref for ref in inventory.created if ref.kind == "Pod")
    original = api.delete

    def delete(ref: ObjectRef) -> None:
        if ref == failing:
            raise ConnectionError("apiserver went away")
        original(ref)

    api.delete = delete  # type: ignore[method-assign]
    report = cleanup(inventory, api)

    assert not report.ok
    assert report.failed == ((failing, "ConnectionError: apiserver went away"),)
    assert "Namespace cc-r1-x" in [str(ref) for ref in report.deleted]
    leaks = leak_check(inventory, api)
    assert [str(leak) for leak in leaks] == ["Pod cc-r1-x/a: created by this run and still present"]


def test_leak_check_finds_labelled_objects_the_inventory_never_recorded() -> None:
    api = FakeObjectApi()
    inventory = created_run(api)
    cleanup(inventory, api)
    # A pod created just before a crash: labelled with the run id, never recorded.
    api.create(manifest("Pod", "orphan", "elsewhere"))

    leaks = leak_check(inventory, api)

    assert [str(leak) for leak in leaks] == [
        f"Pod elsewhere/orphan: labelled {RUN_LABEL}=r1 and still present"
    ]


def test_leak_check_reports_objects_stuck_terminating() -> None:
    api = FakeObjectApi()
    inventory = Inventory(RUN)
    namespace = api.create(manifest("Namespace", "cc-r1-x"))
    inventory.record(namespace)
    namespace["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"

    (leak,) = leak_check(inventory, api)
    assert leak.why == "created by this run and still present (still terminating)"


def test_leak_check_ignores_other_runs() -> None:
    api = FakeObjectApi()
    other = api.create(manifest("Pod", "p", "x"))
    other["metadata"]["labels"][RUN_LABEL] = "another-run"

    assert leak_check(Inventory(RUN), api, extra_kinds=[("v1", "Pod")]) == []


def test_cluster_scoped_calico_objects_need_the_flag() -> None:
    manifests = [
        manifest("NetworkPolicy", "p", "x", api=CALICO),
        manifest("Tier", "security", api=CALICO),
        manifest("GlobalNetworkPolicy", "security.deny", api=CALICO),
    ]

    with pytest.raises(
        NotOurs, match=r"needs --allow-cluster-scoped: Tier security, GlobalNetworkPolicy security\.deny"
    ):
        refuse_cluster_scoped(manifests, allowed=False)
    refuse_cluster_scoped(manifests, allowed=True)
    refuse_cluster_scoped(manifests[:1], allowed=False)
