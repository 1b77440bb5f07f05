"""Regenerate `data/calico/` from upstream Calico release manifests: small schemas and pinned sums.

The suite validates every manifest it would apply against Calico's own CRD schemas, and refuses to
install manifests whose sha256 differs from the pinned one. Both come from the real upstream files
(`manifests/operator-crds.yaml` and `tigera-operator.yaml` of each pinned release), but the CRD bundle
is 2.6 MB, so only the schemas the suite needs are vendored, with descriptions removed and the
deployment-override subtrees of the operator CRDs pruned (see `PRUNED_PATHS`: the suite never writes
them, and each is a full PodSpec of about 10 KB). Run it when a pin moves:

    python -m calico_conformance.cluster.vendor ../shared/calico

`tests/unit/test_cluster_vendored_data.py` re-runs the extraction against `../shared/calico` when it
exists and fails if the vendored files differ, so the data cannot drift from its source silently.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from calico_conformance.cluster.releases import DATA_DIR, RELEASES, CalicoRelease, sha256_file

# CRDs whose schemas the suite validates against: what it applies (Installation, APIServer) and what
# policy sets contain (projectcalico.org/v3 objects are stored as, and shaped like, these CRDs).
VENDORED_CRDS: tuple[str, ...] = (
    "installations.operator.tigera.io",
    "apiservers.operator.tigera.io",
    "tiers.crd.projectcalico.org",  # from 3.29 on; absent from the 3.27 bundle
    "globalnetworkpolicies.crd.projectcalico.org",
    "networkpolicies.crd.projectcalico.org",
    "globalnetworksets.crd.projectcalico.org",
    "networksets.crd.projectcalico.org",
)

# Subtrees replaced by "any object" (x-kubernetes-preserve-unknown-fields) when vendoring: per-component
# Deployment/DaemonSet overrides the suite never sets. `status` is dropped too: the server owns it.
PRUNED_PATHS: tuple[tuple[str, ...], ...] = (
    ("spec", "typhaDeployment"),
    ("spec", "calicoNodeDaemonSet"),
    ("spec", "calicoNodeWindowsDaemonSet"),
    ("spec", "csiNodeDriverDaemonSet"),
    ("spec", "calicoKubeControllersDeployment"),
    ("spec", "calicoWindowsUpgradeDaemonSet"),
    ("spec", "apiServerDeployment"),
    ("status",),
)

PRUNED_SCHEMA: Mapping[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: without_descriptions(value) for key, value in node.items() if key != "description"}
    if isinstance(node, list):
        return [without_descriptions(value) for value in node]
    return node


def prune(schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Replace the `PRUNED_PATHS` present in `schema`; returns the schema and the dotted paths pruned."""
    pruned: list[str] = []
    for path in PRUNED_PATHS:
        parent = schema
        for step in path[:-1]:
            parent = parent.get("properties", {}).get(step, {})
        properties = parent.get("properties", {})
        if path[-1] in properties:
            if path == ("status",):
                del properties[path[-1]]
            else:
                properties[path[-1]] = dict(PRUNED_SCHEMA)
            pruned.append(".".join(path))
    return schema, pruned


def extract_schemas(
    crd_documents: Iterable[Any], source: str, source_sha256: str
) -> dict[str, dict[str, Any]]:
    """`{crd name: vendored schema document}` for every `VENDORED_CRDS` entry found in the documents."""
    found: dict[str, dict[str, Any]] = {}
    for document in crd_documents:
        if not isinstance(document, dict) or document.get("kind") != "CustomResourceDefinition":
            continue
        name = document["metadata"]["name"]
        if name not in VENDORED_CRDS:
            continue
        spec = document["spec"]
        (version,) = [v for v in spec["versions"] if v.get("storage")]
        schema, pruned = prune(without_descriptions(version["schema"]["openAPIV3Schema"]))
        found[name] = {
            "crd": name,
            "group": spec["group"],
            "version": version["name"],
            "kind": spec["names"]["kind"],
            "scope": spec["scope"],
            "source": source,
            "sourceSha256": source_sha256,
            "pruned": pruned,
            "openAPIV3Schema": schema,
        }
    return found


def vendor_release(release: CalicoRelease, upstream: Path, data_dir: Path = DATA_DIR) -> list[Path]:
    """Write the schemas of one release from `upstream/<release>/`; check the pinned sums first."""
    release_dir = upstream / release.tag
    for manifest in release.manifests:
        actual = sha256_file(release_dir / manifest.name)
        if actual != manifest.sha256:
            raise ValueError(
                f"{release_dir / manifest.name}: sha256 {actual} differs from the pin {manifest.sha256} "
                f"in data/calico/releases.json; update the pin deliberately if the release moved"
            )
    crd_manifest = release.crd_manifest
    path = release_dir / crd_manifest.name
    documents = yaml.load_all(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    schemas = extract_schemas(documents, f"{release.tag}/{crd_manifest.name}", crd_manifest.sha256)
    written = []
    out_dir = data_dir / release.tag / "schemas"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, schema in sorted(schemas.items()):
        target = out_dir / f"{name}.json"
        target.write_text(render_schema(schema))
        written.append(target)
    return written


def render_schema(schema: Mapping[str, Any]) -> str:
    """Stable, diffable JSON: one key per line near the top, sorted keys."""
    return json.dumps(schema, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("upstream", type=Path, help="directory holding <tag>/tigera-operator.yaml etc.")
    args = parser.parse_args(argv)
    for release in RELEASES.values():
        for path in vendor_release(release, args.upstream):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
