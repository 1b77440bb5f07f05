"""Every `kind` and `kubectl` command line of a live run, built in one place, and the one way to run them.

Each builder returns an argv list; nothing here uses a shell, so names and paths never need quoting.
Every kubectl command names its kubeconfig and context explicitly: the run never reads or writes
`~/.kube/config` (the kind target keeps a temporary kubeconfig per cluster). A failed command raises
`CommandFailed` carrying the command line, exit status and stderr, so the error says how to reproduce it.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KubeAccess:
    """How to reach one cluster: a kubeconfig file and, optionally, a context in it."""

    kubeconfig: Path | None
    context: str | None = None

    def flags(self) -> list[str]:
        flags = []
        if self.kubeconfig is not None:
            flags.append(f"--kubeconfig={self.kubeconfig}")
        if self.context is not None:
            flags.append(f"--context={self.context}")
        return flags


# --- kind ---------------------------------------------------------------------------------------------


def kind_create(
    name: str, config: Path, kubeconfig: Path, *, wait_s: float = 0, image: str | None = None
) -> list[str]:
    """`kind create cluster` from a register file, writing its credentials to `kubeconfig` only.

    `--wait 0s`: the control plane cannot become Ready before a CNI exists (the register disables
    kindnet), so the install's own waits decide when the cluster is usable. `image` (`--image`) overrides
    every node's image (kubernetes-sigs/kind v0.27.0 pkg/cluster/internal/create/create.go:226-233):
    the node image pinned for the Calico release under test (`images.KIND_NODE_IMAGES`).
    """
    return [
        "kind",
        "create",
        "cluster",
        f"--name={name}",
        f"--config={config}",
        f"--kubeconfig={kubeconfig}",
        f"--wait={int(wait_s)}s",
        *([f"--image={image}"] if image else []),
    ]


def kind_delete(name: str, kubeconfig: Path) -> list[str]:
    return ["kind", "delete", "cluster", f"--name={name}", f"--kubeconfig={kubeconfig}"]


def kind_get_clusters() -> list[str]:
    return ["kind", "get", "clusters"]


def kind_get_nodes(name: str) -> list[str]:
    return ["kind", "get", "nodes", f"--name={name}"]


def kind_export_kubeconfig(name: str, kubeconfig: Path) -> list[str]:
    """Credentials of an existing cluster (--reuse-clusters) into the run's own kubeconfig file."""
    return ["kind", "export", "kubeconfig", f"--name={name}", f"--kubeconfig={kubeconfig}"]


def kind_export_logs(name: str, directory: Path) -> list[str]:
    return ["kind", "export", "logs", str(directory), f"--name={name}"]


def docker_node_resolv_conf(node: str) -> list[str]:
    """A kind node's /etc/resolv.conf: the upstream resolver CoreDNS forwards to (`forward . /etc/resolv.conf`)."""
    return ["docker", "exec", node, "cat", "/etc/resolv.conf"]


def docker_node_mtu(node: str, interface: str = "eth0") -> list[str]:
    """The MTU of a kind node's interface: the node network MTU the pod MTU is derived from."""
    return ["docker", "exec", node, "cat", f"/sys/class/net/{interface}/mtu"]


# --- kubectl ------------------------------------------------------------------------------------------


def kubectl(access: KubeAccess, *args: str) -> list[str]:
    return ["kubectl", *access.flags(), *args]


def kubectl_get_yaml(
    access: KubeAccess, resource: str, *, namespace: str | None = None, selector: str | None = None
) -> list[str]:
    """`kubectl get RESOURCE -o yaml`, all namespaces unless one is given; for diagnostics."""
    scope = [f"--namespace={namespace}"] if namespace else ["--all-namespaces"]
    labels = [f"--selector={selector}"] if selector else []
    return kubectl(access, "get", resource, *scope, *labels, "-o", "yaml")


def kubectl_logs(access: KubeAccess, namespace: str, pod: str, *, container: str | None = None) -> list[str]:
    args = ["logs", f"--namespace={namespace}", pod, "--timestamps"]
    if container:
        args.append(f"--container={container}")
    return kubectl(access, *args)


def kubectl_exec_probe(access: KubeAccess, namespace: str, pod: str, command: Sequence[str]) -> list[str]:
    """The `kubectl exec` a user runs to reproduce one probe by hand (printed with failures)."""
    return kubectl(access, "exec", "-i", f"--namespace={namespace}", pod, "--", *command)


def shell_line(argv: Sequence[str]) -> str:
    return shlex.join(argv)


# --- running ------------------------------------------------------------------------------------------


class CommandFailed(RuntimeError):
    """A command exited non-zero or timed out. `str()` has the command line and its stderr."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        status = "timed out" if returncode is None else f"exited {returncode}"
        super().__init__(f"`{shell_line(argv)}` {status}: {stderr.strip()[-2000:] or '(no stderr)'}")


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    stdout: str
    stderr: str


def run_command(argv: Sequence[str], *, timeout_s: float, stdin: bytes | None = None) -> CommandResult:
    """Run `argv` (no shell), return its output, or raise `CommandFailed`."""
    try:
        completed = subprocess.run(
            list(argv), input=stdin, capture_output=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as expired:
        stderr = expired.stderr.decode(errors="replace") if isinstance(expired.stderr, bytes) else ""
        raise CommandFailed(argv, None, stderr) from None
    except OSError as error:
        raise CommandFailed(argv, 127, str(error)) from None
    stdout = completed.stdout.decode(errors="replace")
    stderr = completed.stderr.decode(errors="replace")
    if completed.returncode != 0:
        raise CommandFailed(argv, completed.returncode, stderr)
    return CommandResult(tuple(argv), stdout, stderr)
