"""The one wrapper around the `kubernetes` Python client: get, list, create and delete any object by
apiVersion and kind, discovery, and the ObjectApi the cleanup needs.

Kept thin on purpose: everything that decides something (what to create, when a wait is over, what to
delete) lives in pure modules; this one only moves dicts to and from the API server. It is exercised
by live runs only — no test here pretends to be an API server for it.

Two details the Calico install needs: the client never writes back to the kubeconfig it was given
(`persist_config=False`: the kubeconfig target reads the user's file, and must not touch it), and the
discovery cache lives in the run's state directory and is invalidated once when a kind is not found,
because `projectcalico.org/v3` appears only after the Calico API server starts (calico-install.md §7.10).
A kind the pinned release never serves (`cluster/served.py`) is refused at once with `NotServed`, which
no wait retries: waiting for it would only time out.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

from calico_conformance.cluster.inventory import ObjectRef
from calico_conformance.cluster.served import resource_for_kind

REQUEST_TIMEOUT_S = 30.0
# Errors a wait treats as "not yet": the API server restarting, a kind not served yet.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (ApiException, ResourceNotFoundError, OSError)


class NotServed(ValueError):
    """A kind the pinned Calico release's cluster never serves (a bug of the caller, never transient)."""


class KubeClient:
    """One cluster's API, from a kubeconfig file (None: $KUBECONFIG or ~/.kube/config) and context.

    `release` is the pinned Calico tag the cluster runs (`cluster/data/served-resources/<tag>.yaml`).
    """

    def __init__(
        self, kubeconfig: Path | None, context: str | None, *, discovery_cache: Path, release: str
    ) -> None:
        self.kubeconfig = kubeconfig
        self.context = context
        self.release = release
        self.api_client = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig) if kubeconfig else None, context=context, persist_config=False
        )
        self.core = k8s.CoreV1Api(self.api_client)
        self.custom = k8s.CustomObjectsApi(self.api_client)
        self._discovery_cache = discovery_cache
        self._dynamic: DynamicClient | None = None
        self._lock = threading.Lock()

    @property
    def dynamic(self) -> DynamicClient:
        with self._lock:
            if self._dynamic is None:
                self._dynamic = DynamicClient(self.api_client, cache_file=str(self._discovery_cache))  # type: ignore[no-untyped-call]
            return self._dynamic

    def resource(self, api_version: str, kind: str) -> Any:
        if resource_for_kind(self.release, api_version, kind) is None:
            raise NotServed(f"{api_version} {kind} is not served by clusters running Calico {self.release}")
        try:
            return self.dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            self.dynamic.resources.invalidate_cache()  # a group that appeared after the first discovery
            return self.dynamic.resources.get(api_version=api_version, kind=kind)

    # --- objects ------------------------------------------------------------------------------------

    def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        resource = self.resource(manifest["apiVersion"], manifest["kind"])
        namespace = manifest.get("metadata", {}).get("namespace")
        created = resource.create(
            body=dict(manifest), namespace=namespace, _request_timeout=REQUEST_TIMEOUT_S
        )
        result: dict[str, Any] = created.to_dict()
        return result

    def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        try:
            found = self.resource(ref.api_version, ref.kind).get(
                name=ref.name, namespace=ref.namespace, _request_timeout=REQUEST_TIMEOUT_S
            )
        except NotFoundError:
            return None
        result: dict[str, Any] = found.to_dict()
        return result

    def get_named(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        return self.get(ObjectRef(api_version, kind, name, namespace))

    def list_objects(
        self, api_version: str, kind: str, *, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        found = self.resource(api_version, kind).get(
            namespace=namespace, label_selector=label_selector, _request_timeout=REQUEST_TIMEOUT_S
        )
        items: list[dict[str, Any]] = found.to_dict().get("items", [])
        return items

    def delete(self, ref: ObjectRef) -> None:
        try:
            self.resource(ref.api_version, ref.kind).delete(
                name=ref.name, namespace=ref.namespace, _request_timeout=REQUEST_TIMEOUT_S
            )
        except NotFoundError:
            return

    def patch_labels(self, ref: ObjectRef, labels: Mapping[str, str]) -> None:
        """Merge `labels` into one object's labels (callers check it is theirs first)."""
        self.resource(ref.api_version, ref.kind).patch(
            name=ref.name,
            namespace=ref.namespace,
            body={"metadata": {"labels": dict(labels)}},
            content_type="application/merge-patch+json",
            _request_timeout=REQUEST_TIMEOUT_S,
        )

    def list_labelled(self, kinds: Sequence[tuple[str, str]], label_selector: str) -> list[Mapping[str, Any]]:
        found: list[Mapping[str, Any]] = []
        for api_version, kind in kinds:
            found.extend(self.list_objects(api_version, kind, label_selector=label_selector))
        return found

    # --- discovery and common reads ---------------------------------------------------------------------

    def served_resources(self, group: str, version: str) -> list[str]:
        """Plural resource names `group/version` serves; [] while the group is not served at all."""
        try:
            listing = self.custom.get_api_resources(group, version, _request_timeout=REQUEST_TIMEOUT_S)
        except ApiException as error:
            if error.status in (404, 503):  # not registered yet / aggregated API server not up yet
                return []
            raise
        return [resource.name for resource in listing.resources or ()]

    def nodes(self) -> list[dict[str, Any]]:
        """Every node as a dict (name, labels, addresses)."""
        return self.list_objects("v1", "Node")

    def pods(self, namespace: str | None = None, label_selector: str | None = None) -> list[dict[str, Any]]:
        return self.list_objects("v1", "Pod", namespace=namespace, label_selector=label_selector)

    def pod_logs(self, namespace: str, name: str, container: str | None = None) -> str:
        text: str = self.core.read_namespaced_pod_log(
            name, namespace, container=container, timestamps=True, _request_timeout=REQUEST_TIMEOUT_S
        )
        return text
