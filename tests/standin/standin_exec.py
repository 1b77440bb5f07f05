"""The cluster stand-in's exec subresource: the channel protocol over a websocket, as the API server
and kubelet speak it, with the command run inside the pod (its network and mount namespaces).

Protocol (k8s.io/apimachinery/pkg/util/httpstream/wsstream, and kubernetes/stream/ws_client.py of the
installed client): the client offers `v5.channel.k8s.io` and `v4.channel.k8s.io` in
Sec-WebSocket-Protocol; the server picks one (v5 when offered, as API servers since 1.30 do). Every
binary frame's first byte is the channel: 0 stdin, 1 stdout, 2 stderr, 3 error (one final
`metav1.Status`: Success, or Failure/NonZeroExitCode with the exit code as the ExitCode cause), 4
resize; v5 adds 255 close, whose payload byte names the channel the client closes (stdin).

The fault switch `hang_exec` accepts the connection and never answers the upgrade, as an API server
or kubelet that stopped responding does; the connection is released when the stand-in stops.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import struct
import subprocess
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
V4, V5 = "v4.channel.k8s.io", "v5.channel.k8s.io"
STDIN, STDOUT, STDERR, ERROR, CLOSE = 0, 1, 2, 3, 255
EXEC_RUN_LIMIT_S = 300.0  # an exec's command is killed after this long: nothing here may hang a test run

Resolve = Callable[[str, str], int | None]  # (namespace, pod) -> pid of the container's process


def frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked server-to-client frame (RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        header = bytes([0x80 | opcode, size])
    elif size < 1 << 16:
        header = bytes([0x80 | opcode, 126]) + struct.pack("!H", size)
    else:
        header = bytes([0x80 | opcode, 127]) + struct.pack("!Q", size)
    return header + payload


def read_frame(stream: Any) -> tuple[int, bytes] | None:
    """(opcode, payload) of the next client frame, None when the connection ended."""
    head = stream.read(2)
    if len(head) < 2:
        return None
    size = head[1] & 0x7F
    if size == 126:
        size = struct.unpack("!H", stream.read(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", stream.read(8))[0]
    mask = stream.read(4) if head[1] & 0x80 else b"\0\0\0\0"
    data = stream.read(size)
    return head[0] & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def exit_status(code: int) -> dict[str, Any]:
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {}, "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }  # fmt: skip


class ExecEndpoint:
    """Serves `pods/exec` for the API server (`StandinApi.exec_handler`)."""

    def __init__(
        self, resolve: Resolve, stopping: threading.Event, *, hang: Callable[[], bool] = lambda: False
    ) -> None:
        self.resolve = resolve
        self.stopping = stopping
        self.hang = hang
        self.upgrades = 0

    def __call__(
        self, handler: BaseHTTPRequestHandler, namespace: str, pod: str, query: dict[str, list[str]]
    ) -> None:
        self.upgrades += 1
        if self.hang():
            self.stopping.wait()  # never answers; the client's own deadline must end the wait
            return
        pid = self.resolve(namespace, pod)
        if pid is None or handler.headers.get("Upgrade", "").lower() != "websocket":
            body = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": f'pods "{pod}" not running or not found', "reason": "BadRequest",
                               "code": 400}).encode()  # fmt: skip
            handler.send_response(400)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        offered = [p.strip() for p in handler.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        protocol = V5 if V5 in offered else V4
        accept = base64.b64encode(
            hashlib.sha1((handler.headers["Sec-WebSocket-Key"] + WEBSOCKET_GUID).encode()).digest()
        ).decode()
        handler.send_response(101)
        handler.send_header("Upgrade", "websocket")
        handler.send_header("Connection", "Upgrade")
        handler.send_header("Sec-WebSocket-Accept", accept)
        handler.send_header("Sec-WebSocket-Protocol", protocol)
        handler.end_headers()
        handler.wfile.flush()
        self._run(
            handler,
            pid,
            query.get("command", []),
            protocol,
            want_stdin=query.get("stdin", ["false"])[0] == "true",
        )

    def _run(
        self, handler: BaseHTTPRequestHandler, pid: int, argv: list[str], protocol: str, *, want_stdin: bool
    ) -> None:
        lock = threading.Lock()
        connection: socket.socket = handler.connection

        def send(channel: int, data: bytes) -> None:
            with lock:
                connection.sendall(frame(0x2, bytes([channel]) + data))

        command = ["nsenter", "-t", str(pid), "-m", "-n", "--", *argv]
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert process.stdin
        assert process.stdout
        assert process.stderr
        if not want_stdin:
            process.stdin.close()

        def pump(stream: Any, channel: int) -> None:
            for chunk in iter(lambda: stream.read1(65536), b""):
                try:
                    send(channel, chunk)
                except OSError:
                    return

        pumps = [
            threading.Thread(target=pump, args=(s, c), daemon=True)
            for s, c in ((process.stdout, STDOUT), (process.stderr, STDERR))
        ]
        for thread in pumps:
            thread.start()
        reader = threading.Thread(target=self._stdin, args=(handler, process, protocol), daemon=True)
        reader.start()
        try:
            code = process.wait(timeout=EXEC_RUN_LIMIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        for thread in pumps:
            thread.join(timeout=10)
        try:
            send(ERROR, json.dumps(exit_status(code)).encode())
            with lock:
                connection.sendall(frame(0x8, struct.pack("!H", 1000)))
        except OSError:
            pass

    def _stdin(
        self, handler: BaseHTTPRequestHandler, process: subprocess.Popen[bytes], protocol: str
    ) -> None:
        assert process.stdin is not None
        try:
            while True:
                got = read_frame(handler.rfile)
                if got is None or got[0] == 0x8:
                    break
                opcode, payload = got
                if opcode not in (0x1, 0x2) or not payload:
                    continue
                channel, data = payload[0], payload[1:]
                if channel == STDIN and not process.stdin.closed:
                    process.stdin.write(data)
                    process.stdin.flush()
                elif channel == CLOSE and protocol == V5 and data[:1] == bytes([STDIN]):
                    process.stdin.close()
        except (OSError, ValueError):
            pass
        finally:
            if not process.stdin.closed:
                with contextlib.suppress(OSError):
                    process.stdin.close()
