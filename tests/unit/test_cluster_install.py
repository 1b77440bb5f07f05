"""The Calico install as rendered: the Installation from the register, the APIServer, the kubectl plan.

Nothing here talks to a cluster. What a real operator does with these manifests (TigeraStatus, the pods
it starts) is only exercised by the kind target on a machine with Docker; see README "What was exercised".
Expected values come from the runbook (`seeds/000_*.txt`) and calico-install.md, not from the renderer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path

import pytest
import yaml

from calico_conformance.cluster.install import (
    install_plan,
    operator_manifest_for_registry,
    render_apiserver,
    render_installation,
)
from calico_conformance.cluster.releases import RELEASES, release_for
from calico_conformance.cluster.schemas import validate_manifest


@dataclass(frozen=True)
class Cluster:
    name: str
    pod_subnet: IPv4Network


FINLAND = Cluster("finland", IPv4Network("10.244.0.0/16"))
GERMANY = Cluster("germany", IPv4Network("10.245.0.0/16"))


def test_installation_pool_is_the_runbook_pool_on_the_cluster_pod_subnet() -> None:
    installation = render_installation(GERMANY)

    assert installation["apiVersion"] == "operator.tigera.io/v1"
    assert installation["kind"] == "Installation"
    assert installation["metadata"] == {"name": "default"}
    assert installation["spec"]["calicoNetwork"]["ipPools"] == [
        {
            "cidr": "10.245.0.0/16",
            "blockSize": 26,
            "encapsulation": "VXLAN",
            "natOutgoing": "Enabled",
            "nodeSelector": "all()",
        }
    ]


def test_installation_leaves_mtu_to_detection_unless_given() -> None:
    assert "mtu" not in render_installation(FINLAND)["spec"]["calicoNetwork"]
    assert render_installation(FINLAND, mtu=1450)["spec"]["calicoNetwork"]["mtu"] == 1450


def test_installation_registry_is_a_host_with_one_trailing_slash() -> None:
    assert "registry" not in render_installation(FINLAND)["spec"]
    assert (
        render_installation(FINLAND, registry="mirror.example.com")["spec"]["registry"]
        == "mirror.example.com/"
    )
    assert (
        render_installation(FINLAND, registry="mirror.example.com/")["spec"]["registry"]
        == "mirror.example.com/"
    )


def test_installation_for_an_unpinned_version_is_refused() -> None:
    with pytest.raises(ValueError, match=r"3\.29.*3\.27 \(v3\.27\.5\).*3\.31 \(v3\.31\.7\)"):
        render_installation(FINLAND, calico_version="3.29")


@pytest.mark.parametrize("version", sorted(RELEASES))
@pytest.mark.parametrize("mtu", [None, 1450])
def test_installation_and_apiserver_are_valid_for_every_pinned_release(version: str, mtu: int | None) -> None:
    installation = render_installation(
        FINLAND, mtu=mtu, calico_version=version, registry="mirror.example.com"
    )

    assert validate_manifest(installation, calico_version=version) == []
    assert validate_manifest(render_apiserver(), calico_version=version) == []


def test_apiserver_is_the_default_one() -> None:
    assert render_apiserver() == {
        "apiVersion": "operator.tigera.io/v1",
        "kind": "APIServer",
        "metadata": {"name": "default"},
        "spec": {},
    }


def _local_manifests(tmp_path: Path, version: str) -> dict[str, Path]:
    paths = {}
    for manifest in release_for(version).manifests:
        path = tmp_path / manifest.name
        path.write_text(OPERATOR_MANIFEST if "operator" in manifest.contains else "kind: List\n")
        paths[manifest.name] = path
    return paths


OPERATOR_MANIFEST = """\
apiVersion: v1
kind: Namespace
metadata:
  name: tigera-operator
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: tigera-operator
  namespace: tigera-operator
spec:
  template:
    spec:
      containers:
      - name: tigera-operator
        image: quay.io/tigera/operator:v1.40.15
"""


def test_331_plan_applies_the_separate_crds_before_the_operator_then_the_resources(tmp_path: Path) -> None:
    manifests = _local_manifests(tmp_path, "3.31")

    steps = install_plan(FINLAND, manifests, calico_version="3.31")

    applied = [step.args[-1] for step in steps if step.args[0] == "apply"]
    assert applied == [str(tmp_path / "operator-crds.yaml"), str(tmp_path / "tigera-operator.yaml"), "-"]
    assert [step.args[0] for step in steps] == ["apply", "apply", "wait", "apply"]
    for step in steps:
        if step.args[0] == "apply":
            assert "--server-side" in step.args  # the CRD bundle is too large for client-side apply
    assert "crd/installations.operator.tigera.io" in steps[2].args


def test_327_plan_applies_the_one_operator_manifest_that_bundles_its_crds(tmp_path: Path) -> None:
    steps = install_plan(FINLAND, _local_manifests(tmp_path, "3.27"), calico_version="3.27")

    applied = [step.args[-1] for step in steps if step.args[0] == "apply"]
    assert applied == [str(tmp_path / "tigera-operator.yaml"), "-"]


def test_plan_ends_with_the_rendered_installation_and_apiserver_on_stdin(tmp_path: Path) -> None:
    steps = install_plan(FINLAND, _local_manifests(tmp_path, "3.31"), calico_version="3.31", mtu=1400)

    last = steps[-1]
    assert last.stdin is not None
    listed = json.loads(last.stdin)
    kinds = [item["kind"] for item in listed["items"]]
    assert kinds == ["Installation", "APIServer"]
    assert listed["items"][0]["spec"]["calicoNetwork"]["ipPools"][0]["cidr"] == "10.244.0.0/16"
    assert listed["items"][0]["spec"]["calicoNetwork"]["mtu"] == 1400


def test_registry_rewrites_only_the_operator_image_and_feeds_it_on_stdin(tmp_path: Path) -> None:
    steps = install_plan(
        FINLAND, _local_manifests(tmp_path, "3.31"), calico_version="3.31", registry="m.example:5000"
    )

    operator_step = steps[1]
    assert operator_step.args[-1] == "-"
    assert operator_step.stdin is not None
    documents = list(yaml.safe_load_all(operator_step.stdin))
    assert documents[0] == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tigera-operator"}}
    container = documents[1]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "m.example:5000/tigera/operator:v1.40.15"


def test_operator_manifest_without_a_deployment_is_refused() -> None:
    with pytest.raises(ValueError, match="no Deployment image"):
        operator_manifest_for_registry("apiVersion: v1\nkind: Namespace\n", release_for("3.31"), "m.example")


def test_on_3_31_the_cni_holds_pods_until_felix_has_programmed_their_policy() -> None:
    # tigera/operator v1.40.15 (the operator of Calico v3.31.7: charts/tigera-operator/values.yaml:86)
    # api/v1/installation_types.go:655 `LinuxPolicySetupTimeoutSeconds *int32
    # json:"linuxPolicySetupTimeoutSeconds,omitempty"` in CalicoNetworkSpec; the v3.31.7 operator-crds.yaml
    # lists it under spec.calicoNetwork (line 10103). The operator of v3.27.5 is v1.32.12, which has none.
    network = render_installation(FINLAND, calico_version="3.31")["spec"]["calicoNetwork"]
    assert network["linuxPolicySetupTimeoutSeconds"] > 0
    old = render_installation(FINLAND, calico_version="3.27")
    assert "linuxPolicySetupTimeoutSeconds" not in old["spec"]["calicoNetwork"]
    assert validate_manifest(render_installation(FINLAND, calico_version="3.31"), calico_version="3.31") == []
    assert validate_manifest(old, calico_version="3.27") == []


def test_calico_v3_32_0_can_never_be_pinned(tmp_path: Path) -> None:
    # projectcalico/calico#12841: server-side apply of tiered policies broken in v3.32.0, fixed in v3.32.1.
    from calico_conformance.cluster.releases import parse_releases

    entry = {"tag": "v3.32.0", "manifests": [], "operatorImage": "", "componentRegistry": "",
             "componentImages": [], "componentImagesSource": ""}  # fmt: skip
    with pytest.raises(ValueError, match=r"releases\.json: 3\.32 pins v3\.32\.0.*#12841"):
        parse_releases({"3.32": entry}, tmp_path / "releases.json")
