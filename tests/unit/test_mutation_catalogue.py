"""The fault catalogue is only proof if its faults are real: each applies, breaks something, spares the originals.

A fault with no observable effect (an "equivalent mutant") would be missed by any correct suite and prove
nothing, so every policy fault must make the oracle disagree with the tenancy layout's requirement on some
flow, while the reference set agrees with it everywhere. A load fault must stop the loaders at exactly the
line it returns. None of this runs the suites: `make mutation` does that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from calico_conformance.mutation.catalogue import CATALOGUE, CIDR, MTU, TIERS
from calico_conformance.mutation.runner import Fault
from calico_conformance.mutation.workspace import Inputs, Workspace
from calico_conformance.oracle.errors import LocatedError
from calico_conformance.oracle.loader import load_manifests
from calico_conformance.reachability import Flow
from calico_conformance.suite.cases import guardrail_cases
from calico_conformance.suite.guardrails import guardrail_breaches
from calico_conformance.targets.static import cluster_oracle
from calico_conformance.tenancy.layout import TenancyLayout, load_layout
from calico_conformance.tenancy.register import cluster_by_name, load_register
from calico_conformance.tenancy.surface import policy_surface, widen_layout

REPOSITORY = Path(__file__).resolve().parents[2]
REFERENCE = Inputs.of_repository(REPOSITORY)

# The issue's list ("Proof that the suites catch what they exist to catch"), by catalogue name.
ISSUE_FAULTS = {
    "royal-bank-default-deny-removed",
    "royal-bank-allow-all-ingress",
    "exception-widened-to-every-port",
    "exception-selects-unlabelled-namespace",
    "dns-egress-removed",
    "dns-to-any-destination",
    "security-tier-pass-removed",
    "tier-orders-swapped",
    "overlapping-pod-cidr",
    "vxlan-mtu-1500",
    "duplicate-destination-key",
}
# Faults whose effect is not on reachability: the tier order, the register and the MTU have suites of
# their own that check them directly.
NOT_REACHABILITY = {TIERS, CIDR, MTU}
# Faults that change no flow but who decides it: the guardrail test reads the deciding tier instead.
DECIDER_ONLY = {"security-guardrail-removed"}


def _digest(root: Path) -> str:
    digest = hashlib.sha256()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(root.parent)).encode() + file.read_bytes())
    return digest.hexdigest()


def _inputs_digest(inputs: Inputs) -> tuple[str, str, str]:
    return _digest(inputs.policies), _digest(inputs.layout), _digest(inputs.kind_configs)


def _layout_flows(layout: TenancyLayout) -> Iterator[Flow]:
    """Every workload to every port of every other workload, and to and from the outside addresses;
    on ICMP too, which has no port. The outsider's pods count (no flow within the outsider namespace:
    nothing restricts it, and the layout promises nothing about it)."""
    workloads = layout.all_workloads
    outsider = layout.outsider.name if layout.outsider else None
    services = {service for workload in workloads for service in workload.ports} | set(layout.canary_services)
    services |= set(layout.dns.services)
    for source in workloads:
        for destination in workloads:
            if source.key != destination.key and not source.namespace == destination.namespace == outsider:
                for service in {*destination.ports, *layout.canary_services}:
                    yield Flow(source.key, destination.key, service.port, service.protocol)
                yield Flow(source.key, destination.key, None, "ICMP")
        if source.namespace == outsider:
            continue  # the outsider's own ways out are no tenancy's business
        for address in (*layout.outside_addresses, *layout.dns.other_servers):
            yield Flow(source.key, str(address), None, "ICMP")
            for service in services:
                yield Flow(source.key, str(address), service.port, service.protocol)
                yield Flow(str(address), source.key, service.port, service.protocol)


def _disagreements(inputs: Inputs, cluster: str = "finland") -> list[Flow]:
    """Flows where what the policy set does differs from what the layout requires."""
    register = load_register(inputs.kind_configs)
    resources = load_manifests([inputs.policies])
    ranges = [network for spec in register for network in (spec.pod_subnet, spec.service_subnet)]
    # The layout as a run sees it: widened by the ports and addresses the policy set names.
    layout = widen_layout(load_layout(inputs.layout), policy_surface(resources, load_layout(inputs.layout), ranges))
    oracle = cluster_oracle(layout, cluster_by_name(register, cluster), resources, "3.31")
    return [
        flow
        for flow in _layout_flows(layout)
        if oracle.verdict_for(flow).allowed != layout.requirement(flow)[0]
    ]


def _load_every_input(inputs: Inputs) -> None:
    load_manifests([inputs.policies])
    load_layout(inputs.layout)
    load_register(inputs.kind_configs)


@pytest.fixture(scope="module")
def originals_digest() -> tuple[str, str, str]:
    return _inputs_digest(REFERENCE)


def test_the_catalogue_holds_the_issue_list_and_more() -> None:
    names = [fault.name for fault in CATALOGUE]
    assert len(names) == len(set(names)), "fault names are table rows and --only keys: they must be unique"
    assert set(names) >= ISSUE_FAULTS
    assert len([fault for fault in CATALOGUE if not fault.must_pass]) >= 12
    assert len([fault for fault in CATALOGUE if fault.must_pass]) >= 5  # issue 11: behaviour-preserving edits


def test_the_reference_set_meets_the_layout_everywhere() -> None:
    assert _disagreements(REFERENCE) == []


@pytest.mark.parametrize("fault", CATALOGUE, ids=[fault.name for fault in CATALOGUE])
def test_each_fault_breaks_its_copy_and_spares_the_originals(
    fault: Fault, tmp_path: Path, originals_digest: tuple[str, str, str]
) -> None:
    workspace = Workspace(REFERENCE, tmp_path / "copy")
    before = _inputs_digest(workspace.inputs)
    bad_input = fault.apply(workspace)
    assert _inputs_digest(workspace.inputs) != before, f"{fault.name} changed nothing"
    assert _inputs_digest(REFERENCE) == originals_digest, f"{fault.name} touched the reference inputs"

    if bad_input is not None:
        with pytest.raises(LocatedError) as refused:
            _load_every_input(workspace.inputs)
        assert refused.value.location == bad_input
        return
    # A fault the suites must fail on still loads: a load error would be caught for the wrong reason.
    _load_every_input(workspace.inputs)
    if fault.must_pass:
        assert _disagreements(workspace.inputs) == [], f"{fault.name} is meant to change no behaviour"
    elif fault.name in DECIDER_ONLY:
        assert _disagreements(workspace.inputs) == [], f"{fault.name} should hide behind a later tier"
        assert _guardrail_breaches(workspace.inputs), f"{fault.name} leaves the guardrail where it was"
    elif not NOT_REACHABILITY & set(fault.catchers):
        assert _disagreements(workspace.inputs), f"{fault.name} changes no flow the layout constrains"


def _guardrail_breaches(inputs: Inputs, cluster: str = "finland") -> list[Flow]:
    """Cross-customer flows the layout's first tier does not deny (`suite/guardrails.py`)."""
    register = load_register(inputs.kind_configs)
    resources = load_manifests([inputs.policies])
    layout = load_layout(inputs.layout)
    oracle = cluster_oracle(layout, cluster_by_name(register, cluster), resources, "3.31")
    flows = [flow for case in guardrail_cases(layout, [cluster]) for flow in case.flows]
    return [breach.flow for breach in guardrail_breaches(oracle, flows, layout.tier_order[0])]
