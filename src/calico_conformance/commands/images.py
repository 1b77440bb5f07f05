"""`calico-conformance images`: every container image a live run may pull, for air-gapped mirrors.

An air-gapped site copies these images into its registry and runs the suite with `--registry HOST`.
The list is read from the vendored release data (`data/calico/releases.json`: the operator image of
the pinned `tigera-operator.yaml` and the component images that operator deploys), the probe image,
and any node image the kind configs of the register name. `--registry` prints the mirrored names,
which is what the run will pull; `--format json` is for scripts.

    calico-conformance images                        # default Calico release (3.31)
    calico-conformance images --calico-version 3.27 --registry mirror.example.com:5000
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pytest

from calico_conformance.cli import EXIT_OK, Command, UsageFailure
from calico_conformance.cluster.images import suite_images
from calico_conformance.cluster.releases import DEFAULT_LIVE_VERSION, RELEASES, CalicoRelease, release_for
from calico_conformance.config import parse_registry


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--calico-version",
        metavar="X.Y",
        default=DEFAULT_LIVE_VERSION,
        help=f"pinned Calico release to list (default {DEFAULT_LIVE_VERSION}; pinned: {', '.join(sorted(RELEASES))})",
    )
    parser.add_argument(
        "--registry", metavar="HOST[:PORT]", help="print the names as pulled from this mirror"
    )
    parser.add_argument(
        "--kind-configs",
        metavar="DIR",
        type=Path,
        help="also list the node images the kind configs in DIR pin (nodes[].image)",
    )
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="one image a line, or JSON"
    )


def kind_node_images(directory: Path) -> list[str]:
    """`nodes[].image` of every kind config in `directory` (kind's default image is not listed)."""
    from calico_conformance.tenancy.register import load_register

    images: list[str] = []
    for cluster in load_register(directory):
        for node in cluster.raw.get("nodes") or ():
            image = node.get("image")
            if image and image not in images:
                images.append(str(image))
    return images


# X.Y or X.Y.Z with an optional v, ASCII digits only (`\d` would take full-width digits).
VERSION = re.compile(r"v?(?P<minor>[0-9]+\.[0-9]+)(?P<patch>\.[0-9]+)?")


def pinned_release(text: str) -> CalicoRelease:
    """The pinned release `--calico-version` names: `3.31`, `v3.31` or the pinned patch `v3.31.7`.

    Another patch of a pinned minor is refused rather than silently listed as the pinned one: the
    images of v3.31.9 are not those of v3.31.7.
    """
    match = VERSION.fullmatch(text)
    if match is None:
        raise UsageFailure(f"--calico-version {text!r} is not a version like 3.31 or v3.27.5")
    minor = ".".join(str(int(part)) for part in match["minor"].split("."))
    try:
        release = release_for(minor)
    except ValueError as unpinned:
        raise UsageFailure(str(unpinned)) from None
    if match["patch"] is not None and f"v{minor}{match['patch']}" != release.tag:
        raise UsageFailure(
            f"--calico-version {text}: the pinned {minor} release is {release.tag}; give {minor} or {release.tag}"
        )
    return release


def run(args: argparse.Namespace) -> int:
    release = pinned_release(args.calico_version)
    if args.registry is not None:
        try:
            parse_registry(args.registry)
        except pytest.UsageError as bad:
            raise UsageFailure(str(bad)) from None
    extra = kind_node_images(args.kind_configs) if args.kind_configs else []
    images = suite_images(release, registry=args.registry, extra=extra)
    if args.format == "json":
        json.dump(
            {"calicoVersion": release.tag, "registry": args.registry, "images": images}, sys.stdout, indent=1
        )
        sys.stdout.write("\n")
    else:
        sys.stdout.write("".join(f"{image}\n" for image in images))
    return EXIT_OK


COMMAND = Command("images", "list every container image a live run may pull (for mirrors)", configure, run)
