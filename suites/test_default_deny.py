"""Every namespace of the layout denies ingress and egress by default.

The runbook applies `default-deny-all` to every namespace the moment it is created; workloads must
declare what they accept and originate. Each case is one namespace: every workload in it (not only the
sentinel, since a policy may open one workload alone) must neither send to nor receive from any other
workload (its own namespace's, the outsider's, every other namespace's) nor reach or be reached from
outside the cluster, on any probed port nor by ICMP, except where the layout allows it (its namespace's
DNS, an exception).
The exceptions outside royal-bank's (e.g. kube-dns forwarding upstream) are proven exact here too: each
opens its own ports towards its own destination and nothing next to them.
"""

from __future__ import annotations

import pytest
from fixtures.reachability import MustMatchRequirement

from calico_conformance.suite.cases import ReachabilityCase, requirement_matrix
from calico_conformance.tenancy.layout import TenancyLayout

# `isolation` too: `pytest -k isolation` is the engineer's "is the tenancy promise intact" run.
pytestmark = [pytest.mark.conformance, pytest.mark.isolation, pytest.mark.default_deny]


@pytest.mark.cases("default-deny")
def test_default_deny(
    case: ReachabilityCase, tenancy_layout: TenancyLayout, must_match_requirement: MustMatchRequirement
) -> None:
    """No workload of the namespace can send or receive, apart from the layout's exceptions."""
    expected = requirement_matrix(tenancy_layout, case.flows)
    assert any(not expected[flow].allowed for flow in expected), f"{case.id}: nothing here is required denied"
    must_match_requirement(case, expected)


@pytest.mark.cases("other-exceptions")
def test_exception_is_the_only_door(
    case: ReachabilityCase, tenancy_layout: TenancyLayout, must_match_requirement: MustMatchRequirement
) -> None:
    """A layout exception opens exactly its destination and ports, nothing near them."""
    expected = requirement_matrix(tenancy_layout, case.flows)
    assert any(expected[flow].allowed for flow in expected), f"{case.id}: the exception itself is never probed"
    must_match_requirement(case, expected)
