"""The tenancy layout: the reference file reads as documented, the requirement says what the agreement
says, and every bad layout is an error at `file:line` naming what is wrong.

Expected lines are found by searching the test's own YAML for a marker, never taken from the reader.
"""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

import pytest

from calico_conformance.oracle.errors import LocatedError
from calico_conformance.reachability import Flow
from calico_conformance.tenancy.layout import ROYAL_BANK, Role, Service, TenancyLayout, load_layout

REFERENCE = Path(__file__).parents[2] / "policies" / "tenancy.yaml"

MINIMAL = """\
apiVersion: calico-conformance/v1
kind: TenancyLayout
sentinel:
  name: sentinel
  labels: {app: sentinel}
  ports: [{port: 8080, protocol: TCP}]
canary:
  ports: [{port: 9999, protocol: TCP}]
  outside: [192.0.2.10]
outsider: nobody
namespaces:
  - name: royal-bank
    role: customer
    resolvesDns: true
  - name: other-bank
    role: customer
  - name: kube-system
    role: system
    workloads:
      - name: kube-dns
        labels: {k8s-app: kube-dns}
        ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
exceptions:
  - name: bank-to-bank
    from: {namespace: royal-bank}
    to: {namespace: other-bank, workload: sentinel}
    ports: [{port: 8080, protocol: TCP}]
    why: a test exception
dns:
  server: {namespace: kube-system, workload: kube-dns}
  ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
  otherServers: [192.0.2.53]
tiers: [security, application]
clusters:
  finland: {networkMtu: 1500, calicoMtu: 1450}
"""


@pytest.fixture(scope="module")
def reference() -> TenancyLayout:
    return load_layout(REFERENCE)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tenancy.yaml"
    path.write_text(text)
    return path


def line_of(text: str, marker: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if marker in line)


def refused(tmp_path: Path, text: str) -> LocatedError:
    path = write(tmp_path, text)
    with pytest.raises(LocatedError) as error:
        load_layout(path)
    assert error.value.location is not None
    assert error.value.location.file == str(path)
    return error.value


# --- the reference layout --------------------------------------------------------------------------


def test_reference_declares_the_tenancy_of_the_runbook(reference: TenancyLayout) -> None:
    roles = {namespace.name: namespace.role for namespace in reference.namespaces}
    assert roles == {
        "royal-bank": Role.CUSTOMER,
        "customer-a": Role.CUSTOMER,
        "customer-b": Role.CUSTOMER,
        "platform": Role.PLATFORM,
        "kube-system": Role.SYSTEM,
    }
    assert reference.tier_order == ("security", "platform", "application")
    assert reference.dns.server == "kube-system/kube-dns"
    assert set(reference.networks) == {"finland", "germany", "helsinki"}
    assert reference.networks["germany"].calico_mtu is None  # auto-detected


def test_every_namespace_gets_the_sentinel_first_and_its_name_label(reference: TenancyLayout) -> None:
    for namespace in reference.all_namespaces:
        assert namespace.workloads[0].key == f"{namespace.name}/sentinel"
        assert namespace.labels["kubernetes.io/metadata.name"] == namespace.name


def test_the_outsider_is_no_tenant(reference: TenancyLayout) -> None:
    assert reference.outsider is not None
    assert reference.outsider.role is Role.OUTSIDER
    assert reference.outsider not in reference.namespaces
    assert [w.key for w in reference.outsider.workloads] == ["conformance-outsider/sentinel"]
    assert "conformance-outsider/sentinel" not in {w.key for w in reference.workloads}


def test_log_collector_declares_the_exception_port_and_one_that_stays_closed(reference: TenancyLayout) -> None:
    collector = reference.workload("platform/log-collector")
    assert collector.ports == (Service(5044, "TCP"), Service(9200, "TCP"))


@pytest.mark.parametrize(
    ("flow", "allowed"),
    [
        (Flow("royal-bank/ledger", "platform/log-collector", 5044, "TCP"), True),
        (Flow("royal-bank/sentinel", "platform/log-collector", 5044, "TCP"), True),
        (Flow("royal-bank/ledger", "platform/log-collector", 9200, "TCP"), False),
        (Flow("royal-bank/ledger", "platform/log-collector", 5044, "UDP"), False),
        (Flow("royal-bank/ledger", "platform/sentinel", 5044, "TCP"), False),
        (Flow("customer-a/shop", "platform/log-collector", 5044, "TCP"), False),
        (Flow("platform/log-collector", "royal-bank/ledger", 5044, "TCP"), False),
        (Flow("customer-a/shop", "kube-system/kube-dns", 53, "UDP"), True),
        (Flow("platform/sentinel", "kube-system/kube-dns", 53, "TCP"), True),
        (Flow("customer-a/shop", "kube-system/kube-dns", 9153, "TCP"), False),
        (Flow("kube-system/sentinel", "kube-system/kube-dns", 53, "UDP"), False),
        (Flow("conformance-outsider/sentinel", "kube-system/kube-dns", 53, "UDP"), False),
        (Flow("kube-system/kube-dns", "192.0.2.53", 53, "UDP"), True),
        (Flow("kube-system/kube-dns", "192.0.2.53", 80, "TCP"), False),
        (Flow("royal-bank/ledger", "192.0.2.53", 53, "UDP"), False),
        (Flow("royal-bank/ledger", "customer-a/shop", 8443, "TCP"), False),
        (Flow("royal-bank/ledger", "royal-bank/sentinel", 8080, "TCP"), False),
    ],
    ids=str,
)
def test_requirement_allows_only_exceptions_and_dns(reference: TenancyLayout, flow: Flow, allowed: bool) -> None:
    assert reference.requirement(flow)[0] is allowed


def test_requirement_says_why(reference: TenancyLayout) -> None:
    exception = Flow("royal-bank/ledger", "platform/log-collector", 5044, "TCP")
    dns = Flow("customer-b/sentinel", "kube-system/kube-dns", 53, "UDP")
    denied = Flow("customer-b/sentinel", "customer-a/shop", 8443, "TCP")
    assert reference.requirement(exception)[1].startswith("layout exception royal-bank-logging")
    assert reference.requirement(dns)[1] == "namespace customer-b must resolve cluster DNS"
    assert "default-deny" in reference.requirement(denied)[1]


def test_the_minimal_layout_loads(tmp_path: Path) -> None:
    layout = load_layout(write(tmp_path, MINIMAL))
    assert [c.name for c in layout.customers()] == [ROYAL_BANK, "other-bank"]
    assert layout.outside_addresses == (ip_address("192.0.2.10"),)
    assert layout.namespace("other-bank").resolves_dns is False  # absent means false
    assert {w.service_account for w in layout.all_workloads} == {"default"}  # absent means default


def test_a_workload_runs_as_its_declared_service_account(tmp_path: Path) -> None:
    text = MINIMAL.replace("        labels: {k8s-app: kube-dns}", "        labels: {k8s-app: kube-dns}\n        serviceAccount: coredns")
    layout = load_layout(write(tmp_path, text))
    assert layout.workload("kube-system/kube-dns").service_account == "coredns"
    assert layout.workload("kube-system/sentinel").service_account == "default"


def test_the_reference_runs_kube_dns_as_coredns_as_kubeadm_and_kind_do(reference: TenancyLayout) -> None:
    assert reference.workload("kube-system/kube-dns").service_account == "coredns"


# --- bad layouts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "marker", "why"),
    [
        ("    resolvesDns: true", "    resolvesDNS: true", "resolvesDNS", "resolvesDNS: unknown field in a namespace (did you mean 'resolvesDns'?)"),
        ("    role: system", "    role: infrastructure", "infrastructure", "role 'infrastructure' is not one of: customer, platform, system"),
        ("  ports: [{port: 9999, protocol: TCP}]", "  ports: [{port: 9999, protocol: SCTP}]", "9999", "protocol 'SCTP' cannot be probed; choose one of: TCP, UDP"),
        ("  ports: [{port: 9999, protocol: TCP}]", "  ports: [{port: 70000, protocol: TCP}]", "70000", "port 70000 is outside 1-65535"),
        ("  finland: {networkMtu: 1500, calicoMtu: 1450}", "  finland: {networkMtu: 1500, calicoMtu: 99}", "calicoMtu", "MTU 99 is outside 576-9216"),
        ("  outside: [192.0.2.10]", "  outside: [192.0.2]", "outside:", "'192.0.2' is not an IP address"),
        ("apiVersion: calico-conformance/v1", "apiVersion: v1", "apiVersion", "must be 'calico-conformance/v1'"),
        ("  - name: other-bank", "  - name: Other_Bank", "Other_Bank", "is not a Kubernetes name"),
        ("        labels: {k8s-app: kube-dns}", "        labels: {k8s-app: kube-dns}\n        serviceAccount: Core_DNS", "Core_DNS", "serviceAccount 'Core_DNS' is not a Kubernetes name"),
    ],
    ids=["misspelt-field", "unknown-role", "sctp", "port-range", "mtu-range", "bad-address", "api-version", "bad-name", "bad-account"],
)
def test_a_bad_value_is_refused_at_its_line(tmp_path: Path, old: str, new: str, marker: str, why: str) -> None:
    text = MINIMAL.replace(old, new)
    assert text != MINIMAL
    error = refused(tmp_path, text)
    assert why in error.why
    assert error.location is not None
    assert error.location.line == line_of(text, marker)


def test_an_exception_to_an_undeclared_workload_is_refused(tmp_path: Path) -> None:
    text = MINIMAL.replace("workload: sentinel}", "workload: log-collector}")
    error = refused(tmp_path, text)
    assert "workload 'log-collector' is not declared in namespace other-bank" in error.why


def test_an_exception_cannot_name_the_outsider(tmp_path: Path) -> None:
    text = MINIMAL.replace("to: {namespace: other-bank, workload: sentinel}", "to: {namespace: nobody}")
    assert "namespace 'nobody' is not in the layout's namespaces" in refused(tmp_path, text).why


def test_a_namespace_declared_twice_is_refused(tmp_path: Path) -> None:
    text = MINIMAL.replace("  - name: other-bank\n    role: customer\n", "  - name: royal-bank\n    role: customer\n")
    assert "namespace 'royal-bank' is declared twice" in refused(tmp_path, text).why


def test_the_outsider_must_not_be_a_tenancy_namespace(tmp_path: Path) -> None:
    text = MINIMAL.replace("outsider: nobody", "outsider: other-bank")
    assert "namespace 'other-bank' is declared twice" in refused(tmp_path, text).why


def test_royal_bank_must_be_a_customer(tmp_path: Path) -> None:
    text = MINIMAL.replace("  - name: royal-bank\n    role: customer", "  - name: royal-bank\n    role: platform")
    assert "must declare the customer namespace royal-bank" in refused(tmp_path, text).why


def test_isolation_needs_two_customers(tmp_path: Path) -> None:
    text = MINIMAL.replace("  - name: other-bank\n    role: customer", "  - name: other-bank\n    role: platform")
    assert "at least two customer namespaces" in refused(tmp_path, text).why


def test_the_dns_server_must_declare_the_dns_ports(tmp_path: Path) -> None:
    text = MINIMAL.replace("ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]\nexceptions", "ports: [{port: 53, protocol: UDP}]\nexceptions")
    assert "does not declare port(s) 53/TCP" in refused(tmp_path, text).why


def test_a_canary_port_must_be_one_nobody_declares(tmp_path: Path) -> None:
    text = MINIMAL.replace("  ports: [{port: 9999, protocol: TCP}]", "  ports: [{port: 8080, protocol: TCP}]")
    assert "canary port(s) 8080/TCP are declared by a workload" in refused(tmp_path, text).why


def test_the_default_tier_is_not_listed(tmp_path: Path) -> None:
    text = MINIMAL.replace("tiers: [security, application]", "tiers: [security, default]")
    assert "'default' is always the last tier" in refused(tmp_path, text).why


def test_a_duplicate_key_is_refused_at_the_second_occurrence(tmp_path: Path) -> None:
    text = MINIMAL.replace("    why: a test exception", "    why: a test exception\n    why: another")
    error = refused(tmp_path, text)
    assert "duplicate key 'why'" in error.why
    assert error.location is not None
    assert error.location.line == line_of(text, "why: another")
