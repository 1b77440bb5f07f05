"""Reachability matrices: who can reach whom, expected versus observed, and the diff between them.

Every suite asserts on these types, whatever the target: the oracle fills an `ExpectedMatrix`, probes (or
the oracle, on the static target) fill an `ObservedMatrix`, and `compare` says which flows disagree. Pure
Python: nothing here knows Kubernetes or pytest.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field


class ProbeVerdict(str, enum.Enum):
    """What one probe saw. Only `dropped` (or `rejected`, where the deny action is REJECT) is a deny."""

    ALLOWED = "allowed"  # handshake, echo or answer received
    DROPPED = "dropped"  # nothing before the timeout
    REJECTED = "rejected"  # TCP RST or ICMP unreachable
    ERROR = "error"  # the probe itself could not run: never a pass

    def __str__(self) -> str:
        return self.value


# Calico's default deny action is DROP (FelixConfiguration `iptablesFilterDenyAction`): a RST means the
# packet reached the destination, i.e. policy let it through to a closed port.
DEFAULT_DENY_VERDICTS: frozenset[ProbeVerdict] = frozenset({ProbeVerdict.DROPPED})


@dataclass(frozen=True)
class Flow:
    """One directed flow: `source` and `destination` are workload keys (`namespace/pod`) or IP addresses."""

    source: str
    destination: str
    port: int | None  # None for ICMP
    protocol: str  # "TCP", "UDP", "SCTP", "ICMP"

    @property
    def service(self) -> str:
        """The port/protocol part, e.g. `80/TCP`, or `ICMP`."""
        return self.protocol if self.port is None else f"{self.port}/{self.protocol}"

    def __str__(self) -> str:
        return f"{self.source} -> {self.destination} {self.service}"

    def sort_key(self) -> tuple[str, str, str, int]:
        """Sources, then destinations, then protocol and port; ICMP (no port) sorts first."""
        return (self.source, self.destination, self.protocol, -1 if self.port is None else self.port)

    def __lt__(self, other: Flow) -> bool:
        return self.sort_key() < other.sort_key()


@dataclass(frozen=True)
class Expectation:
    """What should happen to a flow, and why (the deciding tier/policy/rule, or the requirement)."""

    allowed: bool
    why: str = ""


@dataclass(frozen=True)
class Observation:
    """What a probe saw for a flow."""

    verdict: ProbeVerdict
    detail: str = ""  # error text, or why an answer was not believed
    answered_by: str | None = None  # identity (`namespace/pod`) of the server that answered
    attempts: int = 1
    converge_s: float | None = None  # seconds until the flow matched expectation steadily
    same_node: bool | None = None
    why: str = ""  # on the static target: the oracle's explanation


@dataclass(frozen=True)
class ExpectedMatrix(Mapping[Flow, Expectation]):
    """An immutable mapping Flow -> Expectation."""

    cells: Mapping[Flow, Expectation] = field(default_factory=dict)

    def __getitem__(self, flow: Flow) -> Expectation:
        return self.cells[flow]

    def __iter__(self) -> Iterator[Flow]:
        return iter(sorted(self.cells))

    def __len__(self) -> int:
        return len(self.cells)

    @classmethod
    def from_function(cls, flows: Iterable[Flow], decide: Callable[[Flow], Expectation]) -> ExpectedMatrix:
        return cls({flow: decide(flow) for flow in flows})


@dataclass(frozen=True)
class ObservedMatrix(Mapping[Flow, Observation]):
    """An immutable mapping Flow -> Observation."""

    cells: Mapping[Flow, Observation] = field(default_factory=dict)

    def __getitem__(self, flow: Flow) -> Observation:
        return self.cells[flow]

    def __iter__(self) -> Iterator[Flow]:
        return iter(sorted(self.cells))

    def __len__(self) -> int:
        return len(self.cells)


def observed_allowed(
    observation: Observation, deny_verdicts: frozenset[ProbeVerdict] = DEFAULT_DENY_VERDICTS
) -> bool | None:
    """True if allowed, False if denied, None if the observation proves neither (an error, or a
    verdict that is not this cluster's deny action)."""
    if observation.verdict is ProbeVerdict.ALLOWED:
        return True
    if observation.verdict in deny_verdicts:
        return False
    return None


class MismatchKind(str, enum.Enum):
    LEAK = "leak"  # expected denied, observed allowed: isolation is broken
    BLOCKED = "blocked"  # expected allowed, observed denied
    UNPROVEN = "unproven"  # an error, a missing probe, or a verdict that is no deny here

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Mismatch:
    flow: Flow
    kind: MismatchKind
    expected: Expectation
    observed: Observation | None

    def __str__(self) -> str:
        return self.describe()

    def describe(self, observed_label: str = "observed") -> str:
        """`leak: a -> b 80/TCP: expected denied, observed allowed; ...`, saying `oracle` instead of
        `observed` where the oracle stands in for probes (the static target)."""
        seen = "no observation" if self.observed is None else str(self.observed.verdict)
        text = f"{self.kind}: {self.flow}: expected {'allowed' if self.expected.allowed else 'denied'}"
        text += f", {observed_label} {seen}"
        if self.observed is not None and self.observed.detail:
            text += f" ({self.observed.detail})"
        if self.expected.why:
            text += f"; expected because {self.expected.why}"
        if self.observed is not None and self.observed.why:
            text += f"; decided by {self.observed.why}"
        return text


@dataclass(frozen=True)
class Comparison:
    """The result of `compare`: every flow that disagrees, errors first, then leaks, then blocks."""

    expected: ExpectedMatrix
    observed: ObservedMatrix
    mismatches: tuple[Mismatch, ...]

    @property
    def ok(self) -> bool:
        return not self.mismatches

    @property
    def errors(self) -> tuple[Mismatch, ...]:
        return tuple(m for m in self.mismatches if m.kind is MismatchKind.UNPROVEN)

    @property
    def leaks(self) -> tuple[Mismatch, ...]:
        return tuple(m for m in self.mismatches if m.kind is MismatchKind.LEAK)

    def render(self, observed_label: str = "observed") -> str:
        """The one matrix of the comparison (sources x destinations, each cell what differs) and every
        wrong flow with its explanation: the long form a `-vv` failure and the text attachment print."""
        from calico_conformance.pair_matrix import pair_matrix, render_pair_text  # it renders this type

        parts = [render_pair_text(pair_matrix(self), observed_label)]
        if self.mismatches:
            parts.append("wrong flows:")
            parts.extend(f"  {mismatch.describe(observed_label)}" for mismatch in self.mismatches)
        return "\n".join(parts)


def compare(
    expected: ExpectedMatrix,
    observed: ObservedMatrix,
    deny_verdicts: frozenset[ProbeVerdict] = DEFAULT_DENY_VERDICTS,
) -> Comparison:
    """Every expected flow must be observed with the same outcome; an error is never a match."""
    mismatches: list[Mismatch] = []
    for flow in expected:
        expectation = expected[flow]
        observation = observed.cells.get(flow)
        allowed = None if observation is None else observed_allowed(observation, deny_verdicts)
        if allowed is None:
            kind = MismatchKind.UNPROVEN
        elif allowed == expectation.allowed:
            continue
        else:
            kind = MismatchKind.LEAK if allowed else MismatchKind.BLOCKED
        mismatches.append(Mismatch(flow, kind, expectation, observation))
    order = {MismatchKind.UNPROVEN: 0, MismatchKind.LEAK: 1, MismatchKind.BLOCKED: 2}
    mismatches.sort(key=lambda m: (order[m.kind], m.flow))
    return Comparison(expected, observed, tuple(mismatches))


# --- per-service mark grids (`calico-conformance simulate`'s table; the suites draw `pair_matrix`) ---

ALLOWED_MARK = "."
DENIED_MARK = "X"
ERROR_MARK = "E"
MISSING_MARK = " "


def expectation_marks(matrix: Mapping[Flow, Expectation]) -> dict[Flow, str]:
    return {flow: ALLOWED_MARK if exp.allowed else DENIED_MARK for flow, exp in matrix.items()}


def _grids(
    marks: Mapping[Flow, str],
) -> Iterator[tuple[str, list[str], list[str], dict[tuple[str, str], str]]]:
    """One grid per service (port/protocol): (title, row keys, column keys, cells)."""
    by_service: dict[tuple[str, int, str], dict[tuple[str, str], str]] = {}
    for flow, mark in marks.items():
        key = (flow.protocol, -1 if flow.port is None else flow.port, flow.service)
        by_service.setdefault(key, {})[(flow.source, flow.destination)] = mark
    for (_, _, title), cells in sorted(by_service.items()):
        rows = sorted({source for source, _ in cells})
        columns = sorted({destination for _, destination in cells})
        yield title, rows, columns, cells


# Destination names longer than this are replaced by column numbers and a legend, so a table of long
# `namespace/workload` keys stays readable in a terminal instead of running hundreds of characters wide.
MAX_COLUMN_LABEL = 3


def render_text(marks: Mapping[Flow, str]) -> str:
    """Truth tables as text: rows are sources, columns destinations, one table per port/protocol."""
    blocks = []
    for title, rows, columns, cells in _grids(marks):
        numbered = any(len(column) > MAX_COLUMN_LABEL for column in columns)
        labels = [str(n) for n in range(1, len(columns) + 1)] if numbered else columns
        width = max([len(title), *(len(row) for row in rows)])
        col_width = max([1, *(len(label) for label in labels)])
        lines = [f"{title:<{width}} | " + " ".join(f"{label:^{col_width}}" for label in labels)]
        lines.append("-" * len(lines[0]))
        for row in rows:
            line = " ".join(f"{cells.get((row, c), MISSING_MARK):^{col_width}}" for c in columns)
            lines.append(f"{row:<{width}} | {line}".rstrip())
        if numbered:
            lines.append("columns: " + ", ".join(f"{n} {c}" for n, c in zip(labels, columns, strict=True)))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) if blocks else "(empty)"
