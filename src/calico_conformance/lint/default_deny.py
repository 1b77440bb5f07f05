"""Default-deny findings: a layout namespace whose pods accept or send traffic nothing allows.

The tenancy promise is that every namespace is default-deny in both directions. The check asks the
oracle, not the manifests: for every pod of the namespace (the sentinel stands for "any pod here"), a
flow on a canary port (one no workload declares, so no exception may allow it) from, and to, the
layout's canary outside address and the outsider namespace's sentinel must be denied. If it is allowed, the namespace is not default-deny in
that direction, whatever the reason: no policy selects the pod, or an allow-all lets it through.
"""

from __future__ import annotations

from collections.abc import Iterator

from calico_conformance.lint.context import LintContext
from calico_conformance.lint.findings import Finding
from calico_conformance.lint.inventory import describe
from calico_conformance.oracle.model import Direction

DEFAULT_DENY_FIX = (
    "apply a NetworkPolicy default-deny-all in namespace {namespace}: podSelector: {{}}, policyTypes:"
    " [Ingress, Egress]"
)


def default_deny_findings(context: LintContext) -> Iterator[Finding]:
    layout, inventory, table = context.require_inventory()
    if not layout.outside_addresses or not layout.canary_services:
        return  # runner.py notes that the check needs canary.ports and canary.outside
    # An outside address, and the outsider's sentinel (a pod no policy restricts) when the layout has one:
    # a policy allowing "all pods" but no outside address is caught by the second.
    strangers = [inventory.peer_of(str(layout.outside_addresses[0]))]
    if layout.outsider is not None:
        strangers += [inventory.peer_of(workload.key) for workload in layout.outsider.workloads]
    transports = [inventory.transport(service) for service in layout.canary_services]
    for namespace in layout.namespaces:
        for direction in Direction:
            leak = next(
                (
                    (pod_key, transport, stranger, outcome)
                    for workload in namespace.workloads
                    for transport in transports
                    for stranger in strangers
                    if (
                        outcome := table.outcome(
                            direction, inventory.peer_of(pod_key := workload.key), transport, stranger
                        )
                    ).allowed
                ),
                None,
            )
            if leak is None:
                continue
            pod_key, transport, stranger, outcome = leak
            flow = (
                f"{pod_key} accepts {describe(transport)} from {inventory.peers[stranger].name}"
                if direction is Direction.INGRESS
                else f"{pod_key} may send {describe(transport)} to {inventory.peers[stranger].name}"
            )
            yield Finding(
                "missing-default-deny",
                namespace.location,
                f"namespace {namespace.name} is not default-deny for {direction.value.lower()}: {flow}"
                f" on a canary port ({outcome.describe(direction)})",
                DEFAULT_DENY_FIX.format(namespace=namespace.name),
            )
