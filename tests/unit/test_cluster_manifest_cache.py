"""Pinned manifests: a verified cache filled once, `--calico-manifests DIR`, and refusals of wrong files.

Downloads use the real `urllib` code path with `file:` URLs (this machine may not reach GitHub), over
files written here; the test release pins their sums. Whether raw.githubusercontent.com serves the
pinned bytes is checked by the vendored-data test against the upstream copies, not by a download.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from calico_conformance.cluster.manifest_cache import ManifestError, urlopen_download, verified_manifests
from calico_conformance.cluster.releases import CalicoRelease, PinnedManifest

CRDS = b"kind: CustomResourceDefinition\n"
OPERATOR = b"kind: Deployment\n"


def release(upstream: Path) -> CalicoRelease:
    return CalicoRelease(
        version="3.31",
        tag="v3.31.7",
        manifests=(
            PinnedManifest("operator-crds.yaml", hashlib.sha256(CRDS).hexdigest(), frozenset({"crds"})),
            PinnedManifest(
                "tigera-operator.yaml", hashlib.sha256(OPERATOR).hexdigest(), frozenset({"operator"})
            ),
        ),
        operator_image="quay.io/tigera/operator:v1.40.15",
        component_registry="quay.io",
        component_images=("calico/node",),
        component_images_source="test",
    )


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    directory = tmp_path / "upstream"
    directory.mkdir()
    (directory / "operator-crds.yaml").write_bytes(CRDS)
    (directory / "tigera-operator.yaml").write_bytes(OPERATOR)
    return directory


class CountingDownload:
    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url: str, target: Path, timeout_s: float) -> None:
        self.urls.append(url)
        urlopen_download(url, target, timeout_s)


def test_first_use_downloads_and_verifies_later_uses_read_the_cache(upstream: Path, tmp_path: Path) -> None:
    download = CountingDownload()
    cache = tmp_path / "cache"
    pinned = release(upstream)

    first = verified_manifests(pinned, cache_dir=cache, download=download, base_url=upstream.as_uri() + "/")
    second = verified_manifests(pinned, cache_dir=cache, download=download, base_url=upstream.as_uri() + "/")

    assert (
        first
        == second
        == {
            "operator-crds.yaml": cache / "v3.31.7" / "operator-crds.yaml",
            "tigera-operator.yaml": cache / "v3.31.7" / "tigera-operator.yaml",
        }
    )
    assert first["operator-crds.yaml"].read_bytes() == CRDS
    assert download.urls == [
        f"{upstream.as_uri()}/operator-crds.yaml",
        f"{upstream.as_uri()}/tigera-operator.yaml",
    ]


def test_a_download_with_the_wrong_sum_is_refused_and_not_cached(upstream: Path, tmp_path: Path) -> None:
    (upstream / "tigera-operator.yaml").write_bytes(b"kind: Deployment\n# tampered\n")
    cache = tmp_path / "cache"

    with pytest.raises(ManifestError) as raised:
        verified_manifests(release(upstream), cache_dir=cache, base_url=upstream.as_uri() + "/")

    message = str(raised.value)
    assert ".tigera-operator.yaml.part: sha256 " in message
    assert f"is not the pinned {hashlib.sha256(OPERATOR).hexdigest()} of tigera-operator.yaml" in message
    assert not (cache / "v3.31.7" / "tigera-operator.yaml").exists()
    assert not (cache / "v3.31.7" / ".tigera-operator.yaml.part").exists()


def test_a_corrupt_cache_entry_is_downloaded_again(upstream: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "v3.31.7").mkdir(parents=True)
    (cache / "v3.31.7" / "operator-crds.yaml").write_bytes(b"half a fi")
    download = CountingDownload()

    paths = verified_manifests(
        release(upstream), cache_dir=cache, download=download, base_url=upstream.as_uri() + "/"
    )

    assert paths["operator-crds.yaml"].read_bytes() == CRDS
    assert len(download.urls) == 2


def test_an_unreachable_source_says_how_to_install_offline(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"

    with pytest.raises(
        ManifestError, match=r"download failed .*pass --calico-manifests DIR holding operator-crds\.yaml"
    ):
        verified_manifests(release(missing), cache_dir=tmp_path / "cache", base_url=missing.as_uri() + "/")


def test_local_dir_is_used_as_is_without_download(upstream: Path, tmp_path: Path) -> None:
    def no_download(url: str, target: Path, timeout_s: float) -> None:
        raise AssertionError(f"downloaded {url} although --calico-manifests was given")

    paths = verified_manifests(release(upstream), local_dir=upstream, download=no_download)

    assert paths == {
        "operator-crds.yaml": upstream / "operator-crds.yaml",
        "tigera-operator.yaml": upstream / "tigera-operator.yaml",
    }


def test_local_dir_may_hold_a_directory_per_tag(upstream: Path, tmp_path: Path) -> None:
    per_tag = tmp_path / "mirror"
    (per_tag / "v3.31.7").mkdir(parents=True)
    for name in ("operator-crds.yaml", "tigera-operator.yaml"):
        (per_tag / "v3.31.7" / name).write_bytes((upstream / name).read_bytes())

    paths = verified_manifests(release(upstream), local_dir=per_tag)

    assert paths["tigera-operator.yaml"] == per_tag / "v3.31.7" / "tigera-operator.yaml"


def test_local_dir_with_a_wrong_or_missing_file_is_refused(upstream: Path) -> None:
    (upstream / "operator-crds.yaml").write_bytes(b"other release\n")
    with pytest.raises(ManifestError, match=r"operator-crds\.yaml: sha256 .* is not the pinned"):
        verified_manifests(release(upstream), local_dir=upstream)

    (upstream / "operator-crds.yaml").unlink()
    with pytest.raises(
        ManifestError, match=r"--calico-manifests has no operator-crds\.yaml for Calico v3\.31\.7"
    ):
        verified_manifests(release(upstream), local_dir=upstream)


def test_the_real_upstream_files_pass_as_a_local_dir_when_present() -> None:
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "calico" / "v3.31.7"
    if not shared.is_dir():
        pytest.skip(f"upstream Calico manifests not found at {shared}")
    from calico_conformance.cluster.releases import release_for

    paths = verified_manifests(release_for("3.31"), local_dir=shared)

    assert sorted(paths) == ["operator-crds.yaml", "tigera-operator.yaml"]
