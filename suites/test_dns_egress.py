"""DNS egress: every namespace that must resolve reaches kube-dns, and DNS is the only door it opens.

Under default-deny, name resolution works only if both sides allow it: the client namespace's egress to
kube-dns on 53 over UDP *and* TCP (answers over 512 bytes retry over TCP) and kube-system's ingress. The
same policies must not let a namespace query any other DNS server (an exfiltration channel) nor open
anything but DNS.

The layout names the other DNS servers as addresses that never answer (`dns.otherServers`). The static
target judges them as written; live targets send those flows to a rogue DNS pod of their own (a real
resolver, labelled so no policy allows it, its deny proven against the runner's control source), and
every probe pod also listens on the DNS ports, so "another pod on 53" reaches a server too.
"""

from __future__ import annotations

import pytest
from fixtures.reachability import MustMatchRequirement

from calico_conformance.suite.cases import ReachabilityCase, denied_matrix, requirement_matrix
from calico_conformance.tenancy.layout import TenancyLayout

pytestmark = [pytest.mark.conformance, pytest.mark.dns]


@pytest.mark.cases("dns-reach")
def test_cluster_dns_reachable(
    case: ReachabilityCase, tenancy_layout: TenancyLayout, must_match_requirement: MustMatchRequirement
) -> None:
    """Every workload of the namespace reaches kube-dns on 53/UDP and 53/TCP."""
    expected = requirement_matrix(tenancy_layout, case.flows)
    assert all(expected[flow].allowed for flow in expected), f"{case.id}: the layout does not require DNS here"
    must_match_requirement(case, expected)


@pytest.mark.cases("dns-other-servers")
def test_no_other_dns_server(
    case: ReachabilityCase, tenancy_layout: TenancyLayout, must_match_requirement: MustMatchRequirement
) -> None:
    """The namespace reaches no DNS server but kube-dns: not outside, not another pod on 53."""
    why = f"only {tenancy_layout.dns.server} answers DNS"
    must_match_requirement(case, denied_matrix(case.flows, why))


@pytest.mark.cases("dns-non-dns-egress")
def test_non_dns_egress_denied(
    case: ReachabilityCase, tenancy_layout: TenancyLayout, must_match_requirement: MustMatchRequirement
) -> None:
    """Allowing DNS opened nothing else: kube-dns's other ports and the outside stay closed."""
    must_match_requirement(case, requirement_matrix(tenancy_layout, case.flows))
