"""The rogue resolver of `agent.py serve --dns-*`, byte by byte, and its command line.

Expected responses are written from RFC 1035 (4.1.1 header flags, 4.1.4 name compression), not from
what the agent produces. Nothing here touches the network: `tests/netns/test_dns_rogue.py` queries
the running server on a real dataplane.
"""

from __future__ import annotations

import json
import socket

import pytest

from calico_conformance.probe import agent

ANSWER = socket.inet_aton("192.0.2.1")
QUESTION_A = bytes.fromhex("076578616d706c65 03636f6d 00 0001 0001")  # example.com A IN
QUESTION_AAAA = bytes.fromhex("076578616d706c65 03636f6d 00 001c 0001")  # example.com AAAA IN
# id 0xbeef, RD set, one question.
QUERY_A = bytes.fromhex("beef 0100 0001 0000 0000 0000") + QUESTION_A


def test_a_query_gets_the_one_address_authoritatively() -> None:
    # QR=1, opcode 0, AA=1, RD=1 (copied), RA=0, NOERROR -> 0x8500; one question, one answer.
    header = bytes.fromhex("beef 8500 0001 0001 0000 0000")
    record = bytes.fromhex("c00c 0001 0001 00000000 0004 c0000201")  # pointer to the question, TTL 0
    assert agent.dns_response(QUERY_A, ANSWER) == header + QUESTION_A + record


def test_other_types_get_no_record() -> None:
    query = bytes.fromhex("0001 0000 0001 0000 0000 0000") + QUESTION_AAAA  # RD clear
    assert agent.dns_response(query, ANSWER) == bytes.fromhex("0001 8400 0001 0000 0000 0000") + QUESTION_AAAA


def test_other_opcodes_are_not_implemented() -> None:
    query = bytes.fromhex("0002 1000 0001 0000 0000 0000") + QUESTION_A  # opcode 2 (STATUS)
    assert agent.dns_response(query, ANSWER) == bytes.fromhex("0002 9404 0001 0000 0000 0000") + QUESTION_A


def test_the_agents_own_query_is_answered_and_read_back() -> None:
    response = agent.dns_response(agent.dns_query("exfiltrate.example.com", 7), ANSWER)
    assert response is not None
    assert agent.dns_answer(response, 7) == ("NOERROR", ["192.0.2.1"])


@pytest.mark.parametrize(
    "message",
    [
        b"",
        QUERY_A[:11],  # shorter than a header
        bytes.fromhex("beef 8100 0001 0000 0000 0000") + QUESTION_A,  # a response, not a query
        bytes.fromhex("beef 0100 0002 0000 0000 0000") + QUESTION_A + QUESTION_A,  # two questions
        QUERY_A[:-2],  # the question's class is cut off
        bytes.fromhex("beef 0100 0001 0000 0000 0000 c00c 0001 0001"),  # compressed question name
        json.dumps({"nonce": "abc"}).encode() + b"\n",  # the agent's UDP echo request
    ],
)
def test_anything_but_a_one_question_query_gets_no_response(message: bytes) -> None:
    assert agent.dns_response(message, ANSWER) is None


def test_echo_requests_are_told_apart_from_dns_queries() -> None:
    assert agent.is_echo_request(agent.udp_request("n", 200))
    assert not agent.is_echo_request(QUERY_A)
    assert not agent.is_echo_request(b'{"other": 1}\n')


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--dns-udp", "53"], "need --dns-answer"),
        (["--dns-tcp", "53", "--dns-answer", "not-an-ip"], "must be an IPv4 address"),
        (["--udp", "53", "--dns-udp", "53", "--dns-answer", "192.0.2.1"], "both name port(s) [53]"),
    ],
)
def test_serve_refuses_inconsistent_dns_options(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    identity = json.dumps({"pod": "rogue", "namespace": "ns", "node": "n1"})
    with pytest.raises(SystemExit) as exited:
        agent.main(["serve", "--identity", identity, *argv])
    assert exited.value.code == 2
    assert problem in capsys.readouterr().err
