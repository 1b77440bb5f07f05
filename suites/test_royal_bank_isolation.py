"""royal-bank is isolated from every other customer namespace, and its one exception is exact.

The Royal Bank's tenancy agreement requires network-level isolation between royal-bank and every other
customer namespace (runbook, "Calico deployment"). Each case is one other customer and one service:
every workload of both namespaces, both directions, on every port either declares, the canary ports,
UDP, and ICMP (a ping opens no port but is traffic all the same). The denial is absolute: no exception
in the layout can soften it. The logging exception is proven exact: royal-bank reaches
platform/log-collector on 5044/TCP and nothing else in platform.
"""

from __future__ import annotations

import pytest
from fixtures.reachability import MustMatchRequirement

from calico_conformance.suite.cases import ReachabilityCase, denied_matrix, requirement_matrix
from calico_conformance.tenancy.layout import TenancyLayout

pytestmark = [pytest.mark.conformance, pytest.mark.isolation, pytest.mark.royal_bank]

ISOLATION_PROMISE = "royal-bank and any other customer namespace never reach each other (tenancy agreement)"


@pytest.mark.cases("royal-bank-isolation")
def test_royal_bank_isolation(case: ReachabilityCase, must_match_requirement: MustMatchRequirement) -> None:
    """No flow either way between royal-bank and the other customer on this service."""
    must_match_requirement(case, denied_matrix(case.flows, ISOLATION_PROMISE))


@pytest.mark.cases("royal-bank-exceptions")
def test_exception_is_exact(
    case: ReachabilityCase, tenancy_layout: TenancyLayout, must_match_requirement: MustMatchRequirement
) -> None:
    """The exception opens its destination on its ports only; the rest of that namespace stays closed."""
    expected = requirement_matrix(tenancy_layout, case.flows)
    assert any(expected[flow].allowed for flow in expected), f"{case.id}: the exception itself is never probed"
    must_match_requirement(case, expected)
