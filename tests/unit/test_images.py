"""`calico-conformance images`: complete for every pinned release, mirrored names, bad input.

"Complete" is checked against independent sources: the operator image is the one the upstream
`tigera-operator.yaml` Deployment runs (when `../shared/calico` is present), and the component list
must name every Linux image an Installation plus APIServer makes the operator deploy (calico-install.md
§6.3: calico-node, typha, kube-controllers, csi-node-driver; §5: the API server) and the probe image.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from calico_conformance.cli import main
from calico_conformance.cluster.images import NETSHOOT_IMAGE
from calico_conformance.cluster.releases import RELEASES

UPSTREAM = Path(__file__).resolve().parents[2].parent / "shared" / "calico"
# Components an operator install with an Installation and an APIServer runs (calico-install.md §5, §6.3):
# calico-node with its cni and flexvol init containers, typha, kube-controllers, the CSI driver pair, the
# API server.
REQUIRED_COMPONENTS = (
    "calico/node",
    "calico/cni",
    "calico/pod2daemon-flexvol",
    "calico/typha",
    "calico/kube-controllers",
    "calico/csi",
    "calico/node-driver-registrar",
    "calico/apiserver",
)


def images(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert main(["images", *argv]) == 0
    return capsys.readouterr().out.splitlines()


def test_default_lists_the_331_operator_every_component_and_the_probe_image(
    capsys: pytest.CaptureFixture[str],
) -> None:
    listed = images(capsys)

    assert listed[0] == "quay.io/tigera/operator:v1.40.15"
    for component in REQUIRED_COMPONENTS:
        assert f"quay.io/{component}:v3.31.7" in listed, component
    assert NETSHOOT_IMAGE in listed
    assert len(listed) == len(set(listed)) == 1 + len(REQUIRED_COMPONENTS) + 1 + 1  # + the kind node image


def test_327_lists_its_own_operator_and_tags(capsys: pytest.CaptureFixture[str]) -> None:
    listed = images(capsys, "--calico-version", "v3.27.5")

    assert listed[0] == "quay.io/tigera/operator:v1.32.12"
    for component in REQUIRED_COMPONENTS:
        assert f"docker.io/{component}:v3.27.5" in listed, component


@pytest.mark.skipif(not UPSTREAM.is_dir(), reason=f"upstream Calico manifests not found at {UPSTREAM}")
@pytest.mark.parametrize("version", sorted(RELEASES))
def test_the_listed_operator_image_is_the_one_the_pinned_manifest_deploys(
    capsys: pytest.CaptureFixture[str], version: str
) -> None:
    release = RELEASES[version]
    text = (UPSTREAM / release.tag / "tigera-operator.yaml").read_text()
    deployed = {
        container["image"]
        for document in yaml.load_all(text, Loader=yaml.CSafeLoader)
        if document and document["kind"] == "Deployment"
        for container in document["spec"]["template"]["spec"]["containers"]
    }

    assert deployed <= set(images(capsys, "--calico-version", version))


def test_registry_mirrors_every_image_keeping_paths_tags_and_digests(
    capsys: pytest.CaptureFixture[str],
) -> None:
    listed = images(capsys, "--registry", "mirror.example.com:5000")

    assert all(image.startswith("mirror.example.com:5000/") for image in listed)
    assert "mirror.example.com:5000/tigera/operator:v1.40.15" in listed
    assert "mirror.example.com:5000/calico/node:v3.31.7" in listed
    assert (
        f"mirror.example.com:5000/nicolaka/netshoot:v0.13@sha256:{NETSHOOT_IMAGE.split('@sha256:')[1]}"
        in listed
    )


def test_json_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["images", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)

    assert document["calicoVersion"] == "v3.31.7"
    assert document["registry"] is None
    assert NETSHOOT_IMAGE in document["images"]


def test_kind_node_images_of_the_register_are_added(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "networking": {
            "podSubnet": "10.244.0.0/16",
            "serviceSubnet": "10.96.0.0/16",
            "disableDefaultCNI": True,
        },
        "nodes": [
            {"role": "control-plane", "image": "kindest/node:v1.31.4"},
            {"role": "worker", "image": "kindest/node:v1.31.4"},
        ],
    }
    (tmp_path / "finland.yaml").write_text(yaml.safe_dump(config))

    listed = images(capsys, "--kind-configs", str(tmp_path))

    assert listed[-1] == "kindest/node:v1.31.4"
    assert listed.count("kindest/node:v1.31.4") == 1


def test_an_unpinned_version_is_a_usage_error_naming_the_pinned_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["images", "--calico-version", "3.29"]) == 2
    error = capsys.readouterr().err
    assert "no pinned Calico release for --calico-version 3.29" in error
    assert "3.27 (v3.27.5), 3.31 (v3.31.7)" in error
