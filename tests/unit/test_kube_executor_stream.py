"""`KubeExecutor` over the kubernetes client's REAL exec stream (`kubernetes.stream.stream`, `WSClient`).

What is real here: `stream_exec` calling `connect_get_namespaced_pod_exec` through `kubernetes.stream`,
the client's websocket, its channel demultiplexing, `returncode` read from the error channel, and the
exact command a pod runs (`sh -c 'head -c N | exec python3 ... probe'`), run on this
machine with the real agent and a stdin that is never closed (the v4 channel protocol cannot close it).

What stands in: `ExecEndpoint`, a local websocket server playing the API server's exec subresource the
way the v4 channel protocol frames it (one channel byte before each frame's data: 0 stdin, 1 stdout,
2 stderr, 3 the final `metav1.Status`). It proves our use of the client, not the API server's behaviour.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes.client import ApiClient, Configuration, CoreV1Api

from calico_conformance.probe.executor import ExecutorError, Job
from calico_conformance.probe.jobs import connect_job
from calico_conformance.probe.kube_executor import KubeExecutor, stream_exec

AGENT = Path(__file__).resolve().parents[2] / "src" / "calico_conformance" / "probe" / "agent.py"
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
STDIN, STDOUT, ERROR = 0, 1, 3
SUCCESS = {"metadata": {}, "status": "Success"}
FRAME_BYTES = 100  # stdout is sent in small frames, so result lines are split across frames


def exit_status(code: int) -> dict[str, object]:
    """The Status the API server sends on the error channel when the command exits non-zero."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked server-to-client frame (RFC 6455 section 5.2)."""
    if len(payload) < 126:
        return bytes([0x80 | opcode, len(payload)]) + payload
    return bytes([0x80 | opcode, 126]) + struct.pack("!H", len(payload)) + payload


def read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the client went away")
        data += chunk
    return data


def client_frames(conn: socket.socket) -> Iterator[bytes]:
    """The payloads of the masked frames a client sends, until it closes."""
    while True:
        first, second = read_exactly(conn, 2)
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", read_exactly(conn, 2))[0]
        elif size == 127:
            size = struct.unpack("!Q", read_exactly(conn, 8))[0]
        mask = read_exactly(conn, 4)
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(read_exactly(conn, size)))
        if first & 0x0F == 0x8:
            return
        yield payload


class ExecEndpoint:
    """One exec per connection: runs the argv it was given here, or misbehaves as told."""

    def __init__(self, behaviour: str) -> None:
        # "run"; "lose-connection": cut the stream mid-frame; "stall": stop sending mid-frame, stay open
        self.behaviour = behaviour
        self.argv: Sequence[str] = ()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.stalled = threading.Event()  # set to let a stalled connection go
        self.thread = threading.Thread(target=self._serve_one, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _serve_one(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            target = request.split(b" ", 2)[1].decode()
            self.argv = parse_qs(urlsplit(target).query)["command"]  # the exec subresource's argv
            key = next(
                line.split(b":", 1)[1].strip()
                for line in request.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + WEBSOCKET_GUID.encode()).digest())
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"
            )
            if self.behaviour == "lose-connection":
                conn.sendall(bytes([0x82, 100, STDOUT]) + b'{"id": "0", "verd')  # 100 bytes promised
                conn.shutdown(socket.SHUT_RDWR)
                return
            if self.behaviour == "stall":
                conn.sendall(bytes([0x82, 100, STDOUT]) + b'{"id": "0", "verd')
                self.stalled.wait()
                return
            self._run(conn)

    def _run(self, conn: socket.socket) -> None:
        process = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        stdin, stdout = process.stdin, process.stdout
        assert stdin is not None
        assert stdout is not None

        def feed_stdin() -> None:  # never closes the process's stdin: the v4 protocol cannot
            try:
                for payload in client_frames(conn):
                    if payload[:1] == bytes([STDIN]):
                        stdin.write(payload[1:])
                        stdin.flush()
            except (ConnectionError, OSError):
                pass

        threading.Thread(target=feed_stdin, daemon=True).start()
        while chunk := stdout.read1(FRAME_BYTES):  # type: ignore[attr-defined]  # a BufferedReader
            conn.sendall(frame(0x2, bytes([STDOUT]) + chunk))
        code = process.wait()
        stdin.close()
        status = SUCCESS if code == 0 else exit_status(code)
        conn.sendall(frame(0x2, bytes([ERROR]) + json.dumps(status).encode()))
        conn.sendall(frame(0x8, struct.pack("!H", 1000)))


def executor_for(endpoint: ExecEndpoint) -> KubeExecutor:
    core_api = CoreV1Api(ApiClient(Configuration(host=endpoint.host)))
    return KubeExecutor(stream_exec(core_api), agent_path=str(AGENT))


def closed_port_jobs(count: int) -> list[Job]:
    # Port 9 (discard) on the loopback: nothing listens here, so the kernel answers with a RST.
    return [connect_job(f"job-{index}", "127.0.0.1", 9, "tcp", timeout_s=1.0) for index in range(count)]


def test_results_of_a_real_exec_stream_come_back_whole() -> None:
    batch = closed_port_jobs(40)  # about 9 kB of result lines, in frames of 100 bytes

    results = executor_for(ExecEndpoint("run")).run_batch("x/a", batch, deadline_s=30)

    assert [result["id"] for result in results] == [job["id"] for job in batch]
    assert {result["verdict"] for result in results} == {"rejected"}


def test_the_exit_status_is_read_from_the_error_channel() -> None:
    bad_batch: list[Job] = [{"kind": "connect"}]  # no id: the agent refuses the array and exits 2

    with pytest.raises(ExecutorError, match=r"x/a: the agent could not run \(exit 2\)"):
        executor_for(ExecEndpoint("run")).run_batch("x/a", bad_batch, deadline_s=30)


def test_a_stream_lost_mid_frame_is_an_executor_error() -> None:
    with pytest.raises(ExecutorError, match="x/a: the exec stream failed"):
        executor_for(ExecEndpoint("lose-connection")).run_batch("x/a", closed_port_jobs(1), deadline_s=30)


def test_a_stream_stalled_mid_frame_is_an_executor_error_not_a_hang() -> None:
    endpoint = ExecEndpoint("stall")
    try:
        with pytest.raises(ExecutorError, match="x/a: the exec stream failed: WebSocketTimeoutException"):
            executor_for(endpoint).run_batch("x/a", closed_port_jobs(1), deadline_s=1)
    finally:
        endpoint.stalled.set()


class HeldExecEndpoint:
    """An exec whose websocket handshake is held open until `release` is set, and one plain REST request.

    While the handshake is held, the exec is inside `kubernetes.stream.stream`, which swaps the ApiClient's
    `call_api` for its websocket one until the exec has opened. Whatever else uses that ApiClient in the
    meantime (another probe source's exec, a wait's list, a log read) runs through the swapped function.
    """

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.exec_arrived = threading.Event()
        self.release = threading.Event()
        self.rest_request = b""
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _serve(self) -> None:
        held, _ = self.listener.accept()
        threading.Thread(target=self._hold_exec, args=(held,), daemon=True).start()
        conn, _ = self.listener.accept()
        with conn:
            while b"\r\n\r\n" not in self.rest_request:
                self.rest_request += conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nlog")

    def _hold_exec(self, conn: socket.socket) -> None:
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            self.exec_arrived.set()
            self.release.wait(timeout=30)
            key = next(
                line.split(b":", 1)[1].strip()
                for line in request.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + WEBSOCKET_GUID.encode()).digest())
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"
            )
            conn.sendall(frame(0x2, bytes([ERROR]) + json.dumps(SUCCESS).encode()))
            conn.sendall(frame(0x8, struct.pack("!H", 1000)))


def test_an_exec_being_opened_leaves_the_shared_api_client_to_plain_requests() -> None:
    # The live target opens every source's exec (up to 16 at once) on the one CoreV1Api the waits and
    # log reads use too; an exec must not route their requests through its websocket, nor leave the
    # client routed so after two execs open at once.
    endpoint = HeldExecEndpoint()
    core_api = CoreV1Api(ApiClient(Configuration(host=endpoint.host)))
    open_exec = stream_exec(core_api)
    opened: list[object] = []
    opener = threading.Thread(target=lambda: opened.append(open_exec("x", "a", "agent", ["true"])))
    opener.start()
    try:
        assert endpoint.exec_arrived.wait(timeout=10)
        log = core_api.read_namespaced_pod_log("a", "x", _request_timeout=10)
    finally:
        endpoint.release.set()
        opener.join(timeout=30)

    assert log == "log"
    assert b"upgrade: websocket" not in endpoint.rest_request.lower()
    assert len(opened) == 1


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A TCP endpoint that accepts connections and never answers: an API server (or proxy) that hangs the
    exec upgrade. kubernetes/stream/ws_client.py create_websocket opens the websocket without a timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_a_hung_exec_upgrade_is_that_sources_executor_error_within_the_deadline(silent_endpoint: str) -> None:
    configuration = Configuration(host=silent_endpoint)
    executor = KubeExecutor(stream_exec(CoreV1Api(ApiClient(configuration))))
    outcome: list[BaseException | object] = []

    def run() -> None:
        try:
            outcome.append(executor.run_batch("x/pod", [connect_job("0", "10.0.0.1", 80, "tcp")], deadline_s=1.0))
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(60)  # a hang guard only: without the deadline the upgrade would block for ever
    assert not worker.is_alive(), "the exec upgrade hung past the batch deadline"
    (error,) = outcome
    assert isinstance(error, ExecutorError)
    assert str(error).startswith("x/pod: exec could not start: the upgrade did not complete within the batch deadline")


def test_the_installed_client_reads_frames_buffered_in_the_tls_socket() -> None:
    # kubernetes-client/python bc0b96f36 (in 37.0.3, pinned in pyproject.toml): WSClient.update checks
    # SSLSocket.pending() before polling, so a status frame decrypted along with earlier data is not lost.
    import inspect
    from importlib.metadata import version

    from kubernetes.stream.ws_client import WSClient

    major, minor, patch = (int(part) for part in version("kubernetes").split(".")[:3])
    assert (37, 0, 3) <= (major, minor, patch) < (38, 0, 0)
    assert "self.sock.sock.pending()" in inspect.getsource(WSClient.update)
