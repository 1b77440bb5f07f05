"""A throw-away copy of the suite's inputs, and the edits a fault makes to it.

A fault is applied to a `Workspace`: a temporary directory holding a copy of the policy set, the tenancy
layout and the cluster register. The originals are only ever read. Edits are structural where the fault
is structural (load the YAML documents, change the data, dump them back) and textual only where the
fault lives in the text itself, such as a duplicated mapping key that a YAML parser would silently fold.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from calico_conformance.oracle.errors import Location

Document = dict[str, Any]
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Inputs:
    """Where the suite's inputs live: the reference set, or a copy of it."""

    policies: Path  # a directory of manifests
    layout: Path  # the tenancy layout file
    kind_configs: Path  # the cluster register directory

    @classmethod
    def of_repository(cls, root: Path) -> Inputs:
        return cls(root / "policies" / "reference", root / "policies" / "tenancy.yaml", root / "kind-configs")


class Workspace:
    """A copy of `Inputs` under `root`, with the edits faults are made of."""

    def __init__(self, original: Inputs, root: Path) -> None:
        self.root = root
        self.inputs = Inputs(root / "policies", root / "tenancy.yaml", root / "kind-configs")
        root.mkdir(parents=True, exist_ok=True)
        shutil.copytree(original.policies, self.inputs.policies)
        shutil.copy2(original.layout, self.inputs.layout)
        shutil.copytree(original.kind_configs, self.inputs.kind_configs)

    # --- policy manifests --------------------------------------------------------------------------

    def manifest_files(self) -> list[Path]:
        return sorted(
            p for p in self.inputs.policies.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES
        )

    def resources(self) -> Iterator[tuple[Path, int, Document]]:
        """Every manifest document: (file, index in the file, document)."""
        for path in self.manifest_files():
            for index, document in enumerate(read_documents(path)):
                if isinstance(document, dict):
                    yield path, index, document

    def find(self, kind: str, name: str, namespace: str | None = None) -> tuple[Path, int]:
        """The file and document index of one resource; `LookupError` if the set has no such resource."""
        for path, index, document in self.resources():
            metadata = document.get("metadata") or {}
            if (
                document.get("kind") == kind
                and metadata.get("name") == name
                and metadata.get("namespace") == namespace
            ):
                return path, index
        where = f" in namespace {namespace}" if namespace else ""
        raise LookupError(
            f"the policy set has no {kind} {name}{where}: the fault no longer fits the reference set"
        )

    def edit(self, kind: str, name: str, namespace: str | None, change: Callable[[Document], None]) -> Path:
        """Change one resource in place (structurally) and write its file back."""
        path, index = self.find(kind, name, namespace)
        documents = read_documents(path)
        change(documents[index])
        write_documents(path, documents)
        return path

    def remove(self, kind: str, name: str, namespace: str | None = None) -> Path:
        path, index = self.find(kind, name, namespace)
        documents = read_documents(path)
        del documents[index]
        write_documents(path, documents)
        return path

    def add(self, file_name: str, *documents: Document) -> Path:
        """Add a new manifest file to the policy set."""
        path = self.inputs.policies / file_name
        write_documents(path, list(documents))
        return path

    def edit_all(self, matches: Callable[[Document], bool], change: Callable[[Document], None]) -> int:
        """Change every resource `matches` selects; returns how many changed (0 means the fault is stale)."""
        changed = 0
        for path in self.manifest_files():
            documents = read_documents(path)
            hits = [document for document in documents if isinstance(document, dict) and matches(document)]
            for document in hits:
                change(document)
            if hits:
                write_documents(path, documents)
                changed += len(hits)
        return changed

    # --- layout and register -----------------------------------------------------------------------

    def edit_layout(self, change: Callable[[Document], None]) -> Path:
        (layout,) = read_documents(self.inputs.layout)
        change(layout)
        write_documents(self.inputs.layout, [layout])
        return self.inputs.layout

    def edit_kind_config(self, cluster: str, change: Callable[[Document], None]) -> Path:
        path = self.inputs.kind_configs / f"{cluster}.yaml"
        (config,) = read_documents(path)
        change(config)
        write_documents(path, [config])
        return path


def insert_after_block(path: Path, opening: str, text: str, occurrence: int = 1) -> Location:
    """Insert `text` (one line, indented like `opening`) after the YAML block that starts with the
    `occurrence`-th line whose stripped text is `opening`. Returns the inserted line's location.

    The one textual edit: a duplicated key cannot be made by editing parsed data, which has no duplicates.
    """
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    starts = [number for number, line in enumerate(lines) if line.strip() == opening]
    if len(starts) < occurrence:
        raise LookupError(f"{path}: no line {opening!r} #{occurrence}: the fault no longer fits the file")
    start = starts[occurrence - 1]
    indent = _indent(lines[start])
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > indent):
        end += 1
    lines.insert(end, " " * indent + text + "\n")
    path.write_text("".join(lines), encoding="utf-8")
    return Location(str(path), end + 1)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def read_documents(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as stream:
        return [document for document in yaml.safe_load_all(stream) if document is not None]


def write_documents(path: Path, documents: list[Any]) -> None:
    path.write_text(
        yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False, width=120), encoding="utf-8"
    )
