"""Every API resource the live code asks for is one both pinned releases serve.

Two checks. A scan of the live code paths (cluster/, suite/, probe/kube_executor.py) for every
(apiVersion, kind) it names — in `get_named`/`list_objects`/`resource`/`ObjectRef` calls, in rendered
manifests, in (apiVersion, kind) tuples — compared with `cluster/data/served-resources/`. And runs of the
code paths themselves against `ServedFakeApi`, which raises the dynamic client's ResourceNotFoundError
for anything a release does not serve. Before issue 9 the probe-pod deployment waited for
`projectcalico.org/v3` WorkloadEndpoints, which neither release serves: both checks fail on that code.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from kubernetes.dynamic.exceptions import ResourceNotFoundError
from tests.unit.cluster_fake_api import PINNED, CniFakeApi, ServedFakeApi

from calico_conformance.cluster import audit as audits
from calico_conformance.cluster.deploy import control_tier_manifests, start_probe_pods
from calico_conformance.cluster.probe_pods import plan_probe_pods
from calico_conformance.cluster.readiness import (
    calico_v3_resources,
)
from calico_conformance.cluster.releases import RELEASES
from calico_conformance.cluster.served import is_served, resource_for_kind
from calico_conformance.cluster.waits import Timeouts
from calico_conformance.oracle.model import Labels
from calico_conformance.tenancy.layout import Service, Workload

SRC = Path(__file__).resolve().parents[2] / "src" / "calico_conformance"
LIVE_CODE = [*sorted((SRC / "cluster").glob("*.py")), *sorted((SRC / "suite").glob("*.py")),
             SRC / "probe" / "kube_executor.py"]  # fmt: skip
CALLS = {"get_named", "list_objects", "resource", "ObjectRef"}
GROUP_VERSION = re.compile(r"^(v1|[a-z0-9.-]+/v\d+(?:(?:alpha|beta)\d+)?)$")
KIND = re.compile(r"^[A-Z][A-Za-z]+$")
# Asked for only on releases with tiers: every use is behind `release.minor >= TIERS_SINCE` (deploy.py,
# targets.py, readiness.calico_v3_resources), which test_tiers_are_asked_for_only_where_served checks.
ONLY_WITH_TIERS = {("projectcalico.org/v3", "Tier")}


def _constants(tree: ast.Module) -> dict[str, set[str]]:
    """Every string a name is ever given, module and function level alike (`api = "projectcalico.org/v3"`
    inside a renderer; `calico = CALICO_API` then `calico = CALICO_CRDS` in the audit: both count)."""
    found: dict[str, set[str]] = {}
    assignments = [node for node in ast.walk(tree) if isinstance(node, ast.Assign)]
    for _ in range(3):  # names assigned from names, a few levels deep
        for node in assignments:
            values = _texts(node.value, found)
            for target in node.targets:
                if isinstance(target, ast.Name) and values:
                    found.setdefault(target.id, set()).update(values)
    return found


def _texts(node: ast.AST | None, constants: Mapping[str, set[str]]) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.Name):
        return set(constants.get(node.id, ()))
    return set()


def asked_for(source: str, where: str) -> Iterator[tuple[str, str, str]]:
    """(apiVersion, kind, file:line) of every resource `source` names."""
    tree = ast.parse(source)
    constants = _constants(tree)
    for node in ast.walk(tree):
        pair: tuple[set[str], set[str]] = (set(), set())
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in CALLS and len(node.args) >= 2:
                pair = (_texts(node.args[0], constants), _texts(node.args[1], constants))
        elif isinstance(node, ast.Dict):
            keys = [next(iter(_texts(key, {})), None) for key in node.keys]
            if "apiVersion" in keys and "kind" in keys:
                pair = (_texts(node.values[keys.index("apiVersion")], constants),
                        _texts(node.values[keys.index("kind")], constants))  # fmt: skip
        elif isinstance(node, ast.Tuple) and len(node.elts) == 2:
            pair = (_texts(node.elts[0], constants), _texts(node.elts[1], constants))
        for api_version in sorted(pair[0]):
            for kind in sorted(pair[1]):
                if GROUP_VERSION.match(api_version) and KIND.match(kind) and kind != "List":
                    yield api_version, kind, f"{where}:{getattr(node, 'lineno', 0)}"


def live_code_asks() -> list[tuple[str, str, str]]:
    return [found for path in LIVE_CODE for found in asked_for(path.read_text(), str(path.relative_to(SRC)))]


def test_the_scan_finds_what_the_live_code_is_known_to_ask_for() -> None:
    kinds = {(api, kind) for api, kind, _ in live_code_asks()}
    assert {("v1", "Pod"), ("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "ServiceAccount"), ("v1", "Node"),
            ("apps/v1", "Deployment"), ("operator.tigera.io/v1", "TigeraStatus"),
            ("operator.tigera.io/v1", "Installation"), ("projectcalico.org/v3", "IPPool"),
            ("crd.projectcalico.org/v1", "IPPool"), ("crd.projectcalico.org/v1", "FelixConfiguration"),
            ("projectcalico.org/v3", "GlobalNetworkPolicy"), ("projectcalico.org/v3", "Tier")} <= kinds  # fmt: skip


def test_the_scan_catches_the_workload_endpoint_wait_issue_9_removed() -> None:
    before = (
        'WEP_API = "projectcalico.org/v3"\nkube.list_objects(WEP_API, "WorkloadEndpoint", namespace=ns)\n'
    )
    ((api, kind, where),) = asked_for(before, "deploy.py")
    assert (api, kind, where) == ("projectcalico.org/v3", "WorkloadEndpoint", "deploy.py:2")
    assert not any(is_served(tag, api, "workloadendpoints") for tag in PINNED)
    assert all(resource_for_kind(tag, api, kind) is None for tag in PINNED)


@pytest.mark.parametrize("release", PINNED)
def test_every_resource_the_live_code_asks_for_is_served(release: str) -> None:
    unserved = [
        f"{where}: {api} {kind}"
        for api, kind, where in live_code_asks()
        if resource_for_kind(release, api, kind) is None
        and not (release == "v3.27.5" and (api, kind) in ONLY_WITH_TIERS)
    ]
    assert unserved == []


def test_tiers_are_asked_for_only_where_served() -> None:
    for release in RELEASES.values():
        for plural in calico_v3_resources(release.minor):
            assert is_served(release.tag, "projectcalico.org/v3", plural), (release.tag, plural)
    assert {m["kind"] for m in control_tier_manifests("r1")} <= {"Tier", "GlobalNetworkPolicy"}


# --- the code paths themselves, against a fake that serves only what the release does --------------------


@pytest.mark.parametrize("release", PINNED)
def test_starting_probe_pods_asks_only_for_served_resources(release: str) -> None:
    api = CniFakeApi(release)
    workload = Workload("royal-bank", "ledger", Labels.of({"app": "ledger"}), (Service(8080, "TCP"),))
    pods = plan_probe_pods([workload], ["w1"])

    endpoints = start_probe_pods(api, pods, image="i", agent_source="", run_id="r1",  # type: ignore[arg-type]
                                 timeouts=Timeouts(workload_endpoints_s=0.0, probe_pods_ready_s=0.0))  # fmt: skip

    assert endpoints["royal-bank/ledger"].ip.startswith("10.244.1.")
    assert set(api.asked) <= {("v1", "ConfigMap"), ("v1", "Pod"), ("v1", "ServiceAccount")}


@pytest.mark.parametrize("release", PINNED)
def test_the_audit_reads_only_served_resources(release: str) -> None:
    api = ServedFakeApi(release)
    audit = audits.read_audit(api, "finland", network_mtu=None)  # type: ignore[arg-type]
    assert audit.ip_pools == ()


def test_the_fake_refuses_as_the_dynamic_client_does() -> None:
    # kubernetes-client/python kubernetes/base/dynamic/discovery.py:214 (installed 37.0.3 identical):
    # raise ResourceNotFoundError('No matches found for {}'.format(kwargs))
    with pytest.raises(
        ResourceNotFoundError,
        match=r"^No matches found for \{'api_version': 'projectcalico.org/v3', 'kind': 'WorkloadEndpoint'\}$",
    ):
        ServedFakeApi().list_objects("projectcalico.org/v3", "WorkloadEndpoint", namespace="x")
    with pytest.raises(ResourceNotFoundError):
        ServedFakeApi("v3.27.5").create(
            {"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": "t"}}
        )
