"""Where a policy set can differ from the layout and the probes must look (issue 11, items 1-4).

Each test writes one realistic hole into a copy of the reference set and runs the whole chain (run
inputs, the widened layout, the suite's cases, the static target): the hole must show up as a leak in
the case that exists to catch it. Expected ports and flows are worked out by hand from the reference
layout (policies/tenancy.yaml) and the policy written here, never read back from the surface code.
"""

from __future__ import annotations

from pathlib import Path

from calico_conformance.config import RunConfig, resolve_run_config
from calico_conformance.reachability import Flow, MismatchKind, compare
from calico_conformance.run_inputs import RunInputs, load_run_inputs
from calico_conformance.suite.cases import (
    ReachabilityCase,
    default_deny_cases,
    other_dns_cases,
    requirement_matrix,
)
from calico_conformance.targets.registry import TARGETS
from calico_conformance.targets.static import StaticTarget
from calico_conformance.tenancy.layout import Service, load_layout
from calico_conformance.tenancy.surface import policy_surface

ROOT = Path(__file__).parents[2]


def _run(tmp_path: Path, extra: str) -> RunConfig:
    policies = tmp_path / "policies"
    policies.mkdir()
    for source in (ROOT / "policies" / "reference").glob("*.yaml"):
        (policies / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (policies / "99-hole.yaml").write_text(extra, encoding="utf-8")
    return resolve_run_config({"target": "static", "policies": str(policies)}, base_dir=ROOT, target_names=tuple(TARGETS))


def _leaks(run: RunConfig, inputs: RunInputs, case: ReachabilityCase) -> set[Flow]:
    """The flows of `case` the policy set allows although the layout requires them denied."""
    expected = requirement_matrix(inputs.layout, case.flows)
    comparison = compare(expected, StaticTarget(run, inputs.layout, inputs.resources).observe("finland", expected))
    assert {mismatch.kind for mismatch in comparison.mismatches} <= {MismatchKind.LEAK}
    return {mismatch.flow for mismatch in comparison.mismatches}


def _case(cases: list[ReachabilityCase], case_id: str) -> ReachabilityCase:
    return next(case for case in cases if case.id == case_id)


# --- 1. every workload is a destination of every source class -------------------------------------

LEDGER_OPEN_TO_THE_OUTSIDE = """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: application.ledger-partners, namespace: royal-bank}
spec:
  tier: application
  order: 1
  selector: app == "ledger"
  types: [Ingress]
  ingress:
    - {action: Allow, source: {nets: [192.0.2.0/24]}}
    - {action: Allow, source: {namespaceSelector: kubernetes.io/metadata.name == "conformance-outsider"}}
"""


def test_one_workload_opened_to_the_outsider_and_the_internet_fails_default_deny(tmp_path: Path) -> None:
    run = _run(tmp_path, LEDGER_OPEN_TO_THE_OUTSIDE)
    inputs = load_run_inputs(run)
    leaks = _leaks(run, inputs, _case(default_deny_cases(inputs.layout, ["finland"]), "finland-royal-bank"))
    assert Flow("conformance-outsider/sentinel", "royal-bank/ledger", 8443, "TCP") in leaks
    assert Flow("192.0.2.10", "royal-bank/ledger", 8443, "TCP") in leaks
    assert not any(flow.destination == "royal-bank/sentinel" for flow in leaks)  # only the ledger is open


# --- 2. every workload's egress ---------------------------------------------------------------------

LEDGER_EGRESS_TO_THE_OUTSIDER = """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: application.ledger-out, namespace: royal-bank}
spec:
  tier: application
  order: 1
  selector: app == "ledger"
  types: [Egress]
  egress: [{action: Allow, destination: {namespaceSelector: kubernetes.io/metadata.name == "conformance-outsider"}}]
"""


def test_one_workload_s_egress_to_the_outsider_fails_default_deny(tmp_path: Path) -> None:
    run = _run(tmp_path, LEDGER_EGRESS_TO_THE_OUTSIDER)
    inputs = load_run_inputs(run)
    leaks = _leaks(run, inputs, _case(default_deny_cases(inputs.layout, ["finland"]), "finland-royal-bank"))
    assert Flow("royal-bank/ledger", "conformance-outsider/sentinel", 8080, "TCP") in leaks
    assert not any(flow.source == "royal-bank/sentinel" for flow in leaks)


# --- 3. ports at the layout's edges -----------------------------------------------------------------


def test_the_layout_s_edges_and_the_ports_past_them_are_probed() -> None:
    layout = load_layout(ROOT / "policies" / "tenancy.yaml")
    inputs = load_run_inputs(
        resolve_run_config({"target": "static"}, base_dir=ROOT, target_names=tuple(TARGETS))
    )
    surface = policy_surface(inputs.resources, layout, [])
    # Declared: 8080 (sentinel), 8443, 7777/UDP, 5044, 9200, 53/UDP+TCP, 9153; exceptions add 6443/TCP.
    # Each edge and the port past it; the lowest edge of each protocol (53) also gets the port before it.
    edges = {
        *(Service(port, "TCP") for port in (52, 53, 54, 5044, 5045, 6443, 6444, 8080, 8081, 8443, 8444)),
        *(Service(port, "TCP") for port in (9153, 9154, 9200, 9201)),
        *(Service(port, "UDP") for port in (52, 53, 54, 7777, 7778)),
    }
    assert edges <= set(surface.layout_services) | set(surface.services)
    assert edges <= set(inputs.layout.canary_services)  # probed between every pair, DNS ports included
    assert Service(52, "TCP") in surface.layout_services  # the reference policies name no port below 53


# --- 4. impostors -----------------------------------------------------------------------------------

DNS_WITHOUT_ITS_NAMESPACE = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: platform.any-dns}
spec:
  tier: platform
  order: 50
  namespaceSelector: tenancy.golem-trust.io/role == "customer"
  selector: all()
  types: [Egress]
  egress: [{action: Allow, protocol: UDP, destination: {selector: k8s-app == "kube-dns", ports: [53]}}]
"""


def test_a_selector_that_lost_its_namespace_meets_an_impostor(tmp_path: Path) -> None:
    """`k8s-app == "kube-dns"` without the kube-system namespace selector matches any pod with that label:
    an impostor carrying it in the outsider namespace (whose ingress nothing restricts) receives DNS."""
    run = _run(tmp_path, DNS_WITHOUT_ITS_NAMESPACE)
    inputs = load_run_inputs(run)
    impostors = [w for w in inputs.layout.all_workloads if w.name.startswith("impostor-") and dict(w.labels) == {"k8s-app": "kube-dns"}]
    assert "kube-system" not in {w.namespace for w in impostors}  # the layout places it there already
    assert {w.namespace for w in impostors} == {n.name for n in inputs.layout.all_namespaces} - {"kube-system"}
    (outsider,) = [w.key for w in impostors if w.namespace == "conformance-outsider"]
    leak = Flow("royal-bank/ledger", outsider, 53, "UDP")
    assert not requirement_matrix(inputs.layout, [leak])[leak].allowed
    assert leak in _leaks(run, inputs, _case(other_dns_cases(inputs.layout, ["finland"]), "finland-royal-bank"))
    assert leak in _leaks(run, inputs, _case(default_deny_cases(inputs.layout, ["finland"]), "finland-royal-bank"))


def test_the_reference_set_passes_with_its_impostors() -> None:
    run = resolve_run_config({"target": "static"}, base_dir=ROOT, target_names=tuple(TARGETS))
    inputs = load_run_inputs(run)
    labels = {dict(w.labels).popitem() for w in inputs.layout.all_workloads if w.name.startswith("impostor-")}
    assert labels == {("k8s-app", "kube-dns"), ("app", "log-collector")}  # what the reference selectors test
    for case in default_deny_cases(inputs.layout, ["finland"]):
        assert _leaks(run, inputs, case) == set(), case.id


SCTP_BETWEEN_CUSTOMERS = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.sctp}
spec:
  tier: security
  order: 1
  namespaceSelector: tenancy.golem-trust.io/role == "customer"
  selector: all()
  types: [Ingress, Egress]
  ingress: [{action: Allow, protocol: SCTP, destination: {ports: [7000]}}]
  egress: [{action: Allow, protocol: SCTP, destination: {ports: [7000]}}]
"""


def test_every_stretch_of_a_protocol_a_rule_names_is_probed_from_port_one(tmp_path: Path) -> None:
    """SCTP stretches: [1, 7000), [7000, 7001), [7001, 65535]; 6999, 7000, 7001 and the canary 9999 probe them."""
    run = _run(tmp_path, SCTP_BETWEEN_CUSTOMERS)
    inputs = load_run_inputs(run)
    sctp = {s.port for s in inputs.layout.canary_services if s.protocol == "SCTP"}
    assert sctp == {6999, 7000, 7001, 9999}
