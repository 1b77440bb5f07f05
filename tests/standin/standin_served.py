"""Discovery of the cluster stand-in: ONLY the resources the pinned Calico release really serves.

The data is the vendored served-resources file of the pinned release (`cluster/data/served-resources/`,
written from the real sources with provenance, see the live-targets issue); while that file is not on
this branch the stand-in reads an interim file of the same shape (`data/served-interim.yaml`). Anything
not listed is answered the way the real API server answers an unknown path: a 404 Status.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
VENDORED = REPO / "src" / "calico_conformance" / "cluster" / "data" / "served-resources"
INTERIM = Path(__file__).resolve().parent / "data" / "served-interim.yaml"


@dataclass(frozen=True)
class ServedResource:
    group_version: str
    name: str  # plural, or `plural/subresource`
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    singular: str = ""
    short_names: tuple[str, ...] = ()

    @property
    def group(self) -> str:
        return self.group_version.rpartition("/")[0]

    def discovery(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        return entry


class ServedApi:
    """What one pinned release serves, by groupVersion and resource name."""

    def __init__(self, groups: list[dict[str, Any]], source: Path) -> None:
        self.source = source
        self.resources: dict[tuple[str, str], ServedResource] = {}
        self.group_versions: list[str] = []
        for group in groups:
            gv = str(group["groupVersion"])
            self.group_versions.append(gv)
            for entry in group.get("resources") or ():
                resource = ServedResource(
                    gv,
                    str(entry["name"]),
                    str(entry["kind"]),
                    bool(entry["namespaced"]),
                    tuple(entry.get("verbs") or ()),
                    str(entry.get("singularName") or ""),
                    tuple(entry.get("shortNames") or ()),
                )
                self.resources[(gv, resource.name)] = resource

    @classmethod
    def load(cls, release: str = "v3.31.7") -> ServedApi:
        path = VENDORED / f"{release}.yaml"
        if not path.exists():
            path = INTERIM
        document = yaml.safe_load(path.read_text())
        return cls(list(document["groups"]), path)

    def lookup(self, group_version: str, name: str) -> ServedResource | None:
        return self.resources.get((group_version, name))

    def by_kind(self, group_version: str, kind: str) -> ServedResource | None:
        for (gv, name), resource in self.resources.items():
            if gv == group_version and resource.kind == kind and "/" not in name:
                return resource
        return None

    # --- discovery documents, as /api, /apis and /api(s)/<gv> return them ---------------------------------

    def core_versions(self) -> dict[str, Any] | None:
        if "v1" not in self.group_versions:
            return None
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:0"}],
        }

    def group_list(self) -> dict[str, Any]:
        groups: dict[str, list[str]] = {}
        for gv in self.group_versions:
            if "/" in gv:
                group, _, version = gv.partition("/")
                groups.setdefault(group, []).append(version)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": group,
                    "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
                    "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]},
                }
                for group, versions in groups.items()
            ],
        }

    def resource_list(self, group_version: str) -> dict[str, Any] | None:
        if group_version not in self.group_versions:
            return None
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": [r.discovery() for (gv, _), r in self.resources.items() if gv == group_version],
        }
