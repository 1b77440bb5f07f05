"""Staged policies (placeholder while the reader is written)."""

from __future__ import annotations

from calico_conformance.oracle.model import ResourceSet


def promote_staged(resources: ResourceSet) -> ResourceSet:
    return resources
