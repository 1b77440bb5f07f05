"""`calico-conformance simulate`, driven through `cli.main` as a user runs it (contract: ARCHITECTURE.md)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from calico_conformance.cli import main
from calico_conformance.commands.simulate import result_record, simulate
from calico_conformance.oracle.default_probes import PairVerdicts
from tests.unit.corpus_clusters import ClusterDraw, clusters
from tests.unit.test_evaluate_grouping import random_cluster

SCENARIO = """\
calicoVersion: "3.30"
namespaces:
  - {name: x}
  - {name: y}
pods:
  - {name: a, namespace: x, labels: {pod: a}}
  - {name: b, namespace: y, labels: {pod: b}}
resources:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: deny-all, namespace: x}
    spec: {podSelector: {}}
probes:
  - {from: y/b, to: x/a, port: 80, protocol: TCP}
  - {from: x/a, to: y/b, port: 80, protocol: TCP}
  - {from: x/a, to: 192.0.2.10, port: 53, protocol: UDP}
"""


NAMED_END_PORT = SCENARIO.replace(
    "spec: {podSelector: {}}",
    "spec:\n"
    "      podSelector: {}\n"
    "      ingress:\n"
    "        - from: [{podSelector: {matchLabels: {pod: b}}}]\n"
    "          ports: [{port: http, endPort: 90}]",
)


def line_of(text: str, fragment: str) -> int:
    """The 1-based line of `text` where `fragment` first appears: where an error must point."""
    return text[: text.index(fragment)].count("\n") + 1


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["simulate", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return str(path)


def test_json_lists_every_probe_in_order_with_both_directions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, SCENARIO)
    status, out, err = run(capsys, path, "--format", "json")
    assert (status, err) == (0, "")
    results = json.loads(out)["results"]
    assert [(r["from"], r["to"], r["port"], r["protocol"], r["allowed"]) for r in results] == [
        ("y/b", "x/a", 80, "TCP", False),  # deny-all selects x/a for ingress (policyTypes default Ingress)
        ("x/a", "y/b", 80, "TCP", True),
        ("x/a", "192.0.2.10", 53, "UDP", True),
    ]
    assert set(results[0]) == {"from", "to", "port", "protocol", "allowed", "egress", "ingress"}
    assert results[0]["egress"] == {
        "allowed": True,
        "decision": "Egress allowed: no policy applies (namespace profile allows)",
    }
    assert results[0]["ingress"]["allowed"] is False
    assert results[0]["ingress"]["decision"].startswith("Ingress denied: end of tier default:")
    knp_line = line_of(SCENARIO, "- apiVersion: networking.k8s.io/v1")
    assert f"KubernetesNetworkPolicy x/deny-all at {path}:{knp_line}" in results[0]["ingress"]["decision"]
    assert results[2]["ingress"]["decision"].startswith("Ingress allowed: outside the cluster")


def test_table_prints_each_probe_and_the_grids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, write(tmp_path, SCENARIO), "--format", "table")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[:3] == [
        "DENY   y/b -> x/a 80/TCP",
        "       Egress allowed: no policy applies (namespace profile allows)",
        lines[2],
    ]
    assert lines[2].startswith("       Ingress denied: end of tier default")
    grid = out[out.index("80/TCP |") :].splitlines()
    assert grid[2:4] == ["x/a    |      .", "y/b    |  X"]


def test_table_is_the_default_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, SCENARIO)
    assert run(capsys, path) == run(capsys, path, "--format", "table")


def test_default_probes_cover_every_ordered_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    without_probes = SCENARIO[: SCENARIO.index("probes:")].replace(
        "{name: a, namespace: x, labels: {pod: a}}",
        "{name: a, namespace: x, labels: {pod: a}, ports: [{name: http, containerPort: 80, protocol: TCP}]}",
    )
    status, out, _ = run(capsys, write(tmp_path, without_probes), "--format", "json")
    assert status == 0
    assert [(r["from"], r["to"], r["port"]) for r in json.loads(out)["results"]] == [("y/b", "x/a", 80)]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        pytest.param(
            SCENARIO.replace("spec: {podSelector: {}}", "spec: {podSelector: {}, podSelector: {}}"),
            f":{line_of(SCENARIO, 'spec: {podSelector')}:",
            id="duplicate-key",
        ),
        pytest.param(
            SCENARIO.replace("to: x/a, port: 80", "to: x/zz, port: 80"),
            f":{line_of(SCENARIO, 'to: x/a, port: 80')}:",
            id="probe-to-nowhere",
        ),
        pytest.param(SCENARIO.replace("calicoVersion", "calicoVersoin"), ":1:", id="unknown-field"),
        pytest.param(
            NAMED_END_PORT, f":{line_of(NAMED_END_PORT, 'ports: [{port: http')}:", id="invalid-value"
        ),
    ],
)
def test_bad_input_exits_2_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, complaint: str
) -> None:
    path = write(tmp_path, text)
    status, out, err = run(capsys, path)
    assert (status, out) == (2, "")
    assert err.startswith(f"calico-conformance simulate: {path}{complaint}")
    assert "Traceback" not in err


def test_a_rule_the_oracle_cannot_judge_exits_2_at_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SCENARIO.replace(
        "spec: {podSelector: {}}",
        "spec: {podSelector: {}}\n"
        "  - apiVersion: projectcalico.org/v3\n"
        "    kind: GlobalNetworkPolicy\n"
        "    metadata: {name: dns}\n"
        "    spec:\n"
        "      selector: all()\n"
        "      egress:\n"
        "        - action: Allow\n"
        "          destination: {services: {name: kube-dns, namespace: kube-system}}",
    )
    path = write(tmp_path, text)
    status, out, err = run(capsys, path, "--format", "json")
    assert (status, out) == (2, "")
    rule_line = line_of(text, "- action: Allow")
    assert err.startswith(
        f"calico-conformance simulate: {path}:{rule_line}: services rules are not supported"
    )


def test_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, str(tmp_path / "absent.yaml"))
    assert (status, out) == (2, "")
    assert "absent.yaml" in err


# --- default probes at scale: the grouped decisions are the per-pair walk's -------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_default_probe_decisions_equal_the_per_pair_walk(seed: int) -> None:
    """Every default probe's verdict from the class tables (`PairVerdicts`) is `Oracle.verdict`'s, both
    directions' decisions included, on the grouping tests' random clusters."""
    oracle = random_cluster(seed)
    pods = oracle.pods
    verdicts = PairVerdicts(oracle, pods)
    for service in verdicts.services:
        for source, source_pod in enumerate(pods):
            for destination, destination_pod in enumerate(pods):
                if source != destination:
                    expected = oracle.verdict(source_pod, destination_pod, *service)
                    assert verdicts.verdict(service, source, destination) == expected, (
                        f"seed {seed}: {source_pod.key} -> {destination_pod.key} {service}"
                    )


@given(draw=clusters())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_streamed_json_is_the_per_probe_json(draw: ClusterDraw, tmp_path_factory: pytest.TempPathFactory) -> None:
    """`simulate --format json` of a scenario without probes prints exactly what judging each expanded
    default probe gives, in the same order (the streamed path against the plain one)."""
    path = tmp_path_factory.mktemp("scenario") / "scenario.yaml"
    path.write_text(json.dumps(draw.data))
    expected = [result_record(flow, verdict) for flow, verdict in simulate(str(path))]
    status, printed = _run_json(str(path))
    assert status == 0
    assert json.loads(printed) == {"results": expected}


def _run_json(path: str) -> tuple[int, str]:
    binary = io.BytesIO()
    text = io.TextIOWrapper(binary, encoding="utf-8")
    with contextlib.redirect_stdout(text):
        status = main(["simulate", path, "--format", "json"])
    text.flush()
    return status, binary.getvalue().decode()


def test_json_prints_one_result_per_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, write(tmp_path, SCENARIO), "--format", "json")
    lines = out.splitlines()
    assert (status, lines[0], lines[-1], len(lines)) == (0, '{"results": [', "]}", 5)
    assert json.loads(lines[1].rstrip(","))["from"] == "y/b"


def test_a_large_default_table_counts_probes_per_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pods = "\n".join(
        f"  - {{name: p{i}, namespace: {'x' if i % 2 else 'y'}, labels: {{pod: p{i % 2}}}, "
        f"ports: [{{containerPort: 80, protocol: TCP}}]}}"
        for i in range(30)
    )
    text = SCENARIO[: SCENARIO.index("pods:")] + "pods:\n" + pods + "\n" + SCENARIO[SCENARIO.index("resources:") : SCENARIO.index("probes:")]
    status, out, _ = run(capsys, write(tmp_path, text))
    lines = out.splitlines()
    # 30 pods x 29 others x 1 port; deny-all (ingress) selects the 15 pods of x: 15 x 29 probes denied
    assert (status, lines[2]) == (0, "80/TCP: 435 allowed, 435 denied")
    assert lines[0].startswith("870 probes between 30 pods")
    assert [line.split(" probe(s)")[0].strip() for line in lines[3::3]] == ["ALLOW  435", "DENY   435"]


def test_mixed_ip_versions_without_probes_exit_2_at_the_pod(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SCENARIO[: SCENARIO.index("probes:")].replace(
        "{name: b, namespace: y, labels: {pod: b}}", "{name: b, namespace: y, labels: {pod: b}, ip: 'fd00::5'}"
    )
    path = write(tmp_path, text)
    status, out, err = run(capsys, path, "--format", "json")
    assert (status, out) == (2, "")
    assert err.startswith(f"calico-conformance simulate: {path}:{line_of(text, '{name: b')}: pod y/b is IPv6")
