"""Running the agent inside a network namespace: `probe` batches (the `NetnsExecutor`) and `serve`.

Why: on this machine the lab's pods are network namespaces, and `ip netns exec` is to them what the exec
stream is to a pod. `NetnsExecutor` keeps to the lead's `Executor` protocol exactly as `KubeExecutor`
does, with the same agent file and the same job JSON, so the netns tests prove the path pods will take.
The source handle is the namespace's name.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from calico_conformance.probe.executor import ExecutorError, Job, JobResult
from calico_conformance.probe.jobs import complete_lines, results_in_job_order

AGENT_PATH = Path(__file__).with_name("agent.py")
# -I: ignore PYTHON* variables and the user's site; -S: no site import. The agent is stdlib only, and a
# probe batch pays interpreter start-up once per source per round.
PYTHON_FLAGS = ("-I", "-S")
# The agent is imported rather than run as a script: an imported module's bytecode is cached in
# __pycache__, a script is compiled at every start, about a third of the agent's start-up CPU, paid once
# per source per round (pods get the same file run as a script: their ConfigMap mount is read-only).
AGENT_LOADER = (
    "import sys; sys.path.insert(0, sys.argv[1]); sys.exit(__import__(sys.argv[2]).main(sys.argv[3:]))"
)
SERVER_READY_TIMEOUT_S = 10.0  # interpreter start-up plus binding a few ports, on a loaded 2-core box
LISTEN_POLL_S = 0.05
SERVER_STOP_TIMEOUT_S = 5.0


class NetnsExecutor:
    """`ip netns exec <source> python agent.py probe`, jobs on stdin, one result line per job back."""

    def __init__(self, python: str = sys.executable, agent: Path = AGENT_PATH) -> None:
        self.python = python
        self.agent = agent

    def command(self, source: str) -> list[str]:
        """The exact command a batch runs: what a failure report prints for reproduction."""
        loader = [self.python, *PYTHON_FLAGS, "-c", AGENT_LOADER, str(self.agent.parent), self.agent.stem]
        return ["ip", "netns", "exec", source, *loader, "probe"]

    def run_batch(self, source: str, jobs: Sequence[Job], *, deadline_s: float) -> list[JobResult]:
        argv = self.command(source)
        try:
            completed = subprocess.run(
                argv,
                input=json.dumps(list(jobs)),
                capture_output=True,
                text=True,
                timeout=deadline_s,
                check=False,
            )
        except OSError as exc:  # no `ip`, no fork under load, ...: this source cannot be probed now
            raise ExecutorError(f"{source}: cannot run {argv[0]}: {exc}") from None
        except subprocess.TimeoutExpired as exc:
            partial = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
            detail = f"the agent did not finish within the batch deadline of {deadline_s:g}s"
            return results_in_job_order(jobs, complete_lines(partial), source=source, missing_detail=detail)
        if completed.returncode != 0:
            raise ExecutorError(
                f"{source}: the agent could not run (exit {completed.returncode}): {completed.stderr.strip()[:500]}"
            )
        return results_in_job_order(jobs, completed.stdout.splitlines(), source=source)


class StartError(RuntimeError):
    """A server process did not come up; the message holds its command and stderr."""


def start_process(argv: Sequence[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _failure(process: subprocess.Popen[str], argv: Sequence[str], why: str) -> StartError:
    if process.poll() is None:
        process.kill()
    _, stderr = process.communicate()
    return StartError(f"{' '.join(argv)}: {why}: {stderr.strip()[:500]}")


@dataclass
class AgentServer:
    """`agent.py serve` running in a namespace; `ready` is the line it printed once every port was bound."""

    netns: str
    process: subprocess.Popen[str]
    ready: Mapping[str, Any]

    @classmethod
    def start(
        cls,
        netns: str,
        identity: Mapping[str, str],
        *,
        tcp: Sequence[int] = (),
        udp: Sequence[int] = (),
        sctp: Sequence[int] = (),
        dns_udp: Sequence[int] = (),
        dns_tcp: Sequence[int] = (),
        dns_answer: str | None = None,
        python: str = sys.executable,
    ) -> AgentServer:
        """Start the agent; `dns_*` make it a rogue resolver answering every A query with `dns_answer`."""
        argv = ["ip", "netns", "exec", netns, python, *PYTHON_FLAGS, str(AGENT_PATH), "serve"]
        argv += ["--identity", json.dumps(dict(identity))]
        flags = (
            ("--tcp", tcp),
            ("--udp", udp),
            ("--sctp", sctp),
            ("--dns-udp", dns_udp),
            ("--dns-tcp", dns_tcp),
        )
        for flag, ports in flags:
            if ports:
                argv += [flag, ",".join(str(port) for port in ports)]
        if dns_answer is not None:
            argv += ["--dns-answer", dns_answer]
        process = start_process(argv)
        assert process.stdout is not None
        # Waiting on the pipe, not on a clock: the agent prints its ready line after binding every port.
        readable, _, _ = select.select([process.stdout], [], [], SERVER_READY_TIMEOUT_S)
        line = process.stdout.readline() if readable else ""
        try:
            ready = json.loads(line)
        except ValueError:
            raise _failure(
                process, argv, f"no ready line within {SERVER_READY_TIMEOUT_S:g}s (got {line!r})"
            ) from None
        return cls(netns, process, ready)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def listening(netns: str, port: int, protocol: str) -> bool:
    flag = "-lun" if protocol == "udp" else "-ltn"
    output = subprocess.run(
        ["ip", "netns", "exec", netns, "ss", "-H", flag, f"sport = :{port}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return bool(output.strip())


def wait_for_listening(
    netns: str, port: int, protocols: Sequence[str], process: subprocess.Popen[str]
) -> None:
    """Return once `process` listens on `port` for every protocol; raise StartError if it exits or
    does not within SERVER_READY_TIMEOUT_S."""
    started = time.monotonic()

    def ready() -> bool:
        if process.poll() is not None:
            raise _failure(process, process.args, f"exited with status {process.returncode}")  # type: ignore[arg-type]
        return all(listening(netns, port, protocol) for protocol in protocols)

    retrying = Retrying(
        stop=stop_after_delay(SERVER_READY_TIMEOUT_S),
        wait=wait_fixed(LISTEN_POLL_S),
        retry=retry_if_result(lambda ok: not ok),
        retry_error_callback=lambda _state: False,
    )
    if not retrying(ready):
        waited = time.monotonic() - started
        raise _failure(process, process.args, f"not listening on {port} after {waited:.1f}s")  # type: ignore[arg-type]
