"""The pinned Calico releases a live target can install, read from `data/calico/releases.json`.

A live run installs exactly one pinned release per `--calico-version` (major.minor): the manifest files
it applies, their sha256 sums (a download that does not match is refused), the operator image and the
component images the operator then pulls (`calico-conformance images` lists them for mirrors). The
default is the newest pin (v3.31.7); v3.27.5 is the runbook's line. The sums were computed from the
real upstream files; `cluster/vendor.py` re-checks them whenever the vendored schemas are regenerated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "calico"
RELEASES_FILE = DATA_DIR / "releases.json"
MANIFEST_BASE_URL = "https://raw.githubusercontent.com/projectcalico/calico/{tag}/manifests/"
DEFAULT_LIVE_VERSION = "3.31"
# Releases never to pin, and why. When the pin moves past 3.31: v3.32.0 breaks server-side apply of
# tiered policies (projectcalico/calico#12841, fixed in v3.32.1), and every policy this suite applies goes
# through `kubectl apply --server-side` (install.server_side_apply).
NEVER_PIN: Mapping[str, str] = {
    "v3.32.0": "breaks server-side apply of tiered policies (projectcalico/calico#12841); pin v3.32.1 or later",
}


@dataclass(frozen=True)
class PinnedManifest:
    """One upstream manifest file of a release and the sha256 it must have."""

    name: str
    sha256: str
    contains: frozenset[str]  # "crds" and/or "operator"


@dataclass(frozen=True)
class CalicoRelease:
    version: str  # major.minor, as --calico-version gives it
    tag: str  # the pinned patch release, e.g. v3.31.7
    manifests: tuple[PinnedManifest, ...]  # in install order: CRDs first where they ship separately
    operator_image: str
    component_registry: str
    component_images: tuple[str, ...]  # repository paths without registry or tag, e.g. calico/node
    component_images_source: str

    @property
    def base_url(self) -> str:
        return MANIFEST_BASE_URL.format(tag=self.tag)

    @property
    def crd_manifest(self) -> PinnedManifest:
        """The manifest that carries the CRDs (its own file from 3.30, inside tigera-operator.yaml before)."""
        return next(manifest for manifest in self.manifests if "crds" in manifest.contains)

    @property
    def crds_ship_separately(self) -> bool:
        return "operator" not in self.crd_manifest.contains

    @property
    def minor(self) -> tuple[int, int]:
        major, minor = self.version.split(".")
        return int(major), int(minor)

    @property
    def schema_dir(self) -> Path:
        return DATA_DIR / self.tag / "schemas"

    def images(self) -> tuple[str, ...]:
        """Every image an install of this release pulls: the operator, then the components it deploys."""
        components = tuple(f"{self.component_registry}/{path}:{self.tag}" for path in self.component_images)
        return (self.operator_image, *components)


@cache
def _load_releases() -> Mapping[str, CalicoRelease]:
    return parse_releases(json.loads(RELEASES_FILE.read_text()), RELEASES_FILE)


def parse_releases(raw: Mapping[str, Any], source: Path) -> Mapping[str, CalicoRelease]:
    """The releases of a `releases.json` document; a tag of NEVER_PIN is a ValueError naming `source`."""
    releases = {}
    for version, entry in raw.items():
        if entry["tag"] in NEVER_PIN:
            raise ValueError(f"{source}: {version} pins {entry['tag']}, which {NEVER_PIN[entry['tag']]}")
        releases[version] = CalicoRelease(
            version=version,
            tag=entry["tag"],
            manifests=tuple(
                PinnedManifest(item["name"], item["sha256"], frozenset(item["contains"]))
                for item in entry["manifests"]
            ),
            operator_image=entry["operatorImage"],
            component_registry=entry["componentRegistry"],
            component_images=tuple(entry["componentImages"]),
            component_images_source=entry["componentImagesSource"],
        )
    return releases


RELEASES: Mapping[str, CalicoRelease] = _load_releases()


def release_for(calico_version: str) -> CalicoRelease:
    """The pinned release of a major.minor version, or a ValueError naming the ones there are."""
    try:
        return RELEASES[calico_version]
    except KeyError:
        pinned = ", ".join(f"{version} ({release.tag})" for version, release in sorted(RELEASES.items()))
        raise ValueError(
            f"no pinned Calico release for --calico-version {calico_version}; live targets install one of: {pinned}"
        ) from None


@cache
def calico_network_fields(tag: str) -> frozenset[str]:
    """The fields of `Installation.spec.calicoNetwork` in the release's vendored Installation schema."""
    vendored = json.loads((DATA_DIR / tag / "schemas" / "installations.operator.tigera.io.json").read_text())
    spec = vendored["openAPIV3Schema"]["properties"]["spec"]["properties"]
    return frozenset(spec["calicoNetwork"]["properties"])


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks (the operator bundle is megabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
