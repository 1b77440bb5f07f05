"""The kind node images are pinned by digest, per Calico release, and listed for mirrors (issue 9, item 8).

Expected values come from the sources cited in `cluster/images.py`: kind v0.27.0's default image
(kubernetes-sigs/kind v0.27.0 pkg/apis/config/defaults/image.go:21) and Calico v3.27.5's Kubernetes
version (projectcalico/calico v3.27.5 metadata.mk:9, K8S_VERSION=v1.27.16).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from calico_conformance.cli import main
from calico_conformance.cluster.commands import kind_create
from calico_conformance.cluster.images import KIND_NODE_IMAGES, kind_node_image
from calico_conformance.cluster.releases import RELEASES

REPO = Path(__file__).resolve().parents[2]
KIND_V0_27_0_DEFAULT = "kindest/node:v1.32.2@sha256:f226345927d7e348497136874b6d207e0b32cc52154ad8323129352923a3142f"
DIGEST = re.compile(r"^kindest/node:v(\d+)\.(\d+)\.\d+@sha256:[0-9a-f]{64}$")


def test_every_pinned_release_has_a_node_image_pinned_by_digest() -> None:
    assert set(KIND_NODE_IMAGES) == set(RELEASES)
    for image in KIND_NODE_IMAGES.values():
        assert DIGEST.match(image), image
    assert kind_node_image("3.31") == KIND_V0_27_0_DEFAULT


def test_the_3_27_job_runs_the_kubernetes_minor_calico_3_27_is_built_for() -> None:
    match = DIGEST.match(kind_node_image("3.27"))
    assert match is not None
    assert (match.group(1), match.group(2)) == ("1", "27")  # metadata.mk: K8S_VERSION=v1.27.16


@pytest.mark.parametrize("config", sorted((REPO / "kind-configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_kind_config_node_names_the_default_image_by_digest(config: Path) -> None:
    nodes = yaml.safe_load(config.read_text())["nodes"]
    assert [node.get("image") for node in nodes] == [KIND_V0_27_0_DEFAULT] * len(nodes)


def test_kind_create_overrides_every_node_image_with_the_releases() -> None:
    argv = kind_create("finland", Path("kind-configs/finland.yaml"), Path("/s/finland.kubeconfig"),
                       image=kind_node_image("3.27"))  # fmt: skip
    assert argv[-1] == f"--image={kind_node_image('3.27')}"


@pytest.mark.parametrize("version", sorted(RELEASES))
def test_the_images_command_lists_the_node_image(version: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["images", "--calico-version", version]) == 0
    assert kind_node_image(version) in capsys.readouterr().out.splitlines()


def test_an_unpinned_release_has_no_node_image() -> None:
    with pytest.raises(ValueError, match=r"no kind node image pinned for Calico 3\.99; pinned: 3\.27, 3\.31"):
        kind_node_image("3.99")
