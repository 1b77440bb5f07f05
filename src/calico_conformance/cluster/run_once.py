"""Do an expensive thing once per run, whichever pytest-xdist worker asks first.

`pytest -n auto` starts several worker processes that each build the session's `target` fixture. A
kind cluster must still be created (and Calico installed) only once per run: the first worker to take
the cluster's file lock does it and records the outcome in a state file next to the lock; every other
worker blocks on the lock, then reads the state and reuses it. A failure is recorded too, so the other
workers fail at once with the first worker's error instead of each retrying a ten-minute create.
Different clusters have different locks, so they are created in parallel.

State lives in `run_state_dir(run_id)`: the xdist controller and its workers share the run id
(`RunConfig.run_id` = xdist's `testrunuid`), so they agree on the directory without talking.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock

STATE_ROOT_ENV = "CALICO_CONFORMANCE_STATE_DIR"


def run_state_dir(run_id: str) -> Path:
    """`$CALICO_CONFORMANCE_STATE_DIR/<run id>` (default: the system temp directory); created if absent."""
    root = Path(os.environ.get(STATE_ROOT_ENV) or Path(tempfile.gettempdir()) / "calico-conformance")
    directory = root / run_id
    directory.mkdir(parents=True, exist_ok=True)
    return directory


class FailedElsewhere(RuntimeError):
    """Another worker of this run already tried and failed; its error is the message."""


@dataclass(frozen=True)
class Outcome:
    state: Mapping[str, Any]
    done_here: bool  # True in the process that did the work; False where the recorded state was reused


def once_per_run(
    directory: Path, key: str, produce: Callable[[], Mapping[str, Any]], *, lock_timeout_s: float
) -> Outcome:
    """`produce()` once per `key` across every process using `directory`; its JSON state for all.

    Raises `filelock.Timeout` if the lock is not obtained in `lock_timeout_s`, `FailedElsewhere` when
    the recorded attempt failed, and whatever `produce` raises in the process that ran it.
    """
    state_path = directory / f"{key}.json"
    with filelock.FileLock(str(directory / f"{key}.lock"), timeout=lock_timeout_s):
        recorded = read_state(state_path)
        if recorded is not None:
            if "failed" in recorded:
                raise FailedElsewhere(f"{key}: failed in another worker of this run: {recorded['failed']}")
            return Outcome(recorded, done_here=False)
        try:
            state = dict(produce())
        except BaseException as error:
            write_state(state_path, {"failed": f"{type(error).__name__}: {error}"})
            raise
        write_state(state_path, state)
        return Outcome(state, done_here=True)


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: run state is not a JSON object")
    return loaded


def write_state(path: Path, state: Mapping[str, Any]) -> None:
    """Atomic: readers see the old state or the new one, never half a file."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(state, indent=1, sort_keys=True))
    os.replace(temporary, path)


def recorded_states(directory: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """`(key, state)` of every completed `once_per_run` in `directory` (for the end-of-run teardown)."""
    for path in sorted(directory.glob("*.json")):
        state = read_state(path)
        if state is not None:
            yield path.stem, state
