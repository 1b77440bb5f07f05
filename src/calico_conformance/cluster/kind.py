"""kind clusters for a run: created once (even under `pytest -n auto`), reused on request, deleted at the end.

A cluster is named after its register file (`kind-configs/finland.yaml` -> kind cluster `finland`,
kubectl context `kind-finland`) and gets its own kubeconfig in the run's state directory, so the
user's `~/.kube/config` is never read or written. The first xdist worker to take the cluster's lock
creates it and runs `prepare` (install Calico, deploy the layout) while the others wait, then all
share the recorded state (`cluster/run_once.py`); different clusters proceed in parallel.

An existing cluster of the same name is refused unless `--reuse-clusters` (it might be someone's).
Every cluster this run created leaves a marker; the end-of-run teardown (the xdist controller's
session finish) deletes exactly those, unless `--keep-clusters`. Exercised by live runs only, apart
from the command lines and the locking protocol, which the unit tests cover.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calico_conformance.cluster.commands import (
    CommandFailed,
    CommandResult,
    docker_node_mtu,
    docker_node_resolv_conf,
    kind_create,
    kind_delete,
    kind_export_kubeconfig,
    kind_get_clusters,
    run_command,
)
from calico_conformance.cluster.run_once import once_per_run
from calico_conformance.cluster.waits import Timeouts, timed

CREATED_MARKERS = "kind-created"
Run = Callable[..., CommandResult]


class ClusterExists(RuntimeError):
    """A kind cluster of that name exists and --reuse-clusters was not given."""


@dataclass(frozen=True)
class KindCluster:
    name: str
    kubeconfig: Path
    created: bool  # False when an existing cluster was reused

    @property
    def context(self) -> str:
        return f"kind-{self.name}"

    @property
    def control_plane_node(self) -> str:
        return f"{self.name}-control-plane"


def existing_clusters(run: Run = run_command) -> list[str]:
    return run(kind_get_clusters(), timeout_s=60).stdout.split()


def create_or_reuse(
    name: str,
    config: Path,
    state_dir: Path,
    *,
    reuse: bool,
    timeouts: Timeouts,
    run: Run = run_command,
    image: str | None = None,
) -> KindCluster:
    """Create cluster `name` from `config`, or export an existing one's credentials when reusing."""
    kubeconfig = state_dir / f"{name}.kubeconfig"
    if name in existing_clusters(run):
        if not reuse:
            raise ClusterExists(
                f"a kind cluster named {name!r} already exists (left by an earlier run?); pass --reuse-clusters "
                f"to test it as it is, or delete it: kind delete cluster --name {name}"
            )
        run(kind_export_kubeconfig(name, kubeconfig), timeout_s=timeouts.kubectl_s)
        return KindCluster(name, kubeconfig, created=False)
    marker = state_dir / CREATED_MARKERS / name
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(kubeconfig))  # before creating: a half-created cluster is still ours to delete
    with timed(f"{name}: creating the kind cluster" + (f" ({image})" if image else "")):
        run(kind_create(name, config, kubeconfig, image=image), timeout_s=timeouts.kind_create_s)
    return KindCluster(name, kubeconfig, created=True)


def ensure_cluster(
    name: str,
    config: Path,
    state_dir: Path,
    *,
    reuse: bool,
    timeouts: Timeouts,
    prepare: Callable[[KindCluster], Mapping[str, Any]],
    run: Run = run_command,
    image: str | None = None,
) -> tuple[KindCluster, Mapping[str, Any]]:
    """The cluster and what `prepare` recorded for it, done once per run whichever worker asks first."""

    def produce() -> Mapping[str, Any]:
        cluster = create_or_reuse(
            name, config, state_dir, reuse=reuse, timeouts=timeouts, run=run, image=image
        )
        prepared = dict(prepare(cluster))
        return {
            "name": name,
            "kubeconfig": str(cluster.kubeconfig),
            "created": cluster.created,
            "prepared": prepared,
        }

    outcome = once_per_run(state_dir, f"kind-{name}", produce, lock_timeout_s=timeouts.cluster_lock_s)
    state = outcome.state
    return KindCluster(state["name"], Path(state["kubeconfig"]), bool(state["created"])), state["prepared"]


def node_network_mtu(cluster: KindCluster, run: Run = run_command) -> int:
    """The MTU of the node network (the control-plane node's eth0), from which Calico derives pod MTU."""
    return int(run(docker_node_mtu(cluster.control_plane_node), timeout_s=60).stdout.strip())


def node_upstream_resolver(cluster: KindCluster, run: Run = run_command) -> str | None:
    """The first nameserver of the control-plane node's /etc/resolv.conf, or None when it has none.

    On kind that is not Docker's embedded DNS (127.0.0.11) but the address kind's entrypoint puts in its
    place, the Docker host or the kind network's gateway, whose port 53 the node DNATs back to the
    embedded DNS server's own port (kubernetes-sigs/kind v0.27.0 images/base/files/usr/local/bin/
    entrypoint:446-476, also for pod traffic: the PREROUTING jump of line 464).
    """
    return first_nameserver(run(docker_node_resolv_conf(cluster.control_plane_node), timeout_s=60).stdout)


def first_nameserver(resolv_conf: str) -> str | None:
    for line in resolv_conf.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            return parts[1]
    return None


def created_clusters(state_dir: Path) -> dict[str, Path]:
    """Clusters this run created (name -> kubeconfig), from the markers `create_or_reuse` leaves."""
    directory = state_dir / CREATED_MARKERS
    if not directory.is_dir():
        return {}
    return {marker.name: Path(marker.read_text()) for marker in sorted(directory.iterdir())}


def teardown(state_dir: Path, *, keep: bool, timeouts: Timeouts, run: Run = run_command) -> list[str]:
    """Delete every cluster this run created (unless `keep`); returns one line per cluster, errors included."""
    lines = []
    for name, kubeconfig in created_clusters(state_dir).items():
        if keep:
            lines.append(f"kept kind cluster {name} (--keep-clusters); kubeconfig {kubeconfig}")
            continue
        try:
            run(kind_delete(name, kubeconfig), timeout_s=timeouts.kind_create_s)
        except CommandFailed as failure:
            lines.append(f"could not delete kind cluster {name}: {failure}")
            continue
        (state_dir / CREATED_MARKERS / name).unlink(missing_ok=True)
        lines.append(f"deleted kind cluster {name}")
    return lines
