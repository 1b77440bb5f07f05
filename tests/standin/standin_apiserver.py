"""The cluster stand-in's API server: plain HTTP on 127.0.0.1, spoken to by `kubernetes` and `kubectl`.

It serves discovery and objects ONLY for what the pinned release serves (`standin_served.ServedApi`);
every other path gets the 404 Status the real kube-apiserver sends ("the server could not find the
requested resource"), so the client raises `ResourceNotFoundError` / `ApiException(404)` as it would
on a real cluster. Verbs: get, list (label selectors), create, replace, delete, patch (JSON merge,
strategic merge as a merge of maps, and server-side apply as `kubectl apply --server-side` sends it).
Admission that real clusters enforce and the live code must survive is enforced too: the namespace of
a namespaced object must exist and not be terminating, and a pod's ServiceAccount must exist
(the ServiceAccount admission plugin). Pods and exec are the kubelet's (`standin_kubelet`), deletion
of namespaces is the namespace controller's (`Controllers`).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml
from standin_served import ServedApi, ServedResource
from standin_store import Conflict, Key, Obj, ObjectStore, now

DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
NOT_FOUND_PATH = "the server could not find the requested resource"

ExecHandler = Callable[[BaseHTTPRequestHandler, str, str, dict[str, list[str]]], None]


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "details": self.details, "code": self.code,
        }  # fmt: skip


def not_found(resource: ServedResource, name: str) -> ApiError:
    group = resource.group
    what = f"{resource.name}.{group}" if group else resource.name
    return ApiError(
        404, "NotFound", f'{what} "{name}" not found', {"name": name, "group": group, "kind": resource.name}
    )


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


class StandinApi:
    """The API semantics over an `ObjectStore`, independent of HTTP."""

    def __init__(self, served: ServedApi, store: ObjectStore) -> None:
        self.served = served
        self.store = store
        self.exec_handler: ExecHandler | None = None
        self.log_reader: Callable[[str, str], str] | None = None
        self.request_log: list[str] = []  # every method and path, for tests that assert what was asked

    def key(self, resource: ServedResource, namespace: str | None, name: str) -> Key:
        return (resource.group_version, resource.name, namespace or "", name)

    def admit(self, resource: ServedResource, namespace: str | None, body: Obj) -> None:
        if resource.namespaced:
            ns = self.store.get(("v1", "namespaces", "", namespace or ""))
            if ns is None:
                raise ApiError(
                    404,
                    "NotFound",
                    f'namespaces "{namespace}" not found',
                    {"name": namespace, "kind": "namespaces"},
                )
            if ns["metadata"].get("deletionTimestamp"):
                raise ApiError(
                    403, "Forbidden",
                    f'{resource.name} "{body["metadata"].get("name")}" is forbidden: unable to create new content in '
                    f"namespace {namespace} because it is being terminated",
                )  # fmt: skip
        if resource.group_version == "v1" and resource.name == "pods":
            account = (body.get("spec") or {}).get("serviceAccountName") or "default"
            if self.store.get(("v1", "serviceaccounts", namespace or "", account)) is None:
                raise ApiError(
                    403, "Forbidden",
                    f'pods "{body["metadata"].get("name")}" is forbidden: error looking up service account '
                    f'{namespace}/{account}: serviceaccount "{account}" not found',
                )  # fmt: skip

    def create(self, resource: ServedResource, namespace: str | None, body: Obj) -> Obj:
        metadata = body.setdefault("metadata", {})
        name = str(metadata.get("name") or "")
        if not DNS1123.match(name) or len(name) > 253:
            raise ApiError(
                422, "Invalid", f'{resource.kind} "{name}" is invalid: metadata.name: Invalid value: "{name}"'
            )
        if resource.namespaced and metadata.get("namespace") not in (None, namespace):
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        self.admit(resource, namespace, body)
        body["apiVersion"], body["kind"] = resource.group_version, resource.kind
        if resource.group_version == "v1" and resource.name == "namespaces":
            labels = metadata.setdefault("labels", {})
            labels["kubernetes.io/metadata.name"] = name  # the NamespaceDefaultLabelName admission
            body["spec"], body["status"] = {"finalizers": ["kubernetes"]}, {"phase": "Active"}
        if resource.group_version == "v1" and resource.name == "pods":
            body["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        try:
            created = self.store.create(self.key(resource, namespace, name), body)
        except Conflict:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{resource.name} "{name}" already exists',
                {"name": name, "kind": resource.name},
            ) from None
        if resource.group_version == "v1" and resource.name == "namespaces":
            self._namespace_defaults(name)
        return created

    def _namespace_defaults(self, namespace: str) -> None:
        """What the ServiceAccount and root-CA publisher controllers put into every new namespace."""
        self.store.create(
            ("v1", "serviceaccounts", namespace, "default"),
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
        )
        self.store.create(("v1", "configmaps", namespace, "kube-root-ca.crt"),
                          {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt"},
                           "data": {"ca.crt": "stand-in: no certificate"}})  # fmt: skip

    def get(self, resource: ServedResource, namespace: str | None, name: str) -> Obj:
        found = self.store.get(self.key(resource, namespace, name))
        if found is None:
            raise not_found(resource, name)
        return found

    def list(self, resource: ServedResource, namespace: str | None, selector: str | None) -> Obj:
        try:
            items = self.store.items(resource.group_version, resource.name, namespace, selector)
        except ValueError as error:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {error}") from None
        return {
            "apiVersion": resource.group_version,
            "kind": f"{resource.kind}List",
            "metadata": {"resourceVersion": self.store.resource_version},
            "items": [
                {**item, "apiVersion": resource.group_version, "kind": resource.kind} for item in items
            ],
        }

    def delete(self, resource: ServedResource, namespace: str | None, name: str) -> Obj:
        key = self.key(resource, namespace, name)
        found = self.get(resource, namespace, name)
        if resource.group_version == "v1" and resource.name in ("pods", "namespaces"):

            def terminate(obj: Obj) -> None:
                obj["metadata"].setdefault("deletionTimestamp", now())
                if resource.name == "namespaces":
                    obj["status"]["phase"] = "Terminating"

            updated = self.store.update(key, terminate)
            return updated or found
        self.store.remove(key)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                "name": name,
                "group": resource.group,
                "kind": resource.name,
                "uid": found["metadata"]["uid"],
            },
        }

    def patch(
        self, resource: ServedResource, namespace: str | None, name: str, content_type: str, body: bytes
    ) -> Obj:
        key = self.key(resource, namespace, name)
        if content_type.startswith("application/apply-patch"):
            applied = yaml.safe_load(body.decode())
            existing = self.store.get(key)
            if existing is None:
                applied.setdefault("metadata", {})["name"] = name
                return self.create(resource, namespace, applied)
            merged = merge(existing, applied)
            return self.store.replace(key, merged)
        if content_type.startswith(
            ("application/merge-patch+json", "application/strategic-merge-patch+json")
        ):
            existing = self.get(resource, namespace, name)
            return self.store.replace(key, merge(existing, json.loads(body)))
        raise ApiError(
            415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {content_type}"
        )

    def replace(self, resource: ServedResource, namespace: str | None, name: str, body: Obj) -> Obj:
        self.get(resource, namespace, name)
        body["apiVersion"], body["kind"] = resource.group_version, resource.kind
        return self.store.replace(self.key(resource, namespace, name), body)


def route(served: ServedApi, path: str) -> tuple[ServedResource, str | None, str | None, str | None]:
    """(resource, namespace, name, subresource) of a resource path; ApiError(404) for anything unserved."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3 and parts[1] == "v1":
        gv, rest = "v1", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        raise ApiError(404, "NotFound", NOT_FOUND_PATH)
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        candidate = served.lookup(gv, rest[2])
        if candidate is not None and candidate.namespaced:
            namespace, rest = rest[1], rest[2:]
    plural, name, sub = rest[0], rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None
    if len(rest) > 3:
        raise ApiError(404, "NotFound", NOT_FOUND_PATH)
    resource = served.lookup(gv, plural)
    if resource is None or (sub is not None and served.lookup(gv, f"{plural}/{sub}") is None):
        raise ApiError(404, "NotFound", NOT_FOUND_PATH)
    return resource, namespace, name, sub


class Handler(BaseHTTPRequestHandler):
    """One request against `server.api` (a `StandinApi`)."""

    protocol_version = "HTTP/1.1"
    server: StandinHttpServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self, method: str) -> None:
        api = self.server.api
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        api.request_log.append(f"{method} {url.path}")
        try:
            discovery = self._discovery(url.path)
            if discovery is not None:
                if method != "GET":
                    raise ApiError(
                        405,
                        "MethodNotAllowed",
                        "the server does not allow this method on the requested resource",
                    )
                self._send(200, discovery)
                return
            resource, namespace, name, sub = route(api.served, url.path)
            if sub == "exec" and api.exec_handler is not None and name and namespace:
                self.close_connection = True
                api.exec_handler(self, namespace, name, query)
                return
            if sub == "log" and api.log_reader is not None and name and namespace:
                api.get(resource, namespace, name)
                self._send(200, api.log_reader(namespace, name).encode(), "text/plain")
                return
            if sub is not None:
                raise ApiError(
                    405, "MethodNotAllowed", f"the stand-in does not serve {resource.name}/{sub} {method}"
                )
            self._send(*self._resource(method, resource, namespace, name, query))
        except ApiError as error:
            self._send(error.code, error.status())
        except (ValueError, KeyError, TypeError) as error:
            self._send(400, ApiError(400, "BadRequest", f"{type(error).__name__}: {error}").status())

    def _discovery(self, path: str) -> dict[str, Any] | None:
        served = self.server.api.served
        clean = path.rstrip("/")
        if clean == "/version":
            return {"major": "1", "minor": "32", "gitVersion": "v1.32.0-standin", "platform": "linux/amd64"}
        if clean == "/api":
            return served.core_versions() or _raise_not_found()
        if clean == "/apis":
            return served.group_list()
        parts = [p for p in clean.split("/") if p]
        if parts == ["api", "v1"] or (parts[:1] == ["apis"] and len(parts) == 3):
            gv = "v1" if parts[0] == "api" else f"{parts[1]}/{parts[2]}"
            return served.resource_list(gv) or _raise_not_found()
        if parts[:1] == ["apis"] and len(parts) == 2:
            group = next((g for g in served.group_list()["groups"] if g["name"] == parts[1]), None)
            return {"kind": "APIGroup", "apiVersion": "v1", **group} if group else _raise_not_found()
        return None

    def _resource(
        self,
        method: str,
        resource: ServedResource,
        namespace: str | None,
        name: str | None,
        query: dict[str, list[str]],
    ) -> tuple[int, Any]:
        api = self.server.api
        verb = {
            "GET": "get" if name else "list",
            "POST": "create",
            "DELETE": "delete",
            "PATCH": "patch",
            "PUT": "update",
        }[method]
        if query.get("watch", ["false"])[0] in ("true", "1"):
            verb = "watch"
        if verb not in resource.verbs or verb == "watch":
            raise ApiError(
                405,
                "MethodNotAllowed",
                f"the server does not allow this method on the requested resource ({verb})",
            )
        if verb == "list":
            return 200, api.list(resource, namespace, (query.get("labelSelector") or [None])[0])
        if verb == "create":
            return 201, api.create(resource, namespace, json.loads(self._body()))
        assert name is not None
        if verb == "get":
            return 200, api.get(resource, namespace, name)
        if verb == "delete":
            self._body()
            return 200, api.delete(resource, namespace, name)
        if verb == "update":
            return 200, api.replace(resource, namespace, name, json.loads(self._body()))
        return 200, api.patch(resource, namespace, name, self.headers.get("Content-Type", ""), self._body())

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


def _raise_not_found() -> dict[str, Any]:
    raise ApiError(404, "NotFound", NOT_FOUND_PATH)


class StandinHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: StandinApi) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.api = api
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)


CONTEXT = "standin"  # the kubeconfig context the stand-in's tests use


class ApiOnly:
    """An API server with no kubelet: objects only, for the API and discovery tests."""

    def __init__(self, api: StandinApi, server: StandinHttpServer, kubeconfig: Path) -> None:
        self.api, self.server, self.kubeconfig = api, server, kubeconfig


def write_kubeconfig(path: str, url: str, context: str) -> None:
    """An ordinary kubeconfig naming the stand-in as cluster, user and context `context`."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": context, "cluster": {"server": url}}],
        "users": [{"name": context, "user": {"token": "stand-in"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
    }  # fmt: skip
    with open(path, "w") as handle:
        yaml.safe_dump(config, handle)
