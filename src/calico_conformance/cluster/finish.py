"""The end of a live run: delete what it made, prove nothing is left, also after Ctrl-C or SIGTERM.

Runs once, in the process that outlives every test: the pytest-xdist controller, or the only process
without xdist (`fixtures/clusters.py` calls `finish_run` from `pytest_sessionfinish`). Workers never
delete anything, because another worker may still be probing.

* kind: the clusters this run created are deleted (`kind delete cluster`), unless `--keep-clusters`.
* kubeconfig: every object any worker recorded (the `inventory-*.jsonl` journals in the run's state
  directory) is deleted in dependency order, only if it still is the object the run created; the run
  then waits for the deletions and lists everything still labelled with the run id. Any leftover is a
  problem that fails the run, with the command that removes it.

`pytest` turns SIGINT into KeyboardInterrupt and still runs `pytest_sessionfinish`; SIGTERM (CI
cancelling a job) is made to do the same by `raise_on_sigterm`.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from calico_conformance.cluster import kind
from calico_conformance.cluster.inventory import Inventory, ObjectRef, cleanup, leak_check
from calico_conformance.cluster.probe_pods import RUN_LABEL
from calico_conformance.cluster.readiness import namespaces_gone
from calico_conformance.cluster.run_once import run_state_dir
from calico_conformance.cluster.waits import Timeouts, WaitTimeout, wait_for
from calico_conformance.config import RunConfig


@dataclass
class FinishReport:
    lines: list[str] = field(default_factory=list)  # what was done, for the terminal summary
    problems: list[str] = field(default_factory=list)  # leaks and failed deletions: the run fails


def journal_inventories(state_dir: Path, run_id: str) -> dict[str, Inventory]:
    """Per cluster, every object any process of the run recorded, in recording order."""
    inventories: dict[str, Inventory] = {}
    for journal in sorted(state_dir.glob("inventory-*.jsonl")):
        for line in journal.read_text().splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            ref = ObjectRef(
                entry["apiVersion"], entry["kind"], entry["name"], entry.get("namespace"), entry.get("uid")
            )
            inventories.setdefault(entry["cluster"], Inventory(run_id)).created.append(ref)
    return inventories


def finish_run(run: RunConfig, timeouts: Timeouts | None = None) -> FinishReport:
    timeouts = timeouts or Timeouts.from_run(run)
    state_dir = run_state_dir(run.run_id)
    report = FinishReport()
    if run.target == "kind":
        lines = kind.teardown(state_dir, keep=run.keep_clusters, timeouts=timeouts)
        report.lines.extend(lines)
        report.problems.extend(line for line in lines if line.startswith("could not"))
    elif run.target == "kubeconfig":
        for cluster, inventory in journal_inventories(state_dir, run.run_id).items():
            _clean_shared_cluster(run, cluster, inventory, timeouts, state_dir, report)
    return report


def _clean_shared_cluster(
    run: RunConfig,
    cluster: str,
    inventory: Inventory,
    timeouts: Timeouts,
    state_dir: Path,
    report: FinishReport,
) -> None:
    from calico_conformance.cluster.kube import TRANSIENT_ERRORS, KubeClient
    from calico_conformance.cluster.releases import release_for

    context = run.contexts[cluster]
    kube = KubeClient(
        None,
        context,
        discovery_cache=state_dir / f"{cluster}-finish.discovery.json",
        release=release_for(run.calico_version).tag,
    )
    result = cleanup(inventory, kube)
    report.lines.append(f"{cluster} ({context}): {result}".replace("\n", f"\n{cluster}: "))
    report.problems.extend(f"{cluster}: could not delete {ref}: {why}" for ref, why in result.failed)
    namespaces = [ref.name for ref in result.deleted if ref.kind == "Namespace"]
    try:
        wait_for(
            f"{cluster}: the run's namespaces to be deleted",
            lambda: namespaces_gone(
                namespaces, [n["metadata"]["name"] for n in kube.list_objects("v1", "Namespace")]
            ),
            timeout_s=timeouts.object_deleted_s,
            interval_s=timeouts.poll_interval_s,
            retry_on=TRANSIENT_ERRORS,
        )
    except WaitTimeout as timeout:
        report.problems.append(str(timeout))
    extra = [("v1", "Namespace"), ("v1", "Pod"), ("v1", "ConfigMap"), ("v1", "ServiceAccount")]
    for leak in leak_check(inventory, kube, extra_kinds=extra):
        report.problems.append(f"{cluster}: leaked {leak}")
    if report.problems:
        report.lines.append(
            f"{cluster}: remove leftovers with: kubectl --context={context} delete "
            f"namespaces,pods,configmaps,serviceaccounts -A -l {RUN_LABEL}={run.run_id}"
        )


def raise_on_sigterm() -> None:
    """Make SIGTERM behave like Ctrl-C, so pytest unwinds fixtures and runs the end-of-run cleanup."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def run_state_files(run_id: str) -> Iterator[Path]:
    """The state of a run, for diagnostics (kubeconfigs, journals, create-once records)."""
    yield from sorted(run_state_dir(run_id).glob("*"))
