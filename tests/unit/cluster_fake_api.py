"""A fake of `cluster.kube.KubeClient` that serves only what a pinned release really serves.

Every fake API of the cluster tests derives from `ServedFakeApi`. It answers for an (apiVersion, kind)
only when `cluster/data/served-resources/<release>.yaml` lists it, and otherwise raises what the real
client raises: the dynamic client's discovery finds no match and raises
`ResourceNotFoundError('No matches found for {...}')` (kubernetes-client/python master 024658493,
kubernetes/base/dynamic/discovery.py:214, byte-identical to the installed 37.0.3's
kubernetes/dynamic/discovery.py), which `KubeClient.resource` lets through after one cache refresh.
A code path that asks for a resource a pinned release does not serve therefore fails its test.

It proves nothing else about an API server: no admission, no finalizers, no defaults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes.dynamic.exceptions import ResourceNotFoundError

from calico_conformance.cluster.inventory import ObjectRef
from calico_conformance.cluster.readiness import CNI_CONTAINER_ID, CNI_POD_IP, CNI_POD_IPS
from calico_conformance.cluster.served import ServedResource, is_served, resource_for_kind, served_resources

PINNED = ("v3.31.7", "v3.27.5")


class ServedFakeApi:
    """In-memory objects behind the served-resources check (see the module docstring)."""

    def __init__(self, release: str = "v3.31.7", *, calico_api_server: bool = True) -> None:
        self.release = release
        self.calico_api_server = calico_api_server  # projectcalico.org/v3 is served only while it runs
        self.objects: dict[ObjectRef, dict[str, Any]] = {}
        self.asked: list[tuple[str, str]] = []  # every (apiVersion, kind) any call resolved
        self.uids = 0

    # --- discovery, as the dynamic client does it ----------------------------------------------------

    def resource(self, api_version: str, kind: str) -> ServedResource:
        self.asked.append((api_version, kind))
        served = resource_for_kind(self.release, api_version, kind)
        if served is None or (api_version == "projectcalico.org/v3" and not self.calico_api_server):
            raise ResourceNotFoundError(
                f"No matches found for {{'api_version': {api_version!r}, 'kind': {kind!r}}}"
            )
        return served

    def served_resources(self, group: str, version: str) -> list[str]:
        group_version = f"{group}/{version}" if group else version
        if group_version == "projectcalico.org/v3" and not self.calico_api_server:
            return []
        served = served_resources(self.release).group(group_version)
        return [] if served is None else [resource.name for resource in served.resources]

    # --- objects -----------------------------------------------------------------------------------------

    def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        served = self.resource(str(manifest["apiVersion"]), str(manifest["kind"]))
        namespace = manifest.get("metadata", {}).get("namespace")
        if served.namespaced and not namespace:
            raise ValueError(
                f"{manifest['kind']} {manifest['metadata']['name']} is namespaced: no namespace given"
            )
        self.uids += 1
        obj = {**manifest, "metadata": {**manifest["metadata"], "uid": f"uid-{self.uids}"}}
        self.objects[ObjectRef.of(obj)] = obj
        return obj

    def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        self.resource(ref.api_version, ref.kind)
        return self.objects.get(ref)

    def get_named(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        return self.get(ObjectRef(api_version, kind, name, namespace))

    def list_objects(
        self, api_version: str, kind: str, *, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        self.resource(api_version, kind)
        wanted = dict(part.split("=") for part in label_selector.split(",")) if label_selector else {}
        return [
            obj
            for ref, obj in self.objects.items()
            if (ref.api_version, ref.kind) == (api_version, kind)
            and (namespace is None or ref.namespace == namespace)
            and all(obj["metadata"].get("labels", {}).get(key) == value for key, value in wanted.items())
        ]

    def delete(self, ref: ObjectRef) -> None:
        self.resource(ref.api_version, ref.kind)
        self.objects.pop(ref, None)

    def patch_labels(self, ref: ObjectRef, labels: Mapping[str, str]) -> None:
        self.resource(ref.api_version, ref.kind)
        metadata = self.objects[ref]["metadata"]
        metadata["labels"] = {**metadata.get("labels", {}), **labels}

    def list_labelled(self, kinds: Sequence[tuple[str, str]], label_selector: str) -> list[Mapping[str, Any]]:
        found: list[Mapping[str, Any]] = []
        for api_version, kind in kinds:
            found.extend(self.list_objects(api_version, kind, label_selector=label_selector))
        return found

    def nodes(self) -> list[dict[str, Any]]:
        return self.list_objects("v1", "Node")

    def pods(self, namespace: str | None = None, label_selector: str | None = None) -> list[dict[str, Any]]:
        return self.list_objects("v1", "Pod", namespace=namespace, label_selector=label_selector)

    def pod_logs(self, namespace: str, name: str, container: str | None = None) -> str:
        if not is_served(self.release, "v1", "pods/log"):  # CoreV1Api.read_namespaced_pod_log's path
            raise ResourceNotFoundError("pods/log is not served")
        return ""


class CniFakeApi(ServedFakeApi):
    """Created pods come up as the kubelet and Calico's CNI leave them: containers ready, an IP, and the
    CNI's annotations (projectcalico/calico v3.31.7 libcalico-go/lib/backend/k8s/resources/
    workloadendpoint.go:132-138)."""

    def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        obj = super().create(manifest)
        if obj["kind"] == "Pod":
            ip = f"10.244.1.{self.uids}"
            obj["metadata"]["annotations"] = {
                **obj["metadata"].get("annotations", {}),
                CNI_POD_IP: f"{ip}/32", CNI_POD_IPS: f"{ip}/32", CNI_CONTAINER_ID: f"c{self.uids}",
            }  # fmt: skip
            obj["status"] = {"phase": "Running", "podIP": ip,
                             "conditions": [{"type": "ContainersReady", "status": "True"}]}  # fmt: skip
        return obj
