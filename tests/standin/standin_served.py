"""Discovery of the cluster stand-in: ONLY the resources the pinned Calico release really serves.

The data is the vendored served-resources file of the pinned release (`cluster/data/served-resources/`,
written from the real sources with provenance, read by `cluster/served.py`). Anything not listed is
answered the way the real API server answers an unknown path: a 404 Status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from calico_conformance.cluster.served import served_resources


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

    def __init__(self, release: str) -> None:
        self.release = release
        self.resources: dict[tuple[str, str], ServedResource] = {}
        self.group_versions: list[str] = []
        for gv, group in served_resources(release).groups.items():
            self.group_versions.append(gv)
            for entry in group.resources:
                self.resources[(gv, entry.name)] = ServedResource(
                    gv,
                    entry.name,
                    entry.kind,
                    entry.namespaced,
                    entry.verbs,
                    entry.singular_name,
                    entry.short_names,
                )

    @classmethod
    def load(cls, release: str = "v3.31.7") -> ServedApi:
        return cls(release)

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
