"""The oracle replays every upstream Kubernetes NetworkPolicy e2e case and gets upstream's truth tables.

Each case of `tests/data/k8s-netpol-cases.yaml` becomes a scenario in the real scenario format (namespaces
x, y, z under real-looking names, pods a, b, c serving the case's ports), goes through
`scenario_from_data` and `Oracle.from_scenario`, and every ordered pair of distinct pods is compared with
the table upstream's `Expect*` ops build, for each port and protocol the case validates, step by step for
the multi-step cases. Loopback pairs are not scored, as upstream does not score them. Both the full
3x3 model and the newest upstream per-test topology run, so a pod set with gaps is exercised too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import yaml

from calico_conformance.oracle.errors import LocatedError
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.loader import load_manifest_text
from calico_conformance.oracle.model import PROTOCOL_NUMBERS, Direction, PortRange
from calico_conformance.oracle.scenario import scenario_from_data
from calico_conformance.reachability import (
    Expectation,
    ExpectedMatrix,
    Flow,
    Observation,
    ObservedMatrix,
    ProbeVerdict,
    compare,
)
from tests.unit.corpus_netpol import (
    CASES_FILE,
    FULL_MODEL_PODS,
    NAMESPACE_NAME_LABEL,
    SHARED_CASES_FILE,
    Table,
    Topology,
    Validation,
    case_id,
    exception_keys,
    expand_ops,
    load_cases_document,
    plain,
    slug,
    validations,
)

DOCUMENT = load_cases_document()
CASES: list[Mapping[str, Any]] = list(DOCUMENT["cases"])
API_CASES: list[Mapping[str, Any]] = list(DOCUMENT["api_cases"])

# Every top-level section this module knows how to check; a new section must be wired in, not ignored.
CHECKED_SECTIONS = {"meta", "cases", "api_cases"}
TOPOLOGIES = {"full-model": False, "minimal-topology": True}


def case_params() -> list[Any]:
    return [pytest.param(case, id=case_id(case)) for case in CASES]


def case_topology_params() -> list[Any]:
    return [
        pytest.param(case, minimal, id=f"{case_id(case)}-{topology}")
        for case in CASES
        for topology, minimal in TOPOLOGIES.items()
    ]


def readable(why: str) -> str:
    """`endPort < port` and `endPort > port` must not collapse to the same test id."""
    return why.replace("==", " equals ").replace("<", " below ").replace(">", " above ")


def api_check_params() -> list[Any]:
    return [
        pytest.param(api_case, check, id=f"{api_case['id']}-{check['expect']}-{slug(readable(check['why']))}")
        for api_case in API_CASES
        for check in api_case["checks"]
    ]


def flow_of(validation: Validation, source: str, destination: str) -> Flow:
    return Flow(source, destination, validation.port, validation.protocol)


def assert_tables_agree(oracle: Oracle, validation: Validation, observed: Table, what: str) -> None:
    """One assertion per table: on failure, the expected/observed/diff tables and, for every wrong pair,
    the oracle's explanation of its verdict."""
    __tracebackhide__ = True
    expected_matrix = ExpectedMatrix(
        {
            flow_of(validation, s, d): Expectation(allowed, why=f"upstream {validation.where}")
            for (s, d), allowed in validation.expected.items()
        }
    )
    observed_matrix = ObservedMatrix(
        {
            flow_of(validation, s, d): Observation(
                ProbeVerdict.ALLOWED if allowed else ProbeVerdict.DROPPED,
                why=str(oracle.verdict_for(flow_of(validation, s, d)))
                if validation.expected.get((s, d)) != allowed
                else "",
            )
            for (s, d), allowed in observed.items()
            if s != d
        }
    )
    comparison = compare(expected_matrix, observed_matrix)
    assert comparison.ok, (
        f"{what} disagrees with upstream at {validation.label} ({validation.where}):\n{comparison.render()}"
    )
    unscored = sorted(set(observed_matrix) - set(expected_matrix))
    assert not unscored, f"{what} returned pairs upstream does not have: {unscored}"


def check_validation(case: Mapping[str, Any], validation: Validation) -> None:
    """The grouped all-pairs table and the per-pair verdicts both equal upstream's table."""
    __tracebackhide__ = True
    scenario = scenario_from_data(validation.scenario, f"{CASES_FILE} case {case['id']} {validation.label}")
    oracle = Oracle.from_scenario(scenario)
    grouped = oracle.all_pairs(validation.port, validation.protocol)
    assert_tables_agree(oracle, validation, grouped, "Oracle.all_pairs")
    per_pair = {
        (source, destination): oracle.verdict_for(flow_of(validation, source, destination)).allowed
        for source, destination in validation.expected
    }
    assert_tables_agree(oracle, validation, per_pair, "Oracle.verdict")


# --- the corpus itself ------------------------------------------------------------------------------


def test_the_vendored_cases_are_the_researched_cases() -> None:
    if not SHARED_CASES_FILE.exists():
        pytest.skip(
            f"no shared research copy at {SHARED_CASES_FILE} (a fresh clone has only the vendored one)"
        )
    assert CASES_FILE.read_bytes() == SHARED_CASES_FILE.read_bytes(), (
        f"{CASES_FILE} differs from {SHARED_CASES_FILE}; copy the shared file over the vendored one"
    )


def test_every_section_of_the_cases_file_is_checked() -> None:
    assert set(DOCUMENT) == CHECKED_SECTIONS


def test_case_ids_are_unique() -> None:
    ids = [case_id(case) for case in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", case_params())
def test_ops_expand_to_the_transcribed_exceptions(case: Mapping[str, Any]) -> None:
    """The harness's expander is the one that produced the file: it reproduces every exceptions list."""
    for step in case["steps"]:
        if step["action"] != "validate":
            continue
        reachability = step["reachability"]
        full = expand_ops(reachability["ops"], FULL_MODEL_PODS, reachability["default"])
        scored, loopback = exception_keys(full, reachability["default"])
        assert scored == reachability["exceptions"]
        assert loopback == reachability.get("loopback_exceptions_ignored", {})
        counts = reachability["counts_full_model"]
        assert counts["pairs"] == len(full)
        assert counts["scored_pairs"] == sum(1 for s, d in full if s != d)
        assert counts["expected_blocked_scored"] == sum(1 for (s, d), ok in full.items() if s != d and not ok)

        minimal_pods = case["topology_minimal"]
        minimal_ops = reachability.get("ops_minimal_topology", reachability["ops"])
        minimal = expand_ops(minimal_ops, minimal_pods, reachability["default"])
        scored, loopback = exception_keys(minimal, reachability["default"])
        assert scored == reachability["exceptions_minimal_topology"]
        assert loopback == reachability.get("loopback_exceptions_minimal_topology_ignored", {})


@pytest.mark.parametrize("case", case_params())
def test_every_case_validates_only_what_its_model_serves(case: Mapping[str, Any]) -> None:
    """A probe to a port/protocol without a server would fail upstream; such a step would be meaningless."""
    steps = [step for step in case["steps"] if step["action"] == "validate"]
    assert steps, f"case {case['id']} validates nothing"
    for step in steps:
        assert step["port"] in case["model_ports"]
        assert step["protocol"] in case["model_protocols"]


# --- the oracle against upstream --------------------------------------------------------------------


@pytest.mark.parametrize(("case", "minimal_topology"), case_topology_params())
def test_oracle_agrees_with_upstream(case: Mapping[str, Any], minimal_topology: bool) -> None:
    checked = list(validations(case, minimal_topology=minimal_topology))
    assert len(checked) == sum(1 for step in case["steps"] if step["action"] == "validate")
    for validation in checked:
        check_validation(case, validation)


@pytest.mark.parametrize("case", case_params())
def test_scenario_namespaces_carry_the_name_label_every_case_selects_on(case: Mapping[str, Any]) -> None:
    """Upstream selects namespaces only by `kubernetes.io/metadata.name`, which the API server adds; the
    scenario loader must add it the same way or every namespaceSelector case is vacuous."""
    validation = next(validations(case))
    scenario = scenario_from_data(validation.scenario, f"{CASES_FILE} case {case['id']}")
    names = {ns.name: ns.labels.get(NAMESPACE_NAME_LABEL) for ns in scenario.namespaces}
    assert names == {name: name for name in Topology.for_case(case, FULL_MODEL_PODS).namespaces.values()}


# --- the API validation case (endPort) --------------------------------------------------------------


def endport_manifest(api_case: Mapping[str, Any], check: Mapping[str, Any]) -> str:
    """The upstream validation object as a manifest: `generateName` becomes a fixed name (a manifest
    for `kubectl apply` needs one) and the `<f.UniqueName>` label a concrete value."""
    base = plain(api_case["base_policy"])
    labels = {key: "netpol-7x2kq" for key in base["metadata"]["labels"]}
    manifest = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": base["metadata"]["generateName"],
            "namespace": "netpol-x-7x2kq",
            "labels": labels,
        },
        "spec": {**base["spec"], "egress": plain(check["egress"])},
    }
    return yaml.safe_dump(manifest, sort_keys=False)


@pytest.mark.parametrize(("api_case", "check"), api_check_params())
def test_endport_is_validated_as_the_api_server_does(
    api_case: Mapping[str, Any], check: Mapping[str, Any]
) -> None:
    text = endport_manifest(api_case, check)
    source = f"{api_case['id']}-{check['expect']}.yaml"
    if check["expect"] == "rejected":
        with pytest.raises(LocatedError) as raised:
            load_manifest_text(text, source)
        assert str(raised.value).startswith(f"{source}:"), (
            f"error does not name the file and line: {raised.value}"
        )
        return
    assert check["expect"] == "accepted"
    resources = load_manifest_text(text, source)
    (policy,) = resources.policies
    assert policy.types == frozenset({Direction.EGRESS})
    (rule,) = policy.egress
    assert rule.protocol == PROTOCOL_NUMBERS["TCP"], "a KNP port without protocol is TCP"
    (port,) = check["egress"][0]["ports"]
    assert rule.destination.ports == (PortRange(port["port"], port["endPort"]),)
