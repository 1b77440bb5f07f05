"""The label maps felix gives pods and network sets (calico-semantics.md §2.3), and IP ownership."""

from __future__ import annotations

import ipaddress

import pytest

from calico_conformance.oracle.endpoints import EndpointIndex
from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.model import Labels, Namespace, NetworkSet, Pod, ServiceAccount

SHOP = Namespace("shop", Labels.of({"team": "a", "kubernetes.io/metadata.name": "shop"}))
ROBOT = ServiceAccount("robot", "shop", Labels.of({"trusted": "yes"}))


def pod(name: str, ip: str, **labels: str) -> Pod:
    return Pod(name, "shop", ipaddress.ip_address(ip), Labels.of(labels), service_account="robot")


def index(*pods: Pod, sets: tuple[NetworkSet, ...] = (), strict: bool = True) -> EndpointIndex:
    return EndpointIndex([SHOP], pods, [ROBOT], sets, strict=strict, problems=[])


def test_a_pod_carries_its_labels_the_pseudo_labels_and_the_inherited_profile_labels() -> None:
    """§2.3: pod labels + projectcalico.org/namespace, /orchestrator=k8s, /serviceaccount; from kns.<ns>
    every namespace label as pcns.<key> plus pcns.projectcalico.org/name; from ksa.<ns>.<sa> every SA
    label as pcsa.<key> plus pcsa.projectcalico.org/name."""
    labels = index(pod("web", "10.0.0.1", app="web")).pod_labels["shop/web"]
    assert dict(labels) == {
        "app": "web",
        "projectcalico.org/namespace": "shop",
        "projectcalico.org/orchestrator": "k8s",
        "projectcalico.org/serviceaccount": "robot",
        "pcns.team": "a",
        "pcns.kubernetes.io/metadata.name": "shop",
        "pcns.projectcalico.org/name": "shop",
        "pcsa.trusted": "yes",
        "pcsa.projectcalico.org/name": "robot",
    }


def test_own_labels_win_over_inherited_ones_and_pseudo_labels_win_over_own() -> None:
    """§2.3 "the endpoint's own labels win over inherited profile labels"; the converter writes the
    pseudo-labels after copying the pod's labels."""
    labels = index(
        pod("odd", "10.0.0.2", **{"pcns.team": "b", "projectcalico.org/namespace": "other"})
    ).pod_labels["shop/odd"]
    assert labels["pcns.team"] == "b"
    assert labels["projectcalico.org/namespace"] == "shop"


def test_the_api_server_label_naming_the_namespace_is_always_there() -> None:
    """§2.3: "Kubernetes also labels namespaces kubernetes.io/metadata.name=<ns>"."""
    endpoints = EndpointIndex([Namespace("bare")], [], [], [], strict=True, problems=[])
    assert endpoints.namespaces["bare"].labels["pcns.kubernetes.io/metadata.name"] == "bare"


def test_network_sets_carry_their_labels_and_a_namespaced_one_its_namespaces() -> None:
    """§2.3: namespaced NetworkSet: its labels + projectcalico.org/namespace + inherited kns labels;
    GlobalNetworkSet: only its own labels."""
    sets = (
        NetworkSet(
            "office", "shop", (ipaddress.ip_network("198.51.100.0/24"),), Labels.of({"kind": "office"})
        ),
        NetworkSet("partners", None, (ipaddress.ip_network("192.0.2.0/24"),), Labels.of({"kind": "partner"})),
    )
    endpoints = index(sets=sets)
    assert dict(endpoints.network_set_labels[0]) == {
        "kind": "office",
        "projectcalico.org/namespace": "shop",
        "pcns.team": "a",
        "pcns.kubernetes.io/metadata.name": "shop",
        "pcns.projectcalico.org/name": "shop",
    }
    assert dict(endpoints.network_set_labels[1]) == {"kind": "partner"}


def test_an_address_is_owned_by_its_pod_and_every_set_containing_it() -> None:
    sets = (NetworkSet("wide", None, (ipaddress.ip_network("10.0.0.0/8"),), Labels.of({"kind": "wide"})),)
    endpoints = index(pod("web", "10.0.0.1", app="web"), sets=sets)
    view = endpoints.view(ipaddress.ip_address("10.0.0.1"))
    assert [owner.get("app", owner.get("kind")) for owner in view.owners] == ["web", "wide"]
    assert view.pod is not None
    assert endpoints.view(ipaddress.ip_address("192.0.2.1")).owners == ()


@pytest.mark.parametrize(
    ("pods", "complaint"),
    [
        ((pod("a", "10.0.0.1"), pod("a", "10.0.0.2")), "pod shop/a is declared twice"),
        (
            (pod("a", "10.0.0.1"), pod("b", "10.0.0.1")),
            "pod shop/b has IP 10.0.0.1, which pod shop/a already has",
        ),
        (
            (Pod("c", "elsewhere", ipaddress.ip_address("10.0.0.3")),),
            "pod elsewhere/c is in namespace elsewhere",
        ),
    ],
)
def test_impossible_clusters_are_refused(pods: tuple[Pod, ...], complaint: str) -> None:
    with pytest.raises(LocatedError, match=complaint):
        index(*pods)


def test_non_strict_records_an_undeclared_namespace_and_carries_on() -> None:
    problems: list[LocatedError] = []
    stray = Pod("c", "elsewhere", ipaddress.ip_address("10.0.0.3"), location=Location("pods.yaml", 3))
    endpoints = EndpointIndex([SHOP], [stray], [], [], strict=False, problems=problems)
    assert [str(problem) for problem in problems] == [
        "pods.yaml:3: pod elsewhere/c is in namespace elsewhere, which is not declared"
    ]
    assert endpoints.pod_labels["elsewhere/c"]["pcns.kubernetes.io/metadata.name"] == "elsewhere"


def test_a_service_account_name_of_63_characters_or_more_gives_no_serviceaccount_label() -> None:
    """§2.3: `projectcalico.org/serviceaccount=<sa>` "(only if SA name < 63 chars)"; the converter copies
    the pod's labels first and only then writes that label, so without it a pod's own label of that key
    stays. The `ksa.<ns>.<sa>` profile still gives `pcsa.projectcalico.org/name`."""
    shop = Namespace("shop")
    limit, short = "s" * 63, "s" * 62
    endpoints = EndpointIndex(
        [shop],
        [
            Pod("long", "shop", ipaddress.ip_address("10.0.0.1"), service_account=limit),
            Pod("short", "shop", ipaddress.ip_address("10.0.0.2"), service_account=short),
            Pod(
                "own",
                "shop",
                ipaddress.ip_address("10.0.0.3"),
                Labels.of({"projectcalico.org/serviceaccount": "claimed"}),
                service_account=limit,
            ),
        ],
        [],
        [],
        strict=True,
        problems=[],
    )
    assert "projectcalico.org/serviceaccount" not in endpoints.pod_labels["shop/long"]
    assert endpoints.pod_labels["shop/long"]["pcsa.projectcalico.org/name"] == limit
    assert endpoints.pod_labels["shop/short"]["projectcalico.org/serviceaccount"] == short
    assert endpoints.pod_labels["shop/own"]["projectcalico.org/serviceaccount"] == "claimed"
