"""`KubeExecutor`: a probe batch into a pod through the Kubernetes exec stream, one exec per source a round.

The same agent and job JSON as `NetnsExecutor`: `agent.py probe` reads ONE JSON array on stdin until
end of file. The exec websocket of the v4 channel protocol cannot close stdin (only v5 can, and the
API server picks the protocol), so the command is

    sh -c 'head -c <N> | exec python3 -I -S <agent> probe'

where N is the byte length of the batch: `head` ends the agent's stdin after exactly the batch,
whichever protocol was negotiated. The batch is ASCII JSON, so characters and bytes agree.

Bounded: at most `max_concurrent_execs` execs run at once on the API server, and a batch has a hard
deadline, which also bounds opening the exec: the client's websocket handshake has no timeout of its own
(kubernetes/stream/ws_client.py `create_websocket` calls `WebSocket.connect` without one, and
websocket-client then leaves the socket blocking), so an API server or proxy that accepts the connection
and never answers the upgrade would hang the batch for ever. The exec is opened on a helper thread; when
the deadline passes first, the source's batch is an `ExecutorError` and the abandoned thread (a daemon)
keeps its socket until the peer closes it or the run ends. When the deadline passes, jobs the agent already reported keep their result and every other
job becomes `error` (never a deny); an exec that cannot start, breaks mid-stream or exits non-zero is an
`ExecutorError`, which the runner turns into `error` for the whole batch.

The exec path into a real API server runs only against a live cluster; the tests drive the collection
and deadline logic through `ExecSession`, run the exact command line locally, and read a batch through
the client's own `WSClient` from a local websocket endpoint that frames the v4 channel protocol.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from calico_conformance.probe.executor import ExecutorError, Job, JobResult
from calico_conformance.probe.jobs import complete_lines, results_in_job_order

DEFAULT_AGENT_PATH = "/opt/calico-conformance/agent.py"  # where cluster/probe_pods.py mounts the ConfigMap
DEFAULT_CONTAINER = "agent"
DEFAULT_MAX_CONCURRENT_EXECS = 16  # enough to probe a layout's sources at once, gentle on an API server
POLL_S = 0.5  # the longest one socket wait blocks, so the deadline is checked at least this often
# The client's websocket blocks without limit by default: a frame that stops arriving halfway, or a stdin
# write the API server stops reading, would hang the batch past every deadline. One socket operation may
# take this long before the stream counts as failed (an ExecutorError).
STREAM_IO_TIMEOUT_S = 5.0


class ExecSession(Protocol):
    """What `KubeExecutor` uses of an open exec stream (`kubernetes.stream.ws_client.WSClient`)."""

    def is_open(self) -> bool: ...

    def update(self, timeout: float = 0) -> None: ...

    def read_stdout(self, timeout: float | None = None) -> str: ...

    def read_stderr(self, timeout: float | None = None) -> str: ...

    def write_stdin(self, data: str) -> None: ...

    def close(self) -> None: ...

    @property
    def returncode(self) -> int | None: ...


OpenExec = Callable[[str, str, str, Sequence[str]], ExecSession]  # (namespace, pod, container, argv)
Clock = Callable[[], float]


def probe_command(payload_bytes: int, agent_path: str = DEFAULT_AGENT_PATH) -> list[str]:
    """The command one batch runs in the source pod (see the module docstring for `head -c`)."""
    return ["sh", "-c", f"head -c {payload_bytes} | exec python3 -I -S {agent_path} probe"]


def encode_batch(jobs: Sequence[Job]) -> str:
    return json.dumps(list(jobs), ensure_ascii=True, separators=(",", ":"))


def stream_exec(core_api: Any) -> OpenExec:
    """An `OpenExec` over the kubernetes client's exec stream (`connect_get_namespaced_pod_exec`).

    Each exec opens on its own `ApiClient` built from `core_api`'s configuration (same server and
    credentials). `kubernetes.stream.stream` swaps the ApiClient's `call_api` for a websocket one while
    the exec opens and puts back what it found afterwards: on a shared client, concurrent sources' execs
    would restore each other's websocket function, and the waits' lists and log reads running meanwhile
    would go out as websocket upgrades.
    """
    from kubernetes.client import ApiClient, CoreV1Api
    from kubernetes.stream import stream

    configuration = core_api.api_client.configuration

    def open_exec(namespace: str, pod: str, container: str, argv: Sequence[str]) -> ExecSession:
        exec_api = CoreV1Api(ApiClient(configuration))
        session: ExecSession = stream(
            exec_api.connect_get_namespaced_pod_exec,
            pod,
            namespace,
            container=container,
            command=list(argv),
            stdin=True,
            stdout=True,
            stderr=True,
            tty=False,
            _preload_content=False,
        )
        session.sock.settimeout(STREAM_IO_TIMEOUT_S)  # type: ignore[attr-defined]  # WSClient's websocket
        return session

    return open_exec


class KubeExecutor:
    """Runs `agent.py probe` in source pods (`namespace/pod` handles) through the exec stream."""

    def __init__(
        self,
        open_exec: OpenExec,
        *,
        container: str = DEFAULT_CONTAINER,
        agent_path: str = DEFAULT_AGENT_PATH,
        max_concurrent_execs: int = DEFAULT_MAX_CONCURRENT_EXECS,
        clock: Clock = time.monotonic,
    ) -> None:
        self._open_exec = open_exec
        self.container = container
        self.agent_path = agent_path
        self._slots = threading.BoundedSemaphore(max_concurrent_execs)
        self._clock = clock

    def command(self, source: str, jobs: Sequence[Job]) -> list[str]:
        """The exact command of a batch: what a failure report prints for reproduction."""
        return probe_command(len(encode_batch(jobs)), self.agent_path)

    def run_batch(self, source: str, jobs: Sequence[Job], *, deadline_s: float) -> list[JobResult]:
        namespace, _, pod = source.partition("/")
        if not namespace or not pod:
            raise ExecutorError(f"{source!r} is not a namespace/pod source handle")
        payload = encode_batch(jobs)
        deadline = self._clock() + deadline_s
        if not self._slots.acquire(timeout=deadline_s):
            raise ExecutorError(f"{source}: no exec slot free within the batch deadline of {deadline_s:g}s")
        try:
            return self._run(source, namespace, pod, jobs, payload, deadline, deadline_s)
        finally:
            self._slots.release()

    def _run(
        self,
        source: str,
        namespace: str,
        pod: str,
        jobs: Sequence[Job],
        payload: str,
        deadline: float,
        deadline_s: float,
    ) -> list[JobResult]:
        argv = probe_command(len(payload), self.agent_path)
        session = open_within(
            lambda: self._open_exec(namespace, pod, self.container, argv),
            max(0.0, deadline - self._clock()),
            source,
        )
        try:
            session.write_stdin(payload)
            stdout, stderr, finished = collect_output(session, deadline, self._clock)
            if not finished:
                detail = f"the agent did not finish within the batch deadline of {deadline_s:g}s"
                return results_in_job_order(
                    jobs, complete_lines(stdout), source=source, missing_detail=detail
                )
            returncode = _returncode(session, source)
        except ExecutorError:
            raise
        except Exception as error:  # the websocket broke mid-batch (connection lost, TLS, timeout)
            raise ExecutorError(
                f"{source}: the exec stream failed: {type(error).__name__}: {error}"
            ) from None
        finally:
            session.close()
        if returncode != 0:
            raise ExecutorError(
                f"{source}: the agent could not run (exit {returncode}): {stderr.strip()[:500]}"
            )
        return results_in_job_order(jobs, stdout.splitlines(), source=source)


def open_within(open_session: Callable[[], ExecSession], timeout_s: float, source: str) -> ExecSession:
    """`open_session()` on a daemon thread, waited for at most `timeout_s`: the session, or ExecutorError
    when it failed (ApiException, websocket and TLS errors: the agent never ran) or did not finish. A
    session that opens after the caller gave up is closed at once."""
    outcome: list[ExecSession | BaseException] = []
    lock = threading.Lock()
    done = threading.Event()
    abandoned = False

    def attempt() -> None:
        try:
            result: ExecSession | BaseException = open_session()
        except BaseException as error:  # handed to the caller below
            result = error
        with lock:
            if abandoned and not isinstance(result, BaseException):
                result.close()
            outcome.append(result)
            done.set()

    threading.Thread(target=attempt, name=f"exec-open {source}", daemon=True).start()
    done.wait(timeout_s)
    with lock:
        if not outcome:
            abandoned = True
            raise ExecutorError(
                f"{source}: exec could not start: the upgrade did not complete within the batch deadline "
                f"({timeout_s:.3g}s left)"
            )
    (result,) = outcome
    if isinstance(result, BaseException):
        raise ExecutorError(f"{source}: exec could not start: {type(result).__name__}: {result}") from None
    return result


def collect_output(session: ExecSession, deadline: float, clock: Clock) -> tuple[str, str, bool]:
    """Read stdout and stderr until the exec ends or `deadline` passes: (stdout, stderr, finished)."""
    stdout: list[str] = []
    stderr: list[str] = []
    while session.is_open():
        remaining = deadline - clock()
        if remaining <= 0:
            break
        session.update(timeout=min(POLL_S, remaining))  # waits on the socket, not a sleep
        stdout.append(session.read_stdout(timeout=0))
        stderr.append(session.read_stderr(timeout=0))
    finished = not session.is_open()
    stdout.append(session.read_stdout(timeout=0))  # frames that arrived with the close
    stderr.append(session.read_stderr(timeout=0))
    return "".join(stdout), "".join(stderr), finished


def _returncode(session: ExecSession, source: str) -> int:
    try:
        code = session.returncode
    except Exception as error:  # a Failure status without an exit code: the command never started
        raise ExecutorError(f"{source}: exec ended without an exit status: {error}") from None
    if code is None:
        raise ExecutorError(f"{source}: exec ended without an exit status")
    return code
