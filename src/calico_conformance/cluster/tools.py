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
            "go install sigs.k8s.io/kind@v0.27.0, or a release binary from "
            "https://github.com/kubernetes-sigs/kind/releases",
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
            ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"docker info failed: {error}"
    if result.returncode != 0:
        return (
            f"the Docker engine does not answer (docker info: {result.stderr.strip() or result.returncode})"
        )
    return None


def require_docker_engine(run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run) -> None:
    problem = docker_engine_problem(run)
    if problem is not None:
        raise MissingTools(
            f"--target=kind needs a running Docker engine: {problem}; "
            "start Docker, or use --target=static to check a policy set without a cluster"
        )
