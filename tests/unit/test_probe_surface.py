"""The probe surface: every port, protocol and outside address a policy set names gets probed.

Expected values are worked out by hand from the policies written here: a rule on port P opens P and its
neighbour P+1 begins the stretch it does not open; a network's first address and the one after it are
the two sides of its edge. The last tests run the whole chain (run inputs, cases, static target) on a
policy set whose one hole sits where the layout's fixed probes never look.
"""

from __future__ import annotations

from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from calico_conformance.cluster.images import NETSHOOT_IMAGE
from calico_conformance.cluster.probe_pods import plan_probe_pods, render_probe_pod
from calico_conformance.cluster.schemas import validate_manifest
from calico_conformance.config import RunConfig, resolve_run_config
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.loader import load_manifests
from calico_conformance.oracle.model import ResourceSet
from calico_conformance.oracle.scenario import scenario_from_data
from calico_conformance.reachability import Flow, MismatchKind, compare
from calico_conformance.run_inputs import load_run_inputs
from calico_conformance.suite.cases import default_deny_cases, denied_matrix, isolation_cases, other_dns_cases
from calico_conformance.suite.reproduce import layout_scenario
from calico_conformance.targets.registry import TARGETS
from calico_conformance.targets.static import StaticTarget
from calico_conformance.tenancy.layout import Service, TenancyLayout, load_layout
from calico_conformance.tenancy.surface import policy_surface, widen_layout

ROOT = Path(__file__).parents[2]
CLUSTER_RANGES = [ip_network(cidr) for cidr in ("10.244.0.0/16", "10.245.0.0/16", "10.246.0.0/16", "10.96.0.0/16")]

OPEN_BETWEEN_CUSTOMERS = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {{name: security.hole}}
spec:
  tier: security
  order: 1
  namespaceSelector: tenancy.golem-trust.io/role == "customer"
  selector: all()
  types: [Ingress, Egress]
  ingress: [{{action: Allow, protocol: {protocol}, destination: {{ports: [{ports}]}}}}]
  egress: [{{action: Allow, protocol: {protocol}, destination: {{ports: [{ports}]}}}}]
"""


@pytest.fixture(scope="module")
def layout() -> TenancyLayout:
    return load_layout(ROOT / "policies" / "tenancy.yaml")


def _policies(directory: Path, text: str) -> ResourceSet:
    path = directory / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return load_manifests([path])


def test_a_port_and_the_port_after_it_are_probed(tmp_path: Path, layout: TenancyLayout) -> None:
    resources = _policies(tmp_path, OPEN_BETWEEN_CUSTOMERS.format(protocol="TCP", ports="22"))
    surface = policy_surface(resources, layout, CLUSTER_RANGES)
    assert surface.services == (Service(22, "TCP"), Service(23, "TCP"))
    assert surface.outside_addresses == ()


def test_a_range_up_to_the_last_port_is_probed_at_its_start(tmp_path: Path, layout: TenancyLayout) -> None:
    resources = _policies(tmp_path, OPEN_BETWEEN_CUSTOMERS.format(protocol="UDP", ports='"10000:65535"'))
    assert policy_surface(resources, layout, CLUSTER_RANGES).services == (Service(10000, "UDP"),)


def test_sctp_is_probed_only_where_a_rule_names_it(tmp_path: Path, layout: TenancyLayout) -> None:
    resources = _policies(tmp_path, OPEN_BETWEEN_CUSTOMERS.format(protocol="SCTP", ports="7000"))
    services = set(policy_surface(resources, layout, CLUSTER_RANGES).services)
    assert services == {Service(7000, "SCTP"), Service(7001, "SCTP"), Service(9999, "SCTP")}


def test_the_layout_s_own_probes_are_not_repeated(layout: TenancyLayout) -> None:
    reference = load_manifests([ROOT / "policies" / "reference"])
    services = set(policy_surface(reference, layout, CLUSTER_RANGES).services)
    # The reference set names 53 (UDP, TCP), 5044 and 6443 (TCP); 53 is probed already as DNS.
    assert services == {
        Service(54, "UDP"),
        Service(54, "TCP"),
        Service(5044, "TCP"),
        Service(5045, "TCP"),
        Service(6443, "TCP"),
        Service(6444, "TCP"),
    }


def test_networks_are_probed_on_both_sides_of_their_edge_outside_the_clusters(
    tmp_path: Path, layout: TenancyLayout
) -> None:
    resources = _policies(
        tmp_path,
        """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: out, namespace: royal-bank}
spec:
  selector: all()
  types: [Egress]
  egress:
    - {action: Allow, destination: {nets: [8.8.8.8/32, 10.244.0.0/16, 0.0.0.0/0]}}
    - {action: Allow, destination: {nets: ["2001:db8::/32"]}}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: partners, labels: {partner: "yes"}}
spec: {nets: [203.0.113.0/24]}
""",
    )
    addresses = policy_surface(resources, layout, CLUSTER_RANGES).outside_addresses
    # 10.244.0.0/16 and the address after it (10.245.0.0) are pod ranges; 0.0.0.0/0 has no edge to probe;
    # the clusters are IPv4.
    assert addresses == tuple(map(ip_address, ("8.8.8.8", "8.8.8.9", "203.0.113.0", "203.0.114.0")))


def _run(tmp_path: Path, extra: str) -> RunConfig:
    policies = tmp_path / "policies"
    policies.mkdir()
    for source in (ROOT / "policies" / "reference").glob("*.yaml"):
        (policies / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (policies / "99-hole.yaml").write_text(extra, encoding="utf-8")
    return resolve_run_config(
        {"target": "static", "policies": str(policies)}, base_dir=ROOT, target_names=tuple(TARGETS)
    )


def test_a_hole_on_a_port_nobody_declares_fails_royal_bank_isolation(tmp_path: Path) -> None:
    run = _run(tmp_path, OPEN_BETWEEN_CUSTOMERS.format(protocol="TCP", ports="22"))
    inputs = load_run_inputs(run)
    case = next(case for case in isolation_cases(inputs.layout, ["finland"]) if case.id == "finland-customer-a-tcp-22")
    target = StaticTarget(run, inputs.layout, inputs.resources)
    comparison = compare(denied_matrix(case.flows, "isolation"), target.observe("finland", denied_matrix(case.flows, "")))
    assert {mismatch.kind for mismatch in comparison.mismatches} == {MismatchKind.LEAK}
    assert Flow("customer-a/shop", "royal-bank/ledger", 22, "TCP") in {m.flow for m in comparison.mismatches}


def test_dns_to_a_public_resolver_fails_the_dns_suite(tmp_path: Path) -> None:
    run = _run(
        tmp_path,
        """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: application.public-dns, namespace: royal-bank}
spec:
  tier: application
  order: 1
  selector: all()
  types: [Egress]
  egress: [{action: Allow, protocol: UDP, destination: {nets: [8.8.8.8/32], ports: [53]}}]
""",
    )
    inputs = load_run_inputs(run)
    case = next(case for case in other_dns_cases(inputs.layout, ["finland"]) if case.id == "finland-royal-bank")
    leak = Flow("royal-bank/ledger", "8.8.8.8", 53, "UDP")
    assert leak in case.flows
    target = StaticTarget(run, inputs.layout, inputs.resources)
    comparison = compare(denied_matrix(case.flows, "dns"), target.observe("finland", denied_matrix(case.flows, "")))
    assert leak in {mismatch.flow for mismatch in comparison.mismatches}


def test_https_to_the_internet_fails_default_deny(tmp_path: Path) -> None:
    run = _run(
        tmp_path,
        """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: application.internet, namespace: royal-bank}
spec:
  tier: application
  order: 1
  selector: all()
  types: [Egress]
  egress: [{action: Allow, protocol: TCP, destination: {nets: [0.0.0.0/0], ports: [443]}}]
""",
    )
    inputs = load_run_inputs(run)
    case = next(case for case in default_deny_cases(inputs.layout, ["finland"]) if case.id == "finland-royal-bank")
    leak = Flow("royal-bank/sentinel", "192.0.2.10", 443, "TCP")
    assert leak in case.flows
    target = StaticTarget(run, inputs.layout, inputs.resources)
    assert target.observe("finland", denied_matrix([leak], ""))[leak].verdict.value == "allowed"


def test_widening_remembers_which_outside_addresses_a_policy_names(tmp_path: Path, layout: TenancyLayout) -> None:
    resources = _policies(tmp_path, OPEN_BETWEEN_CUSTOMERS.format(protocol="TCP", ports="22"))
    resources = resources.merged(_policies(tmp_path, "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\n"
                                           "metadata: {name: partners}\nspec: {nets: [203.0.113.0/24]}\n"))
    widened = widen_layout(layout, policy_surface(resources, layout, CLUSTER_RANGES))
    # Live targets send from the layout's own address in its place, never from one a rule matches itself.
    assert widened.policy_outside_addresses == (ip_address("203.0.113.0"), ip_address("203.0.114.0"))
    assert widened.outside_addresses == (ip_address("192.0.2.10"), *widened.policy_outside_addresses)


def test_widening_keeps_the_requirement(layout: TenancyLayout) -> None:
    surface = policy_surface(load_manifests([ROOT / "policies" / "reference"]), layout, CLUSTER_RANGES)
    widened = widen_layout(layout, surface)
    assert widened.canary_services[: len(layout.canary_services)] == layout.canary_services
    # kube-dns's upstream exception covers any outside address, derived ones too; customers get nothing.
    assert widened.requirement(Flow("kube-system/kube-dns", "192.0.2.10", 53, "UDP"))[0]
    assert not widened.requirement(Flow("royal-bank/ledger", "customer-a/shop", 5044, "TCP"))[0]


def test_the_reference_set_reads_only_labels_the_layout_s_workloads_carry(layout: TenancyLayout) -> None:
    # app and k8s-app are on layout workloads; tenancy.golem-trust.io/role and kubernetes.io/metadata.name
    # are read by namespace selectors only.
    reference = load_manifests([ROOT / "policies" / "reference"])
    assert dict(policy_surface(reference, layout, CLUSTER_RANGES).stranger_labels) == {}


def test_a_label_no_layout_workload_carries_puts_a_stranger_in_every_namespace(
    tmp_path: Path, layout: TenancyLayout
) -> None:
    resources = _policies(
        tmp_path,
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-debuggers, namespace: royal-bank}
spec:
  podSelector: {matchExpressions: [{key: tier, operator: Exists}]}
  ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {debug: "true"}}}]}]
""",
    )
    surface = policy_surface(resources, layout, CLUSTER_RANGES)
    assert dict(surface.stranger_labels) == {"debug": "true", "tier": "probe"}
    widened = widen_layout(layout, surface)
    strangers = [w for w in widened.all_workloads if w.name == "stranger"]
    assert {w.namespace for w in strangers} == {n.name for n in layout.all_namespaces}
    assert all(w.ports == (Service(8080, "TCP", "http"),) for w in strangers)
    assert not widened.requirement(Flow("customer-a/stranger", "royal-bank/stranger", 8080, "TCP"))[0]


def test_a_label_value_no_pod_can_carry_is_not_put_on_the_stranger(tmp_path: Path, layout: TenancyLayout) -> None:
    # Kubernetes label values are at most 63 alphanumerics, '-', '_' or '.': no pod matches "yes please", and
    # a probe pod labelled so would be refused, so the next test of the key that a pod can meet is chosen.
    resources = _policies(
        tmp_path,
        """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: odd, namespace: royal-bank}
spec:
  selector: all()
  types: [Ingress]
  ingress:
    - {action: Allow, source: {selector: 'debug == "yes please" || debug == "true"'}}
    - {action: Allow, source: {selector: 'note == "not a label value"'}}
""",
    )
    surface = policy_surface(resources, layout, CLUSTER_RANGES)
    assert dict(surface.stranger_labels) == {"debug": "true"}
    stranger = widen_layout(layout, surface).workload("customer-a/stranger")
    (pod,) = plan_probe_pods([stranger], ["n"])
    assert validate_manifest(render_probe_pod(pod, image=NETSHOOT_IMAGE, agent_source="", run_id="r1")) == []


def test_a_hole_for_a_label_no_probe_carried_fails_royal_bank_isolation(tmp_path: Path) -> None:
    run = _run(
        tmp_path,
        """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.debuggers}
spec:
  tier: security
  order: 1
  namespaceSelector: tenancy.golem-trust.io/role == "customer"
  selector: all()
  types: [Ingress, Egress]
  ingress: [{action: Allow, source: {selector: debug == "true"}}]
  egress: [{action: Allow, destination: {selector: debug == "true"}}]
""",
    )
    inputs = load_run_inputs(run)
    case = next(case for case in isolation_cases(inputs.layout, ["finland"]) if case.id == "finland-customer-a-tcp-8080")
    # Both ends must carry the label: the source's egress rule and the destination's ingress rule read it.
    leak = Flow("customer-a/stranger", "royal-bank/stranger", 8080, "TCP")
    assert leak in case.flows
    target = StaticTarget(run, inputs.layout, inputs.resources)
    assert target.observe("finland", denied_matrix([leak], ""))[leak].verdict.value == "allowed"


# --- service accounts (calico-semantics.md §2.2: serviceAccounts.names is `projectcalico.org/serviceaccount
# in {...}`; §2.3: a pod carries its account's labels as `pcsa.<key>` and its name as the pseudo-label) ---

BATCH_BETWEEN_CUSTOMERS = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.batch-jobs}
spec:
  tier: security
  order: 1
  namespaceSelector: tenancy.golem-trust.io/role == "customer"
  selector: all()
  types: [Ingress, Egress]
  ingress: [{action: Allow, source: {serviceAccounts: {names: [batch, default]}}}]
  egress: [{action: Allow, destination: {serviceAccounts: {names: [batch]}}}]
"""

ACCOUNT_LABELS_BETWEEN_CUSTOMERS = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.team-batch}
spec:
  tier: security
  order: 1
  namespaceSelector: tenancy.golem-trust.io/role == "customer"
  selector: all()
  types: [Ingress, Egress]
  ingress: [{action: Allow, source: {serviceAccounts: {selector: team == "batch"}}}]
  egress: [{action: Allow, destination: {serviceAccounts: {selector: team == "batch"}}}]
"""


def test_the_reference_set_names_no_service_account(layout: TenancyLayout) -> None:
    reference = load_manifests([ROOT / "policies" / "reference"])
    surface = policy_surface(reference, layout, CLUSTER_RANGES)
    assert (surface.stranger_accounts, dict(surface.stranger_account_labels)) == ((), {})
    declared = {w.key: w.service_account for w in layout.all_workloads}
    widened = {w.key: w.service_account for w in widen_layout(layout, surface).all_workloads}
    assert {key: account for key, account in widened.items() if key in declared} == declared
    assert {account for key, account in widened.items() if key not in declared} == {"default"}  # impostors


def test_an_account_a_policy_names_runs_a_stranger_in_every_namespace(tmp_path: Path, layout: TenancyLayout) -> None:
    surface = policy_surface(_policies(tmp_path, BATCH_BETWEEN_CUSTOMERS), layout, CLUSTER_RANGES)
    # `default` is every layout workload's account already: nothing new to probe there.
    assert surface.stranger_accounts == ("batch",)
    widened = widen_layout(layout, surface)
    strangers = [w for w in widened.all_workloads if w.service_account == "batch"]
    assert {(w.namespace, w.name) for w in strangers} == {(n.name, "stranger-as-batch") for n in layout.all_namespaces}
    assert all(w.ports == (Service(8080, "TCP", "http"),) for w in strangers)
    assert not widened.requirement(Flow("customer-a/stranger-as-batch", "royal-bank/stranger-as-batch", 8080, "TCP"))[0]


def test_account_labels_and_names_in_any_selector_are_read(tmp_path: Path, layout: TenancyLayout) -> None:
    resources = _policies(
        tmp_path,
        """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: jobs, namespace: royal-bank}
spec:
  selector: all()
  serviceAccountSelector: team == "batch"
  types: [Ingress, Egress]
  ingress: [{action: Allow, source: {serviceAccounts: {selector: 'tier in {"b", "a"}'}}}]
  egress:
    - {action: Allow, destination: {selector: pcsa.owner == "ops" && projectcalico.org/serviceaccount == "jobs"}}
    - {action: Allow, destination: {selector: pcsa.projectcalico.org/name == "cron"}}
""",
    )
    surface = policy_surface(resources, layout, CLUSTER_RANGES)
    assert surface.stranger_accounts == ("jobs", "cron")
    assert dict(surface.stranger_account_labels) == {"team": "batch", "tier": "a", "owner": "ops"}
    assert dict(surface.stranger_labels) == {}  # pcsa. and projectcalico.org/ keys are never a pod's own


def test_account_labels_alone_give_a_stranger_account(tmp_path: Path, layout: TenancyLayout) -> None:
    surface = policy_surface(_policies(tmp_path, ACCOUNT_LABELS_BETWEEN_CUSTOMERS), layout, CLUSTER_RANGES)
    assert surface.stranger_accounts == ("stranger",)
    widened = widen_layout(layout, surface)
    stranger = widened.workload("customer-b/stranger-as-stranger")
    assert (stranger.service_account, dict(stranger.service_account_labels)) == ("stranger", {"team": "batch"})


def test_a_hole_for_an_account_no_probe_ran_as_fails_royal_bank_isolation(tmp_path: Path) -> None:
    run = _run(tmp_path, BATCH_BETWEEN_CUSTOMERS)
    inputs = load_run_inputs(run)
    case = next(case for case in isolation_cases(inputs.layout, ["finland"]) if case.id == "finland-customer-a-tcp-8080")
    leak = Flow("customer-a/stranger-as-batch", "royal-bank/stranger-as-batch", 8080, "TCP")
    assert leak in case.flows
    target = StaticTarget(run, inputs.layout, inputs.resources)
    comparison = compare(denied_matrix(case.flows, "isolation"), target.observe("finland", denied_matrix(case.flows, "")))
    assert leak in {mismatch.flow for mismatch in comparison.mismatches}
    # Only the batch pods are let through: the sentinels still cannot reach each other.
    assert Flow("customer-a/sentinel", "royal-bank/sentinel", 8080, "TCP") not in {m.flow for m in comparison.mismatches}


def test_a_hole_for_account_labels_fails_royal_bank_isolation(tmp_path: Path) -> None:
    # The leak is only visible if the oracle sees the stranger account's labels as the pods' pcsa.team.
    run = _run(tmp_path, ACCOUNT_LABELS_BETWEEN_CUSTOMERS)
    inputs = load_run_inputs(run)
    leak = Flow("customer-a/stranger-as-stranger", "royal-bank/stranger-as-stranger", 9999, "UDP")
    case = next(case for case in isolation_cases(inputs.layout, ["finland"]) if case.id == "finland-customer-a-udp-9999")
    assert leak in case.flows
    target = StaticTarget(run, inputs.layout, inputs.resources)
    assert target.observe("finland", denied_matrix([leak], ""))[leak].verdict.value == "allowed"


def test_a_reproduce_scenario_keeps_the_stranger_s_account_and_its_labels(tmp_path: Path) -> None:
    run = _run(tmp_path, ACCOUNT_LABELS_BETWEEN_CUSTOMERS)
    inputs = load_run_inputs(run)
    leak = Flow("customer-a/stranger-as-stranger", "royal-bank/stranger-as-stranger", 8080, "TCP")
    data = layout_scenario(inputs.layout, inputs.cluster("finland").pod_subnet, run.policies, "3.31", [leak], "t")
    # Replayed as the run judged it: allowed, because the account's team label is batch.
    assert Oracle.from_scenario(scenario_from_data(data, "<reproduce>")).verdict_for(leak).allowed


# --- ingress from outside the cluster ---------------------------------------------------------------


def test_a_partner_network_admitted_into_royal_bank_fails_default_deny(tmp_path: Path) -> None:
    run = _run(
        tmp_path,
        """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: application.partner-ingress, namespace: royal-bank}
spec:
  tier: application
  order: 1
  selector: all()
  types: [Ingress]
  ingress: [{action: Allow, source: {nets: [203.0.113.0/24]}}]
""",
    )
    inputs = load_run_inputs(run)
    case = next(case for case in default_deny_cases(inputs.layout, ["finland"]) if case.id == "finland-royal-bank")
    leaks = [Flow("203.0.113.0", "royal-bank/sentinel", 8080, "TCP"), Flow("203.0.113.0", "royal-bank/sentinel", None, "ICMP")]
    assert set(leaks) <= set(case.flows)
    target = StaticTarget(run, inputs.layout, inputs.resources)
    comparison = compare(denied_matrix(case.flows, "default deny"), target.observe("finland", denied_matrix(case.flows, "")))
    wrong = {mismatch.flow for mismatch in comparison.mismatches}
    assert set(leaks) <= wrong
    # The network's edge: the address after it is still denied.
    assert Flow("203.0.114.0", "royal-bank/sentinel", 8080, "TCP") in set(case.flows) - wrong


def test_a_ping_from_anywhere_outside_fails_default_deny(tmp_path: Path) -> None:
    # 0.0.0.0/0 has no edge to derive an address from: the layout's own outside address is the source.
    run = _run(
        tmp_path,
        """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: application.pingable, namespace: customer-b}
spec:
  tier: application
  order: 1
  selector: all()
  types: [Ingress]
  ingress: [{action: Allow, protocol: ICMP, source: {nets: [0.0.0.0/0]}}]
""",
    )
    inputs = load_run_inputs(run)
    case = next(case for case in default_deny_cases(inputs.layout, ["finland"]) if case.id == "finland-customer-b")
    leak = Flow("192.0.2.10", "customer-b/sentinel", None, "ICMP")
    assert leak in case.flows
    target = StaticTarget(run, inputs.layout, inputs.resources)
    assert target.observe("finland", denied_matrix([leak], ""))[leak].verdict.value == "allowed"
