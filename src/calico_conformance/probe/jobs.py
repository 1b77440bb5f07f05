"""The agent's job and result JSON: builders, the exact schema, and reading a batch's output back.

Why a module of its own: two executors (`NetnsExecutor` here, `KubeExecutor` for pods) and the runner
all speak this JSON to the same agent, so its shape is written down once, as data (`JOB_SCHEMA`,
`RESULT_SCHEMA`, JSON Schema 2020-12), and every job is built by a function here rather than by hand.

The wire format (the agent's docstring says the same in words):

- stdin of `python3 agent.py probe` is ONE JSON array of jobs; each job has a unique string `id`.
- stdout is one JSON object per line, one per job, in completion order (match by `id`); exit status 0.
  Exit status 2 (reason on stderr) means the array itself was unreadable: an `ExecutorError`.
- `results_in_job_order` turns those lines back into job order and gives every job without a line an
  `error` result, so a batch cut short by its deadline can never look like a deny.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from calico_conformance.probe.executor import ExecutorError, Job, JobResult
from calico_conformance.reachability import Flow

VERDICTS = ("allowed", "dropped", "rejected", "error")
CONNECT_PROTOCOLS = ("tcp", "udp", "sctp")
DNS_OUTCOMES_FIXED = ("answer", "nodata", "nxdomain", "servfail", *VERDICTS[1:])  # plus "rcode-<NAME>"
DEFAULT_TIMEOUT_S = 1.0

_IPV4 = {"type": "string", "pattern": r"^\d{1,3}(\.\d{1,3}){3}$"}
_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_SECONDS = {"type": "number", "exclusiveMinimum": 0}
_COMMON = {"id": {"type": "string"}, "timeout_s": _SECONDS}


def _job(kind: str, required: Sequence[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["id", "kind", *required],
        "properties": {**_COMMON, "kind": {"const": kind}, **properties},
        "additionalProperties": False,
    }


JOB_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "calico-conformance agent job",
    "oneOf": [
        _job(
            "connect",
            ["protocol", "ip", "port"],
            {"protocol": {"enum": list(CONNECT_PROTOCOLS)}, "ip": _IPV4, "port": _PORT, "bind": _IPV4},
        ),
        _job("icmp", ["ip"], {"ip": _IPV4}),
        _job(
            "dns",
            ["name"],
            {
                "name": {"type": "string", "minLength": 1},
                "transport": {"enum": ["udp", "tcp"]},
                "server": _IPV4,
                "port": _PORT,
            },
        ),
        _job(
            "mtu",
            ["check"],
            {"check": {"const": "interface"}, "interface": {"type": "string", "minLength": 1}},
        ),
        _job(
            "mtu",
            ["check", "ip", "port"],
            {
                "check": {"const": "sweep"},
                "ip": _IPV4,
                "port": _PORT,
                "min_packet": {"type": "integer", "minimum": 92},
                "max_packet": {"type": "integer", "minimum": 92},
                "tries": {"type": "integer", "minimum": 1},
            },
        ),
        _job(
            "mtu",
            ["check", "ip", "port", "bytes"],
            {
                "check": {"const": "bulk"},
                "ip": _IPV4,
                "port": _PORT,
                "bytes": {"type": "integer", "minimum": 1},
            },
        ),
    ],
}

_IDENTITY = {
    "type": ["object", "null"],
    "required": ["pod", "namespace", "node"],
    "properties": {"pod": {"type": "string"}, "namespace": {"type": "string"}, "node": {"type": "string"}},
}

# Every line has the common fields; the kind-specific ones (agent docstring) may be absent on `error`.
RESULT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "calico-conformance agent result line",
    "type": "object",
    "required": ["id", "kind", "verdict", "identity", "attempts", "elapsed_ms", "detail"],
    "properties": {
        "id": {"type": "string"},
        "kind": {"type": ["string", "null"]},
        "verdict": {"enum": list(VERDICTS)},
        "identity": _IDENTITY,
        "attempts": {"type": "integer", "minimum": 0},
        "elapsed_ms": {"type": "number", "minimum": 0},
        "detail": {"type": "string"},
        "outcome": {"type": "string"},
        "rcode": {"type": ["string", "null"]},
        "addresses": {"type": "array", "items": _IPV4},
        "server": {"type": ["string", "null"]},
        "interface": {"type": "string"},
        "mtu": {"type": ["integer", "null"]},
        "largest_packet": {"type": "integer"},
        "largest_payload": {"type": "integer"},
        "smallest_failed_packet": {"type": ["integer", "null"]},
        "failure": {"enum": ["emsgsize", "frag-needed", "timeout", "truncated", None]},
        "black_hole": {"type": "boolean"},
        "kernel_path_mtu": {"type": "integer"},
        "steps": {
            "type": "array",
            "items": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]},
        },
        "bytes": {"type": "integer"},
        "bytes_queued": {"type": "integer"},
        "bytes_received": {"type": ["integer", "null"]},
        "peer": {"type": ["string", "null"]},
    },
}


# --- builders: the only place jobs are spelled out -------------------------------------------------------


def connect_job(
    job_id: str,
    ip: str,
    port: int,
    protocol: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    bind: str | None = None,
) -> Job:
    """TCP/SCTP handshake + identity line, or UDP identity echo, to ip:port (sent from `bind` if given)."""
    protocol = protocol.lower()
    if protocol not in CONNECT_PROTOCOLS:
        raise ValueError(f"connect protocol must be one of {', '.join(CONNECT_PROTOCOLS)}, got {protocol!r}")
    return {
        "id": job_id,
        "kind": "connect",
        "protocol": protocol,
        "ip": ip,
        "port": port,
        "timeout_s": timeout_s,
        **({"bind": bind} if bind is not None else {}),
    }


def icmp_job(job_id: str, ip: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Job:
    return {"id": job_id, "kind": "icmp", "ip": ip, "timeout_s": timeout_s}


def flow_job(
    job_id: str,
    flow: Flow,
    ip: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    bind: str | None = None,
    dns_name: str | None = None,
) -> Job:
    """The probe that observes `flow`, sent to the destination's address `ip` (from `bind` if given).

    With `dns_name`, the destination is a DNS server that is none of ours (no identity echo): the probe
    is an A query for that name over the flow's protocol and port, and any DNS response is an answer.
    """
    if dns_name is not None:
        if bind is not None or flow.port is None or flow.protocol.upper() not in ("UDP", "TCP"):
            raise ValueError(f"{flow}: a DNS query goes over UDP or TCP to a port, from no chosen address")
        return dns_job(job_id, dns_name, transport=flow.protocol.lower(), server=ip, port=flow.port,
                       timeout_s=timeout_s)  # fmt: skip
    if flow.protocol.upper() == "ICMP":
        if bind is not None:
            raise ValueError(f"{flow}: an ICMP probe cannot be sent from a chosen address")
        return icmp_job(job_id, ip, timeout_s=timeout_s)
    if flow.port is None:
        raise ValueError(f"{flow}: a {flow.protocol} flow needs a port")
    return connect_job(job_id, ip, flow.port, flow.protocol, timeout_s=timeout_s, bind=bind)


def dns_job(
    job_id: str,
    name: str,
    *,
    transport: str = "udp",
    server: str | None = None,
    port: int = 53,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Job:
    """An A query; without `server` the agent asks the first nameserver of its /etc/resolv.conf."""
    job: Job = {
        "id": job_id,
        "kind": "dns",
        "name": name,
        "transport": transport,
        "port": port,
        "timeout_s": timeout_s,
    }
    return job if server is None else {**job, "server": server}


def interface_mtu_job(job_id: str, interface: str = "eth0") -> Job:
    return {"id": job_id, "kind": "mtu", "check": "interface", "interface": interface}


def mtu_sweep_job(
    job_id: str,
    ip: str,
    port: int,
    *,
    min_packet: int = 576,
    max_packet: int | None = None,
    tries: int = 2,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Job:
    """Largest DF-set UDP datagram to a serve port; `timeout_s` is per datagram, `tries` datagrams a size."""
    job: Job = {
        "id": job_id,
        "kind": "mtu",
        "check": "sweep",
        "ip": ip,
        "port": port,
        "min_packet": min_packet,
        "tries": tries,
        "timeout_s": timeout_s,
    }
    return job if max_packet is None else {**job, "max_packet": max_packet}


def bulk_transfer_job(job_id: str, ip: str, port: int, size_bytes: int, *, deadline_s: float) -> Job:
    """Send `size_bytes` over TCP to a serve port and have the server count them, all within `deadline_s`."""
    return {
        "id": job_id,
        "kind": "mtu",
        "check": "bulk",
        "ip": ip,
        "port": port,
        "bytes": size_bytes,
        "timeout_s": deadline_s,
    }


# --- reading a batch back ------------------------------------------------------------------------------


def error_result(job: Job, detail: str) -> JobResult:
    """The result a job gets when the agent never reported on it: `error`, never a deny."""
    return {
        "id": job["id"],
        "kind": job.get("kind"),
        "verdict": "error",
        "identity": None,
        "attempts": 0,
        "elapsed_ms": 0.0,
        "detail": detail,
    }


def complete_lines(output: str) -> list[str]:
    """The newline-terminated lines of output cut off at a deadline: a last line without its newline is
    the agent's write interrupted mid-line, so it is left out (its job becomes `error`), not misread."""
    return output.split("\n")[:-1]


def results_in_job_order(
    jobs: Sequence[Job], lines: Iterable[str], *, source: str, missing_detail: str = ""
) -> list[JobResult]:
    """Match the agent's result lines to `jobs` by id. A job with no line gets an `error` result
    (`missing_detail`); a line that is not a result of this batch means the output cannot be trusted."""
    by_id: dict[str, JobResult] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            result = json.loads(line)
        except ValueError:
            raise ExecutorError(f"{source}: agent output line {number} is not JSON: {line[:200]!r}") from None
        if not isinstance(result, dict) or not isinstance(result.get("id"), str):
            raise ExecutorError(f"{source}: agent output line {number} has no string id: {line[:200]!r}")
        if result["id"] in by_id:  # the agent writes exactly one line per job: which of two would be true?
            raise ExecutorError(
                f"{source}: agent output line {number} reports job {result['id']!r} a second time"
            )
        by_id[result["id"]] = result
    unknown = sorted(set(by_id) - {str(job["id"]) for job in jobs})
    if unknown:
        raise ExecutorError(f"{source}: the agent reported jobs that were not sent: {', '.join(unknown[:5])}")
    missing = missing_detail or "the agent wrote no result for this job"
    return [by_id.get(str(job["id"])) or error_result(job, f"{source}: {missing}") for job in jobs]
