"""The API resources each pinned Calico release really serves, from `cluster/data/served-resources/<tag>.yaml`.

The unit tests' fake API servers (and the stand-in API server) answer only for what is listed here, so a
code path that asks for a resource a pinned release does not serve — as the WorkloadEndpoint wait did:
the Calico API server registers no `workloadendpoints` (apiserver/pkg/registry/projectcalico/rest/
storage_calico.go) — fails in the tests instead of timing out on the first live run. Every group in the
files names the source it was read from (repository, tag or commit, path, lines).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

SERVED_DIR = Path(__file__).resolve().parent / "data" / "served-resources"


@dataclass(frozen=True)
class ServedResource:
    """One entry of a discovery document's `resources` (a kind's plural name, or `plural/subresource`)."""

    name: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    singular_name: str = ""
    short_names: tuple[str, ...] = ()

    @property
    def is_subresource(self) -> bool:
        return "/" in self.name


@dataclass(frozen=True)
class ServedGroup:
    """One `groupVersion` a release serves, with where that list was read."""

    group_version: str
    source: Mapping[str, str]
    resources: tuple[ServedResource, ...]

    def named(self, name: str) -> ServedResource | None:
        return next((resource for resource in self.resources if resource.name == name), None)

    def for_kind(self, kind: str) -> ServedResource | None:
        """The top-level resource (not a subresource) whose kind is `kind`."""
        return next(
            (
                resource
                for resource in self.resources
                if resource.kind == kind and not resource.is_subresource
            ),
            None,
        )


@dataclass(frozen=True)
class ServedRelease:
    """Every group version one release serves, by `groupVersion`."""

    release: str
    groups: Mapping[str, ServedGroup]

    def group(self, group_version: str) -> ServedGroup | None:
        return self.groups.get(group_version)


def served_releases() -> tuple[str, ...]:
    """The release tags that have a served-resources file."""
    return tuple(sorted(path.stem for path in SERVED_DIR.glob("v*.yaml")))


@cache
def served_resources(release: str) -> ServedRelease:
    """The served resources of `release` (a tag such as `v3.31.7`); ValueError naming the known ones."""
    path = SERVED_DIR / f"{release}.yaml"
    if not path.is_file():
        raise ValueError(
            f"{path}: no served-resources file for {release}; known: {', '.join(served_releases()) or 'none'}"
        )
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or document.get("release") != release:
        raise ValueError(f"{path}:1: release must be {release!r}")
    groups: dict[str, ServedGroup] = {}
    for index, raw in enumerate(document.get("groups") or ()):
        group = _group(raw, f"{path}: groups[{index}]")
        if group.group_version in groups:
            raise ValueError(f"{path}: groups[{index}]: {group.group_version} listed twice")
        groups[group.group_version] = group
    return ServedRelease(release, groups)


def _group(raw: Any, where: str) -> ServedGroup:
    if not isinstance(raw, dict) or not isinstance(raw.get("groupVersion"), str):
        raise ValueError(f"{where}: needs a groupVersion")
    source = raw.get("source")
    if not isinstance(source, dict) or not {"repository", "path"} <= set(source):
        raise ValueError(f"{where}: {raw['groupVersion']} needs a source with repository and path")
    resources = tuple(
        ServedResource(
            name=str(entry["name"]),
            kind=str(entry["kind"]),
            namespaced=bool(entry["namespaced"]),
            verbs=tuple(str(verb) for verb in entry["verbs"]),
            singular_name=str(entry.get("singularName", "")),
            short_names=tuple(str(name) for name in entry.get("shortNames", ())),
        )
        for entry in raw.get("resources") or ()
    )
    return ServedGroup(raw["groupVersion"], {str(k): str(v) for k, v in source.items()}, resources)


def is_served(release: str, group_version: str, resource: str) -> bool:
    """Whether `release` serves `resource` (plural, or `plural/subresource`) in `group_version`."""
    group = served_resources(release).group(group_version)
    return group is not None and group.named(resource) is not None


def resource_for_kind(release: str, group_version: str, kind: str) -> ServedResource | None:
    """The resource serving `kind` in `group_version` on `release`, or None when that release has none."""
    group = served_resources(release).group(group_version)
    return None if group is None else group.for_kind(kind)
