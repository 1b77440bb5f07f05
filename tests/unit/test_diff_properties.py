"""Properties of `oracle/diff.py` on random clusters and policy sets (`corpus_clusters.py`).

* A policy set compared with itself changes nothing: no object change, no flow.
* Comparing B with A inverts comparing A with B: the same flows, before and after swapped, `added` and
  `removed` swapped, the object changes inverted.
* Every flow the diff lists really flips, and every flow it leaves out really does not, with the pair's
  kind right (checked against `Oracle.verdict` on every pair and destination port).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from calico_conformance.oracle.diff import PairChange, ResourceChange, diff_oracles, resource_changes
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.scenario import scenario_from_data
from tests.unit.corpus_clusters import ClusterDraw, clusters

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INVERSE = {"added": "removed", "removed": "added", "changed": "changed", "modified": "modified"}


def oracle(data: dict[str, Any]) -> Oracle:
    return Oracle.from_scenario(scenario_from_data(data, "<hypothesis cluster>"))


def with_resources_of(cluster: ClusterDraw, other: ClusterDraw) -> dict[str, Any]:
    """`cluster`'s namespaces and pods under `other`'s policy set."""
    return {**cluster.data, "resources": other.data["resources"]}


def flips(pairs: list[PairChange]) -> dict[tuple[str, str, str], tuple[bool, bool, str]]:
    return {
        (pair.source, pair.destination, change.flow.service): (change.before.allowed, change.after.allowed, pair.kind)
        for pair in pairs
        for change in pair.ports
    }


@given(cluster=clusters())
@SETTINGS
def test_a_policy_set_against_itself_changes_nothing(cluster: ClusterDraw) -> None:
    base, head = oracle(cluster.data), oracle(cluster.data)
    changes = resource_changes(base_set(cluster.data), base_set(cluster.data))
    assert changes == ()
    assert diff_oracles(base, head, changes) == []


@given(first=clusters(), second=clusters())
@SETTINGS
def test_b_against_a_inverts_a_against_b(first: ClusterDraw, second: ClusterDraw) -> None:
    a_data, b_data = first.data, with_resources_of(first, second)
    a, b = oracle(a_data), oracle(b_data)
    forward_changes = resource_changes(base_set(a_data), base_set(b_data))
    backward_changes = resource_changes(base_set(b_data), base_set(a_data))
    assert sorted(map(_inverted, forward_changes)) == list(backward_changes)
    forward = flips(diff_oracles(a, b, forward_changes))
    backward = flips(diff_oracles(b, a, backward_changes))
    assert backward == {key: (after, before, INVERSE[kind]) for key, (before, after, kind) in forward.items()}


@given(first=clusters(), second=clusters())
@SETTINGS
def test_the_diff_lists_exactly_the_flows_whose_verdict_flips(first: ClusterDraw, second: ClusterDraw) -> None:
    a, b = oracle(first.data), oracle(with_resources_of(first, second))
    pairs = diff_oracles(a, b, ())
    for change in (change for pair in pairs for change in pair.ports):  # explained as the rule walk does
        assert (change.before, change.after) == (a.verdict_for(change.flow), b.verdict_for(change.flow))
    listed = flips(pairs)
    expected = {}
    for source in a.pods:
        for destination in a.pods:
            if source.key == destination.key:
                continue
            verdicts = [
                (
                    port,
                    a.verdict(source, destination, port.port, port.protocol).allowed,
                    b.verdict(b.pod(source.key), b.pod(destination.key), port.port, port.protocol).allowed,
                )
                for port in destination.ports
            ]
            # added: no port was allowed before; removed: none is after; changed: some port throughout
            kind = "added" if not any(v[1] for v in verdicts) else "changed" if any(v[2] for v in verdicts) else "removed"
            for port, before, after in verdicts:
                if before != after:
                    expected[(source.key, destination.key, f"{port.port}/{port.protocol}")] = (before, after, kind)
    assert listed == expected


def base_set(data: dict[str, Any]) -> Any:
    return scenario_from_data(data, "<hypothesis cluster>").resources


def _inverted(change: ResourceChange) -> ResourceChange:
    return ResourceChange(change.kind, change.name, INVERSE[change.change], change.after, change.before)  # type: ignore[arg-type]
