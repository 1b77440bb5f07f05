"""calico-conformance: prove that Calico enforces the isolation a cluster's policies promise."""

from __future__ import annotations

__version__ = "0.1.0"
