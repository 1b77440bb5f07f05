"""The security tier's guardrail (issue 11, item 5): cross-customer isolation decided at or before the
layout's first tier, as if every later tier allowed everything.

Expected breaches are worked out by hand from the reference set (policies/reference/20-*.yaml deny other
customers in tier security, the Kubernetes default-deny in tier default denies everything else).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from calico_conformance.config import resolve_run_config
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.run_inputs import load_run_inputs
from calico_conformance.suite.cases import CASE_BUILDERS, guardrail_cases
from calico_conformance.suite.guardrails import guarding_tiers, guardrail_breaches
from calico_conformance.targets.registry import TARGETS
from calico_conformance.targets.static import cluster_oracle

ROOT = Path(__file__).parents[2]


def _oracle(policies: Path) -> tuple[Oracle, list]:  # type: ignore[type-arg]
    run = resolve_run_config({"target": "static", "policies": str(policies)}, base_dir=ROOT, target_names=tuple(TARGETS))
    inputs = load_run_inputs(run)
    oracle = cluster_oracle(inputs.layout, inputs.cluster("finland"), inputs.resources, run.calico_version)
    return oracle, guardrail_cases(inputs.layout, ["finland"])


def test_every_pair_of_customers_is_a_case_both_ways_with_icmp() -> None:
    _, cases = _oracle(ROOT / "policies" / "reference")
    assert [case.id for case in cases] == [
        "finland-royal-bank-customer-a",
        "finland-royal-bank-customer-b",
        "finland-customer-a-customer-b",
    ]
    flows = {(f.source, f.destination, f.protocol) for f in cases[2].flows}
    assert ("customer-a/shop", "customer-b/game-server", "ICMP") in flows
    assert ("customer-b/game-server", "customer-a/shop", "UDP") in flows
    assert "customer-guardrails" in CASE_BUILDERS


def test_the_reference_set_keeps_customers_apart_in_the_security_tier() -> None:
    oracle, cases = _oracle(ROOT / "policies" / "reference")
    assert guarding_tiers(oracle, "security") == {"security"}  # the first tier in felix's order
    for case in cases:
        assert guardrail_breaches(oracle, case.flows, "security") == [], case.id


def test_a_guardrail_lost_behind_a_default_deny_is_a_breach(tmp_path: Path) -> None:
    """Dropping the security tier's Deny rules changes no flow (the Kubernetes default-deny still denies
    in tier default), but every cross-customer flow is then decided after the security tier."""
    policies = tmp_path / "policies"
    policies.mkdir()
    for source in (ROOT / "policies" / "reference").glob("*.yaml"):
        documents = list(yaml.safe_load_all(source.read_text(encoding="utf-8")))
        for document in documents:
            if (document.get("spec") or {}).get("tier") == "security":
                for direction in ("ingress", "egress"):
                    document["spec"][direction] = [r for r in document["spec"][direction] if r["action"] != "Deny"]
        (policies / source.name).write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    oracle, cases = _oracle(policies)
    for case in cases:
        breaches = guardrail_breaches(oracle, case.flows, "security")
        assert [b.flow for b in breaches] == list(case.flows), case.id
        assert all(not b.verdict.allowed and b.verdict.egress.tier == "default" for b in breaches)


def test_a_policy_set_without_the_tier_breaches_everything() -> None:
    oracle, cases = _oracle(ROOT / "policies" / "reference")
    assert guarding_tiers(oracle, "no-such-tier") is None
    assert len(guardrail_breaches(oracle, cases[0].flows, "no-such-tier")) == len(cases[0].flows)
