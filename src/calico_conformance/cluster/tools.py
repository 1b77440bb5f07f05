"""The programs a live target runs, and a clear refusal when one is missing — before anything is created.

`targets.TARGETS` already refuses `--target=kind` when a binary is not on PATH; this module says in
addition *how to get it*, and also checks that the Docker engine answers (the `docker` client alone,
as on this project's own machines, cannot run kind). The check runs in the target's constructor, so a
run with something missing stops before the first cluster, namespace or file is made.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Which = Callable[[str], str | None]

# `docker info` answers in well under a second from a running engine; the bound only stops a hung socket
# from holding the run before it starts.
DOCKER_INFO_TIMEOUT_S = 10.0
# kind's own install instructions at the release this project uses (kubernetes-sigs/kind, tag v0.27.0,
# site/content/docs/user/quick-start.md lines 39-45 "Installing From Release Binaries" and line 89
# "To install use: `go install sigs.k8s.io/kind@{{< stableVersion >}}`").
KIND_INSTALL_HINT = (
    "go install sigs.k8s.io/kind@v0.27.0, or the release binary: curl -Lo ./kind"
    " https://kind.sigs.k8s.io/dl/v0.27.0/kind-linux-amd64 && chmod +x ./kind && sudo mv ./kind /usr/local/bin/kind"
    " (arm64: kind-linux-arm64); see https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
)


@dataclass(frozen=True)
class Tool:
    name: str
    purpose: str
    how_to_get: str


TOOLS = {
    tool.name: tool
    for tool in (
        Tool(
            "docker",
            "runs the kind node containers",
            "install Docker Engine: https://docs.docker.com/engine/install/",
        ),
        Tool(
            "kind",
            "creates the clusters from kind-configs/",
            KIND_INSTALL_HINT,
        ),
        Tool(
            "kubectl",
            "applies the Calico manifests server-side",
            "https://kubernetes.io/docs/tasks/tools/#kubectl (any release within one minor of the cluster)",
        ),
    )
}

KIND_TOOLS = ("docker", "kind", "kubectl")
KUBECONFIG_TOOLS = ("kubectl",)


class MissingTools(RuntimeError):
    """Programs a target needs are missing; the message names each, why it is needed, how to get it."""


def missing_tools(names: Sequence[str], which: Which = shutil.which) -> list[Tool]:
    return [TOOLS[name] for name in names if which(name) is None]


def describe_missing(missing: Sequence[Tool], target: str) -> str:
    lines = [f"--target={target} cannot run on this machine; missing:"]
    lines += [f"  {tool.name}: {tool.purpose}; {tool.how_to_get}" for tool in missing]
    lines.append("to check a policy set without a cluster use --target=static")
    return "\n".join(lines)


def require_tools(names: Sequence[str], target: str, which: Which = shutil.which) -> None:
    missing = missing_tools(names, which)
    if missing:
        raise MissingTools(describe_missing(missing, target))


def docker_engine_problem(
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
) -> str | None:
    """None when `docker info` answers; otherwise why not (the client exists but no engine runs)."""
    try:
        result = run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=DOCKER_INFO_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return f"Docker engine is not answering (docker info gave no answer in {DOCKER_INFO_TIMEOUT_S:g} s)"
    except OSError as error:
        return f"Docker engine is not reachable (docker info failed: {error})"
    if result.returncode != 0:
        said = " ".join(result.stderr.split()) or f"exit {result.returncode}"
        return f"Docker engine is not running (docker info failed: {said})"
    return None


def require_docker_engine(run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run) -> None:
    problem = docker_engine_problem(run)
    if problem is not None:
        raise MissingTools(
            f"--target=kind needs a running Docker engine: {problem}; "
            "start Docker, or use --target=static to check a policy set without a cluster"
        )
