"""Loading sets of manifests: files and directories, lists, kinds, duplicates, and the runbooks' own policies.

The seed files under tests/data/manifests are the policies of the seed runbooks, written out as files;
the broken ones are exactly as the runbooks print them. Expected lines are found by searching the
files' text, never taken from the loader.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.loader import (
    ManifestReader,
    collect_manifests,
    load_manifest_text,
    load_manifests,
)
from calico_conformance.oracle.model import Direction, PortRange
from calico_conformance.oracle.selector import parse_selector
from calico_conformance.oracle.yamlsrc import load_documents

MANIFESTS = Path(__file__).parent.parent / "data" / "manifests"
KNP = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{podSelector: {{}}}}\n"


def line_of(path: Path, marker: str, occurrence: int = 1) -> int:
    hits = [number for number, line in enumerate(path.read_text().splitlines(), 1) if marker in line]
    return hits[occurrence - 1]


def load_error(text: str) -> LocatedError:
    with pytest.raises(LocatedError) as caught:
        load_manifest_text(text, "p.yaml")
    return caught.value


# --- the seed runbooks ----------------------------------------------------------------------------------------


def test_seed_000_default_deny_and_corrected_logging_policy_load() -> None:
    resources = load_manifests([MANIFESTS / "seed-000"])
    assert {namespace.name for namespace in resources.namespaces} == {"royal-bank", "platform"}
    by_name = {(policy.namespace, policy.name): policy for policy in resources.policies}
    assert set(by_name) == {
        ("royal-bank", "default-deny-all"),
        ("platform", "default-deny-all"),
        ("royal-bank", "allow-platform-logging"),
    }
    deny = by_name["royal-bank", "default-deny-all"]
    assert deny.types == frozenset({Direction.INGRESS, Direction.EGRESS})
    assert (deny.ingress, deny.egress) == ((), ())
    logging = by_name["royal-bank", "allow-platform-logging"]
    assert logging.types == frozenset({Direction.EGRESS})  # egress rules only => [Egress] (§1.6)
    (rule,) = logging.egress
    assert rule.destination.namespace_selector == parse_selector('name == "platform"')
    assert rule.destination.ports == (PortRange(5044, 5044),)


def test_seed_000_logging_policy_as_printed_is_rejected_for_its_rule_level_ports() -> None:
    path = MANIFESTS / "broken" / "seed-000-allow-platform-logging.yaml"
    with pytest.raises(LocatedError) as caught:
        load_manifests([path])
    assert caught.value.location == Location(str(path), line_of(path, "      ports:"))
    assert "spec.egress[0].ports: unknown field in a rule (ports belong under source or destination" in str(
        caught.value
    )


def test_seed_002_tiers_load_for_3_29_and_are_refused_for_3_27() -> None:
    resources = load_manifests([MANIFESTS / "seed-002-tiers"], calico_version="3.29")
    assert [(tier.name, tier.order) for tier in resources.tiers] == [
        ("security", 100.0),
        ("platform", 200.0),
        ("application", 300.0),
    ]
    assert {(policy.tier, policy.name) for policy in resources.policies} == {
        ("security", "security.block-metadata"),
        ("platform", "platform.allow-dns"),
    }
    with pytest.raises(LocatedError, match=r"needs Calico >= 3\.29"):
        load_manifests([MANIFESTS / "seed-002-tiers"], calico_version="3.27")


def test_collect_manifests_reports_every_broken_seed_and_keeps_the_good_documents(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(KNP.format(name="a", ns="x"))
    resources, errors = collect_manifests([MANIFESTS / "broken", good])
    assert [policy.name for policy in resources.policies] == ["a"]
    files = [Path(error.location.file).name for error in errors if error.location]
    assert files == [
        "seed-000-allow-platform-logging.yaml",
        "seed-002-application-tier.yaml",
        "seed-002-duplicate-destination.yaml",
    ]
    assert all("duplicate key 'destination'" in error.why for error in errors[1:])


# --- files, directories and formats ---------------------------------------------------------------------------


def test_directories_are_searched_recursively_in_sorted_order_skipping_dot_names(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.yml").write_text(KNP.format(name="second", ns="x"))
    (tmp_path / "a.yaml").write_text(KNP.format(name="first", ns="x"))
    (tmp_path / "c.json").write_text(
        json.dumps(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "third", "namespace": "x"},
                "spec": {"podSelector": {}},
            }
        )
    )
    (tmp_path / "README.md").write_text("not a manifest")
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "ci.yml").write_text("on: push\n")
    (tmp_path / ".backup.yaml").write_text("not: a manifest\n")
    names = [policy.name for policy in load_manifests([tmp_path]).policies]
    assert names == ["first", "second", "third"]


def test_a_missing_path_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(LocatedError, match="no such file or directory"):
        load_manifests([tmp_path / "nope"])


def test_multi_document_files_keep_each_documents_line() -> None:
    resources = load_manifest_text(
        KNP.format(name="a", ns="x") + "---\n" + KNP.format(name="b", ns="x"), "p.yaml"
    )
    assert [policy.location for policy in resources.policies] == [
        Location("p.yaml", 1),
        Location("p.yaml", 6),
    ]


def test_a_list_document_is_expanded_with_each_items_line() -> None:
    text = (
        "apiVersion: v1\n"
        "kind: List\n"
        "items:\n"
        "  - apiVersion: networking.k8s.io/v1\n"
        "    kind: NetworkPolicy\n"
        "    metadata: {name: a, namespace: x}\n"
        "    spec: {podSelector: {}}\n"
        "  - apiVersion: projectcalico.org/v3\n"
        "    kind: GlobalNetworkSet\n"
        "    metadata: {name: b}\n"
    )
    resources = load_manifest_text(text, "p.yaml")
    assert [(policy.name, policy.location) for policy in resources.policies] == [("a", Location("p.yaml", 4))]
    assert [(netset.name, netset.location) for netset in resources.network_sets] == [
        ("b", Location("p.yaml", 8))
    ]


def test_items_of_a_typed_list_may_leave_out_api_version_and_kind() -> None:
    text = (
        "apiVersion: networking.k8s.io/v1\n"
        "kind: NetworkPolicyList\n"
        "items:\n"
        "  - metadata: {name: a, namespace: x}\n"
        "    spec: {podSelector: {}}\n"
    )
    (policy,) = load_manifest_text(text, "p.yaml").policies
    assert (policy.kind, policy.name, policy.location) == (
        "KubernetesNetworkPolicy",
        "a",
        Location("p.yaml", 4),
    )


def test_items_of_an_untyped_list_need_their_own_kind() -> None:
    error = load_error("apiVersion: v1\nkind: List\nitems:\n  - metadata: {name: a}\n")
    assert error.location == Location("p.yaml", 4)
    assert "items[0]: a manifest needs apiVersion and kind" in str(error)


# --- kinds -------------------------------------------------------------------------------------------------------


def test_an_unsupported_kind_names_the_supported_ones() -> None:
    error = load_error("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n")
    assert error.location == Location("p.yaml", 1)
    assert (
        "kind 'Deployment' (apps/v1) is not supported by the oracle; supported kinds: NetworkPolicy"
        in error.why
    )
    for kind in (
        "GlobalNetworkPolicy",
        "Tier",
        "NetworkSet",
        "GlobalNetworkSet",
        "Namespace",
        "ServiceAccount",
    ):
        assert kind in error.why


def test_a_known_kind_under_the_wrong_api_version_says_which_to_use() -> None:
    error = load_error("apiVersion: networking.k8s.io/v1\nkind: GlobalNetworkPolicy\nmetadata: {name: g}\n")
    assert "use projectcalico.org/v3 or crd.projectcalico.org/v1" in error.why


@pytest.mark.parametrize(
    "kind", ["StagedNetworkPolicy", "StagedGlobalNetworkPolicy", "StagedKubernetesNetworkPolicy"]
)
def test_staged_policies_are_refused_before_calico_3_30(kind: str) -> None:
    text = f"apiVersion: projectcalico.org/v3\nkind: {kind}\nmetadata: {{name: s}}\n"
    with pytest.raises(LocatedError) as raised:
        load_manifest_text(text, "staged.yaml", calico_version="3.29")
    assert str(raised.value) == f"staged.yaml:1: {kind} needs Calico >= 3.30 (loading for Calico 3.29)"


def test_a_document_without_kind_is_an_error() -> None:
    error = load_error("apiVersion: v1\nmetadata: {name: x}\n")
    assert "a manifest needs apiVersion and kind" in error.why


def test_a_document_that_is_not_a_mapping_is_an_error() -> None:
    error = load_error("- just\n- a list\n")
    assert "a manifest document must be a mapping, not a list" in error.why


# --- identities ----------------------------------------------------------------------------------------------------


def test_the_same_object_twice_is_an_error_naming_both_places() -> None:
    error = load_error(KNP.format(name="a", ns="x") + "---\n" + KNP.format(name="a", ns="x"))
    assert error.location == Location("p.yaml", 6)
    assert "NetworkPolicy x/a is defined twice (first at p.yaml:1)" in error.why


def test_the_same_name_in_other_namespaces_or_kinds_is_no_duplicate() -> None:
    calico = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: a, namespace: x}\n"
    text = KNP.format(name="a", ns="x") + "---\n" + KNP.format(name="a", ns="y") + "---\n" + calico
    assert len(load_manifest_text(text, "p.yaml").policies) == 3


def test_default_dot_name_and_name_are_one_calico_policy() -> None:
    text = (
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: a, namespace: x}\n---\n"
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: default.a, namespace: x}\n"
    )
    assert "is defined twice" in load_error(text).why


# --- documents read elsewhere (a scenario's inline resources) -------------------------------------------------------


def test_documents_read_elsewhere_keep_their_lines_and_a_path_prefix() -> None:
    (scenario,) = load_documents(
        "resources:\n  - apiVersion: networking.k8s.io/v1\n    kind: NetworkPolicy\n"
        "    metadata: {name: a, namespace: x}\n    spec: {podSelectr: {}}\n",
        "scenario.yaml",
    )
    reader = ManifestReader("3.31")
    with pytest.raises(LocatedError) as caught:
        reader.add_documents(scenario["resources"], "scenario.yaml", "resources")
    assert str(caught.value).startswith("scenario.yaml:5: resources[0].spec.podSelectr: unknown field")
