"""An executor for runner tests: each job is answered as a test's `decide(source, job)` says, and an
`allowed` answer carries the identity of the endpoint at the job's IP, as the agent's server does."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from calico_conformance.probe.runner import ProbeEndpoint

Decide = Callable[[str, dict[str, Any]], str]  # (source handle, job) -> verdict


class Scripted:
    """Answers each job as `decide` says; an `allowed` answer carries the identity of the pod at that IP."""

    def __init__(self, endpoints: Mapping[str, ProbeEndpoint], decide: Decide) -> None:
        self.by_ip = {endpoint.ip: key for key, endpoint in endpoints.items()}
        self.decide = decide

    def run_batch(
        self, source: str, jobs: Sequence[dict[str, Any]], *, deadline_s: float
    ) -> list[dict[str, Any]]:
        results = []
        for job in jobs:
            verdict = self.decide(source, job)
            namespace, _, pod = self.by_ip[job["ip"]].partition("/")
            identity = {"namespace": namespace, "pod": pod} if verdict == "allowed" else None
            results.append({"id": job["id"], "verdict": verdict, "identity": identity})
        return results
