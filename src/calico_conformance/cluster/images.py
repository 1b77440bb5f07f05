"""Every container image the suite may pull, and the one rule for pointing them at a mirror.

Air-gapped sites mirror these images and run with `--registry mirror.example.com`; the rule below
is applied to the probe pods, the operator Deployment and (through `Installation.spec.registry`) to
every Calico component, so one flag moves the whole run. `calico-conformance images` prints the list.
"""

from __future__ import annotations

from collections.abc import Iterable

from calico_conformance.cluster.releases import CalicoRelease

# The probe image: bash, iproute2, tcpdump and python3 (for the agent). Pinned by the digest of the
# published v0.13 tag, so a re-pushed tag can never change what runs. The digest is the one several
# independent public projects pin for nicolaka/netshoot:v0.13; it could not be re-resolved against
# Docker Hub from the machine this was written on (no registry access), so CI's first pull is the check.
NETSHOOT_IMAGE = "docker.io/nicolaka/netshoot:v0.13@sha256:a20c2531bf35436ed3766cd6cfe89d352b050ccc4d7005ce6400adf97503da1b"


def registry_host(image: str) -> str | None:
    """The registry part of an image reference, or None when the reference has none (Docker Hub)."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def rewrite_image(image: str, registry: str | None) -> str:
    """`image` pulled from `registry` instead: the registry host is replaced, the path, tag and digest kept.

    >>> rewrite_image("quay.io/tigera/operator:v1.40.15", "mirror.example.com:5000")
    'mirror.example.com:5000/tigera/operator:v1.40.15'
    >>> rewrite_image("nicolaka/netshoot:v0.13", "mirror.example.com/")
    'mirror.example.com/nicolaka/netshoot:v0.13'
    """
    if not registry:
        return image
    host = registry_host(image)
    path = image[len(host) + 1 :] if host else image
    return f"{registry.rstrip('/')}/{path}"


def installation_registry(registry: str | None) -> str | None:
    """The value for `Installation.spec.registry`: the operator wants the host with a trailing slash."""
    return f"{registry.rstrip('/')}/" if registry else None


def suite_images(
    release: CalicoRelease, *, registry: str | None = None, extra: Iterable[str] = ()
) -> list[str]:
    """The images one live run pulls, each once, in a stable order: Calico's, the probe image, `extra`."""
    images = [*release.images(), NETSHOOT_IMAGE, *extra]
    unique = list(dict.fromkeys(images))
    return [rewrite_image(image, registry) for image in unique]
