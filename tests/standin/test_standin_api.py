"""The stand-in API server answers the live code's client and kubectl as the real server would, and
refuses every resource the pinned release does not serve.

Expected values come from the served-resources data (what the release serves) and from the
Kubernetes API conventions (404 Status, 409 AlreadyExists, 403 on a terminating namespace), never from
what the stand-in answered.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ResourceNotFoundError
from standin_apiserver import CONTEXT, ApiOnly

from calico_conformance.cluster.inventory import ObjectRef
from calico_conformance.cluster.kube import KubeClient

RELEASE = "v3.31.7"  # the stand-in serves what this pinned release serves


def client(standin: ApiOnly, tmp_path: Path) -> KubeClient:
    return KubeClient(
        standin.kubeconfig, CONTEXT, discovery_cache=tmp_path / "discovery.json", release=RELEASE
    )


def namespace(name: str, **labels: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def test_discovery_lists_exactly_the_served_resources(standin_api: ApiOnly, tmp_path: Path) -> None:
    kube = client(standin_api, tmp_path)
    served = standin_api.api.served
    for group_version in served.group_versions:
        if "/" not in group_version:
            continue
        group, _, version = group_version.partition("/")
        expected = sorted(name for (gv, name) in served.resources if gv == group_version)
        assert sorted(kube.served_resources(group, version)) == expected


def test_a_resource_the_release_does_not_serve_is_not_found(standin_api: ApiOnly, tmp_path: Path) -> None:
    kube = client(standin_api, tmp_path)
    assert standin_api.api.served.lookup("projectcalico.org/v3", "workloadendpoints") is None
    with pytest.raises(ResourceNotFoundError):
        kube.dynamic.resources.get(api_version="projectcalico.org/v3", kind="WorkloadEndpoint")
    assert kube.served_resources("example.invalid", "v1") == []  # a group nobody registered: 404
    with pytest.raises(ApiException) as raised:
        kube.custom.list_cluster_custom_object("projectcalico.org", "v3", "workloadendpoints")
    assert raised.value.status == 404


def test_create_get_list_patch_delete_round_trip(standin_api: ApiOnly, tmp_path: Path) -> None:
    kube = client(standin_api, tmp_path)
    created = kube.create(namespace("tenant", team="a"))
    assert created["metadata"]["labels"] == {"team": "a", "kubernetes.io/metadata.name": "tenant"}
    assert [n["metadata"]["name"] for n in kube.list_objects("v1", "Namespace", label_selector="team=a")] == [
        "tenant"
    ]
    assert kube.list_objects("v1", "Namespace", label_selector="team notin (a)") == []
    # The ServiceAccount controller gives every namespace its `default` account.
    assert kube.get_named("v1", "ServiceAccount", "default", "tenant") is not None
    kube.patch_labels(ObjectRef("v1", "Namespace", "tenant", None), {"extra": "x"})
    assert (kube.get_named("v1", "Namespace", "tenant") or {})["metadata"]["labels"]["extra"] == "x"
    with pytest.raises(ApiException) as raised:
        kube.create(namespace("tenant"))
    assert raised.value.status == 409
    kube.delete(ObjectRef("v1", "Namespace", "tenant", None))
    terminating = kube.get_named("v1", "Namespace", "tenant") or {}
    assert terminating["status"]["phase"] == "Terminating"
    with pytest.raises(ApiException) as raised:
        kube.create(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "tenant"}}
        )
    assert raised.value.status == 403


def test_a_pod_without_its_service_account_is_refused(standin_api: ApiOnly, tmp_path: Path) -> None:
    kube = client(standin_api, tmp_path)
    kube.create(namespace("tenant"))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "tenant"},
           "spec": {"serviceAccountName": "batch", "containers": [{"name": "c", "image": "i"}]}}  # fmt: skip
    with pytest.raises(ApiException) as raised:
        kube.create(pod)
    assert raised.value.status == 403
    assert "serviceaccount" in json.loads(raised.value.body)["message"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_server_side_apply_and_get(standin_api: ApiOnly) -> None:
    env = {**os.environ, "KUBECONFIG": str(standin_api.kubeconfig)}
    tier = {"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": "security"},
            "spec": {"order": 100}}  # fmt: skip

    def kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", *args], env=env, input=stdin, capture_output=True, text=True, timeout=60, check=False
        )

    # --validate=false: the stand-in serves no OpenAPI documents, which strict validation downloads.
    applied = kubectl("apply", "--server-side", "--validate=false", "--field-manager=calico-conformance", "-f", "-",
                      stdin=json.dumps(tier))  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    listed = kubectl("get", "tiers.projectcalico.org", "-o", "json")
    assert [item["metadata"]["name"] for item in json.loads(listed.stdout)["items"]] == ["security"]
    missing = kubectl("get", "workloadendpoints.projectcalico.org")
    assert missing.returncode != 0
    assert "the server doesn't have a resource type \"workloadendpoints" in missing.stderr
