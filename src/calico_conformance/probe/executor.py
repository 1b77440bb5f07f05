"""The executor protocol: how a batch of probe jobs reaches the agent inside one source.

Two implementations share it: `NetnsExecutor` (`ip netns exec`, for the tests and benchmarks on this
machine) and `KubeExecutor` (the kubernetes client's exec stream, for live clusters). The same agent
file and the same job JSON go through both, so what is proven on the netns dataplane is what runs in pods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

Job = Mapping[str, Any]
JobResult = dict[str, Any]


class Executor(Protocol):
    """Runs the agent's `probe` mode inside `source` with `jobs` as JSON on stdin.

    Returns one parsed result per job, in job order. Raises `ExecutorError` when the agent could not be
    run at all (the runner turns that into `error` verdicts for every job of the batch, never a deny).
    """

    def run_batch(self, source: str, jobs: Sequence[Job], *, deadline_s: float) -> list[JobResult]: ...


class ExecutorError(RuntimeError):
    """The agent could not be run in the source, or its output could not be read."""
