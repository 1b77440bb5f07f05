"""Create-once under pytest-xdist: the real `filelock` protocol with real processes and threads.

Several worker processes ask for the same cluster at once; exactly one creates it and the others reuse
its recorded state; a failure is recorded so the others fail fast; different clusters do not wait for
each other. What "create" does on a live cluster (kind, the Calico install) is not exercised here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import filelock
import pytest

from calico_conformance.cluster.run_once import (
    STATE_ROOT_ENV,
    FailedElsewhere,
    Outcome,
    once_per_run,
    recorded_states,
    run_state_dir,
)
from calico_conformance.cluster.waits import Progress, wait_for

WORKER = """
import json, sys
from pathlib import Path
from calico_conformance.cluster.run_once import once_per_run

directory, index = Path(sys.argv[1]), sys.argv[2]
(directory / f"started-{index}").touch()

def create():
    with (directory / "creations.log").open("a") as log:
        log.write(f"{index}\\n")
    return {"kubeconfig": f"/tmp/{index}.kubeconfig", "created_by": index}

outcome = once_per_run(directory, "finland", create, lock_timeout_s=60)
print(json.dumps({"index": index, "done_here": outcome.done_here, "state": outcome.state}))
"""


def _wait_for_files(paths: list[Path]) -> None:
    wait_for(
        "worker processes to start",
        lambda: Progress(
            all(path.exists() for path in paths), ", ".join(p.name for p in paths if not p.exists())
        ),
        timeout_s=60,
        interval_s=0.05,
    )


def test_concurrent_worker_processes_create_exactly_once_and_all_get_the_same_state(tmp_path: Path) -> None:
    workers = 4
    lock = filelock.FileLock(str(tmp_path / "finland.lock"))
    lock.acquire()  # hold the door until every worker is queued on it: guaranteed contention
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path), str(index)], stdout=subprocess.PIPE, text=True
        )
        for index in range(workers)
    ]
    try:
        _wait_for_files([tmp_path / f"started-{index}" for index in range(workers)])
    finally:
        lock.release()
    outputs = [json.loads(process.communicate(timeout=60)[0]) for process in processes]

    creations = (tmp_path / "creations.log").read_text().split()
    assert len(creations) == 1
    creator = creations[0]
    assert [o["index"] for o in outputs if o["done_here"]] == [creator]
    assert {json.dumps(o["state"], sort_keys=True) for o in outputs} == {
        json.dumps({"kubeconfig": f"/tmp/{creator}.kubeconfig", "created_by": creator}, sort_keys=True)
    }
    assert all(process.returncode == 0 for process in processes)


def test_threads_of_one_process_also_create_once(tmp_path: Path) -> None:
    created: list[int] = []
    outcomes: list[Outcome] = []
    start = threading.Barrier(8)

    def worker(index: int) -> None:
        start.wait()
        outcomes.append(
            once_per_run(
                tmp_path, "germany", lambda: created.append(index) or {"n": index}, lock_timeout_s=30
            )
        )

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(created) == 1
    assert sum(outcome.done_here for outcome in outcomes) == 1
    assert {outcome.state["n"] for outcome in outcomes} == {created[0]}


def test_a_failure_is_recorded_and_later_callers_fail_fast_with_it(tmp_path: Path) -> None:
    def broken() -> dict[str, str]:
        raise RuntimeError("kind create cluster exited 1: node(s) already exist")

    with pytest.raises(RuntimeError, match="already exist"):
        once_per_run(tmp_path, "helsinki", broken, lock_timeout_s=5)

    attempts = []
    with pytest.raises(
        FailedElsewhere, match="helsinki: failed in another worker of this run: RuntimeError: kind create"
    ):
        once_per_run(tmp_path, "helsinki", lambda: attempts.append(1) or {}, lock_timeout_s=5)
    assert attempts == []


def test_different_keys_do_not_wait_for_each_other(tmp_path: Path) -> None:
    with filelock.FileLock(str(tmp_path / "finland.lock")):
        # finland is locked by "another worker"; germany proceeds at once.
        outcome = once_per_run(tmp_path, "germany", lambda: {"ok": True}, lock_timeout_s=1)
        assert outcome.done_here
        with pytest.raises(filelock.Timeout):
            once_per_run(tmp_path, "finland", lambda: {}, lock_timeout_s=0.2)


def test_recorded_states_lists_completed_work_for_the_teardown(tmp_path: Path) -> None:
    once_per_run(tmp_path, "finland", lambda: {"created": True}, lock_timeout_s=5)
    once_per_run(tmp_path, "germany", lambda: {"created": False}, lock_timeout_s=5)

    assert list(recorded_states(tmp_path)) == [
        ("finland", {"created": True}),
        ("germany", {"created": False}),
    ]


def test_run_state_dir_is_per_run_under_the_configured_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STATE_ROOT_ENV, str(tmp_path))

    directory = run_state_dir("a1b2c3")

    assert directory == tmp_path / "a1b2c3"
    assert directory.is_dir()
