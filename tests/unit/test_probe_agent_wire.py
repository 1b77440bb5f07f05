"""The agent's wire formats, byte by byte: DNS queries and answers, ICMP checksums and errors, job input.

Expected bytes are written from the RFCs (RFC 1035 for DNS, RFC 1071 for the checksum, RFC 792 for
ICMP), not from what the agent produces. Nothing here touches the network.
"""

from __future__ import annotations

import io
import json
import socket
import struct
from pathlib import Path

import pytest

from calico_conformance.probe import agent

QUERY_ID = 0x1234
# RFC 1035 4.1: header (id, flags RD=1, 1 question), QNAME as length-prefixed labels, QTYPE A, QCLASS IN.
EXAMPLE_COM_QUERY = bytes.fromhex("1234 0100 0001 0000 0000 0000076578616d706c65 03636f6d 000001 0001")
QUESTION = bytes.fromhex("076578616d706c65 03636f6d 00 0001 0001")


def _response(flags: int, answers: bytes = b"", count: int = 0, query_id: int = QUERY_ID) -> bytes:
    return struct.pack("!HHHHHH", query_id, flags, 1, count, 0, 0) + QUESTION + answers


# An A record whose name is a compression pointer to offset 12 (the question's name): c0 0c.
A_RECORD = bytes.fromhex("c00c 0001 0001 00000e10 0004 0af4020b")  # 10.244.2.11, TTL 3600
CNAME_RECORD = bytes.fromhex("c00c 0005 0001 00000e10 0002 c00c")


def test_query_is_rfc_1035_bytes() -> None:
    assert agent.dns_query("example.com", QUERY_ID) == EXAMPLE_COM_QUERY
    assert agent.dns_query("example.com.", QUERY_ID) == EXAMPLE_COM_QUERY  # a trailing dot is the root


@pytest.mark.parametrize("name", ["", "a..b", "x" * 64 + ".com", "ünïcode.test"])
def test_query_refuses_names_that_are_not_dns_labels(name: str) -> None:
    with pytest.raises(agent.JobError, match="not a DNS name"):
        agent.dns_query(name, QUERY_ID)


def test_answer_with_compressed_name_gives_the_address() -> None:
    assert agent.dns_answer(_response(0x8180, A_RECORD, 1), QUERY_ID) == ("NOERROR", ["10.244.2.11"])


def test_cname_before_the_address_is_skipped() -> None:
    assert agent.dns_answer(_response(0x8180, CNAME_RECORD + A_RECORD, 2), QUERY_ID) == (
        "NOERROR",
        ["10.244.2.11"],
    )


@pytest.mark.parametrize(
    ("flags", "rcode", "outcome"),
    [
        (0x8183, "NXDOMAIN", "nxdomain"),
        (0x8182, "SERVFAIL", "servfail"),
        (0x8185, "REFUSED", "rcode-REFUSED"),
    ],
)
def test_error_rcodes_are_named(flags: int, rcode: str, outcome: str) -> None:
    assert agent.dns_answer(_response(flags), QUERY_ID) == (rcode, [])
    assert agent.dns_outcome(rcode, []) == outcome


def test_noerror_without_address_is_nodata() -> None:
    assert agent.dns_outcome("NOERROR", []) == "nodata"
    assert agent.dns_outcome("NOERROR", ["10.244.2.11"]) == "answer"


def test_answer_to_another_query_is_ignored() -> None:
    assert agent.dns_answer(_response(0x8180, A_RECORD, 1, query_id=0x4321), QUERY_ID) is None


@pytest.mark.parametrize(
    ("message", "why"),
    [
        (b"\x12\x34\x81", "at least 12 bytes"),
        (EXAMPLE_COM_QUERY, "not a response"),
        (_response(0x8180, A_RECORD[:8], 1), "past the end"),
        (struct.pack("!HHHHHH", QUERY_ID, 0x8180, 1, 0, 0, 0) + b"\x07exam", "past the end"),
    ],
    ids=["short", "query", "truncated-record", "truncated-name"],
)
def test_malformed_responses_are_refused(message: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        agent.dns_answer(message, QUERY_ID)


def test_resolver_is_the_first_ipv4_nameserver(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(
        "search svc.cluster.local\nnameserver fd00::10\nnameserver 10.96.0.10\nnameserver 10.96.0.11\n"
    )
    assert agent.resolv_conf_nameserver(str(resolv)) == "10.96.0.10"
    assert agent.resolv_conf_nameserver(str(tmp_path / "missing")) is None


def test_checksum_is_rfc_1071() -> None:
    # RFC 1071 section 3: these bytes sum (ones' complement) to 0xddf2, so the checksum is 0x220d.
    assert agent.checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_echo_request_checks_out() -> None:
    request = agent.echo_request(0xBEEF, 3)
    assert request[:2] == b"\x08\x00"  # type 8 (echo request), code 0
    assert request[4:8] == bytes.fromhex("beef 0003")
    assert agent.checksum(request) == 0  # a packet with a correct checksum sums to zero


def _ip(source: str, destination: str, payload: bytes) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, 1, 0,
                         socket.inet_aton(source), socket.inet_aton(destination))  # fmt: skip
    return header + payload


def test_echo_reply_from_the_target_is_recognised() -> None:
    reply = struct.pack("!BBHHH", 0, 0, 0, 0xBEEF, 1) + b"payload"
    assert agent.classify_icmp(_ip("10.244.2.10", "10.244.1.10", reply), 0xBEEF, "10.244.2.10") == (0, 0)
    assert agent.classify_icmp(_ip("10.244.2.10", "10.244.1.10", reply), 0xCAFE, "10.244.2.10") is None
    assert agent.classify_icmp(_ip("10.244.2.99", "10.244.1.10", reply), 0xBEEF, "10.244.2.10") is None


def test_unreachable_quoting_our_echo_is_recognised() -> None:
    quoted = _ip("10.244.1.10", "10.244.2.10", struct.pack("!BBHHH", 8, 0, 0, 0xBEEF, 1))
    error = struct.pack("!BBHI", 3, 13, 0, 0) + quoted  # admin prohibited, from the node
    assert agent.classify_icmp(_ip("10.244.2.1", "10.244.1.10", error), 0xBEEF, "10.244.2.10") == (3, 13)
    assert agent.classify_icmp(_ip("10.244.2.1", "10.244.1.10", error), 0xCAFE, "10.244.2.10") is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{", "not JSON"),
        ('{"id": "a"}', "JSON array"),
        ('[{"kind": "icmp"}]', "job 0 is not an object with a string id"),
        ('[{"id": "a"}, {"id": "a"}]', "job 1 repeats the id 'a'"),
    ],
)
def test_unreadable_batch_exits_2_with_the_reason(text: str, why: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert agent.run_batch(text, out, err) == 2
    assert why in err.getvalue()
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    ("job", "why"),
    [
        ({"id": "a", "kind": "teleport"}, "kind must be one of connect, dns, icmp, mtu"),
        ({"id": "a", "kind": "connect", "protocol": "quic", "ip": "10.0.0.1", "port": 1}, "protocol must be"),
        ({"id": "a", "kind": "connect", "protocol": "tcp", "ip": "10.0.0.1", "port": 70000}, "port must be"),
        ({"id": "a", "kind": "icmp", "ip": "10.0.0.1", "timeout_s": 0}, "timeout_s must be a number > 0"),
        (
            {"id": "a", "kind": "icmp", "ip": "10.1"},
            "ip must be an IPv4 address",
        ),  # inet_aton would say 10.0.0.1
        ({"id": "a", "kind": "mtu", "check": "guess"}, "check must be interface, sweep or bulk"),
        ({"id": "a", "kind": "dns", "name": "x.test", "transport": "quic"}, "transport must be udp or tcp"),
    ],
)
def test_malformed_job_gets_an_error_line(job: dict[str, object], why: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert agent.run_batch(json.dumps([job]), out, err) == 0
    [line] = [json.loads(text) for text in out.getvalue().splitlines()]
    assert (line["id"], line["verdict"], line["identity"]) == ("a", "error", None)
    assert why in line["detail"]


def test_empty_batch_writes_nothing() -> None:
    out = io.StringIO()
    assert agent.run_batch("[]", out, io.StringIO()) == 0
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--identity", '{"pod": "a"}', "--tcp", "80"],
        ["serve", "--identity", '{"pod": "a", "namespace": "x", "node": "n"}', "--tcp", "80,99999"],
        ["serve"],
        ["dance"],
    ],
)
def test_bad_command_line_exits_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        agent.main(argv)
    assert exit_info.value.code == 2
