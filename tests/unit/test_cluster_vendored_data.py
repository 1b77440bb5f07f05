"""The vendored Calico data is what the upstream release files say it is.

`data/calico/releases.json` pins sha256 sums and images; `data/calico/<tag>/schemas/` holds CRD schemas
extracted by `cluster/vendor.py`. When the upstream files are beside the repository (`../shared/calico`,
as on this project's machines and in its CI), the sums, the operator image and every schema are
re-derived from them and must be identical. Without them those tests skip, saying so.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from calico_conformance.cluster.releases import RELEASES, CalicoRelease, sha256_file
from calico_conformance.cluster.vendor import (
    VENDORED_CRDS,
    extract_schemas,
    render_schema,
)

UPSTREAM = Path(__file__).resolve().parents[2].parent / "shared" / "calico"
needs_upstream = pytest.mark.skipif(
    not UPSTREAM.is_dir(), reason=f"upstream Calico manifests not found at {UPSTREAM}"
)
RELEASE_PARAMS = [pytest.param(release, id=release.tag) for release in RELEASES.values()]


@cache
def upstream_documents(tag: str, name: str) -> list[Any]:
    """The parsed upstream file (the C loader: the CRD bundle is 2.6 MB)."""
    text = (UPSTREAM / tag / name).read_text()
    return [document for document in yaml.load_all(text, Loader=yaml.CSafeLoader) if document]


@needs_upstream
@pytest.mark.parametrize("release", RELEASE_PARAMS)
def test_pinned_sums_are_the_sums_of_the_upstream_files(release: CalicoRelease) -> None:
    for manifest in release.manifests:
        assert sha256_file(UPSTREAM / release.tag / manifest.name) == manifest.sha256, manifest.name


@needs_upstream
@pytest.mark.parametrize("release", RELEASE_PARAMS)
def test_operator_image_is_the_one_the_upstream_deployment_runs(release: CalicoRelease) -> None:
    (operator_manifest,) = [m for m in release.manifests if "operator" in m.contains]
    documents = upstream_documents(release.tag, operator_manifest.name)
    (deployment,) = [d for d in documents if d and d["kind"] == "Deployment"]
    images = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]

    assert images == [release.operator_image]


@needs_upstream
@pytest.mark.parametrize("release", RELEASE_PARAMS)
def test_vendored_schemas_are_exactly_what_extraction_gives(release: CalicoRelease) -> None:
    crd_manifest = release.crd_manifest
    documents = upstream_documents(release.tag, crd_manifest.name)
    extracted = extract_schemas(documents, f"{release.tag}/{crd_manifest.name}", crd_manifest.sha256)

    vendored = {path.stem: path.read_text() for path in release.schema_dir.glob("*.json")}
    assert sorted(vendored) == sorted(extracted)
    for name, schema in extracted.items():
        assert vendored[name] == render_schema(schema), name


@needs_upstream
def test_separate_crd_manifest_is_exactly_the_releases_that_ship_one() -> None:
    # calico-install.md §1: from 3.30 the CRDs ship in operator-crds.yaml and tigera-operator.yaml has none.
    for release in RELEASES.values():
        operator = next(m for m in release.manifests if "operator" in m.contains)
        documents = upstream_documents(release.tag, operator.name)
        bundles_crds = any(d["kind"] == "CustomResourceDefinition" for d in documents)
        assert bundles_crds == (not release.crds_ship_separately), release.tag


@pytest.mark.parametrize("release", RELEASE_PARAMS)
def test_every_vendored_schema_names_its_source_and_pin(release: CalicoRelease) -> None:
    for path in release.schema_dir.glob("*.json"):
        vendored = json.loads(path.read_text())
        assert vendored["crd"] == path.stem
        assert vendored["crd"] in VENDORED_CRDS
        assert vendored["sourceSha256"] == release.crd_manifest.sha256
        assert "description" not in path.read_text().split('"openAPIV3Schema"')[1][:200]


def test_tiers_schema_exists_only_where_calico_has_tiers() -> None:
    # Tiers arrived in Calico 3.29 (calico-install.md §1 table).
    assert not (RELEASES["3.27"].schema_dir / "tiers.crd.projectcalico.org.json").exists()
    assert (RELEASES["3.31"].schema_dir / "tiers.crd.projectcalico.org.json").exists()


@pytest.mark.parametrize("release", RELEASE_PARAMS)
def test_images_are_the_operator_then_the_components_at_the_release_tag(release: CalicoRelease) -> None:
    images = release.images()
    assert images[0] == release.operator_image
    assert f"{release.component_registry}/calico/node:{release.tag}" in images
    assert all(image.endswith(f":{release.tag}") for image in images[1:])
