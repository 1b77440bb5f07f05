"""The cluster stand-in's kubelet, CNI plugin and namespace controller: a Pod is a network namespace.

A pod bound to a node (`spec.nodeName`) gets a network namespace on that node of the netns lab
(`probe/netns_lab.py`: a veth into the node's bridge, a /32 from the node's share of the pod CIDR,
VXLAN to the other node), the annotations Calico's CNI plugin writes when it creates the endpoint
(`cni.projectcalico.org/podIP`, `podIPs` and `containerID`: projectcalico/calico v3.31.7,
libcalico-go/lib/backend/k8s/conversion/constants.go:30,33,41, written by
libcalico-go/lib/backend/k8s/resources/workloadendpoint.go:117-139 as the endpoint's IP networks,
`<ip>/32`), and its container command really runs inside it, with each ConfigMap volume mounted where
the pod asks (a private mount namespace with a tmpfs over the mount's parent, so the host is untouched).

Status as the kubelet writes it: a container that exits under `restartPolicy: Always` is reported as
between two restarts (waiting `CrashLoopBackOff`, `lastState.terminated` with its exit code and, with
`FallbackToLogsOnError`, the end of its log as the message, `restartCount` 1, phase Running) and is
not restarted; `ContainersReady` once the readiness probe's TCP port listens (no
readiness probe: once the process runs), `Ready` only when ContainersReady and every readiness gate's
condition is True (KEP-580), so the probe pods' never-set gate keeps them un-Ready as on a real node.
Deleting a pod stops its process and removes its namespace before the object goes; deleting a
namespace deletes its pods first, then everything else in it, then the namespace (the namespace
controller).
"""

from __future__ import annotations

import re
import secrets
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from standin_store import Key, Obj, ObjectStore

from calico_conformance.probe.netns_executor import listening
from calico_conformance.probe.netns_lab import LabPod, NetnsLab, PodSpec, run

ANNOTATION_POD_IP = "cni.projectcalico.org/podIP"
ANNOTATION_POD_IPS = "cni.projectcalico.org/podIPs"
ANNOTATION_CONTAINER_ID = "cni.projectcalico.org/containerID"
STOP_TIMEOUT_S = 2.0
BOOT_WORKERS = 6  # pods built and started at once
BOOT_WAIT_S = 30.0  # how long a deletion waits for a pod still being built
READY_WITHIN_S = 120.0  # a readiness probe that has not passed by then is given up (the pod stays unready)
PROBE_PERIOD_S = 0.1
MOUNT_SCRIPT = (
    'for spec in $STANDIN_MOUNTS; do target=${spec%%=*}; source=${spec#*=}; parent=$(dirname "$target"); '
    'mount -t tmpfs standin "$parent" && mkdir -p "$target" && mount --bind "$source" "$target" || exit 97; '
    'done; exec "$@"'
)


@dataclass
class Sandbox:
    """One running pod: its namespace, address and container process."""

    key: tuple[str, str]
    netns: str
    ip: str
    node: str
    log: Path
    process: subprocess.Popen[bytes] | None = None
    ready: bool = False
    container_id: str = field(default_factory=lambda: secrets.token_hex(32))
    started: float = field(default_factory=time.monotonic)
    booted: threading.Event = field(default_factory=threading.Event)
    programmable_at: float = 0.0  # when the stand-in's Felix programs it (the new-pod fault delays this)


def pod_key(namespace: str, name: str) -> Key:
    return ("v1", "pods", namespace, name)


class Kubelet:
    """Reconciles pods and terminating namespaces of `store` onto `lab` until `stop()`."""

    def __init__(
        self,
        store: ObjectStore,
        lab: NetnsLab,
        workdir: Path,
        *,
        never_ready: Callable[[Obj], bool] = lambda pod: False,
        on_network_change: Callable[[], None] = lambda: None,
        new_pod_delay_s: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.new_pod_delay_s = new_pod_delay_s
        self.store, self.lab, self.workdir = store, lab, workdir
        self.never_ready = never_ready
        self.on_network_change = on_network_change
        self.sandboxes: dict[tuple[str, str], Sandbox] = {}
        self._hosts = dict.fromkeys(lab.nodes, 10)
        self._ports = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="standin-kubelet", daemon=True)
        self._pool = ThreadPoolExecutor(max_workers=BOOT_WORKERS, thread_name_prefix="standin-pod")
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        with self.store.changed:
            self.store.changed.notify_all()
        self._thread.join(timeout=30)
        self._pool.shutdown(wait=True, cancel_futures=True)
        for sandbox in list(self.sandboxes.values()):
            self._kill(sandbox)

    def sandbox(self, namespace: str, name: str) -> Sandbox | None:
        return self.sandboxes.get((namespace, name))

    def read_log(self, namespace: str, name: str) -> str:
        sandbox = self.sandbox(namespace, name)
        return sandbox.log.read_text(errors="replace") if sandbox and sandbox.log.exists() else ""

    # --- the loop ---------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            version = self.store.resource_version
            self._reconcile()
            with self.store.changed:
                if self.store.resource_version == version and not self._stopping.is_set():
                    # Woken by any change; the timeout re-checks readiness of starting containers.
                    self.store.changed.wait(timeout=0.2)

    def _reconcile(self) -> None:
        for namespace in self.store.items("v1", "namespaces"):
            if namespace["metadata"].get("deletionTimestamp"):
                self._finish_namespace(namespace["metadata"]["name"])
        for pod in self.store.items("v1", "pods"):
            metadata = pod["metadata"]
            key = (metadata["namespace"], metadata["name"])
            if metadata.get("deletionTimestamp"):
                self._delete_pod(key)
            elif key not in self.sandboxes and (pod.get("spec") or {}).get("nodeName") in self.lab.nodes:
                self._start_pod(pod)

    def _finish_namespace(self, namespace: str) -> None:
        pods = self.store.items("v1", "pods", namespace)
        for pod in pods:
            self.store.update(pod_key(namespace, pod["metadata"]["name"]), _mark_deleted)
        if pods:
            return
        for key in list(self.store.keys()):
            if key[2] == namespace:
                self.store.remove(key)
        self.store.remove(("v1", "namespaces", "", namespace))

    # --- pods -------------------------------------------------------------------------------------------

    def _start_pod(self, pod: Obj) -> None:
        """Allocate the pod's address here (in order), build and start it on the pool (in parallel)."""
        metadata, spec = pod["metadata"], pod["spec"]
        key = (metadata["namespace"], metadata["name"])
        container = spec["containers"][0]
        volumes = self._volumes(metadata["namespace"], spec, container)
        if volumes is None:
            return  # a ConfigMap volume whose ConfigMap does not exist yet: retried, as the kubelet does
        node = self.lab.nodes[spec["nodeName"]]
        self._ports += 1
        log = self.workdir / f"pod-{self._ports}.log"
        if spec.get("hostNetwork"):
            sandbox = Sandbox(key, node.netns, node.underlay_ip, node.name, log)
        else:
            host = self._hosts[node.name]
            self._hosts[node.name] += 1
            sandbox = Sandbox(
                key, f"{self.lab.prefix}-p{self._ports}", f"10.244.{node.index}.{host}", node.name, log
            )
        sandbox.programmable_at = sandbox.started + self.new_pod_delay_s()
        self.sandboxes[key] = sandbox
        self._pool.submit(self._boot, pod, sandbox, volumes, f"sp{self._ports}")

    def _boot(self, pod: Obj, sandbox: Sandbox, volumes: dict[str, Path], port: str) -> None:
        try:
            self._build(pod, sandbox, volumes, port)
        except Exception as error:  # recorded; the pod stays Pending, as a failed sandbox does
            self.errors.append(f"{sandbox.key}: {type(error).__name__}: {error}")
            return
        finally:
            sandbox.booted.set()
        self._write_status(pod, sandbox)
        probe = (pod["spec"]["containers"][0].get("readinessProbe") or {}).get("tcpSocket")
        deadline = time.monotonic() + READY_WITHIN_S
        while not self._stopping.is_set() and time.monotonic() < deadline and not self.never_ready(pod):
            if sandbox.process is None or sandbox.process.poll() is not None:
                break
            if probe is None or listening(sandbox.netns, int(probe["port"]), "tcp"):
                sandbox.ready = True
                break
            self._stopping.wait(PROBE_PERIOD_S)
        self._write_status(pod, sandbox)

    def _build(self, pod: Obj, sandbox: Sandbox, volumes: dict[str, Path], port: str) -> None:
        spec, container = pod["spec"], pod["spec"]["containers"][0]
        node = self.lab.nodes[sandbox.node]
        key = sandbox.key
        if not spec.get("hostNetwork"):
            run(["ip", "netns", "add", sandbox.netns])
            lab_pod = LabPod(PodSpec(key[0], key[1], node.name), sandbox.netns, sandbox.ip)
            self.lab._build_pod(lab_pod, node, port=port)  # the lab's own pod plumbing
            self.store.update(pod_key(*key), lambda obj: obj["metadata"].setdefault("annotations", {}).update({
                ANNOTATION_POD_IP: f"{sandbox.ip}/32",
                ANNOTATION_POD_IPS: f"{sandbox.ip}/32",
                ANNOTATION_CONTAINER_ID: sandbox.container_id,
            }))  # fmt: skip
        self.on_network_change()
        env = {"HOST_IP": node.underlay_ip, "POD_IP": sandbox.ip}
        argv = [_expand(arg, env) for arg in [*container.get("command", []), *container.get("args", [])]]
        mounts = " ".join(f"{target}={source}" for target, source in volumes.items())
        wrapped = ["ip", "netns", "exec", sandbox.netns, "env", f"STANDIN_MOUNTS={mounts}",
                   "unshare", "--mount", "--propagation", "private", "sh", "-c", MOUNT_SCRIPT, "standin", *argv]  # fmt: skip
        with sandbox.log.open("wb") as output:
            sandbox.process = subprocess.Popen(
                wrapped, stdin=subprocess.DEVNULL, stdout=output, stderr=output
            )

    def _volumes(
        self, namespace: str, spec: Mapping[str, Any], container: Mapping[str, Any]
    ) -> dict[str, Path] | None:
        by_name = {v["name"]: v for v in spec.get("volumes") or ()}
        mounts: dict[str, Path] = {}
        for mount in container.get("volumeMounts") or ():
            volume = by_name[mount["name"]]
            config_map = self.store.get(("v1", "configmaps", namespace, volume["configMap"]["name"]))
            if config_map is None:
                return None
            directory = self.workdir / f"vol-{secrets.token_hex(4)}"
            directory.mkdir()
            for name, text in (config_map.get("data") or {}).items():
                (directory / name).write_text(text)
            mounts[mount["mountPath"]] = directory
        return mounts

    def _write_status(self, pod: Obj, sandbox: Sandbox) -> None:
        exited = sandbox.process is not None and sandbox.process.poll() is not None
        gates = [g["conditionType"] for g in pod["spec"].get("readinessGates") or ()]

        container = pod["spec"]["containers"][0]
        restarts = pod["spec"].get("restartPolicy", "Always") != "Never"
        exit_code = sandbox.process.returncode if exited and sandbox.process else None
        terminated: dict[str, Any] = {"exitCode": exit_code, "reason": "Error" if exit_code else "Completed"}
        if exit_code and container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            terminated["message"] = log_tail(sandbox.log)
        if not exited:
            states: dict[str, Any] = {"state": {"running": {}}, "restartCount": 0}
        elif restarts:  # as the kubelet reports a crashing container between two restarts (none here)
            states = {"state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": terminated},
                      "restartCount": 1}  # fmt: skip
        else:
            states = {"state": {"terminated": terminated}, "restartCount": 0}

        def change(obj: Obj) -> None:
            status = obj.setdefault("status", {})
            conditions = {c["type"]: c for c in status.get("conditions") or ()}
            ready = sandbox.ready and not exited
            for kind, value in (("PodScheduled", True), ("Initialized", True), ("ContainersReady", ready)):
                conditions[kind] = {"type": kind, "status": str(value)}
            gated = all(conditions.get(gate, {}).get("status") == "True" for gate in gates)
            conditions["Ready"] = {"type": "Ready", "status": str(ready and gated)}
            status.update(
                phase="Failed" if exited and not restarts else "Running",
                podIP=sandbox.ip, podIPs=[{"ip": sandbox.ip}], hostIP=self.lab.nodes[sandbox.node].underlay_ip,
                conditions=list(conditions.values()),
                containerStatuses=[{
                    "name": container["name"], "ready": ready,
                    "containerID": f"standin://{sandbox.container_id}", **states,
                }],
            )  # fmt: skip

        self.store.update(pod_key(*sandbox.key), change)

    def _delete_pod(self, key: tuple[str, str]) -> None:
        sandbox = self.sandboxes.pop(key, None)
        if sandbox is not None:
            sandbox.booted.wait(timeout=BOOT_WAIT_S)
            self._kill(sandbox)
            self.on_network_change()
        self.store.remove(pod_key(*key))

    def _kill(self, sandbox: Sandbox) -> None:
        if sandbox.process is not None and sandbox.process.poll() is None:
            sandbox.process.terminate()
            try:
                sandbox.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                sandbox.process.kill()
                sandbox.process.wait()
        if sandbox.netns != self.lab.nodes[sandbox.node].netns:
            subprocess.run(["ip", "netns", "delete", sandbox.netns], capture_output=True, check=False)


def _mark_deleted(obj: Obj) -> None:
    from standin_store import now

    obj["metadata"].setdefault("deletionTimestamp", now())


def log_tail(log: Path) -> str:
    """What FallbackToLogsOnError puts in the termination message: the last chunk of the container's log,
    at most 80 lines and 2048 bytes (kubernetes/api v0.32.2 core/v1/types.go:2903-2905)."""
    lines = log.read_bytes().splitlines()[-80:] if log.exists() else []
    return b"\n".join(lines)[-2048:].decode("utf-8", "replace")


def _expand(arg: str, env: Mapping[str, str]) -> str:
    """The kubelet's `$(VAR)` expansion of command arguments from the container's environment."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), arg)


def describe(argv: list[str]) -> str:
    return shlex.join(argv)
