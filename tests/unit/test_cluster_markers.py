"""Scratch scenarios are probed only after their change is in force on every node (issue 9, item 4).

The marker's effect is judged with the project's oracle over the reference policy sets (Calico
semantics as calico-semantics.md states them: the control tier decides first, a NetworkPolicy selecting a
pod isolates it); that felix enforces it is observed on live clusters only. The scratch space's order of
operations is checked against `ServedFakeApi` (only what the pinned release serves) and a scripted
executor standing in for the control pod's probes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from ipaddress import IPv4Network
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tests.unit.cluster_fake_api import CniFakeApi

from calico_conformance.cluster.deploy import (
    Deployment,
    control_key,
    control_namespace,
    control_tier_manifests,
    control_workload,
)
from calico_conformance.cluster.inventory import ObjectRef
from calico_conformance.cluster.markers import MARKER_LABEL, MarkerCheck, marker_pods, render_marker
from calico_conformance.cluster.probe_pods import plan_probe_pods, render_probe_pod
from calico_conformance.cluster.render_policy import Renames
from calico_conformance.cluster.schemas import validate_manifest
from calico_conformance.cluster.scratch import ScratchSpace
from calico_conformance.cluster.waits import Timeouts
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.loader import load_manifest_text, load_manifests
from calico_conformance.oracle.model import Labels, Namespace, Pod
from calico_conformance.probe.runner import ProbeEndpoint
from calico_conformance.reachability import ExpectedMatrix, Flow, ObservedMatrix
from calico_conformance.tenancy.layout import Service, TenancyLayout, load_layout

REPO = Path(__file__).resolve().parents[2]
RUN = "r1"
SPACE = "r1-abc"
MARKER_NS = f"cc-{SPACE}-marker"
CANARY = Service(9999, "TCP")


@pytest.fixture(scope="module")
def layout() -> TenancyLayout:
    return load_layout(REPO / "policies" / "tenancy.yaml")


def _control_pod(layout: TenancyLayout) -> Pod:
    (spec,) = plan_probe_pods([control_workload(RUN, layout.canary_services)], ["w1"],
                              roles={control_key(RUN): "control"})  # fmt: skip
    labels = render_probe_pod(spec, image="i", agent_source="", run_id=RUN)["metadata"]["labels"]
    return Pod("control", control_namespace(RUN), IPv4Network("10.244.0.0/16")[250], labels=Labels.of(labels))


def _marker_pod() -> Pod:
    (spec,) = marker_pods(MARKER_NS, SPACE, ["w2"], [CANARY])
    labels = render_probe_pod(spec, image="i", agent_source="", run_id=RUN)["metadata"]["labels"]
    return Pod(spec.pod_name, MARKER_NS, IPv4Network("10.244.0.0/16")[251], labels=Labels.of(labels))


def _allowed(policies: str, extra: Sequence[dict[str, Any]], layout: TenancyLayout) -> bool:
    control, marker = _control_pod(layout), _marker_pod()
    resources = load_manifests([REPO / "policies" / policies])
    if extra:
        resources = resources.merged(load_manifest_text("\n---\n".join(json.dumps(m) for m in extra), "run"))
    namespaces = [Namespace(ns, Labels.of({"kubernetes.io/metadata.name": ns})) for ns in (control.namespace, MARKER_NS)]
    oracle = Oracle(namespaces=namespaces, pods=[control, marker], resources=resources)
    return oracle.verdict_for(Flow(control.key, marker.key, CANARY.port, CANARY.protocol)).allowed


def test_with_a_control_tier_the_marker_drops_the_control_pod_and_lifting_it_lets_it_through(
    layout: TenancyLayout,
) -> None:
    marker = render_marker(RUN, SPACE, 1, MARKER_NS, control_tier=True)
    assert validate_manifest(marker, calico_version="3.31") == []
    tier = control_tier_manifests(RUN)
    assert _allowed("reference", tier, layout)  # absent: the control tier lets the control pod through
    assert not _allowed("reference", [*tier, marker], layout)  # present: decided before that allow


def test_without_tiers_the_marker_is_a_networkpolicy_in_the_marker_namespace(layout: TenancyLayout) -> None:
    marker = render_marker(RUN, SPACE, 1, MARKER_NS, control_tier=False)
    assert validate_manifest(marker, calico_version="3.27") == []
    assert marker["metadata"]["namespace"] == MARKER_NS
    assert _allowed("reference-v3.27", [], layout)
    assert not _allowed("reference-v3.27", [marker], layout)


class Scripted:
    """The control pod's view: marker pods answer unless the marker is in force *as seen so far*; the
    marker's effect shows up only after `lag` looks, as felix applies it asynchronously."""

    def __init__(self, api: CniFakeApi, lag: int) -> None:
        self.api = api
        self.lag = lag
        self.looks = 0
        self.seen_present: bool | None = None
        self.log: list[str] = []

    def run_batch(self, source: str, jobs: Sequence[dict[str, Any]], *, deadline_s: float) -> list[dict[str, Any]]:
        present = any(ref.name.startswith("cc-r1-control.marker-") or ref.name.startswith("marker-")
                      for ref in self.api.objects if ref.kind.endswith("NetworkPolicy"))  # fmt: skip
        if present != self.seen_present:
            self.seen_present, self.looks = present, 0
        self.looks += 1
        shown = present if self.looks > self.lag else not present
        self.log.append(f"look {'dropped' if shown else 'allowed'}")
        return [{"id": job["id"], "verdict": "dropped" if shown else "allowed"} for job in jobs]


def _space(api: CniFakeApi, executor: Scripted, observed: list[str], *, tiers: bool) -> ScratchSpace:
    endpoints = {control_key(RUN): ProbeEndpoint(f"{control_namespace(RUN)}/control", "10.244.9.9", "w1")}
    deployment = Deployment(endpoints, control_key(RUN) if tiers else None,
                            source_control=control_key(RUN), source_control_service=(9999, "TCP"))  # fmt: skip
    for node in ("w1", "w2"):
        api.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}})

    def observe_with(live: Any, deployment: Deployment, expected: ExpectedMatrix, *, label: str) -> ObservedMatrix:
        observed.append(label)
        executor.log.append(f"observe {label}")
        return ObservedMatrix({})

    run = SimpleNamespace(run_id=RUN, calico_version="3.31" if tiers else "3.27", converge_timeout_s=30.0,
                          probe_timeout_s=1.0)  # fmt: skip
    target = SimpleNamespace(run=run, image="i", agent_source="", allows_cluster_scoped=True,
                             timeouts=Timeouts(poll_interval_s=0.0, probe_pods_ready_s=0.0, workload_endpoints_s=0.0),
                             record=lambda cluster, obj: ObjectRef.of(obj),
                             observe_with=observe_with)  # fmt: skip
    live = SimpleNamespace(name="finland", kube=api, deployment=deployment, executor=executor)
    return ScratchSpace(target, live, Renames({"x": "cc-r1-case-x"}, {}), {"x": {}}, [])  # type: ignore[arg-type]


@pytest.mark.parametrize("tiers", [True, False], ids=["control tier", "no tiers"])
def test_each_change_is_probed_only_after_the_marker_flip_is_seen(tiers: bool) -> None:
    api = CniFakeApi("v3.31.7" if tiers else "v3.27.5")
    executor = Scripted(api, lag=2)
    observed: list[str] = []
    deny = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "deny", "namespace": "x"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}  # fmt: skip
    with _space(api, executor, observed, tiers=tiers) as space:
        assert sorted(key for key in space.marker_check.markers) == [f"{MARKER_NS.replace(SPACE, space.space)}/marker-0",  # type: ignore[union-attr]
                                                                      f"{MARKER_NS.replace(SPACE, space.space)}/marker-1"]  # fmt: skip
        space.apply(deny)
        space.observe(ExpectedMatrix({}), "first")
        space.delete_policies()
        space.observe(ExpectedMatrix({}), "second")
        space.observe(ExpectedMatrix({}), "unchanged")
    # Each observation waits through the lag until the new marker state shows; an unchanged space does not.
    assert executor.log == ["look allowed", "look allowed", "look dropped", "observe first",
                            "look dropped", "look dropped", "look allowed", "observe second",
                            "observe unchanged"]  # fmt: skip
    assert {ref.kind for ref in api.objects} == {"Node"}  # the space removed all it made, the marker included


def test_the_check_names_the_nodes_that_lag() -> None:
    check = MarkerCheck(ProbeEndpoint("c/control", "10.0.0.9", "w1"),
                        {"m/marker-0": ProbeEndpoint("m/marker-0", "10.0.0.1", "w1"),
                         "m/marker-1": ProbeEndpoint("m/marker-1", "10.0.0.2", "w2")}, 9999, "TCP", 1.0)  # fmt: skip

    class Split:
        def run_batch(self, source: str, jobs: Sequence[dict[str, Any]], *, deadline_s: float) -> list[dict[str, Any]]:
            assert source == "c/control"
            return [{"id": job["id"], "verdict": "dropped" if job["ip"] == "10.0.0.1" else "allowed"} for job in jobs]

    progress = check.look(Split(), present=True)
    assert not progress.done
    assert progress.detail == "marker not yet in force at m/marker-1 on w2 (allowed)"
    assert MARKER_LABEL == "calico-conformance.io/marker"
