"""The static target, the cases it answers and the scenarios it writes, over the reference layout.

What is proven here: observations are the oracle's verdicts with the deciding policy named, facts come
from the register and the layout, every layout workload has its own deterministic address, a policy set
with a hole shows up as a leak, the tier scenarios come out as their hand-written answers, and a
reproduce scenario replays to the same verdicts. Expected values are written by hand from the reference
policies and the runbook, never read back from the code under test.
"""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

import pytest

from calico_conformance.config import RunConfig, resolve_run_config
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.loader import load_manifests
from calico_conformance.oracle.model import ResourceSet
from calico_conformance.oracle.scenario import scenario_from_data
from calico_conformance.reachability import Flow, MismatchKind, ProbeVerdict, compare
from calico_conformance.suite.cases import (
    default_deny_cases,
    denied_matrix,
    exception_cases,
    isolation_cases,
    requirement_matrix,
)
from calico_conformance.suite.reproduce import layout_scenario, scenario_path, write_scenario
from calico_conformance.suite.tier_scenarios import CLIENT_FLOW, CONTROL_FLOW, TIER_SCENARIOS, TierScenario
from calico_conformance.targets.base import ScenarioTarget
from calico_conformance.targets.registry import TARGETS, require_target
from calico_conformance.targets.static import StaticTarget
from calico_conformance.tenancy.layout import TenancyLayout, load_layout
from calico_conformance.tenancy.register import load_register
from calico_conformance.tenancy.workloads import layout_pods

ROOT = Path(__file__).parents[2]


def policy_set(directory: Path, text: str) -> ResourceSet:
    """A policy set written inline, loaded as a file of it."""
    path = directory / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return load_manifests([path])
CLUSTERS = ("finland", "germany", "helsinki")


@pytest.fixture(scope="module")
def run() -> RunConfig:
    return resolve_run_config({"target": "static"}, base_dir=ROOT, target_names=tuple(TARGETS))


@pytest.fixture(scope="module")
def layout(run: RunConfig) -> TenancyLayout:
    return load_layout(run.layout)


@pytest.fixture(scope="module")
def reference(run: RunConfig) -> ResourceSet:
    return load_manifests([run.policies])


@pytest.fixture(scope="module")
def target(run: RunConfig, layout: TenancyLayout, reference: ResourceSet) -> StaticTarget:
    built = StaticTarget(run, layout, reference)
    built.prepare()
    return built


def test_static_is_registered_and_has_no_dataplane(target: StaticTarget) -> None:
    assert require_target("static").name == "static"
    assert target.has_dataplane is False
    assert isinstance(target, ScenarioTarget)


def test_a_live_target_without_its_binaries_suggests_static(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda _binary: None)
    with pytest.raises(pytest.UsageError) as refused:
        require_target("kind")
    assert "use --target=static" in str(refused.value)


def test_facts_are_the_register_and_the_layout(target: StaticTarget) -> None:
    finland = target.facts("finland")
    assert (str(finland.pod_subnet), str(finland.service_subnet)) == ("10.244.0.0/16", "10.96.0.0/16")
    assert finland.network_mtu == 1500
    assert finland.installation["spec"]["calicoNetwork"]["mtu"] == 1450
    assert finland.installation["spec"]["calicoNetwork"]["ipPools"][0]["cidr"] == "10.244.0.0/16"
    assert finland.source == "register"
    assert "mtu" not in target.facts("germany").installation["spec"]["calicoNetwork"]  # auto-detected


def test_each_workload_gets_its_own_address_in_the_cluster_pod_subnet(layout: TenancyLayout) -> None:
    for spec in load_register(ROOT / "kind-configs"):
        pods = layout_pods(layout, spec.pod_subnet)
        assert len({pod.ip for pod in pods}) == len(pods) == len(layout.all_workloads)
        assert all(pod.ip in spec.pod_subnet for pod in pods)
    first = layout_pods(layout, load_register(ROOT / "kind-configs")[1].pod_subnet)[0]
    assert (first.key, first.ip) == ("royal-bank/sentinel", ip_address("10.245.0.10"))


def test_probe_pods_listen_on_the_canary_ports_too(layout: TenancyLayout) -> None:
    pods = {pod.key: pod for pod in layout_pods(layout, load_register(ROOT / "kind-configs")[0].pod_subnet)}
    collector = {(port.port, port.protocol, port.name) for port in pods["platform/log-collector"].ports}
    assert collector == {(5044, "TCP", "beats"), (9200, "TCP", "admin"), (9999, "TCP", None), (9999, "UDP", None)}


def test_the_logging_exception_is_allowed_and_named(target: StaticTarget) -> None:
    flow = Flow("royal-bank/ledger", "platform/log-collector", 5044, "TCP")
    observation = target.observe("finland", denied_matrix([flow], "probe"))[flow]
    assert observation.verdict is ProbeVerdict.ALLOWED
    assert "application.allow-logging" in observation.why
    assert "application.accept-logging" in observation.why


def test_cross_customer_traffic_is_dropped_by_the_security_tier(target: StaticTarget) -> None:
    flow = Flow("royal-bank/ledger", "customer-a/shop", 8443, "TCP")
    observation = target.observe("germany", denied_matrix([flow], "probe"))[flow]
    assert observation.verdict is ProbeVerdict.DROPPED
    assert "security.isolate-tenant rule 0 (Deny)" in observation.why


def test_a_policy_set_without_policies_leaks_everywhere(run: RunConfig, layout: TenancyLayout) -> None:
    empty = StaticTarget(run, layout, ResourceSet())
    cases = isolation_cases(layout, ["finland"])
    case = next(case for case in cases if case.id == "finland-customer-a-tcp-8443")
    comparison = compare(denied_matrix(case.flows, "isolation"), empty.observe("finland", denied_matrix(case.flows, "")))
    assert {mismatch.kind for mismatch in comparison.mismatches} == {MismatchKind.LEAK}
    assert len(comparison.mismatches) == len(case.flows) == 8  # 2 x 2 workloads, both directions


def test_isolation_cases_cover_every_service_both_ways(layout: TenancyLayout) -> None:
    ids = {case.id for case in isolation_cases(layout, CLUSTERS)}
    assert {"finland-customer-a-tcp-8443", "germany-customer-b-udp-7777", "helsinki-customer-a-udp-9999"} <= ids
    assert "finland-customer-b-tcp-8443" in ids  # royal-bank's ledger port, probed against customer-b too
    assert not any(case_id.startswith(f"{cluster}-royal-bank-") for case_id in ids for cluster in CLUSTERS)
    case = next(case for case in isolation_cases(layout, ["finland"]) if case.id == "finland-customer-b-udp-7777")
    assert Flow("customer-b/game-server", "royal-bank/ledger", 7777, "UDP") in case.flows
    assert Flow("royal-bank/ledger", "customer-b/game-server", 7777, "UDP") in case.flows


def test_isolation_and_default_deny_are_proven_on_icmp_too(
    tmp_path: Path, run: RunConfig, layout: TenancyLayout
) -> None:
    # A GlobalNetworkPolicy allowing ICMP between customer namespaces opens no port, yet royal-bank can
    # be pinged from customer-a: the tenancy agreement promises no traffic at all, either way.
    pings = policy_set(
        tmp_path,
        """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: allow-ping-between-customers}
spec:
  namespaceSelector: tenancy.golem-trust.io/role == "customer"
  selector: all()
  types: [Ingress, Egress]
  ingress: [{action: Allow, protocol: ICMP}]
  egress: [{action: Allow, protocol: ICMP}]
""",
    )
    target = StaticTarget(run, layout, pings)
    case = next(case for case in isolation_cases(layout, ["finland"]) if case.id == "finland-customer-a-icmp")
    assert Flow("customer-a/shop", "royal-bank/ledger", None, "ICMP") in case.flows
    assert Flow("royal-bank/ledger", "customer-a/shop", None, "ICMP") in case.flows
    isolation = compare(denied_matrix(case.flows, "isolation"), target.observe("finland", denied_matrix(case.flows, "")))
    assert {mismatch.kind for mismatch in isolation.mismatches} == {MismatchKind.LEAK}
    assert len(isolation.mismatches) == len(case.flows) == 8  # 2 x 2 workloads, both directions

    deny = next(case for case in default_deny_cases(layout, ["finland"]) if case.id == "finland-royal-bank")
    assert Flow("royal-bank/sentinel", "192.0.2.10", None, "ICMP") in deny.flows
    ping_in = Flow("customer-b/sentinel", "royal-bank/sentinel", None, "ICMP")
    assert ping_in in deny.flows
    assert not requirement_matrix(layout, [ping_in])[ping_in].allowed
    observed = target.observe("finland", denied_matrix([ping_in], ""))
    assert observed[ping_in].verdict is ProbeVerdict.ALLOWED


def test_the_exception_case_probes_the_closed_port_of_its_destination(layout: TenancyLayout) -> None:
    case = next(case for case in exception_cases(layout, ["finland"]) if case.id == "finland-royal-bank-logging")
    expected = requirement_matrix(layout, case.flows)
    allowed = {flow for flow in expected if expected[flow].allowed}
    assert allowed == {
        Flow("royal-bank/sentinel", "platform/log-collector", 5044, "TCP"),
        Flow("royal-bank/ledger", "platform/log-collector", 5044, "TCP"),
    }
    assert Flow("royal-bank/ledger", "platform/log-collector", 9200, "TCP") in expected


def test_an_exception_to_the_outside_opens_no_pod_and_no_other_port(layout: TenancyLayout) -> None:
    case = next(case for case in exception_cases(layout, ["finland"]) if case.id == "finland-kube-dns-upstream")
    expected = requirement_matrix(layout, case.flows)
    assert expected[Flow("kube-system/kube-dns", "192.0.2.10", 53, "UDP")].allowed
    assert expected[Flow("kube-system/kube-dns", "192.0.2.10", 6443, "TCP")].allowed
    assert not expected[Flow("kube-system/kube-dns", "192.0.2.10", 9999, "TCP")].allowed
    assert not expected[Flow("kube-system/kube-dns", "conformance-outsider/sentinel", 53, "UDP")].allowed


def test_default_deny_probes_against_the_unrestricted_outsider(layout: TenancyLayout) -> None:
    case = next(case for case in default_deny_cases(layout, ["finland"]) if case.id == "finland-royal-bank")
    assert Flow("conformance-outsider/sentinel", "royal-bank/sentinel", 8080, "TCP") in case.flows
    assert Flow("royal-bank/sentinel", "conformance-outsider/sentinel", 8080, "TCP") in case.flows
    assert Flow("royal-bank/sentinel", "192.0.2.10", 9999, "UDP") in case.flows


@pytest.mark.parametrize("scenario", TIER_SCENARIOS, ids=lambda scenario: scenario.name)
def test_tier_scenarios_come_out_as_calico_documents(target: StaticTarget, scenario: TierScenario) -> None:
    observed = target.observe_scenario("finland", scenario_from_data(scenario.scenario_data("3.31"), scenario.name))
    assert (observed[CLIENT_FLOW].verdict is ProbeVerdict.ALLOWED) is scenario.client_allowed
    assert (observed[CONTROL_FLOW].verdict is ProbeVerdict.ALLOWED) is scenario.control_allowed
    assert compare(scenario.expected(), observed).ok


def test_a_reproduce_scenario_replays_to_the_same_verdicts(
    tmp_path: Path, run: RunConfig, layout: TenancyLayout, target: StaticTarget
) -> None:
    flows = [
        Flow("royal-bank/ledger", "platform/log-collector", 5044, "TCP"),
        Flow("royal-bank/ledger", "customer-a/shop", 8443, "TCP"),
        Flow("customer-a/sentinel", "kube-system/kube-dns", 53, "UDP"),
        Flow("royal-bank/sentinel", "192.0.2.10", 9999, "TCP"),
    ]
    data = layout_scenario(layout, load_register(run.kind_configs)[2].pod_subnet, run.policies, "3.31", flows, "t")
    path = scenario_path(tmp_path, "helsinki", "test_x[helsinki-a/b]")
    command = write_scenario(path, data)
    assert path == tmp_path / "scenarios" / "helsinki-test_x-helsinki-a-b.yaml"
    assert " simulate " in command  # the CLI as it runs from here: see test_report_reproduce.py
    assert command.endswith("helsinki-test_x-helsinki-a-b.yaml")
    replayed = Oracle.from_scenario(scenario_from_data(data, str(path)))
    observed = target.observe("helsinki", denied_matrix(flows, "probe"))
    for flow in flows:
        assert replayed.verdict_for(flow).allowed is (observed[flow].verdict is ProbeVerdict.ALLOWED)
