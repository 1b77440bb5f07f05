"""The pinned Calico manifests on local disk, verified: downloaded once into a cache, or given by the user.

A live install applies exactly the files whose sha256 is pinned in `data/calico/releases.json`. They
come from one of two places:

* `--calico-manifests DIR` (air-gapped sites): `DIR/<name>` or `DIR/<tag>/<name>`; never downloaded;
* the cache, `$XDG_CACHE_HOME/calico-conformance/calico/<tag>/<name>` (default `~/.cache/...`),
  filled from the release's raw GitHub URL the first time and reused by every later run.

Either way the sum is checked before use; a mismatch is an error naming the file, both sums and where
the right file comes from. Downloads go to a temporary name and are moved into place only once
verified, under a file lock, so parallel workers never read half a file.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path

import filelock

from calico_conformance.cluster.releases import CalicoRelease, PinnedManifest, sha256_file

Download = Callable[[str, Path, float], None]
DOWNLOAD_TIMEOUT_S = 120.0


class ManifestError(ValueError):
    """A pinned manifest is missing or is not the pinned file."""


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "calico-conformance" / "calico"


def urlopen_download(url: str, target: Path, timeout_s: float) -> None:
    """Fetch `url` into `target` (https in real runs; any urllib scheme, e.g. file:, in tests)."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response, target.open("wb") as out:
        shutil.copyfileobj(response, out)


def verified_manifests(
    release: CalicoRelease,
    *,
    local_dir: Path | None = None,
    cache_dir: Path | None = None,
    download: Download = urlopen_download,
    base_url: str | None = None,
) -> dict[str, Path]:
    """`{manifest name: verified local path}` for every manifest the release installs."""
    if local_dir is not None:
        return {
            manifest.name: _from_local_dir(release, manifest, local_dir) for manifest in release.manifests
        }
    directory = (cache_dir or default_cache_dir()) / release.tag
    directory.mkdir(parents=True, exist_ok=True)
    url_base = base_url or release.base_url
    return {
        manifest.name: _cached(manifest, directory, f"{url_base}{manifest.name}", download)
        for manifest in release.manifests
    }


def _from_local_dir(release: CalicoRelease, manifest: PinnedManifest, local_dir: Path) -> Path:
    candidates = [local_dir / manifest.name, local_dir / release.tag / manifest.name]
    for path in candidates:
        if path.is_file():
            _check(path, manifest, f"{release.base_url}{manifest.name}")
            return path
    raise ManifestError(
        f"{candidates[0]}: --calico-manifests has no {manifest.name} for Calico {release.tag} "
        f"(looked in {local_dir} and {local_dir / release.tag}); fetch it from {release.base_url}{manifest.name}"
    )


def _cached(manifest: PinnedManifest, directory: Path, url: str, download: Download) -> Path:
    path = directory / manifest.name
    with filelock.FileLock(str(directory / f".{manifest.name}.lock"), timeout=DOWNLOAD_TIMEOUT_S * 3):
        if path.is_file() and sha256_file(path) == manifest.sha256:
            return path
        partial = directory / f".{manifest.name}.part"
        try:
            download(url, partial, DOWNLOAD_TIMEOUT_S)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise ManifestError(
                f"{url}: download failed ({error}); on a machine without internet access pass "
                f"--calico-manifests DIR holding {manifest.name}"
            ) from None
        try:
            _check(partial, manifest, url)
        except ManifestError:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, path)
        return path


def _check(path: Path, manifest: PinnedManifest, url: str) -> None:
    actual = sha256_file(path)
    if actual != manifest.sha256:
        raise ManifestError(
            f"{path}: sha256 {actual} is not the pinned {manifest.sha256} of {manifest.name}; "
            f"the pinned file is {url}"
        )
