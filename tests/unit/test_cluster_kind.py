"""The kind lifecycle's own decisions: refuse a cluster of the same name unless reusing, mark what the
run created before creating it, create once per run, delete exactly what the run created at the end.

`RecordingKind` is a fake `kind` command runner: it exists ONLY to test these decisions and records
the command lines it is given; whether kind and Docker really create clusters is only proven live. The
constructors of the live targets are exercised for real on this machine (no kind binary, no engine).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from calico_conformance.cluster.commands import CommandFailed, CommandResult
from calico_conformance.cluster.kind import ClusterExists, created_clusters, ensure_cluster, teardown
from calico_conformance.cluster.waits import Timeouts

CONFIG = Path("kind-configs/finland.yaml")


class RecordingKind:
    """A fake kind runner for testing the lifecycle logic only (see module docstring)."""

    def __init__(self, existing: Sequence[str] = (), fail_delete: bool = False) -> None:
        self.existing = list(existing)
        self.fail_delete = fail_delete
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], *, timeout_s: float, stdin: bytes | None = None) -> CommandResult:
        self.calls.append(list(argv))
        if argv[:3] == ["kind", "get", "clusters"]:
            return CommandResult(tuple(argv), "".join(f"{name}\n" for name in self.existing), "")
        if argv[:3] == ["kind", "create", "cluster"]:
            self.existing.append(argv[3].removeprefix("--name="))
        if argv[:3] == ["kind", "delete", "cluster"] and self.fail_delete:
            raise CommandFailed(argv, 1, "permission denied")
        return CommandResult(tuple(argv), "", "")


def test_a_new_cluster_is_marked_created_then_made_and_prepared(tmp_path: Path) -> None:
    kind = RecordingKind()
    prepared = []

    cluster, state = ensure_cluster(
        "finland",
        CONFIG,
        tmp_path,
        reuse=False,
        timeouts=Timeouts(),
        prepare=lambda c: prepared.append(c) or {"deployment": "d"},
        run=kind,
    )

    assert cluster.created
    assert cluster.kubeconfig == tmp_path / "finland.kubeconfig"
    assert cluster.context == "kind-finland"
    assert state == {"deployment": "d"}
    assert prepared == [cluster]
    assert kind.calls[1][:4] == ["kind", "create", "cluster", "--name=finland"]
    assert created_clusters(tmp_path) == {"finland": tmp_path / "finland.kubeconfig"}


def test_a_second_call_in_the_run_reuses_the_recorded_cluster(tmp_path: Path) -> None:
    kind = RecordingKind()
    ensure_cluster(
        "finland", CONFIG, tmp_path, reuse=False, timeouts=Timeouts(), prepare=lambda c: {}, run=kind
    )
    calls = len(kind.calls)

    cluster, _ = ensure_cluster(
        "finland",
        CONFIG,
        tmp_path,
        reuse=False,
        timeouts=Timeouts(),
        prepare=lambda c: pytest.fail("prepared twice"),
        run=kind,
    )

    assert cluster.created
    assert len(kind.calls) == calls


def test_an_existing_cluster_is_refused_without_reuse(tmp_path: Path) -> None:
    kind = RecordingKind(existing=["finland"])

    with pytest.raises(
        ClusterExists, match=r"pass --reuse-clusters .* or delete it: kind delete cluster --name finland"
    ):
        ensure_cluster(
            "finland", CONFIG, tmp_path, reuse=False, timeouts=Timeouts(), prepare=lambda c: {}, run=kind
        )
    assert created_clusters(tmp_path) == {}
    assert not any(call[:2] == ["kind", "create"] for call in kind.calls)


def test_an_existing_cluster_is_reused_with_its_own_kubeconfig_and_never_deleted(tmp_path: Path) -> None:
    kind = RecordingKind(existing=["finland"])

    cluster, _ = ensure_cluster(
        "finland", CONFIG, tmp_path, reuse=True, timeouts=Timeouts(), prepare=lambda c: {}, run=kind
    )

    assert not cluster.created
    assert kind.calls[1] == [
        "kind",
        "export",
        "kubeconfig",
        "--name=finland",
        f"--kubeconfig={tmp_path / 'finland.kubeconfig'}",
    ]
    assert teardown(tmp_path, keep=False, timeouts=Timeouts(), run=kind) == []
    assert not any(call[:2] == ["kind", "delete"] for call in kind.calls)


def test_teardown_deletes_what_the_run_created_even_if_preparing_failed(tmp_path: Path) -> None:
    kind = RecordingKind()

    def broken(cluster: object) -> dict[str, str]:
        raise TimeoutError("TigeraStatus calico never Available")

    with pytest.raises(TimeoutError):
        ensure_cluster(
            "germany", CONFIG, tmp_path, reuse=False, timeouts=Timeouts(), prepare=broken, run=kind
        )
    lines = teardown(tmp_path, keep=False, timeouts=Timeouts(), run=kind)

    assert lines == ["deleted kind cluster germany"]
    assert kind.calls[-1] == [
        "kind",
        "delete",
        "cluster",
        "--name=germany",
        f"--kubeconfig={tmp_path / 'germany.kubeconfig'}",
    ]
    assert created_clusters(tmp_path) == {}


def test_keep_clusters_and_failed_deletes_are_reported(tmp_path: Path) -> None:
    kind = RecordingKind()
    ensure_cluster(
        "helsinki", CONFIG, tmp_path, reuse=False, timeouts=Timeouts(), prepare=lambda c: {}, run=kind
    )

    kept = teardown(tmp_path, keep=True, timeouts=Timeouts(), run=kind)
    assert kept == [
        f"kept kind cluster helsinki (--keep-clusters); kubeconfig {tmp_path / 'helsinki.kubeconfig'}"
    ]

    failing = RecordingKind(fail_delete=True)
    (line,) = teardown(tmp_path, keep=False, timeouts=Timeouts(), run=failing)
    assert line.startswith("could not delete kind cluster helsinki:")
    assert created_clusters(tmp_path) == {"helsinki": tmp_path / "helsinki.kubeconfig"}  # still owed a delete
