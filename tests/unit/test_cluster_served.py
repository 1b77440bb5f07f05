"""The vendored served-resources files say what each pinned release's API really serves.

The Calico CRD groups are re-derived from the release manifests beside the repository (`../shared/calico`,
as in test_cluster_vendored_data.py); the projectcalico.org/v3 list is checked line by line against the
Calico source (`storage_calico.go`, cited in the file) when a git copy of projectcalico/calico is at hand
($CALICO_GIT_DIR, or the fetched mirror). Without them those tests skip, saying so.
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from calico_conformance.cluster.releases import RELEASES
from calico_conformance.cluster.served import (
    SERVED_DIR,
    is_served,
    resource_for_kind,
    served_releases,
    served_resources,
)

UPSTREAM = Path(__file__).resolve().parents[2].parent / "shared" / "calico"
CALICO_GIT = Path(os.environ.get("CALICO_GIT_DIR", "/work/.mirror/projectcalico+calico/repo"))
needs_upstream = pytest.mark.skipif(
    not UPSTREAM.is_dir(), reason=f"upstream Calico manifests not found at {UPSTREAM}"
)
needs_calico_git = pytest.mark.skipif(
    not CALICO_GIT.is_dir(), reason=f"no git copy of projectcalico/calico at {CALICO_GIT} ($CALICO_GIT_DIR)"
)
TAGS = [pytest.param(release.tag, id=release.tag) for release in RELEASES.values()]


def test_every_pinned_release_has_a_served_resources_file() -> None:
    assert set(served_releases()) == {release.tag for release in RELEASES.values()}


@pytest.mark.parametrize("tag", TAGS)
def test_every_group_names_its_source(tag: str) -> None:
    release = served_resources(tag)
    assert {"projectcalico.org/v3", "crd.projectcalico.org/v1", "operator.tigera.io/v1", "v1"} <= set(
        release.groups
    )
    for group in release.groups.values():
        assert group.source["repository"], group.group_version
        assert group.source["path"], group.group_version
        assert "tag" in group.source or "commit" in group.source, group.group_version
        assert group.resources, group.group_version


@pytest.mark.parametrize("tag", TAGS)
def test_the_calico_api_server_serves_no_workload_endpoints(tag: str) -> None:
    # storage_calico.go registers no "workloadendpoints" storage in either release (issue 9, item 1).
    assert not is_served(tag, "projectcalico.org/v3", "workloadendpoints")
    assert resource_for_kind(tag, "projectcalico.org/v3", "WorkloadEndpoint") is None


def test_tiers_are_served_by_3_31_and_not_by_3_27() -> None:
    # v3.31.7 storage_calico.go:531 `storage["tiers"]`; v3.27.5 has no tiers storage (436-459) and no
    # tiers.crd.projectcalico.org in manifests/tigera-operator.yaml.
    assert is_served("v3.31.7", "projectcalico.org/v3", "tiers")
    assert is_served("v3.31.7", "crd.projectcalico.org/v1", "tiers")
    assert not is_served("v3.27.5", "projectcalico.org/v3", "tiers")
    assert not is_served("v3.27.5", "crd.projectcalico.org/v1", "tiers")


def test_an_unknown_release_is_an_error_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"v9\.9\.9.*known: v3\.27\.5, v3\.31\.7"):
        served_resources("v9.9.9")


@cache
def crds(tag: str, name: str) -> dict[str, dict[str, Any]]:
    text = (UPSTREAM / tag / name).read_text()
    found: dict[str, dict[str, Any]] = {}
    for document in yaml.load_all(text, Loader=yaml.CSafeLoader):
        if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
            found[document["metadata"]["name"]] = document
    return found


@needs_upstream
@pytest.mark.parametrize("tag", TAGS)
@pytest.mark.parametrize("group_version", ["crd.projectcalico.org/v1", "operator.tigera.io/v1"])
def test_the_crd_groups_are_exactly_the_release_manifests_crds(tag: str, group_version: str) -> None:
    group = served_resources(tag).groups[group_version]
    name = Path(group.source["path"]).name
    api_group = group_version.split("/")[0]
    upstream = {key: crd for key, crd in crds(tag, name).items() if crd["spec"]["group"] == api_group}
    listed = {r.name: r for r in group.resources if not r.is_subresource}
    assert set(listed) == {crd["spec"]["names"]["plural"] for crd in upstream.values()}
    for crd in upstream.values():
        names, resource = crd["spec"]["names"], listed[crd["spec"]["names"]["plural"]]
        assert (resource.kind, resource.singular_name, resource.namespaced) == (
            names["kind"], names["singular"], crd["spec"]["scope"] == "Namespaced"
        )  # fmt: skip
        assert resource.short_names == tuple(names.get("shortNames", ()))
        (version,) = [v for v in crd["spec"]["versions"] if v.get("served")]
        has_status = "status" in (version.get("subresources") or {})
        assert (group.named(f"{names['plural']}/status") is not None) == has_status


def calico_source(tag: str, path: str) -> list[str]:
    shown = subprocess.run(
        ["git", "--git-dir", str(CALICO_GIT), "show", f"{tag}:{path}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return shown.stdout.split("\n")


@needs_calico_git
@pytest.mark.parametrize("tag", TAGS)
def test_the_v3_list_is_exactly_the_storage_the_calico_api_server_registers(tag: str) -> None:
    group = served_resources(tag).groups["projectcalico.org/v3"]
    lines = calico_source(tag, group.source["path"])
    registered = sorted(
        line.split('storage["')[1].split('"]')[0] for line in lines if line.strip().startswith('storage["')
    )
    assert sorted(r.name for r in group.resources) == registered
    raw = yaml.safe_load((SERVED_DIR / f"{tag}.yaml").read_text())
    (v3,) = [g for g in raw["groups"] if g["groupVersion"] == "projectcalico.org/v3"]
    for entry in v3["resources"]:  # each resource's cited line is its storage registration
        assert f'storage["{entry["name"]}"]' in lines[int(entry["lines"]) - 1], entry
