"""Every wait of a live run: one `Timeouts` dataclass and one `wait_for` built on tenacity.

No live code sleeps in a loop. It states a condition as a function that returns `Progress` (done, plus
what it saw), and `wait_for` polls it until it is done or the deadline passes. On timeout the error
says what was awaited, for how long, how many times it looked and what it saw last: a TigeraStatus
message, the calico-node pods not yet Ready, the probe pods Calico's CNI has not set up. The clock and the
sleep are parameters, so the timeout and error paths are tested with a fake clock in milliseconds.

Progress: every wait, and every long step (`timed`: cluster creation, the Calico install, each scratch
scenario), logs one line when it starts and one when it ends with its duration, on the
`calico_conformance.progress` logger, so a 20-minute run is never silent (`-o log_cli=true
--log-cli-level=INFO` shows them live; the e2e workflow passes that).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import tenacity

if TYPE_CHECKING:
    from calico_conformance.config import RunConfig

Clock = Callable[[], float]
Sleep = Callable[[float], None]
Log = Callable[[str], None]
PROGRESS = logging.getLogger("calico_conformance.progress")


def progress(text: str) -> None:
    """One progress line of a live run (see the module docstring)."""
    PROGRESS.info(text)


@contextmanager
def timed(what: str, *, log: Log = progress, clock: Clock = time.monotonic) -> Iterator[None]:
    """Log `what` when it starts and, when it ends, that it is done (or failed) and how long it took."""
    log(f"start: {what}")
    started = clock()
    try:
        yield
    except BaseException as failure:
        log(f"failed: {what} after {clock() - started:.1f}s ({type(failure).__name__})")
        raise
    log(f"done: {what} in {clock() - started:.1f}s")


@dataclass(frozen=True)
class Timeouts:
    """Every time bound of a live run, in seconds. Change them here, nowhere else."""

    kind_create_s: float = 600.0  # `kind create cluster`: the node image pull on a cold machine dominates
    cluster_lock_s: float = (
        1800.0  # an xdist worker waiting for another worker to create and install a cluster
    )
    kubectl_s: float = 300.0  # any one kubectl command; the 2.6 MB CRD bundle apply is the slowest
    crds_established_s: float = 120.0  # operator CRDs Established before the Installation is applied
    operator_ready_s: float = 300.0  # Deployment tigera-operator available
    tigera_status_s: float = 900.0  # TigeraStatus calico and apiserver Available: eight image pulls per node
    calico_node_ready_s: float = 600.0  # a Ready calico-node pod on every node
    calico_api_s: float = 300.0  # projectcalico.org/v3 served by the Calico API server
    probe_pods_ready_s: float = 300.0  # probe pods Running with their agent listening
    workload_endpoints_s: float = 120.0  # Calico's CNI annotations on every probe pod, before the first probe
    object_deleted_s: float = 300.0  # a namespace (and what is in it) gone during cleanup
    poll_interval_s: float = 2.0  # between two looks at the API
    probe_timeout_s: float = 3.0  # one probe attempt (from --probe-timeout)
    converge_timeout_s: float = 90.0  # a matrix settling after a policy change (from --converge-timeout)
    exec_overhead_s: float = 30.0  # what one exec round may add to the probe timeouts (API server, pod start)

    @classmethod
    def from_run(cls, run: RunConfig) -> Timeouts:
        return cls(probe_timeout_s=run.probe_timeout_s, converge_timeout_s=run.converge_timeout_s)

    def scaled(self, factor: float) -> Timeouts:
        """Every bound multiplied by `factor` (a slow CI runner); the poll interval is kept."""
        changes = {
            f.name: getattr(self, f.name) * factor for f in fields(self) if f.name != "poll_interval_s"
        }
        return replace(self, **changes)


@dataclass(frozen=True)
class Progress:
    """One look at a condition: whether it holds, and what was seen (used in the timeout message)."""

    done: bool
    detail: str = ""
    hopeless: bool = False  # it can no longer come true by waiting (a crashed container): stop now


def hopeless(detail: str) -> Progress:
    """A condition that waiting cannot bring about; `wait_for` raises `WaitHopeless` at once."""
    return Progress(False, detail, hopeless=True)


class WaitTimeout(TimeoutError):
    """A condition did not hold before its deadline. `str()` says what, how long and what was seen last."""

    def __init__(self, what: str, timeout_s: float, attempts: int, last_seen: str) -> None:
        self.what = what
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.last_seen = last_seen
        super().__init__(self._message())

    def _message(self) -> str:
        return (
            f"timed out after {self.timeout_s:g}s waiting for {self.what} ({self.attempts} checks); "
            f"last seen: {self.last_seen or 'nothing'}"
        )


class WaitHopeless(WaitTimeout):
    """A condition was seen to be unreachable before its deadline (a WaitTimeout, so every caller's
    diagnostics path handles it); `timeout_s` is how long it waited."""

    def _message(self) -> str:
        return (
            f"gave up waiting for {self.what} after {self.timeout_s:.1f}s ({self.attempts} checks): "
            f"{self.last_seen}"
        )


def wait_for(
    what: str,
    check: Callable[[], Progress],
    *,
    timeout_s: float,
    interval_s: float = 2.0,
    retry_on: tuple[type[BaseException], ...] = (),
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    log: Log = progress,
) -> Progress:
    """Poll `check` until it reports done; return that `Progress` or raise `WaitTimeout`.

    A `hopeless` Progress ends the wait at once with `WaitHopeless` (a WaitTimeout) instead of
    polling until the deadline for what cannot come.
    Exceptions of the `retry_on` types (a flaky API server, a resource not served yet) count as "not
    yet" and their text becomes the last thing seen; any other exception propagates at once.
    """
    started = clock()
    deadline = started + timeout_s

    def past_deadline(state: tenacity.RetryCallState) -> bool:
        outcome = state.outcome
        if outcome is not None and not outcome.failed and outcome.result().hopeless:
            return True
        return clock() >= deadline

    def until_next_look(state: tenacity.RetryCallState) -> float:
        return max(0.0, min(interval_s, deadline - clock()))

    retrying = tenacity.Retrying(
        stop=past_deadline,
        wait=until_next_look,
        retry=tenacity.retry_if_result(lambda progress: not progress.done)
        | tenacity.retry_if_exception_type(retry_on),
        sleep=sleep,
    )
    try:
        with timed(f"waiting for {what}", log=log, clock=clock):
            result: Progress = retrying(check)
    except tenacity.RetryError as gave_up:
        attempt = gave_up.last_attempt
        error = attempt.exception()
        if error is None and attempt.result().hopeless:
            raise WaitHopeless(
                what, clock() - started, attempt.attempt_number, attempt.result().detail
            ) from None
        last_seen = f"{type(error).__name__}: {error}" if error is not None else attempt.result().detail
        raise WaitTimeout(what, timeout_s, attempt.attempt_number, last_seen) from None
    return result


class FakeClock:
    """A clock for tests of waiting logic: `sleep` advances `now` instead of passing real time."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
