"""Everything one lint run knows, handed to every family of checks.

The loaded policy set and the oracle built over it are always there; the layout, its inventory and the
flow table only when `--layout` was given. Checks that need them are registered as such in `runner.py`
and are skipped, with a note saying so, when they are missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from calico_conformance.lint.flows import FlowTable
from calico_conformance.lint.inventory import Inventory
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.model import ResourceSet
from calico_conformance.oracle.tiers import TierPlan
from calico_conformance.tenancy.layout import TenancyLayout


@dataclass(frozen=True)
class LintContext:
    resources: ResourceSet
    oracle: Oracle
    tier_plans: tuple[TierPlan, ...]
    calico_version: str
    layout: TenancyLayout | None = None
    inventory: Inventory | None = None
    table: FlowTable | None = None

    def require_inventory(self) -> tuple[TenancyLayout, Inventory, FlowTable]:
        """The layout, its inventory and the flow table; only called by checks registered as needing them."""
        if self.layout is None or self.inventory is None or self.table is None:
            raise RuntimeError("an inventory-based check ran without --layout; runner.py must skip it")
        return self.layout, self.inventory, self.table
