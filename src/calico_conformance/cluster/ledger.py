"""What a live run has already proven about the layout's flows on one cluster, so no flow is probed twice.

The suites ask overlapping questions of the same state: `test_default_deny[royal-bank]` probes every flow
into and out of royal-bank, and each `test_royal_bank_isolation[...]` then asks about a slice of them on
one port. The layout's state is the cluster's own (the kubeconfig target never changes it; the kind
target applies it once, before any probe), and the synthetic scenarios run in scratch spaces that do
not go through this ledger. So an observation the probe runner concluded in one matrix of this run is
still what the cluster does for the next test: probing it again costs three more converged rounds and
proves nothing new.

Only conclusive observations are kept: allowed, dropped and rejected, each already judged by its own
matrix (positive and source controls, identity of the answering server, steadiness over consecutive
rounds). An `error` (unproven, flapping, not supported) is never kept, so the next matrix that wants
the flow probes it again. A recalled observation says so in its detail, which names the label of the
matrix that probed it. The ledger is per process: under pytest-xdist each worker keeps its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import replace

from calico_conformance.reachability import Flow, Observation, ProbeVerdict

CONCLUSIVE = frozenset({ProbeVerdict.ALLOWED, ProbeVerdict.DROPPED, ProbeVerdict.REJECTED})
RECALLED = "probed earlier in this run"


class FlowLedger:
    """Conclusive observations of one cluster's layout flows, by flow."""

    def __init__(self) -> None:
        self._seen: dict[Flow, tuple[Observation, str]] = {}
        self._lock = threading.Lock()

    def recall(self, flows: Iterable[Flow]) -> dict[Flow, Observation]:
        """The known flows of `flows`, each marked as recalled (with the matrix that probed it)."""
        with self._lock:
            known = {flow: self._seen[flow] for flow in flows if flow in self._seen}
        return {
            flow: replace(
                observation, detail="; ".join(filter(None, [f"{RECALLED} ({label})", observation.detail]))
            )
            for flow, (observation, label) in known.items()
        }

    def remember(self, observations: Mapping[Flow, Observation], *, label: str) -> None:
        """Keep the conclusive ones of `observations`, probed by the matrix called `label`."""
        with self._lock:
            for flow, observation in observations.items():
                if observation.verdict in CONCLUSIVE:
                    self._seen[flow] = (observation, label)

    def __len__(self) -> int:
        return len(self._seen)
