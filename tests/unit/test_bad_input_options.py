"""Options and small inputs found silently accepted while trying the commands and the pytest options as a
careless user would: each is now refused, saying what the valid form is."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from calico_conformance.cli import main
from calico_conformance.config import resolve_run_config
from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.scenario import load_scenario
from calico_conformance.tenancy.layout import load_layout

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("kind", "kubeconfig", "static")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def resolve(tmp_path: Path, **options: Any) -> Any:
    return resolve_run_config(options, base_dir=tmp_path, target_names=TARGETS)


# --- JSON objects naming a key twice ------------------------------------------------------------------------


def test_labels_naming_a_key_twice_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "selector", "has(a)", "--labels", '{"a": "b", "a": "c"}')
    assert (status, out) == (2, "")
    assert "--labels gives the key 'a' twice; JSON keeps only one of them" in err


def test_a_batch_line_naming_a_key_twice_is_answered_as_malformed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('{"selector": "", "selector": "has(a)", "labels": {}}\n'))
    status, out, _ = run(capsys, "selector", "--batch", "-")
    assert status == 2
    assert out == (
        '{"valid": false, "error": "<stdin>:1: gives the key \'selector\' twice; JSON keeps only one of them"}\n'
    )


# --- registries, manifests directories, contexts -----------------------------------------------------------


@pytest.mark.parametrize(
    "registry", ["a b", "http://mirror.example.com", "Mirror.example.com", "", "mirror:port"]
)
def test_images_refuses_a_registry_that_cannot_prefix_an_image_name(
    capsys: pytest.CaptureFixture[str], registry: str
) -> None:
    status, out, err = run(capsys, "images", "--registry", registry)
    assert (status, out) == (2, "")
    assert "is not HOST[:PORT][/PATH]" in err


@pytest.mark.parametrize("registry", ["mirror.example.com:5000", "10.0.0.5:5000/calico", "localhost"])
def test_images_takes_a_registry_with_port_and_path(
    capsys: pytest.CaptureFixture[str], registry: str
) -> None:
    status, out, _ = run(capsys, "images", "--registry", registry)
    assert status == 0
    assert all(line.startswith(f"{registry}/") for line in out.splitlines())


def test_a_live_run_refuses_a_registry_with_a_scheme(tmp_path: Path) -> None:
    with pytest.raises(pytest.UsageError, match="is not HOST"):
        resolve(tmp_path, target="kind", registry="https://mirror")


def test_calico_manifests_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(pytest.UsageError, match=r"--calico-manifests .*: not a directory"):
        resolve(tmp_path, target="kind", calico_manifests=str(tmp_path / "absent"))


def test_a_context_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    with pytest.raises(pytest.UsageError, match="is not CLUSTER=CONTEXT"):
        resolve(tmp_path, target="kubeconfig", contexts=["finland=staging\n"])


# --- addresses with IPv6 zones in scenarios and layouts ---------------------------------------------------

SCENARIO = """\
namespaces: [{name: x}]
pods:
  - {name: a, namespace: x, ip: "IP"}
  - {name: b, namespace: x}
probes:
  - {from: x/a, to: "TO", port: 80, protocol: TCP}
"""


def test_a_pod_address_with_a_zone_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.replace("IP", "fe80::1%eth0").replace("TO", "x/b"))
    with pytest.raises(LocatedError) as caught:
        load_scenario(path)
    assert caught.value.location == Location(str(path), 3)
    assert "IPv6 zone" in caught.value.why


def test_a_probe_address_with_a_zone_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.replace("IP", "fe80::1").replace("TO", "fe80::2%eth0"))
    with pytest.raises(LocatedError) as caught:
        load_scenario(path)
    assert caught.value.location == Location(str(path), 6)
    assert "IPv6 zone" in caught.value.why


def test_an_empty_resource_file_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.replace('ip: "IP"', "").replace("TO", "x/b") + "resources: [{file: ''}]\n")
    with pytest.raises(LocatedError, match="an empty file name"):
        load_scenario(path)


def test_a_layout_outside_address_with_a_zone_is_refused(tmp_path: Path) -> None:
    text = (ROOT / "policies" / "tenancy.yaml").read_text()
    assert "outside: [192.0.2.10]" in text
    path = tmp_path / "tenancy.yaml"
    path.write_text(text.replace("outside: [192.0.2.10]", "outside: ['fe80::1%eth0']"))
    with pytest.raises(LocatedError) as caught:
        load_layout(path)
    assert "IPv6 zone" in caught.value.why


# --- the layout's labels and port names are what Kubernetes accepts for the probe pods -------------------


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ("labels: {app: ledger}", 'labels: {app: "ledger\\n"}', "invalid value 'ledger\\n' for label 'app'"),
        ("labels: {app: ledger}", 'labels: {"app\\n": ledger}', "invalid label key 'app\\n'"),
        ("name: https}", 'name: "https\\n"}', "is not a Kubernetes port name"),
        ("name: https}", "name: http-s--1}", "is not a Kubernetes port name"),
        ("name: https}", "name: '8443'}", "is not a Kubernetes port name"),
    ],
)
def test_the_layout_refuses_labels_and_port_names_kubernetes_would(
    tmp_path: Path, old: str, new: str, why: str
) -> None:
    text = (ROOT / "policies" / "tenancy.yaml").read_text()
    assert old in text
    path = tmp_path / "tenancy.yaml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(LocatedError) as caught:
        load_layout(path)
    assert why in caught.value.why
    assert caught.value.location is not None
    assert caught.value.location.file == str(path)
