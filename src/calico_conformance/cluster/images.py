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


# The kind node image of each pinned Calico release's job, by digest, passed to `kind create cluster
# --image` and written into every kind-configs/*.yaml node. kind is pinned to v0.27.0 (cluster/tools.py,
# .github/workflows/e2e-kind.yml).
# - 3.31: kind v0.27.0's default node image, Kubernetes v1.32.2: kubernetes-sigs/kind v0.27.0
#   pkg/apis/config/defaults/image.go:21.
# - 3.27: Calico v3.27.5 is built and tested against Kubernetes v1.27 (projectcalico/calico v3.27.5
#   metadata.mk:9 `K8S_VERSION=v1.27.16`), which kind v0.27.0 ships no image for; this is the v1.27.16
#   image kind published with v0.25.0 (its release notes' image list). kind supports images of other
#   releases on a best-effort basis only (kind.sigs.k8s.io/docs/design/node-image): the 3.27 job is where
#   that would show.
KIND_NODE_IMAGES: dict[str, str] = {
    "3.31": "kindest/node:v1.32.2@sha256:f226345927d7e348497136874b6d207e0b32cc52154ad8323129352923a3142f",
    "3.27": "kindest/node:v1.27.16@sha256:2d21a61643eafc439905e18705b8186f3296384750a835ad7a005dceb9546d20",
}


def kind_node_image(calico_version: str) -> str:
    """The pinned kind node image for a pinned Calico major.minor (ValueError naming the known ones)."""
    try:
        return KIND_NODE_IMAGES[calico_version]
    except KeyError:
        raise ValueError(
            f"no kind node image pinned for Calico {calico_version}; pinned: {', '.join(sorted(KIND_NODE_IMAGES))}"
        ) from None


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
    """The images one live run pulls, each once, in a stable order: Calico's, the probe image, the kind
    node image of the release's job, `extra`."""
    images = [*release.images(), NETSHOOT_IMAGE, kind_node_image(release.version), *extra]
    unique = list(dict.fromkeys(images))
    return [rewrite_image(image, registry) for image in unique]
