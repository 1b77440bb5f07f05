"""The cluster stand-in's object store: what etcd and the API server's registry do for the stand-in.

Objects are plain dicts keyed by (groupVersion, plural, namespace, name). The store assigns what the
real API server assigns on create (uid, resourceVersion, creationTimestamp, generation) and filters
lists by label selector the way `k8s.io/apimachinery/pkg/labels` parses one (=, ==, !=, in, notin,
exists, !exists). Every change bumps one resourceVersion counter and wakes whoever waits on
`changed` (the kubelet and the policy programmer of the stand-in).
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

Key = tuple[str, str, str, str]  # groupVersion, plural, namespace ("" when cluster-scoped), name
Obj = dict[str, Any]

_REQUIREMENT = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9./_-]+)\s*"
    r"(?:(?P<op>==|=|!=|\s+in\s+|\s+notin\s+)\s*(?P<value>\([^)]*\)|[A-Za-z0-9._-]*))?\s*$"
)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def split_selector(selector: str) -> list[str]:
    """Requirements separated by commas that are not inside an `in (...)` list."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts


def selector_matches(selector: str | None, labels: Mapping[str, str]) -> bool:
    """Whether `labels` satisfy a Kubernetes label selector string; ValueError if it does not parse."""
    for requirement in split_selector(selector or ""):
        found = _REQUIREMENT.match(requirement)
        if not found:
            raise ValueError(f"unable to parse requirement: {requirement!r}")
        key, op, value = found["key"], (found["op"] or "").strip(), found["value"]
        if found["neg"]:
            if key in labels:
                return False
        elif not op:
            if key not in labels:
                return False
        elif op in ("=", "=="):
            if labels.get(key) != value:
                return False
        elif op == "!=":
            if labels.get(key) == value:
                return False
        else:
            values = {v.strip() for v in (value or "").strip("()").split(",")}
            if (op == "in") != (labels.get(key) in values):
                return False
    return True


class Conflict(Exception):
    """The object exists already (409 AlreadyExists)."""


class ObjectStore:
    """Every object of the stand-in cluster, thread-safe."""

    def __init__(self) -> None:
        self._objects: dict[Key, Obj] = {}
        self._version = 1
        self.changed = threading.Condition()
        self.listeners: list[Callable[[str, Key, Obj], None]] = []

    @property
    def resource_version(self) -> str:
        return str(self._version)

    def _bump(self, event: str, key: Key, obj: Obj) -> None:
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)
        self.changed.notify_all()
        for listener in self.listeners:
            listener(event, key, obj)

    def create(self, key: Key, obj: Obj) -> Obj:
        with self.changed:
            if key in self._objects:
                raise Conflict(key)
            stored = copy.deepcopy(obj)
            metadata = stored.setdefault("metadata", {})
            metadata.update(
                uid=str(uuid.uuid4()),
                creationTimestamp=now(),
                name=key[3],
                **({"namespace": key[2]} if key[2] else {}),
            )
            if "spec" in stored:
                metadata["generation"] = 1
            self._objects[key] = stored
            self._bump("ADDED", key, stored)
            return copy.deepcopy(stored)

    def get(self, key: Key) -> Obj | None:
        with self.changed:
            found = self._objects.get(key)
            return copy.deepcopy(found) if found is not None else None

    def replace(self, key: Key, obj: Obj) -> Obj:
        with self.changed:
            stored = copy.deepcopy(obj)
            old = self._objects[key]
            for field in ("uid", "creationTimestamp", "name", "namespace", "deletionTimestamp"):
                if field in old["metadata"]:
                    stored["metadata"][field] = old["metadata"][field]
            if stored.get("spec") != old.get("spec"):
                stored["metadata"]["generation"] = old["metadata"].get("generation", 0) + 1
            self._objects[key] = stored
            self._bump("MODIFIED", key, stored)
            return copy.deepcopy(stored)

    def update(self, key: Key, change: Callable[[Obj], None]) -> Obj | None:
        """Apply `change` to the stored object in place (status writes of the stand-in's controllers)."""
        with self.changed:
            stored = self._objects.get(key)
            if stored is None:
                return None
            before = copy.deepcopy(stored)
            change(stored)
            if stored != before:
                self._bump("MODIFIED", key, stored)
            return copy.deepcopy(stored)

    def remove(self, key: Key) -> Obj | None:
        with self.changed:
            gone = self._objects.pop(key, None)
            if gone is not None:
                self._bump("DELETED", key, gone)
            return gone

    def items(
        self, group_version: str, plural: str, namespace: str | None = None, selector: str | None = None
    ) -> list[Obj]:
        with self.changed:
            found = [
                copy.deepcopy(obj)
                for (gv, kind, ns, _name), obj in sorted(self._objects.items())
                if gv == group_version and kind == plural and (namespace is None or ns == namespace)
            ]
        return [obj for obj in found if selector_matches(selector, obj["metadata"].get("labels") or {})]

    def keys(self) -> Iterator[Key]:
        with self.changed:
            return iter(list(self._objects))
