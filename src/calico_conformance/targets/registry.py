"""The registry of targets: which `--target` names exist, what each needs, and how to build one.

One table, `TARGETS`, names every target, builds the `--target` help and choices, and says what each
needs on the machine. Live targets are imported lazily so that choosing `static` never needs a Kubernetes
client or a Docker engine. A refusal says how to get what is missing (the programs' install hints live
with the programs, in `cluster/tools.py`), and for kind also whether the Docker engine answers: the
`docker` client alone cannot run kind. The engine is asked only when kind is the target chosen.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from calico_conformance.cluster.tools import KIND_TOOLS, Which, docker_engine_problem, missing_tools
from calico_conformance.oracle.model import ResourceSet
from calico_conformance.targets.base import Target

if TYPE_CHECKING:
    from calico_conformance.config import RunConfig
    from calico_conformance.tenancy.layout import TenancyLayout


TargetFactory = Callable[["RunConfig", "TenancyLayout", ResourceSet], Target]


@dataclass(frozen=True)
class TargetSpec:
    """A registered target: its name, `--target` help, how to build it and what it needs."""

    name: str
    help: str
    factory: TargetFactory
    needs: tuple[str, ...] = ()  # executables that must be on PATH (names of `cluster.tools.TOOLS`)
    module: str | None = None  # the module the factory imports, checked before any cluster is touched
    engine: Callable[[], str | None] | None = None  # a service the programs need: None when it answers

    def unavailable_because(self, which: Which = shutil.which) -> str | None:
        """Why this target cannot run on this machine and how to get what is missing, or None when it can."""
        if self.module is not None and importlib.util.find_spec(self.module) is None:
            return f"--target={self.name} is not built into this installation ({self.module} is missing)"
        missing = missing_tools(self.needs, which)
        if missing:
            lines = [f"--target={self.name} needs {', '.join(self.needs)} on PATH; missing:"]
            lines += [f"  {tool.name} ({tool.purpose}): {tool.how_to_get}" for tool in missing]
            return "\n".join(lines)
        problem = self.engine() if self.engine is not None else None
        if problem is not None:
            return f"--target={self.name} cannot start: {problem}"
        return None


def _kind_target(run: RunConfig, layout: TenancyLayout, resources: ResourceSet) -> Target:
    from calico_conformance.cluster.targets import KindTarget

    target: Target = KindTarget(run, layout, resources)
    return target


def _kubeconfig_target(run: RunConfig, layout: TenancyLayout, resources: ResourceSet) -> Target:
    from calico_conformance.cluster.targets import KubeconfigTarget

    target: Target = KubeconfigTarget(run, layout, resources)
    return target


def _static_target(run: RunConfig, layout: TenancyLayout, resources: ResourceSet) -> Target:
    from calico_conformance.targets.static import StaticTarget

    return StaticTarget(run, layout, resources)


TARGETS: Mapping[str, TargetSpec] = {
    spec.name: spec
    for spec in (
        TargetSpec(
            "kind",
            "create kind clusters from the register, install Calico, probe them",
            _kind_target,
            needs=KIND_TOOLS,
            module="calico_conformance.cluster.targets",
            engine=docker_engine_problem,
        ),
        TargetSpec(
            "kubeconfig",
            "probe existing clusters by kubeconfig context (--context CLUSTER=CONTEXT), non-disruptively",
            _kubeconfig_target,
            module="calico_conformance.cluster.targets",
        ),
        TargetSpec(
            "static",
            "no cluster: the policy oracle computes the matrix from --policies and the layout",
            _static_target,
            module="calico_conformance.targets.static",
        ),
    )
}

STATIC_HINT = "to check a policy set without a cluster use --target=static"


def target_help() -> str:
    return "; ".join(f"{spec.name}: {spec.help}" for spec in TARGETS.values())


def require_target(name: str) -> TargetSpec:
    """The spec of a usable target, or `pytest.UsageError` saying why not and what to use instead."""
    try:
        spec = TARGETS[name]
    except KeyError:
        raise pytest.UsageError(f"unknown --target {name!r}; choose one of: {', '.join(TARGETS)}") from None
    problem = spec.unavailable_because()
    if problem is not None:
        hint = "" if name == "static" else f"\n{STATIC_HINT}"
        raise pytest.UsageError(problem + hint)
    return spec


def build_target(run: RunConfig, layout: TenancyLayout, resources: ResourceSet) -> Target:
    return require_target(run.target).factory(run, layout, resources)
