#!/usr/bin/env python3
"""The probe agent: one file, Python 3.8+ standard library only, that answers probes and runs them.

Why it is built this way: it reaches probe pods through a ConfigMap mount and runs with whatever `python3`
the image has (`nicolaka/netshoot`), and on this machine it runs inside lab network namespaces. The same
file and the same job JSON go through `KubeExecutor` (exec stream) and `NetnsExecutor` (`ip netns exec`),
so what the netns dataplane tests prove is what runs in pods. It is deliberately one module of ~1000 lines
(the only exception to the project's module size), because a ConfigMap carries one file.

    python3 agent.py serve --identity '{"pod":"web-1","namespace":"tenant-a","node":"node-1"}' \\
        --tcp 80,81 --udp 80,81 [--sctp 80] [--bind 0.0.0.0] \\
        [--dns-udp 53 --dns-tcp 53 --dns-answer 192.0.2.1]
    python3 agent.py probe < jobs.json

serve
    Binds every port, then prints ONE line to stdout and keeps serving until SIGTERM/SIGINT:
    `{"ready": true, "identity": {...}, "tcp": [80], "udp": [80], "sctp": [], "unavailable": {"sctp/80": why}}`.
    A TCP/UDP port that cannot be bound is fatal (exit 1, reason on stderr); SCTP where the kernel lacks it
    is listed under `unavailable` instead, so a probe to it is a visible `rejected`/`dropped`, not a crash.
    TCP and SCTP: on accept the server sends `{"identity": {"pod","namespace","node"}, "peer": <the
    client's address as the server sees it>}` + "\\n", counts the
    bytes the client sends until the client shuts down its sending side, then sends `{"received": N}` +
    "\\n" and closes. So every TCP port is also the sink for the `mtu`/`bulk` transfer.
    UDP: each datagram is answered by one datagram `{"identity": {...}, "nonce": <the request's "nonce" or
    null>, "received": <length of the datagram>, "peer": <the sender's address as seen>}`. A request is `{"nonce": "..."}` + "\\n", optionally
    followed by padding (the MTU sweep pads to the size it is testing).
    DNS (--dns-udp/--dns-tcp, which need --dns-answer): a rogue resolver. Every A query is answered
    NOERROR with the one --dns-answer address (TTL 0), any other type with no record (NODATA), any other
    opcode with NOTIMP; TCP uses the RFC 1035 two-byte length prefix. The same ports still answer this
    agent's own probes, so a connect probe can prove who owns the port: a UDP datagram that is an echo
    request gets the identity echo, and a TCP client that sends nothing for DNS_CLIENT_FIRST_S after its
    handshake (a DNS client always speaks first) gets the identity line and the byte count.
    The ready line then also lists "dns_udp", "dns_tcp" and "dns_answer".

probe
    stdin: ONE JSON array of job objects. Every job has a unique string "id" and a "kind"; "timeout_s"
    (number > 0, default 1.0) bounds the job. Jobs run concurrently (a thread each, at most 256 at once).
    stdout: exactly one JSON line per job, written as each job finishes (completion order: match by "id").
    Exit 0 when every job has its line (whatever the verdicts); exit 2 with the reason on stderr when stdin
    is not a JSON array of objects with unique string ids. A job that is malformed (unknown kind, missing
    field) gets an `error` line; it does not stop the batch.

    Jobs (fields beyond id/kind/timeout_s):
      connect  protocol "tcp"|"udp"|"sctp", ip, port; optional bind (an IPv4 address of this host to send
               from; the result then says which address the server saw, as "peer").
      icmp     ip.                                     (an echo request)
      dns      name, transport "udp"|"tcp" (default udp), server (IPv4; default: the first nameserver of
               /etc/resolv.conf), port (default 53).   (an A query)
      mtu      check "interface": interface (default "eth0").
               check "sweep": ip, port (a UDP serve port), min_packet (default 576), max_packet (default:
               the kernel's path MTU to ip), tries (default 2). timeout_s is per datagram.
               check "bulk": ip, port (a TCP serve port), bytes (> 0). timeout_s is the whole deadline.

    Every result line has: id, kind, verdict ("allowed"|"dropped"|"rejected"|"error"), identity (the
    answering server's {"pod","namespace","node"} or null), attempts (packets or datagrams sent, >= 0),
    elapsed_ms, detail (why, in words; "" when nothing to add). Verdicts:
      allowed   TCP/SCTP handshake completed (identity null + detail when no identity line came); UDP echo
                received; ICMP echo reply; any DNS response; MTU measurement made (bulk: all bytes counted
                by the server before the deadline).
      dropped   nothing came back before the timeout (or a local firewall refused the send: EPERM).
      rejected  TCP RST or an ICMP destination unreachable (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH).
                Kernels rate-limit ICMP errors (per destination: a burst of 6, then 1/s), so a UDP or
                ICMP refusal beyond that limit arrives as silence and is reported `dropped`.
      error     the probe itself could not run (bad job, unsupported protocol, no resolver, no route
                from this pod, an ICMP time exceeded, ...).
    Extra fields by kind:
      connect         peer (the client address the answering server reported; null when it sent none).
      dns             outcome ("answer"|"nodata"|"nxdomain"|"servfail"|"rcode-<NAME>"|"dropped"|"rejected"|
                      "error"), rcode (e.g. "NOERROR", or null), addresses (A records), server ("ip:port").
      mtu interface   interface, mtu.
      mtu sweep       largest_packet (IP packet bytes that crossed with DF set), largest_payload (UDP
                      payload bytes), smallest_failed_packet (or null when max_packet crossed), failure
                      (how smallest_failed_packet failed: "emsgsize" = the kernel already knew the path MTU,
                      "frag-needed" = an ICMP fragmentation-needed came back, "timeout" = it vanished),
                      black_hole (failure == "timeout": a DF packet was dropped without telling the sender),
                      kernel_path_mtu (IP_MTU after the sweep), steps ([[packet, outcome], ...]).
      mtu bulk        bytes, bytes_queued (accepted by the local kernel), bytes_received (counted by the
                      server, or null).
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import json
import os
import signal
import socket
import struct
import sys
import threading
import time

ALLOWED, DROPPED, REJECTED, ERROR = "allowed", "dropped", "rejected", "error"
DEFAULT_TIMEOUT_S = 1.0
MAX_CONCURRENT_JOBS = 256
IPPROTO_SCTP = 132
# Linux values; the socket module of older Pythons does not export them.
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DO = getattr(socket, "IP_PMTUDISC_DO", 2)
IP_MTU = getattr(socket, "IP_MTU", 14)
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
SIOCGIFMTU = 0x8921
IP_UDP_HEADERS = 28  # IPv4 header without options (20) + UDP header (8)
UDP_RESENDS = 4  # datagrams per timeout window: one lost datagram is not a deny, any answer is an allow
SERVE_IDLE_TIMEOUT_S = 30.0  # a client that vanishes mid-transfer must not pin a server thread forever
MAX_LINE = 65536
# A DNS client sends its query right after the TCP handshake; this agent's connect probe waits for the
# server to speak. A TCP DNS port gives the client this long to speak before it greets it as a probe
# (well under any probe timeout, far over the gap between a DNS client's connect and its send).
DNS_CLIENT_FIRST_S = 0.2
DNS_ANSWER_TTL_S = 0  # a rogue answer must never be cached by anything that relays it

# What the kernel reports when something on the path answered "no": a refusal, not silence.
REJECTING_ERRNOS = {
    errno.ECONNREFUSED: "refused (TCP RST or ICMP port unreachable)",
    errno.EHOSTUNREACH: "ICMP host unreachable / administratively prohibited",
    errno.ENETUNREACH: "ICMP network unreachable",
}

# Every batch pays the agent's imports: `typing` is only needed by the type checker (annotations are
# strings here), so it is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, TextIO

    Job = Dict[str, Any]
    Result = Dict[str, Any]


class JobError(ValueError):
    """The job itself is wrong: reported as an `error` verdict for that job only."""


# --- results -------------------------------------------------------------------------------------------


class Probe:
    """The running state of one job: its clock, its attempt count, and how it turns into a result line."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.started = time.monotonic()
        self.timeout_s = positive_number(job, "timeout_s", DEFAULT_TIMEOUT_S)
        self.deadline = self.started + self.timeout_s
        self.attempts = 0

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def result(self, verdict: str, detail: str = "", identity: Any = None, **extra: Any) -> Result:
        line: Result = {
            "id": self.job.get("id"),
            "kind": self.job.get("kind"),
            "verdict": verdict,
            "identity": identity,
            "attempts": self.attempts,
            "elapsed_ms": round((time.monotonic() - self.started) * 1000.0, 3),
            "detail": detail,
        }
        line.update(extra)
        return line

    def from_oserror(self, exc: OSError, doing: str, **extra: Any) -> Result:
        """Classify a socket error: a refusal is `rejected`, a local firewall drop `dropped`, else `error`."""
        code = exc.errno if exc.errno is not None else -1
        if code in REJECTING_ERRNOS:
            return self.result(REJECTED, doing + ": " + REJECTING_ERRNOS[code], **extra)
        if code == errno.EPERM:
            return self.result(DROPPED, doing + ": a local firewall dropped the packet (EPERM)", **extra)
        return self.result(ERROR, doing + ": " + describe(exc), **extra)

    def silence(self, what: str, **extra: Any) -> Result:
        return self.result(DROPPED, "no %s within %.3gs" % (what, self.timeout_s), **extra)


def describe(exc: BaseException) -> str:
    name = errno.errorcode.get(getattr(exc, "errno", None) or -1, type(exc).__name__)
    return "%s (%s)" % (exc, name)


def positive_number(job: Job, field: str, default: Optional[float] = None) -> float:
    value = job.get(field, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise JobError("%s must be a number > 0, got %r" % (field, value))
    return float(value)


def positive_int(job: Job, field: str, default: Optional[int] = None) -> int:
    value = job.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise JobError("%s must be an integer > 0, got %r" % (field, value))
    return value


def ipv4(job: Job, field: str = "ip") -> str:
    value = job.get(field)
    try:
        socket.inet_pton(socket.AF_INET, value)  # type: ignore[arg-type]  # dotted quad only, unlike inet_aton
    except (OSError, TypeError):
        raise JobError("%s must be an IPv4 address, got %r" % (field, value)) from None
    return str(value)


def port_of(job: Job) -> int:
    port = positive_int(job, "port")
    if port > 65535:
        raise JobError("port must be 1..65535, got %r" % port)
    return port


def parse_identity(data: bytes) -> Any:
    """The identity object in a server's answer, or None when the answer is not one of ours."""
    try:
        message = json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        return None
    identity = message.get("identity") if isinstance(message, dict) else None
    return identity if isinstance(identity, dict) else None


class LineReader:
    """Reads newline-terminated JSON lines from a stream socket against a deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def line(self, deadline: float) -> Optional[bytes]:
        """The next line, or None at the deadline or end of stream. Socket errors propagate."""
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or len(self.buffer) > MAX_LINE:
                return None
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(4096)
            except socket.timeout:
                return None
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line


# --- connect: tcp, sctp, udp -----------------------------------------------------------------------


def probe_connect(job: Job) -> Result:
    protocol = job.get("protocol")
    if protocol == "udp":
        return probe_udp(job)
    if protocol in ("tcp", "sctp"):
        return probe_stream(job, socket.IPPROTO_TCP if protocol == "tcp" else IPPROTO_SCTP)
    raise JobError("protocol must be tcp, udp or sctp, got %r" % (protocol,))


def source_of(job: Job) -> Optional[str]:
    """The job's optional `bind` address (the source to send from), validated."""
    return ipv4(job, "bind") if job.get("bind") is not None else None


def bind_source(probe: Probe, sock: socket.socket, source: Optional[str]) -> Optional[Result]:
    """Bind `sock` to `source` (port chosen by the kernel); the error line when this host lacks it."""
    if source is None:
        return None
    try:
        sock.bind((source, 0))
    except OSError as exc:
        sock.close()
        return probe.result(ERROR, "cannot send from %s: %s" % (source, describe(exc)))
    return None


def parse_peer(data: Optional[bytes]) -> Optional[str]:
    """The `peer` address a server of ours reported, or None."""
    if data is None:
        return None
    try:
        message = json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        return None
    peer = message.get("peer") if isinstance(message, dict) else None
    return peer if isinstance(peer, str) else None


def open_stream(probe: Probe, address: Any, protocol: int = socket.IPPROTO_TCP) -> Any:
    """Connect within the job's timeout: the socket, or the result line that says why not."""
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, protocol)
    except OSError as exc:
        if exc.errno in (errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT):
            return probe.result(ERROR, "this kernel does not support the protocol: " + describe(exc))
        return probe.result(ERROR, "cannot open a socket: " + describe(exc))
    refused = bind_source(probe, sock, source_of(probe.job))
    if refused is not None:
        return refused
    sock.settimeout(max(probe.remaining(), 0.001))
    probe.attempts = 1
    try:
        sock.connect(address)
    except socket.timeout:
        sock.close()
        return probe.silence("answer to the handshake")
    except OSError as exc:
        sock.close()
        return probe.from_oserror(exc, "connect")
    return sock


def open_datagram(probe: Probe, address: Any, dont_fragment: bool = False) -> Any:
    """A UDP socket connected to `address` (so an ICMP unreachable surfaces as an error on it), or the
    result line that says why not. Connecting a UDP socket sends nothing: a failure here is local."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    refused = bind_source(probe, sock, source_of(probe.job))
    if refused is not None:
        return refused
    try:
        if dont_fragment:
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
        sock.connect(address)
    except OSError as exc:
        sock.close()
        return probe.result(
            ERROR, "no route from this pod to %s:%d: %s" % (address[0], address[1], describe(exc))
        )
    return sock


def probe_stream(job: Job, protocol: int) -> Result:
    probe = Probe(job)
    sock = open_stream(probe, (ipv4(job), port_of(job)), protocol)
    if isinstance(sock, dict):
        return sock
    with sock:
        try:
            line = LineReader(sock).line(probe.deadline)
        except OSError as exc:
            return probe.result(ALLOWED, "connected, then the connection failed: " + describe(exc))
        identity = parse_identity(line) if line is not None else None
        if identity is None:
            return probe.result(
                ALLOWED, "connected, but no identity line came before the timeout", peer=None
            )
        return probe.result(ALLOWED, identity=identity, peer=parse_peer(line))


def udp_request(nonce: str, size: int = 0) -> bytes:
    request = (json.dumps({"nonce": nonce}) + "\n").encode()
    return request + b"\0" * max(0, size - len(request))


def probe_udp(job: Job) -> Result:
    probe = Probe(job)
    address = (ipv4(job), port_of(job))
    nonce = os.urandom(8).hex()
    sock = open_datagram(probe, address)
    if isinstance(sock, dict):
        return sock
    with sock:
        try:
            reply = exchange(probe, sock, udp_request(nonce), lambda data: echo_reply(data, nonce))
        except ExchangeFailed as failed:
            return probe.from_oserror(failed.error, failed.stage)
    if reply is None:
        return probe.silence("echo")
    peer = reply.get("peer")
    return probe.result(
        ALLOWED,
        identity=reply.get("identity") if isinstance(reply.get("identity"), dict) else None,
        peer=peer if isinstance(peer, str) else None,
    )


class ExchangeFailed(Exception):
    """A datagram exchange hit a socket error; `stage` says whether sending or receiving."""

    def __init__(self, stage: str, error: OSError) -> None:
        super().__init__(stage, error)
        self.stage = stage
        self.error = error


def exchange(
    probe: Probe,
    sock: socket.socket,
    request: bytes,
    accept: Callable[[bytes], Any],
    until: float = 0.0,
    resend_s: float = 0.0,
) -> Any:
    """Send `request` on a connected datagram socket every `resend_s` (default: a quarter of the timeout)
    until `accept` returns something other than None for a reply, or `until` (default: the job's deadline).
    Returns that value or None; raises ExchangeFailed on a socket error. Counts each send as an attempt."""
    deadline = until or probe.deadline
    interval = resend_s or probe.timeout_s / UDP_RESENDS
    while time.monotonic() < deadline:
        try:
            sock.send(request)
        except OSError as exc:
            raise ExchangeFailed("send", exc) from None
        probe.attempts += 1
        resend_at = min(deadline, time.monotonic() + interval)
        while True:
            remaining = resend_at - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            try:
                data = sock.recv(65535)
            except socket.timeout:
                break
            except OSError as exc:
                raise ExchangeFailed("receive", exc) from None
            accepted = accept(data)
            if accepted is not None:
                return accepted
    return None


# --- icmp ----------------------------------------------------------------------------------------------

_icmp_ids = itertools.count((os.getpid() * 7919) & 0xFFFF)
_icmp_ids_lock = threading.Lock()


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, sequence: int) -> bytes:
    payload = b"calico-conformance"
    header = struct.pack("!BBHHH", 8, 0, 0, ident, sequence)
    return struct.pack("!BBHHH", 8, 0, checksum(header + payload), ident, sequence) + payload


def probe_icmp(job: Job) -> Result:
    probe = Probe(job)
    ip = ipv4(job)
    with _icmp_ids_lock:
        ident = next(_icmp_ids) & 0xFFFF
    try:  # raw needs root or CAP_NET_RAW; the ping socket needs net.ipv4.ping_group_range
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        raw = True
    except PermissionError:
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
        except OSError as exc:
            return probe.result(
                ERROR, "no raw or ping socket (needs NET_RAW or ping_group_range): " + describe(exc)
            )
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        raw = False
    with sock:
        resend_s = probe.timeout_s / UDP_RESENDS
        while probe.remaining() > 0:
            probe.attempts += 1
            try:
                sock.sendto(echo_request(ident, probe.attempts), (ip, 0))
            except OSError as exc:
                return probe.from_oserror(exc, "send echo request")
            resend_at = min(probe.deadline, time.monotonic() + resend_s)
            while time.monotonic() < resend_at:
                sock.settimeout(max(resend_at - time.monotonic(), 0.001))
                try:
                    data, sender = sock.recvfrom(65535)
                except socket.timeout:
                    break
                except OSError as exc:
                    return probe.from_oserror(exc, "echo")
                answer = classify_icmp(data, ident, ip) if raw else (0, 0) if data[:1] == b"\0" else None
                if answer is None:
                    continue
                kind, code = answer
                if kind == 0:
                    return probe.result(ALLOWED, "echo reply from " + sender[0])
                if kind == 11:  # a routing loop or a TTL too small: no statement about policy
                    return probe.result(ERROR, "ICMP time exceeded from %s" % sender[0])
                return probe.result(REJECTED, "ICMP type %d code %d from %s" % (kind, code, sender[0]))
    return probe.silence("echo reply")


def classify_icmp(packet: bytes, ident: int, ip: str) -> Optional[Any]:
    """(type, code) when a raw packet answers our echo: a reply from `ip`, or an error quoting it."""
    header_len = (packet[0] & 0x0F) * 4
    message = packet[header_len:]
    if len(message) < 8:
        return None
    kind, code = message[0], message[1]
    if kind == 0:
        same_echo = struct.unpack("!H", message[4:6])[0] == ident
        return (0, 0) if same_echo and socket.inet_ntoa(packet[12:16]) == ip else None
    if kind in (3, 11) and len(message) >= 36:
        quoted = message[8:]
        quoted_len = (quoted[0] & 0x0F) * 4
        quoted_icmp = quoted[quoted_len:]
        quotes_our_echo = len(quoted_icmp) >= 6 and quoted_icmp[0] == 8
        if (
            quotes_our_echo
            and socket.inet_ntoa(quoted[16:20]) == ip
            and quoted_icmp[4:6] == struct.pack("!H", ident)
        ):
            return (kind, code)
    return None


# --- dns -----------------------------------------------------------------------------------------------

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
TYPE_A = 1
CLASS_IN = 1
RECURSION_DESIRED = 0x0100


def dns_query(name: str, query_id: int) -> bytes:
    """An RFC 1035 query for the A record of `name`, recursion desired."""
    qname = b""
    for label in name.rstrip(".").split("."):
        encoded = label.encode("ascii", "strict") if label.isascii() else b""
        if not 0 < len(encoded) <= 63:
            raise JobError("name %r is not a DNS name of ASCII labels of 1..63 characters" % name)
        qname += bytes([len(encoded)]) + encoded
    header = struct.pack("!HHHHHH", query_id, RECURSION_DESIRED, 1, 0, 0, 0)
    return header + qname + b"\0" + struct.pack("!HH", TYPE_A, CLASS_IN)


def skip_name(message: bytes, offset: int) -> int:
    """The offset just after the (possibly compressed) name that starts at `offset`."""
    while True:
        if offset >= len(message):
            raise ValueError("name runs past the end of the message")
        length = message[offset]
        if length & 0xC0 == 0xC0:
            return offset + 2
        if length == 0:
            return offset + 1
        offset += 1 + length


def dns_answer(message: bytes, query_id: int) -> Optional[Any]:
    """(rcode name, A addresses) of a response to `query_id`; None if it answers another query.
    Raises ValueError when the message is not a well-formed DNS response."""
    if len(message) < 12:
        raise ValueError("a DNS message is at least 12 bytes, got %d" % len(message))
    answer_id, flags, questions, answers = struct.unpack("!HHHH", message[:8])
    if answer_id != query_id:
        return None
    if not flags & 0x8000:
        raise ValueError("the QR bit is not set: a query, not a response")
    offset = 12
    for _ in range(questions):
        offset = skip_name(message, offset) + 4
    addresses: List[str] = []
    for _ in range(answers):
        offset = skip_name(message, offset)
        if offset + 10 > len(message):
            raise ValueError("answer record runs past the end of the message")
        rtype, rclass, _ttl, length = struct.unpack("!HHIH", message[offset : offset + 10])
        offset += 10
        if rtype == TYPE_A and rclass == CLASS_IN and length == 4 and offset + 4 <= len(message):
            addresses.append(socket.inet_ntoa(message[offset : offset + 4]))
        offset += length
    rcode = flags & 0x000F
    return RCODES.get(rcode, "RCODE%d" % rcode), addresses


def dns_outcome(rcode: str, addresses: List[str]) -> str:
    if rcode == "NOERROR":
        return "answer" if addresses else "nodata"
    if rcode in ("NXDOMAIN", "SERVFAIL"):
        return rcode.lower()
    return "rcode-" + rcode


def resolv_conf_nameserver(path: str = "/etc/resolv.conf") -> Optional[str]:
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                socket.inet_pton(socket.AF_INET, parts[1])
            except OSError:
                continue  # an IPv6 resolver: this agent probes IPv4
            return parts[1]
    return None


def recv_exact(sock: socket.socket, size: int, deadline: float) -> Optional[bytes]:
    data = b""
    while len(data) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(size - len(data))
        except socket.timeout:
            return None
        if not chunk:
            return None
        data += chunk
    return data


def probe_dns(job: Job) -> Result:
    probe = Probe(job)
    name, transport = job.get("name"), job.get("transport", "udp")
    if not isinstance(name, str) or not name:
        raise JobError("name must be a non-empty string, got %r" % (name,))
    if transport not in ("udp", "tcp"):
        raise JobError("transport must be udp or tcp, got %r" % (transport,))
    server = ipv4(job, "server") if job.get("server") is not None else resolv_conf_nameserver()
    port = port_of(dict(job, port=job.get("port", 53)))
    query_id = struct.unpack("!H", os.urandom(2))[0]
    query = dns_query(name, query_id)
    fields: Dict[str, Any] = {"outcome": ERROR, "rcode": None, "addresses": [], "server": None}
    if server is None:
        return probe.result(ERROR, "no server given and no IPv4 nameserver in /etc/resolv.conf", **fields)
    fields["server"] = "%s:%d" % (server, port)

    def answered(response: Any) -> Result:
        if response is None:
            return probe.silence("DNS response", **dict(fields, outcome=DROPPED))
        rcode, addresses = response
        outcome = dns_outcome(rcode, addresses)
        return probe.result(
            ALLOWED, outcome, **dict(fields, outcome=outcome, rcode=rcode, addresses=addresses)
        )

    try:
        if transport == "udp":
            datagrams = open_datagram(probe, (server, port))
            if isinstance(datagrams, dict):
                return dict(datagrams, **fields)
            with datagrams:
                return answered(exchange(probe, datagrams, query, lambda data: dns_answer(data, query_id)))
        sock_or_result = open_stream(probe, (server, port))
        if isinstance(sock_or_result, dict):
            return dict(sock_or_result, **dict(fields, outcome=sock_or_result["verdict"]))
        with sock_or_result as sock:
            sock.sendall(struct.pack("!H", len(query)) + query)
            length = recv_exact(sock, 2, probe.deadline)
            message = recv_exact(sock, struct.unpack("!H", length)[0], probe.deadline) if length else None
            return answered(dns_answer(message, query_id) if message is not None else None)
    except ExchangeFailed as failed:
        line = probe.from_oserror(failed.error, failed.stage)
        return dict(line, **dict(fields, outcome=line["verdict"]))
    except ValueError as exc:
        return probe.result(ERROR, "malformed DNS response: %s" % exc, **fields)
    except OSError as exc:
        line = probe.from_oserror(exc, "DNS over TCP")
        return dict(line, **dict(fields, outcome=line["verdict"]))


# --- mtu -----------------------------------------------------------------------------------------------


def probe_mtu(job: Job) -> Result:
    check = job.get("check")
    if check == "interface":
        return probe_interface_mtu(job)
    if check == "sweep":
        return probe_mtu_sweep(job)
    if check == "bulk":
        return probe_bulk_transfer(job)
    raise JobError("check must be interface, sweep or bulk, got %r" % (check,))


def interface_mtu(name: str) -> int:
    """SIOCGIFMTU: the MTU of `name` in this network namespace (sysfs may show another namespace)."""
    request = struct.pack("16si", name.encode()[:15], 0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        answer = fcntl.ioctl(sock.fileno(), SIOCGIFMTU, request)
    return int(struct.unpack("16si", answer)[1])


def probe_interface_mtu(job: Job) -> Result:
    probe = Probe(job)
    name = job.get("interface", "eth0")
    if not isinstance(name, str) or not name:
        raise JobError("interface must be a non-empty string, got %r" % (name,))
    try:
        mtu = interface_mtu(name)
    except OSError as exc:
        return probe.result(
            ERROR, "cannot read the MTU of %s: %s" % (name, describe(exc)), interface=name, mtu=None
        )
    return probe.result(ALLOWED, interface=name, mtu=mtu)


def probe_mtu_sweep(job: Job) -> Result:
    """Binary search for the largest DF-set datagram that the echo server confirms, between min_packet
    and max_packet (IP packet sizes)."""
    probe = Probe(job)
    address, tries = (ipv4(job), port_of(job)), positive_int(job, "tries", 2)
    sock = open_datagram(probe, address, dont_fragment=True)  # DF set: the path may not fragment
    if isinstance(sock, dict):
        return sock
    with sock:
        low = positive_int(job, "min_packet", 576)
        high = positive_int(job, "max_packet", sock.getsockopt(socket.IPPROTO_IP, IP_MTU))
        if not IP_UDP_HEADERS + 64 <= low <= high:
            raise JobError(
                "need %d <= min_packet <= max_packet, got %d, %d" % (IP_UDP_HEADERS + 64, low, high)
            )
        steps: List[List[Any]] = []
        identity: List[Any] = [None]
        base = os.urandom(6).hex()

        def outcome(packet: int) -> str:
            payload, nonce = packet - IP_UDP_HEADERS, "%s-%d" % (base, packet)
            until = time.monotonic() + probe.timeout_s * tries
            try:
                reply = exchange(
                    probe,
                    sock,
                    udp_request(nonce, payload),
                    lambda data: echo_reply(data, nonce),
                    until,
                    probe.timeout_s,
                )
            except ExchangeFailed as failed:
                if failed.error.errno == errno.EMSGSIZE:
                    return "emsgsize" if failed.stage == "send" else "frag-needed"
                raise
            if reply is None:
                return "timeout"
            identity[0] = reply.get("identity")
            return "crossed" if reply.get("received") == payload else "truncated"

        def step(packet: int) -> str:
            result = outcome(packet)
            steps.append([packet, result])
            return result

        try:
            first = step(low)
            if first != "crossed":
                verdict = DROPPED if first == "timeout" else ERROR
                return probe.result(verdict, "not even min_packet %d crossed: %s" % (low, first), steps=steps)
            good, bad, failure = low, None, None  # type: int, Optional[int], Optional[str]
            last = step(high) if high > low else "crossed"
            if last == "crossed":
                good = high
            else:
                bad, failure = high, last
                while bad - good > 1:
                    middle = (good + bad) // 2
                    result = step(middle)
                    if result == "crossed":
                        good = middle
                    else:
                        bad, failure = middle, result
        except ExchangeFailed as failed:
            return probe.from_oserror(failed.error, failed.stage, steps=steps)
        kernel_mtu = sock.getsockopt(socket.IPPROTO_IP, IP_MTU)
    return probe.result(
        ALLOWED,
        "largest DF packet that crossed: %d bytes" % good,
        identity=identity[0],
        largest_packet=good,
        largest_payload=good - IP_UDP_HEADERS,
        smallest_failed_packet=bad,
        failure=failure,
        black_hole=failure == "timeout",
        kernel_path_mtu=kernel_mtu,
        steps=steps,
    )


def echo_reply(data: bytes, nonce: str) -> Optional[Any]:
    try:
        message = json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        return None
    return message if isinstance(message, dict) and message.get("nonce") == nonce else None


def probe_bulk_transfer(job: Job) -> Result:
    """Send `bytes` to a serve port and wait for the server's count, all before the deadline: a path that
    passes small packets but silently drops full-size ones (a PMTU black hole) stalls here."""
    probe = Probe(job)
    size = positive_int(job, "bytes")
    fields: Dict[str, Any] = {"bytes": size, "bytes_queued": 0, "bytes_received": None}
    sock_or_result = open_stream(probe, (ipv4(job), port_of(job)))
    if isinstance(sock_or_result, dict):
        return dict(sock_or_result, **fields)
    with sock_or_result as sock:
        reader = LineReader(sock)
        try:
            hello = reader.line(probe.deadline)
            identity = parse_identity(hello) if hello is not None else None
            if identity is None:
                return probe.result(
                    ERROR, "connected, but the server sent no identity: not an agent", **fields
                )
            chunk = bytes(65536)
            while fields["bytes_queued"] < size:
                if probe.remaining() <= 0:
                    raise socket.timeout()
                sock.settimeout(probe.remaining())
                fields["bytes_queued"] += sock.send(chunk[: size - fields["bytes_queued"]])
            sock.shutdown(socket.SHUT_WR)
            confirmation = reader.line(probe.deadline)
        except socket.timeout:
            confirmation = None
        except OSError as exc:
            return probe.from_oserror(exc, "bulk transfer", **fields)
        if confirmation is None:
            detail = (
                "the server did not confirm %d bytes within %.3gs (%d queued): full-size packets vanish on the path"
                % (
                    size,
                    probe.timeout_s,
                    fields["bytes_queued"],
                )
            )
            return probe.result(DROPPED, detail, identity=identity, **fields)
        try:
            fields["bytes_received"] = json.loads(confirmation.decode()).get("received")
        except (ValueError, AttributeError):
            return probe.result(
                ERROR, "unreadable confirmation %r" % confirmation[:80], identity=identity, **fields
            )
    if fields["bytes_received"] != size:
        return probe.result(
            ERROR, "the server counted %r of %d bytes" % (fields["bytes_received"], size), **fields
        )
    return probe.result(ALLOWED, identity=identity, **fields)


# --- serve ---------------------------------------------------------------------------------------------


def dns_response(query: bytes, answer: bytes) -> Optional[bytes]:
    """The rogue resolver's response to `query` (`answer`: the packed IPv4 address every A query gets),
    or None when `query` is not a well-formed one-question DNS query (it is ignored, as a resolver would)."""
    if len(query) < 12:
        return None
    query_id, flags, questions = struct.unpack("!HHH", query[:6])
    if flags & 0x8000 or questions != 1:
        return None  # a response, or a query this responder cannot echo back
    try:
        end = skip_name(query, 12)
    except ValueError:
        return None
    if query[end - 1 : end] != b"\0" or end + 4 > len(query):
        return None  # a compression pointer in a question, or a truncated question
    qtype, qclass = struct.unpack("!HH", query[end : end + 4])
    question = query[12 : end + 4]
    opcode = (flags >> 11) & 0x0F
    # QR, the query's opcode and RD, authoritative: it is the only server that knows these names.
    reply_flags = 0x8000 | (flags & 0x7900) | 0x0400
    records = b""
    if opcode != 0:
        reply_flags |= 4  # NOTIMP
    elif qtype == TYPE_A and qclass == CLASS_IN:
        records = struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, DNS_ANSWER_TTL_S, 4) + answer
    header = struct.pack("!HHHHHH", query_id, reply_flags, 1, 1 if records else 0, 0, 0)
    return header + question + records


def is_echo_request(data: bytes) -> bool:
    """Whether a datagram is this agent's own UDP echo request (`{"nonce": ...}`), not a DNS query."""
    try:
        request = json.loads(data.split(b"\n", 1)[0].decode("utf-8", "strict"))
    except ValueError:
        return False
    return isinstance(request, dict) and "nonce" in request


def dns_datagram_loop(sock: socket.socket, identity: Dict[str, str], answer: bytes) -> None:
    while True:
        try:
            data, peer = sock.recvfrom(65535)
        except OSError:
            continue
        reply = echo_datagram(data, identity, peer) if is_echo_request(data) else dns_response(data, answer)
        if reply is None:
            continue
        try:  # noqa: SIM105 (contextlib.suppress would add an import to every probe batch)
            sock.sendto(reply, peer)
        except OSError:
            pass


def answer_dns_stream(conn: socket.socket, hello: bytes, answer: bytes) -> None:
    """A DNS client speaks first (length-prefixed queries until it closes); a silent client is a probe."""
    try:
        conn.settimeout(DNS_CLIENT_FIRST_S)
        first = conn.recv(2, socket.MSG_PEEK)
    except socket.timeout:
        answer_stream(conn, hello)
        return
    except OSError:
        conn.close()
        return
    with conn:
        if not first:
            return
        try:
            conn.settimeout(SERVE_IDLE_TIMEOUT_S)
            deadline = time.monotonic() + SERVE_IDLE_TIMEOUT_S
            while True:
                length = recv_exact(conn, 2, deadline)
                query = recv_exact(conn, struct.unpack("!H", length)[0], deadline) if length else None
                response = dns_response(query, answer) if query is not None else None
                if response is None:
                    return
                conn.sendall(struct.pack("!H", len(response)) + response)
        except OSError:
            pass


def dns_accept_loop(listener: socket.socket, hello: bytes, answer: bytes) -> None:
    while True:
        try:
            conn, _peer = listener.accept()
        except OSError:
            continue
        threading.Thread(target=answer_dns_stream, args=(conn, hello, answer), daemon=True).start()


def with_peer(hello: bytes, peer: Any) -> bytes:
    """The identity line with the client's address as this server saw it (`peer`)."""
    message = json.loads(hello.decode("utf-8"))
    message["peer"] = peer[0] if isinstance(peer, tuple) and peer else None
    return (json.dumps(message) + "\n").encode()


def answer_stream(conn: socket.socket, hello: bytes) -> None:
    """Identity first, then count what the client sends until it shuts down its side, then the count."""
    with conn:
        try:
            conn.settimeout(SERVE_IDLE_TIMEOUT_S)
            try:
                peer = conn.getpeername()
            except OSError:
                peer = None
            conn.sendall(with_peer(hello, peer))
            received = 0
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                received += len(chunk)
            conn.sendall((json.dumps({"received": received}) + "\n").encode())
        except OSError:
            pass  # the client went away (a connect probe closes after the identity): nothing to answer


def accept_loop(listener: socket.socket, hello: bytes) -> None:
    while True:
        try:
            conn, _peer = listener.accept()
        except OSError:
            continue  # e.g. ECONNABORTED: the client gave up before we accepted
        threading.Thread(target=answer_stream, args=(conn, hello), daemon=True).start()


def echo_datagram(data: bytes, identity: Dict[str, str], peer: Any = None) -> bytes:
    try:
        request = json.loads(data.split(b"\n", 1)[0].decode("utf-8", "replace"))
    except ValueError:
        request = None
    nonce = request.get("nonce") if isinstance(request, dict) else None
    seen = peer[0] if isinstance(peer, tuple) and peer else None
    return json.dumps({"identity": identity, "nonce": nonce, "received": len(data), "peer": seen}).encode()


def echo_loop(sock: socket.socket, identity: Dict[str, str]) -> None:
    while True:
        try:
            data, peer = sock.recvfrom(65535)
        except OSError:
            continue
        reply = echo_datagram(data, identity, peer)
        try:  # noqa: SIM105 (contextlib.suppress would add an import to every probe batch)
            sock.sendto(reply, peer)
        except OSError:
            pass  # e.g. a local firewall: the prober sees silence, which is what happened


def serve(
    identity: Dict[str, str],
    tcp: List[int],
    udp: List[int],
    sctp: List[int],
    bind: str,
    out: TextIO,
    dns_udp: Optional[List[int]] = None,
    dns_tcp: Optional[List[int]] = None,
    dns_answer: Optional[str] = None,
) -> int:
    hello = (json.dumps({"identity": identity}) + "\n").encode()
    loops: List[Any] = []
    listening: Dict[str, Any] = {"tcp": [], "udp": [], "sctp": []}
    if dns_udp or dns_tcp:
        assert dns_answer is not None, "DNS ports need the address to answer with"
        answer = socket.inet_aton(dns_answer)
        for port in dns_tcp or []:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((bind, port))
            listener.listen(512)
            loops.append((dns_accept_loop, (listener, hello, answer)))
        for port in dns_udp or []:
            datagrams = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            datagrams.bind((bind, port))
            loops.append((dns_datagram_loop, (datagrams, identity, answer)))
        listening.update(dns_udp=list(dns_udp or []), dns_tcp=list(dns_tcp or []), dns_answer=dns_answer)
    unavailable: Dict[str, str] = {}
    for protocol, ports, number in (("tcp", tcp, socket.IPPROTO_TCP), ("sctp", sctp, IPPROTO_SCTP)):
        for port in ports:
            try:
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, number)
            except OSError as exc:
                if protocol != "sctp":
                    raise
                unavailable["sctp/%d" % port] = describe(exc)
                continue
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((bind, port))
            listener.listen(512)
            loops.append((accept_loop, (listener, hello)))
            listening[protocol].append(port)
    for port in udp:
        datagrams = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        datagrams.bind((bind, port))
        loops.append((echo_loop, (datagrams, identity)))
        listening["udp"].append(port)
    for target, args in loops:
        threading.Thread(target=target, args=args, daemon=True).start()
    ready = {"ready": True, "identity": identity, "unavailable": unavailable}
    ready.update(listening)
    out.write(json.dumps(ready, sort_keys=True) + "\n")
    out.flush()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(3600.0):
        pass
    return 0


# --- probe ---------------------------------------------------------------------------------------------

KINDS: Dict[str, Callable[[Job], Result]] = {
    "connect": probe_connect,
    "icmp": probe_icmp,
    "dns": probe_dns,
    "mtu": probe_mtu,
}


def run_job(job: Job) -> Result:
    """One job to its result line; whatever goes wrong becomes an `error` line for this job only."""
    try:
        kind = KINDS.get(job.get("kind"))  # type: ignore[arg-type]
        if kind is None:
            raise JobError("kind must be one of %s, got %r" % (", ".join(sorted(KINDS)), job.get("kind")))
        return kind(job)
    except JobError as exc:
        why = "bad job: %s" % exc
    except Exception as exc:  # the batch must go on: one broken probe is one `error`, never silence
        why = "agent failure: %s" % describe(exc)
    return {
        "id": job.get("id"),
        "kind": job.get("kind"),
        "verdict": ERROR,
        "identity": None,
        "attempts": 0,
        "elapsed_ms": 0.0,
        "detail": why,
    }


def read_jobs(text: str) -> List[Job]:
    """The job array on stdin, or ValueError naming what is wrong with it."""
    try:
        jobs = json.loads(text)
    except ValueError as exc:
        raise ValueError("stdin is not JSON: %s" % exc) from None
    if not isinstance(jobs, list):
        raise ValueError("stdin must be a JSON array of jobs, got %s" % type(jobs).__name__)
    seen = set()
    for index, job in enumerate(jobs):
        if not isinstance(job, dict) or not isinstance(job.get("id"), str):
            raise ValueError("job %d is not an object with a string id" % index)
        if job["id"] in seen:
            raise ValueError("job %d repeats the id %r" % (index, job["id"]))
        seen.add(job["id"])
    return jobs


def run_batch(text: str, out: TextIO, err: TextIO) -> int:
    try:
        jobs = read_jobs(text)
    except ValueError as exc:
        err.write("agent.py probe: %s\n" % exc)
        return 2
    lock = threading.Lock()

    def run_and_write(job: Job) -> None:
        line = json.dumps(run_job(job), sort_keys=True)
        with lock:
            out.write(line + "\n")
            out.flush()

    # A thread per job, at most MAX_CONCURRENT_JOBS at once: a batch lasts about one timeout, however many
    # of its probes are dropped. (Plain threads: concurrent.futures would add its imports to every start.)
    slots = threading.BoundedSemaphore(MAX_CONCURRENT_JOBS)

    def run_in_slot(job: Job) -> None:
        try:
            run_and_write(job)
        finally:
            slots.release()

    threads = []
    for job in jobs:
        slots.acquire()
        thread = threading.Thread(target=run_in_slot, args=(job,), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return 0


def port_list(text: str) -> List[int]:
    import argparse

    try:
        ports = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("ports must look like 80,81, got %r" % text) from None
    if any(not 0 < port < 65536 for port in ports):
        raise argparse.ArgumentTypeError("ports must be 1..65535, got %r" % text)
    return ports


def ipv4_argument(text: str) -> str:
    import argparse

    try:
        socket.inet_pton(socket.AF_INET, text)
    except OSError:
        raise argparse.ArgumentTypeError("must be an IPv4 address, got %r" % text) from None
    return text


def identity_object(text: str) -> Dict[str, str]:
    import argparse

    try:
        identity = json.loads(text)
    except ValueError:
        identity = None
    fields = ("pod", "namespace", "node")
    if not isinstance(identity, dict) or not all(
        isinstance(identity.get(f), str) and identity[f] for f in fields
    ):
        raise argparse.ArgumentTypeError(
            'identity must be {"pod": ..., "namespace": ..., "node": ...}, got %r' % text
        )
    return {field: identity[field] for field in fields}


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["probe"]:  # the hot path, once per source per round: skip argparse's start-up cost
        return run_batch(sys.stdin.read(), sys.stdout, sys.stderr)
    import argparse

    parser = argparse.ArgumentParser(prog="agent.py", description="calico-conformance probe agent")
    modes = parser.add_subparsers(dest="mode", metavar="{serve,probe}")
    serving = modes.add_parser("serve", help="answer TCP/UDP/SCTP probes with this identity (and DNS)")
    serving.add_argument("--identity", required=True, type=identity_object, help='{"pod","namespace","node"}')
    for protocol in ("tcp", "udp", "sctp"):
        serving.add_argument("--" + protocol, type=port_list, default=[], metavar="PORTS", help="e.g. 80,81")
    serving.add_argument("--bind", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    for protocol in ("udp", "tcp"):
        serving.add_argument(
            "--dns-" + protocol, type=port_list, default=[], metavar="PORTS", help="answer DNS here, e.g. 53"
        )
    serving.add_argument("--dns-answer", type=ipv4_argument, help="the address every A query gets")
    modes.add_parser("probe", help="run the JSON array of jobs on stdin, one JSON result line per job")
    args = parser.parse_args(argv)
    if args.mode == "serve":
        if (args.dns_udp or args.dns_tcp) and args.dns_answer is None:
            parser.error("--dns-udp and --dns-tcp need --dns-answer")
        for protocol in ("udp", "tcp"):
            twice = sorted(set(getattr(args, protocol)) & set(getattr(args, "dns_" + protocol)))
            if twice:
                parser.error("--%s and --dns-%s both name port(s) %s" % (protocol, protocol, twice))
        try:
            return serve(
                args.identity,
                args.tcp,
                args.udp,
                args.sctp,
                args.bind,
                sys.stdout,
                dns_udp=args.dns_udp,
                dns_tcp=args.dns_tcp,
                dns_answer=args.dns_answer,
            )
        except OSError as exc:
            sys.stderr.write("agent.py serve: cannot listen: %s\n" % describe(exc))
            return 1
    if args.mode == "probe":
        return run_batch(sys.stdin.read(), sys.stdout, sys.stderr)
    parser.print_usage(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
