"""DNS findings: namespaces that must resolve but cannot reach kube-dns, and DNS allowed to anywhere.

Name resolution fails in two ways the runbook's default-deny invites: egress to kube-dns on 53 is
denied (over UDP, or only over TCP, which large answers fall back to), or kube-dns's own ingress, also
default-deny, does not accept the query. Both are asked of the oracle for every pod of every namespace
the layout marks `resolvesDns`, on every DNS service the layout names.

The opposite mistake, "allow DNS" written as `destination: {ports: [53]}` with no selector, lets every
pod query any resolver on the internet (a classic exfiltration channel). It is found as a flow to one of
the layout's outside DNS addresses on 53 that an Allow rule lets out although the layout requires no
such flow (`TenancyLayout.requirement`: kube-dns forwarding upstream is an exception, a tenant is not).
"""

from __future__ import annotations

from collections.abc import Iterator

from calico_conformance.lint.context import LintContext
from calico_conformance.lint.findings import Finding
from calico_conformance.lint.flows import RULE, Outcome, rule_name
from calico_conformance.lint.inventory import describe
from calico_conformance.oracle.errors import Location
from calico_conformance.oracle.model import Direction
from calico_conformance.reachability import Flow


def _location(outcome: Outcome) -> Location | None:
    if outcome.rule is not None:
        return outcome.rule.rule.location or (outcome.policy.policy.location if outcome.policy else None)
    return outcome.policy.policy.location if outcome.policy is not None else None


def dns_blocked_findings(context: LintContext) -> Iterator[Finding]:
    layout, inventory, table = context.require_inventory()
    server = inventory.peer_of(layout.dns.server)
    for namespace in layout.namespaces:
        if not namespace.resolves_dns:
            continue
        for service in layout.dns.services:
            transport = inventory.transport(service)
            blocked = []
            for workload in namespace.workloads:
                client = inventory.peer_of(workload.key)
                egress = table.outcome(Direction.EGRESS, client, transport, server)
                ingress = table.outcome(Direction.INGRESS, server, transport, client)
                if not egress.allowed:
                    blocked.append((workload.key, Direction.EGRESS, egress))
                elif not ingress.allowed:
                    blocked.append((workload.key, Direction.INGRESS, ingress))
            if not blocked:
                continue
            pod, direction, outcome = blocked[0]
            others = (
                f" (and {len(blocked) - 1} more pod{'s' if len(blocked) > 2 else ''})"
                if len(blocked) > 1
                else ""
            )
            side = "its egress" if direction is Direction.EGRESS else f"{layout.dns.server}'s ingress"
            yield Finding(
                "dns-blocked",
                _location(outcome) or namespace.location,
                f"namespace {namespace.name} must resolve DNS, but {pod}{others} cannot query"
                f" {layout.dns.server} on {describe(transport)}: {side} denies it ({outcome.describe(direction)})",
                f"allow egress from {namespace.name} to {layout.dns.server} on {describe(transport)},"
                f" and {layout.dns.server}'s ingress from {namespace.name}",
            )


def dns_any_destination_findings(context: LintContext) -> Iterator[Finding]:
    layout, inventory, table = context.require_inventory()
    addresses = layout.dns.other_servers or layout.outside_addresses
    reported: set[int] = set()
    for service in layout.dns.services:
        transport = inventory.transport(service)
        for pod in inventory.pods:
            client = inventory.peer_of(pod.key)
            for address in addresses:
                outcome = table.outcome(Direction.EGRESS, client, transport, inventory.peer_of(str(address)))
                if (
                    not outcome.allowed
                    or outcome.reason != RULE
                    or outcome.rule is None
                    or outcome.policy is None
                ):
                    continue
                if id(outcome.rule) in reported:
                    continue
                required, _ = layout.requirement(Flow(pod.key, str(address), service.port, service.protocol))
                if required:
                    continue
                reported.add(id(outcome.rule))
                yield Finding(
                    "dns-any-destination",
                    _location(outcome),
                    f"{rule_name(outcome.policy, outcome.rule)} lets {pod.key} send DNS ({describe(transport)})"
                    f" to {address}, a resolver outside the cluster, not only to {layout.dns.server}",
                    f"add a destination selector for {layout.dns.server} (namespaceSelector"
                    ' kubernetes.io/metadata.name == "kube-system" and selector k8s-app == "kube-dns")',
                )
