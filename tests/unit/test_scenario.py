"""Scenario files (ARCHITECTURE.md "Scenario file"): what they expand to, and every way they can be wrong.

Expected addresses, probes and lines are worked out from the format's rules by hand.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.model import ContainerPort, ProbeSpec
from calico_conformance.oracle.scenario import load_scenario, scenario_from_data
from calico_conformance.oracle.yamlsrc import load_documents

MANIFESTS = Path(__file__).parent.parent / "data" / "manifests"

SCENARIO = """\
calicoVersion: "3.31"
namespaces:
  - name: x
    labels: {team: a}
  - name: y
pods:
  - name: a
    namespace: x
    labels: {pod: a}
    ports: [{name: serve-80-tcp, containerPort: 80}]
  - name: b
    namespace: y
    ip: 10.244.0.1
    serviceAccount: api
    node: worker-1
    ports:
      - {containerPort: 53, protocol: UDP}
      - {containerPort: 81, protocol: TCP}
  - name: c
    namespace: y
resources:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: deny, namespace: y}
    spec:
      podSelector: {}
"""


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def scenario_error(text: str) -> LocatedError:
    (data,) = load_documents(text, "s.yaml")
    with pytest.raises(LocatedError) as caught:
        scenario_from_data(data, "s.yaml")
    return caught.value


def test_a_scenario_loads_namespaces_pods_and_resources(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, SCENARIO))
    assert scenario.calico_version == "3.31"
    assert [namespace.labels.as_dict() for namespace in scenario.namespaces] == [
        {"team": "a", "kubernetes.io/metadata.name": "x"},
        {"kubernetes.io/metadata.name": "y"},
    ]
    a, b, c = scenario.pods
    assert (a.key, a.labels.as_dict(), a.service_account, a.node) == ("x/a", {"pod": "a"}, "default", None)
    assert a.ports == (ContainerPort(80, "TCP", "serve-80-tcp"),)
    assert (b.key, b.service_account, b.node) == ("y/b", "api", "worker-1")
    assert b.ports == (ContainerPort(53, "UDP"), ContainerPort(81, "TCP"))
    assert c.ports == ()
    (policy,) = scenario.resources.policies
    assert policy.location == Location(str(tmp_path / "scenario.yaml"), 22)
    assert scenario.source == str(tmp_path / "scenario.yaml")


def test_pods_without_ip_get_the_first_free_addresses_of_10_244_0_0_16(tmp_path: Path) -> None:
    a, b, c = load_scenario(write(tmp_path, SCENARIO)).pods
    # b asks for 10.244.0.1, the pool's first host; a and c take the next free ones in file order.
    assert (a.ip, b.ip, c.ip) == (
        ipaddress.ip_address("10.244.0.2"),
        ipaddress.ip_address("10.244.0.1"),
        ipaddress.ip_address("10.244.0.3"),
    )


def test_default_probes_are_every_ordered_pair_times_every_destination_port(tmp_path: Path) -> None:
    probes = [
        (p.source, p.destination, p.port, p.protocol) for p in load_scenario(write(tmp_path, SCENARIO)).probes
    ]
    assert probes == [
        ("x/a", "y/b", 53, "UDP"),
        ("x/a", "y/b", 81, "TCP"),
        ("y/b", "x/a", 80, "TCP"),
        ("y/c", "x/a", 80, "TCP"),
        ("y/c", "y/b", 53, "UDP"),
        ("y/c", "y/b", 81, "TCP"),
    ]


def test_written_probes_are_kept_in_order_with_their_lines(tmp_path: Path) -> None:
    text = SCENARIO + (
        "probes:\n"
        "  - {from: x/a, to: y/b, port: 80, protocol: TCP}\n"
        "  - {from: x/a, to: 192.0.2.10, port: 53, protocol: UDP}\n"
        "  - {from: '2001:db8::0001', to: y/c, protocol: ICMP}\n"
    )
    probes = load_scenario(write(tmp_path, text)).probes
    file = str(tmp_path / "scenario.yaml")
    assert probes == (
        ProbeSpec("x/a", "y/b", 80, "TCP"),
        ProbeSpec("x/a", "192.0.2.10", 53, "UDP"),
        ProbeSpec("2001:db8::1", "y/c", None, "ICMP"),
    )
    assert [probe.location for probe in probes] == [
        Location(file, 28),
        Location(file, 29),
        Location(file, 30),
    ]


def test_an_empty_scenario_is_valid_and_uses_the_default_version() -> None:
    scenario = scenario_from_data({}, "empty")
    assert (scenario.calico_version, scenario.pods, scenario.probes) == ("3.31", (), ())


def test_the_version_is_normalised_and_gates_the_resources() -> None:
    assert scenario_from_data({"calicoVersion": "v3.29.2"}, "s").calico_version == "3.29"
    tier = {"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": "t"}}
    with pytest.raises(LocatedError, match=r"Tier needs Calico >= 3\.29"):
        scenario_from_data({"calicoVersion": "3.28", "resources": [tier]}, "s")


def test_resources_may_name_manifest_files_relative_to_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "deny.yaml").write_text(
        (MANIFESTS / "seed-000" / "default-deny-all.yaml").read_text()
    )
    text = "namespaces: [{name: royal-bank}, {name: platform}]\nresources:\n  - file: policies\n"
    scenario = load_scenario(write(tmp_path, text))
    assert sorted(policy.namespace or "" for policy in scenario.resources.policies) == [
        "platform",
        "royal-bank",
    ]


def test_namespace_manifests_in_resources_declare_namespaces(tmp_path: Path) -> None:
    text = f"resources:\n  - file: {MANIFESTS / 'seed-000' / 'namespaces.yaml'}\npods:\n  - {{name: p, namespace: platform}}\n"
    scenario = load_scenario(write(tmp_path, text))
    assert [namespace.name for namespace in scenario.namespaces] == ["royal-bank", "platform"]
    assert scenario.pods[0].namespace == "platform"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param("calicoVersion: 3.30\n", 1, "unquoted it is the number 3.3", id="unquoted-version"),
        pytest.param("calicoVersion: '2.0'\n", 1, "not modelled by the oracle", id="old-version"),
        pytest.param(
            "namespace: [{name: x}]\n",
            1,
            "namespace: unknown field in a scenario (did you mean 'namespaces'?)",
            id="typo",
        ),
        pytest.param(
            "namespaces:\n  - {name: x}\n  - {name: x}\n", 3, "namespace 'x' is declared twice", id="dup-ns"
        ),
        pytest.param("namespaces: [{name: X}]\n", 1, "invalid namespace name 'X'", id="bad-ns-name"),
        pytest.param(
            "namespaces: [{name: x}]\npods:\n  - {name: a, namespace: x}\n  - {name: a, namespace: x}\n",
            4,
            "pod x/a is declared twice (first at s.yaml:3)",
            id="dup-pod",
        ),
        pytest.param(
            "namespaces: [{name: x}]\npods:\n  - name: a\n    namespace: z\n",
            4,
            "namespace 'z' is not declared (declared: x)",
            id="undeclared-namespace",
        ),
        pytest.param(
            "namespaces: [{name: x}]\npods:\n  - {name: a, namespace: x, ip: 10.0.0.1}\n  - {name: b, namespace: x, ip: 10.0.0.1}\n",
            4,
            "IP 10.0.0.1 is already used by the pod at s.yaml:3",
            id="dup-ip",
        ),
        pytest.param(
            "namespaces: [{name: x}]\npods:\n  - {name: a, namespace: x, ip: 10.0.0.300}\n",
            3,
            "invalid IP address '10.0.0.300'",
            id="bad-ip",
        ),
        pytest.param(
            "namespaces: [{name: x}]\npods:\n  - {name: a, namespace: x, labels: {on: yes}}\n",
            3,
            "must be strings",
            id="unquoted-yes-label",
        ),
        pytest.param(
            "namespaces: [{name: x}]\npods:\n  - name: a\n    namespace: x\n    ports: [{containerPort: 0}]\n",
            5,
            "port 0 is out of range",
            id="port-zero",
        ),
        pytest.param(
            "namespaces: [{name: x}]\npods:\n  - name: a\n    namespace: x\n    ports: [{containerPort: 80, protocol: ICMP}]\n",
            5,
            "unsupported protocol 'ICMP'; a container port takes TCP, UDP, SCTP",
            id="icmp-container-port",
        ),
        pytest.param(
            "namespaces: [{name: x}]\npods:\n  - name: a\n    namespace: x\n    ports:\n"
            "      - {name: web, containerPort: 80}\n      - {name: web, containerPort: 81}\n",
            7,
            "port name 'web' is used twice",
            id="dup-port-name",
        ),
        pytest.param(
            "probes:\n  - {from: x/a, to: 10.0.0.1, port: 80, protocol: TCP}\n",
            2,
            "no pod 'x/a'",
            id="no-pod",
        ),
        pytest.param(
            "probes:\n  - {from: 10.0.0.1, to: 10.0.0.2, port: 80, protocol: TCP}\n",
            2,
            "needs a pod on at least one end",
            id="no-pod-at-all",
        ),
        pytest.param(
            SCENARIO + "probes:\n  - {from: x/a, to: web, port: 80, protocol: TCP}\n",
            28,
            "neither a pod",
            id="bad-end",
        ),
        pytest.param(
            SCENARIO + "probes:\n  - {from: x/a, to: y/b, port: 80, protocol: HTTP}\n",
            28,
            "unsupported protocol 'HTTP'",
            id="proto",
        ),
        pytest.param(
            SCENARIO + "probes:\n  - {from: x/a, to: y/b, protocol: TCP}\n",
            28,
            "a TCP probe needs a port",
            id="no-port",
        ),
        pytest.param(
            SCENARIO + "probes:\n  - {from: x/a, to: y/b, port: 0, protocol: UDP}\n",
            28,
            "port 0 is out of range",
            id="port-0",
        ),
        pytest.param(
            SCENARIO + "probes:\n  - {from: x/a, to: y/b, port: 8, protocol: ICMP}\n",
            28,
            "an ICMP probe has no port",
            id="icmp-port",
        ),
        pytest.param(
            "resources:\n  - apiVersion: projectcalico.org/v3\n    kind: GlobalNetworkPolicy\n    metadata: {name: g}\n"
            "    spec: {selector: 'a = 1'}\n",
            5,
            "resources[0].spec.selector: invalid selector 'a = 1' at position 2",
            id="inline-resource-error",
        ),
        pytest.param(
            "resources:\n  - file: missing.yaml\n", 2, "no such file or directory", id="missing-file"
        ),
    ],
)
def test_invalid_scenarios_are_errors_at_their_line(text: str, line: int, message: str) -> None:
    error = scenario_error(text)
    assert error.location == Location("s.yaml", line)
    assert message in str(error)


def test_a_scenario_file_holds_exactly_one_document(tmp_path: Path) -> None:
    with pytest.raises(LocatedError, match="one YAML document, not 2"):
        load_scenario(write(tmp_path, "pods: []\n---\npods: []\n"))


def test_a_duplicate_key_in_a_scenario_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LocatedError) as caught:
        load_scenario(write(tmp_path, "pods: []\nprobes: []\npods: []\n"))
    assert caught.value.location == Location(str(tmp_path / "scenario.yaml"), 3)
