"""The hand-written Calico cases: each pins one sentence of calico-semantics.md to concrete verdicts.

A case file (`tests/data/calico-cases/<id>.yaml`, id = file stem = test id) holds

* `semantics`: `{section: "§1.3", quote: "<a sentence copied verbatim from calico-semantics.md>"}` — the
  rule the case proves; the corpus test checks that the quote really is in that section, so a case
  cannot cite a rule the research does not state;
* `why` (optional): how the expectations follow from the quote, for the reviewer;
* `scenario`: a scenario in the ARCHITECTURE.md format (namespaces, pods, resources, probes);
* either `expect`: one entry per probe, `{flow: "ns/a -> ns/b 80/TCP", allowed: bool, egress: {...},
  ingress: {...}}` where a direction may pin `allowed`, `reason`, `tier`, `policy` (display name),
  `rule` (0-based index) and `action`; or `expect_error`: a substring of the `LocatedError` the scenario
  must raise (the error must also name the case file and a line);
* `oracle_bug` (optional): a known disagreement of the oracle with the quote, reported to its owner;
  the case then runs as a strict xfail, so the fix shows up as an unexpected pass to clean up.

Every expectation is derived by hand from the quoted sentence, never from the oracle's output.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.yamlsrc import load_file, location_of
from calico_conformance.reachability import Flow

CASES_DIRECTORY = Path(__file__).parents[1] / "data" / "calico-cases"
SEMANTICS_FILE = Path(__file__).parents[2].parent / "shared" / "reference" / "calico-semantics.md"

CASE_FIELDS = frozenset({"semantics", "why", "scenario", "expect", "expect_error", "oracle_bug"})
SEMANTICS_FIELDS = frozenset({"section", "quote"})
EXPECT_FIELDS = frozenset({"flow", "allowed", "egress", "ingress"})
DECISION_FIELDS = frozenset({"allowed", "reason", "tier", "policy", "rule", "action"})
# Case-file name of a Decision field -> attribute of `Decision`.
DECISION_ATTRIBUTES = {
    "allowed": "allowed",
    "reason": "reason",
    "tier": "tier",
    "policy": "policy",
    "rule": "rule_index",
    "action": "action",
}

_FLOW = re.compile(
    r"^(?P<source>\S+) -> (?P<destination>\S+) (?:(?P<port>\d+)/(?P<protocol>TCP|UDP|SCTP)|ICMP)$"
)
_HEADING = re.compile(r"^#{2,3} (?P<number>\d+(?:\.\d+)?)\.? ", re.MULTILINE)


@dataclass(frozen=True)
class DirectionExpectation:
    fields: Mapping[str, Any]  # case-file names (DECISION_FIELDS) -> expected value


@dataclass(frozen=True)
class FlowExpectation:
    flow: Flow
    allowed: bool
    egress: DirectionExpectation
    ingress: DirectionExpectation
    where: Location | None


@dataclass(frozen=True)
class CalicoCase:
    id: str
    path: Path
    section: str  # "1.3", without the §
    quote: str
    scenario: Any  # the scenario mapping, still carrying its line numbers
    expectations: tuple[FlowExpectation, ...]
    expected_error: str | None
    oracle_bug: str | None = None

    @property
    def pinned(self) -> str:
        return f'calico-semantics.md §{self.section}: "{self.quote}"'


def parse_flow(text: str, where: Location | None) -> Flow:
    """`x/a -> y/b 80/TCP` or `x/a -> 192.0.2.1 ICMP`, exactly as `Flow.__str__` writes it."""
    match = _FLOW.match(text)
    if match is None:
        raise LocatedError(where, f"flow {text!r} is not 'SOURCE -> DESTINATION PORT/PROTOCOL' or '... ICMP'")
    port = match["port"]
    return Flow(
        match["source"], match["destination"], int(port) if port else None, match["protocol"] or "ICMP"
    )


def _check_fields(
    value: Any, allowed: frozenset[str], what: str, where: Location | None
) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise LocatedError(where, f"{what} must be a mapping")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise LocatedError(
            where, f"unknown field(s) {', '.join(unknown)} in {what}; known: {', '.join(sorted(allowed))}"
        )
    return value


def _direction(value: Any, where: Location | None) -> DirectionExpectation:
    if value is None:
        return DirectionExpectation({})
    return DirectionExpectation(dict(_check_fields(value, DECISION_FIELDS, "a direction expectation", where)))


def _expectation(entry: Any, where: Location | None) -> FlowExpectation:
    fields = _check_fields(entry, EXPECT_FIELDS, "an expectation", where)
    if "flow" not in fields or not isinstance(fields.get("allowed"), bool):
        raise LocatedError(where, "an expectation needs `flow` and a boolean `allowed`")
    return FlowExpectation(
        flow=parse_flow(fields["flow"], where),
        allowed=fields["allowed"],
        egress=_direction(fields.get("egress"), location_of(entry, "egress") or where),
        ingress=_direction(fields.get("ingress"), location_of(entry, "ingress") or where),
        where=where,
    )


def load_case(path: Path) -> CalicoCase:
    documents = load_file(path)
    if len(documents) != 1:
        raise LocatedError(Location(str(path), 1), "a case file holds exactly one YAML document")
    data = _check_fields(documents[0], CASE_FIELDS, "a case", Location(str(path), 1))
    semantics = _check_fields(
        data.get("semantics"), SEMANTICS_FIELDS, "semantics", location_of(data, "semantics")
    )
    if ("expect" in data) == ("expect_error" in data):
        raise LocatedError(Location(str(path), 1), "a case has exactly one of `expect` and `expect_error`")
    if "scenario" not in data:
        raise LocatedError(Location(str(path), 1), "a case needs a `scenario`")
    entries = data.get("expect") or []
    expectations = tuple(
        _expectation(entry, location_of(entries) if location_of(entry) is None else location_of(entry))
        for entry in entries
    )
    return CalicoCase(
        id=path.stem,
        path=path,
        section=str(semantics["section"]).removeprefix("§"),
        quote=str(semantics["quote"]),
        scenario=data["scenario"],
        expectations=expectations,
        expected_error=data.get("expect_error"),
        oracle_bug=data.get("oracle_bug"),
    )


def case_paths() -> list[Path]:
    return sorted(CASES_DIRECTORY.glob("*.yaml"))


def normalised(text: str) -> str:
    """Whitespace collapsed: a quote may be re-wrapped in YAML without changing what it says."""
    return " ".join(text.split())


def semantics_sections(document: str) -> Iterator[tuple[str, str]]:
    """(section number, normalised text) for every `## N.` / `### N.M` section of calico-semantics.md."""
    headings = list(_HEADING.finditer(document))
    for heading, following in zip(headings, [*headings[1:], None], strict=True):
        end = following.start() if following is not None else len(document)
        yield heading["number"], normalised(document[heading.start() : end])


def sections_quoting(document: str, quote: str) -> list[str]:
    wanted = normalised(quote)
    return [number for number, text in semantics_sections(document) if wanted in text]
