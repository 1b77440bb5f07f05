"""Coverage, stated (issue 11, item 6): the equivalence classes of (source, destination, port) and which
of them a run probed.

Expected class facts are derived by hand from the reference layout and policies: which pods no selector
and no exception tells apart, where the port stretches start; never read back from the code under test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from calico_conformance.config import RunConfig, resolve_run_config
from calico_conformance.reachability import Flow
from calico_conformance.run_inputs import RunInputs, load_run_inputs
from calico_conformance.suite.cases import CASE_BUILDERS, isolation_cases
from calico_conformance.suite.coverage import FlowClasses, coverage, representatives
from calico_conformance.targets.registry import TARGETS
from calico_conformance.targets.static import cluster_oracle

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def run() -> RunConfig:
    return resolve_run_config({"target": "static"}, base_dir=ROOT, target_names=tuple(TARGETS))


@pytest.fixture(scope="module")
def inputs(run: RunConfig) -> RunInputs:
    return load_run_inputs(run)


@pytest.fixture(scope="module")
def classes(run: RunConfig, inputs: RunInputs) -> FlowClasses:
    oracle = cluster_oracle(inputs.layout, inputs.cluster("finland"), inputs.resources, run.calico_version)
    return FlowClasses(oracle, inputs.layout, inputs.resources)


def _all_case_flows(inputs: RunInputs) -> list[Flow]:
    return [
        flow
        for name, build in CASE_BUILDERS.items()
        if name != "tier-scenarios"  # synthetic scenarios, not the layout's pods
        for case in build(inputs.layout, ["finland"])
        for flow in getattr(case, "flows", ())
    ]


def test_the_suites_cases_probe_every_class_of_the_reference_set(classes: FlowClasses, inputs: RunInputs) -> None:
    found = coverage("finland", classes, _all_case_flows(inputs))
    assert found.complete, found.summary()
    assert found.summary() == f"finland: {found.classes} classes, all probed"


def test_isolation_alone_leaves_classes_unprobed_and_names_some(classes: FlowClasses, inputs: RunInputs) -> None:
    flows = [flow for case in isolation_cases(inputs.layout, ["finland"]) for flow in case.flows]
    found = coverage("finland", classes, flows)
    assert 0 < found.probed < found.classes
    assert len(found.unprobed_examples) == 5
    assert "not probed, e.g." in found.summary()


def test_ports_in_one_stretch_are_one_class_and_an_edge_starts_another(classes: FlowClasses) -> None:
    # 5044/TCP is the logging exception's port: 5044 and 5045 start stretches; 5046..6442 is one stretch.
    same = [Flow("royal-bank/ledger", "platform/log-collector", port, "TCP") for port in (5046, 6000, 6442)]
    assert len({classes.key(flow) for flow in same}) == 1
    edges = [Flow("royal-bank/ledger", "platform/log-collector", port, "TCP") for port in (5043, 5044, 5045)]
    assert len({classes.key(flow) for flow in edges}) == 3
    assert classes.port_class(Flow("a/b", "c/d", None, "ICMP")) == ("ICMP", 0)


def test_ends_no_selector_and_no_exception_tells_apart_share_a_class(classes: FlowClasses) -> None:
    # customer-a's and customer-b's sentinels: same labels, no exception names either, both resolve DNS;
    # the reference policies read namespaces through the role label and the name, so they differ by name
    # (isolate-tenant names each customer) and are different classes.
    a = classes.key(Flow("royal-bank/ledger", "customer-a/sentinel", 8080, "TCP"))
    b = classes.key(Flow("royal-bank/ledger", "customer-b/sentinel", 8080, "TCP"))
    assert a != b
    # Outside addresses no rule CIDR and no network set names (the reference names none) are alike.
    internet = classes.key(Flow("192.0.2.10", "royal-bank/ledger", 8443, "TCP"))
    resolver = classes.key(Flow("198.51.100.53", "royal-bank/ledger", 8443, "TCP"))
    assert internet == resolver
    # The sentinel and the ledger differ: `app` is a key some selector reads (app == "log-collector").
    sentinel = classes.key(Flow("royal-bank/sentinel", "platform/log-collector", 5044, "TCP"))
    ledger = classes.key(Flow("royal-bank/ledger", "platform/log-collector", 5044, "TCP"))
    assert sentinel != ledger
    # kube-dns is the DNS server (the requirement says so) and carries the label DNS policies read.
    dns = classes.key(Flow("royal-bank/ledger", "kube-system/kube-dns", 53, "UDP"))
    other = classes.key(Flow("royal-bank/ledger", "kube-system/sentinel", 53, "UDP"))
    assert dns != other


def test_flows_within_the_outsider_or_between_addresses_are_outside_the_universe(classes: FlowClasses) -> None:
    assert not classes.in_universe(Flow("conformance-outsider/sentinel", "192.0.2.10", 80, "TCP"))
    assert not classes.in_universe(Flow("192.0.2.10", "192.0.2.53", 80, "TCP"))
    assert classes.in_universe(Flow("conformance-outsider/sentinel", "royal-bank/ledger", 80, "TCP"))


def test_one_representative_per_class_keeps_the_coverage(classes: FlowClasses, inputs: RunInputs) -> None:
    flows = sorted(set(_all_case_flows(inputs)))
    chosen = representatives(classes, flows)
    assert coverage("finland", classes, chosen).complete
    assert len(chosen) == coverage("finland", classes, flows).classes < len(flows)
