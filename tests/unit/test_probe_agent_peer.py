"""The agent can send from a chosen address and reports the address the server saw (issue 9, item 5).

Run over loopback with two real agent processes: `serve` on 127.0.0.1 and `probe` binding its client
sockets to 127.0.0.2 (the whole 127.0.0.0/8 is local on Linux, so the kernel accepts either source). The
expected peer is the address bound here, never one the agent reported.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from calico_conformance.probe.jobs import JOB_SCHEMA, RESULT_SCHEMA, connect_job

AGENT = Path(__file__).resolve().parents[2] / "src" / "calico_conformance" / "probe" / "agent.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    """An agent serving TCP and UDP on one free port of 127.0.0.1."""
    port = _free_port()
    identity = json.dumps({"pod": "web", "namespace": "x", "node": "n1"})
    process = subprocess.Popen(
        [sys.executable, str(AGENT), "serve", "--identity", identity, "--tcp", str(port), "--udp", str(port),
         "--bind", "127.0.0.1"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline())
    assert ready["ready"] is True
    yield port
    process.terminate()
    process.wait(timeout=10)


def _probe(jobs: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    done = subprocess.run([sys.executable, str(AGENT), "probe"], input=json.dumps(jobs), capture_output=True,
                          text=True, timeout=30, check=True)  # fmt: skip
    return {line["id"]: line for line in map(json.loads, done.stdout.splitlines())}


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_a_bound_probe_is_seen_from_the_bound_address(server: int, protocol: str) -> None:
    results = _probe([connect_job("bound", "127.0.0.1", server, protocol, timeout_s=2.0, bind="127.0.0.2"),
                      connect_job("free", "127.0.0.1", server, protocol, timeout_s=2.0)])  # fmt: skip
    assert results["bound"]["verdict"] == "allowed"
    assert results["bound"]["peer"] == "127.0.0.2"
    assert results["free"]["peer"] == "127.0.0.1"  # unbound: the kernel's choice of source


def test_an_address_this_host_lacks_is_an_error_not_a_deny(server: int) -> None:
    (result,) = _probe(
        [connect_job("x", "127.0.0.1", server, "tcp", timeout_s=1.0, bind="192.0.2.77")]
    ).values()
    assert result["verdict"] == "error"
    assert str(result["detail"]).startswith("cannot send from 192.0.2.77")


def test_bind_and_peer_are_in_the_wire_schema() -> None:
    import jsonschema

    jsonschema.validate(connect_job("x", "10.0.0.1", 80, "tcp", bind="172.18.0.3"), JOB_SCHEMA)
    line = {"id": "x", "kind": "connect", "verdict": "allowed", "identity": None, "attempts": 1,
            "elapsed_ms": 1.0, "detail": "", "peer": "172.18.0.3"}  # fmt: skip
    jsonschema.validate(line, RESULT_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(connect_job("x", "10.0.0.1", 80, "tcp", bind="not-an-ip"), JOB_SCHEMA)
