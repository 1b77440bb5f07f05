"""The cluster register: the runbook's CIDRs as kind configs, read strictly; overlaps are the CIDR suite's
business, not a load error (so a broken register fails a named test instead of stopping the run)."""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path

import pytest

from calico_conformance.oracle.errors import LocatedError
from calico_conformance.tenancy.register import cluster_by_name, load_cluster, load_register

REGISTER = Path(__file__).parents[2] / "kind-configs"

CONFIG = """\
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  podSubnet: 10.244.0.0/16
  serviceSubnet: 10.96.0.0/16
  disableDefaultCNI: true
nodes:
  - role: control-plane
  - role: worker
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(text)
    return path


def line_of(text: str, marker: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if marker in line)


def test_the_register_holds_the_runbook_allocation() -> None:
    register = load_register(REGISTER)
    allocation = {cluster.name: (str(cluster.pod_subnet), str(cluster.service_subnet)) for cluster in register}
    assert allocation == {  # runbook, "CIDR allocation per cluster"
        "finland": ("10.244.0.0/16", "10.96.0.0/16"),
        "germany": ("10.245.0.0/16", "10.97.0.0/16"),
        "helsinki": ("10.246.0.0/16", "10.98.0.0/16"),
    }
    for cluster in register:
        assert cluster.nodes == ("control-plane", "worker", "worker")
        assert cluster.disable_default_cni


def test_nothing_else_in_the_repository_repeats_a_pod_cidr() -> None:
    """The register is the one place the ranges are written (issue: "Nothing else repeats those CIDRs")."""
    root = REGISTER.parent
    offenders = [
        str(path.relative_to(root))
        for folder in ("policies", "policies-v3.27", "suites", "fixtures")
        for path in (root / folder).rglob("*")
        if path.is_file() and any(cidr in path.read_text(errors="ignore") for cidr in ("10.245.0.0", "10.246.0.0"))
    ]
    assert offenders == []


def test_a_cluster_is_looked_up_by_name() -> None:
    register = load_register(REGISTER)
    assert cluster_by_name(register, "germany").pod_subnet == IPv4Network("10.245.0.0/16")
    with pytest.raises(KeyError):
        cluster_by_name(register, "spain")


def test_overlapping_clusters_still_load(tmp_path: Path) -> None:
    write(tmp_path, "a", CONFIG)
    write(tmp_path, "b", CONFIG)
    assert [cluster.pod_subnet for cluster in load_register(tmp_path)] == [IPv4Network("10.244.0.0/16")] * 2


def test_the_raw_config_is_kept_for_the_kind_target(tmp_path: Path) -> None:
    cluster = load_cluster(write(tmp_path, "finland", CONFIG))
    assert cluster.raw["networking"]["podSubnet"] == "10.244.0.0/16"
    assert cluster.config_path == tmp_path / "finland.yaml"


@pytest.mark.parametrize(
    ("old", "new", "marker", "why"),
    [
        ("  podSubnet: 10.244.0.0/16", "  podSubnet: 10.244.0.0/33", "podSubnet", "is not a CIDR"),
        ("  podSubnet: 10.244.0.0/16", "  podSubnet: 10.244.1.0/16", "podSubnet", "has host bits set"),
        ("  podSubnet: 10.244.0.0/16", "  podSubnet: fd00::/64", "podSubnet", "is not an IPv4 range"),
        ("apiVersion: kind.x-k8s.io/v1alpha4", "apiVersion: kind.x-k8s.io/v1alpha3", "apiVersion", "must be 'kind.x-k8s.io/v1alpha4'"),
        ("  disableDefaultCNI: true", "  disableDefaultCni: true", "disableDefaultCni", "unknown field"),
        ("  - role: worker", "  - role: etcd", "etcd", "role 'etcd' is not one of: control-plane, worker"),
        ("kind: Cluster", "kind: Cluster\nname: elsewhere", "name: elsewhere", "differs from the file name"),
    ],
    ids=["bad-prefix", "host-bits", "ipv6", "api-version", "misspelt-field", "bad-role", "name-mismatch"],
)
def test_a_bad_config_is_refused_at_its_line(tmp_path: Path, old: str, new: str, marker: str, why: str) -> None:
    text = CONFIG.replace(old, new)
    assert text != CONFIG
    path = write(tmp_path, "finland", text)
    with pytest.raises(LocatedError) as refused:
        load_register(tmp_path)
    assert why in refused.value.why
    assert refused.value.location is not None
    assert (refused.value.location.file, refused.value.location.line) == (str(path), line_of(text, marker))


def test_a_missing_or_empty_register_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LocatedError, match="is not a directory"):
        load_register(tmp_path / "absent")
    with pytest.raises(LocatedError, match=r"has no <cluster>\.yaml kind configs"):
        load_register(tmp_path)


def test_a_register_without_a_control_plane_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "finland", CONFIG.replace("  - role: control-plane\n", ""))
    with pytest.raises(LocatedError, match="needs a control-plane node"):
        load_register(tmp_path)
