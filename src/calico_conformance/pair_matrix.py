"""One matrix per test: sources by destinations, each cell saying which ports and protocols differ.

A comparison holds one flow per (source, destination, port/protocol). Drawing one grid per port made a
failing default-deny test print fourteen grids with numbered columns; a reader wants one picture: who
reaches whom, and on which services the cluster (or the oracle) disagrees with the requirement. Each
cell of this matrix is one (source, destination) pair and says what is wrong there (`leak ICMP; TCP
54,5044-5045`), or, when nothing is, what is allowed (`allowed TCP 5044`) or `-` (denied, as required).
Rows and columns whose every cell is `-` are left out and named under the grid, so the matrix of a
namespace's sentinel is a few cells wide instead of a dozen. Pure: text and HTML strings only.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from calico_conformance.reachability import Flow, MismatchKind

if TYPE_CHECKING:
    from calico_conformance.reachability import Comparison

DENIED_AS_REQUIRED = "-"
# Cell words, in the order a cell lists them: what breaks isolation first.
WRONG_ORDER = (MismatchKind.LEAK, MismatchKind.BLOCKED, MismatchKind.UNPROVEN)


def services_text(flows: Iterable[Flow]) -> str:
    """The ports and protocols of some flows, compactly: `ICMP; TCP 54,5044-5045,8080; UDP 53`."""
    ports: dict[str, list[int]] = {}
    portless: set[str] = set()
    for flow in flows:
        if flow.port is None:
            portless.add(flow.protocol)
        else:
            ports.setdefault(flow.protocol, []).append(flow.port)
    parts = sorted(portless)
    for protocol in sorted(ports):
        parts.append(f"{protocol} {_ranges(sorted(set(ports[protocol])))}")
    return "; ".join(parts)


def _ranges(numbers: Sequence[int]) -> str:
    """`[54, 5044, 5045, 5046, 8080]` -> `54,5044-5046,8080`."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ",".join(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs)


@dataclass(frozen=True)
class PairCell:
    """Every flow of one (source, destination) pair, sorted by what became of it."""

    allowed: tuple[Flow, ...] = ()  # allowed, as required
    denied: tuple[Flow, ...] = ()  # denied, as required
    leaked: tuple[Flow, ...] = ()
    blocked: tuple[Flow, ...] = ()
    unproven: tuple[Flow, ...] = ()

    @property
    def wrong(self) -> bool:
        return bool(self.leaked or self.blocked or self.unproven)

    @property
    def quiet(self) -> bool:
        """Nothing to see: every flow denied, as required."""
        return not self.wrong and not self.allowed

    def parts(self) -> list[tuple[str, str]]:
        """(kind, services) of the cell: the wrong kinds when any, else what is allowed, else `-`."""
        wrong = [
            (str(kind), services_text(flows))
            for kind, flows in zip(WRONG_ORDER, (self.leaked, self.blocked, self.unproven), strict=True)
            if flows
        ]
        if wrong:
            return wrong
        if self.allowed:
            return [("allowed", services_text(self.allowed))]
        return [("denied", DENIED_AS_REQUIRED)]

    def text(self) -> str:
        if self.quiet:
            return DENIED_AS_REQUIRED
        return " | ".join(f"{kind} {services}" for kind, services in self.parts())


@dataclass(frozen=True)
class PairMatrix:
    """Rows (sources) and columns (destinations) that have something to show, their cells, and the
    names left out because every flow from or to them was denied, as required."""

    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: dict[tuple[str, str], PairCell]
    quiet_rows: tuple[str, ...]
    quiet_columns: tuple[str, ...]
    flows: int

    def cell(self, source: str, destination: str) -> PairCell | None:
        return self.cells.get((source, destination))


def pair_matrix(comparison: Comparison, *, keep_quiet: bool = False) -> PairMatrix:
    """The comparison as one sources x destinations matrix (quiet rows and columns left out unless
    `keep_quiet`)."""
    kind_of = {mismatch.flow: mismatch.kind for mismatch in comparison.mismatches}
    grouped: dict[tuple[str, str], dict[str, list[Flow]]] = {}
    for flow in comparison.expected:
        bucket = grouped.setdefault((flow.source, flow.destination), {})
        kind = kind_of.get(flow)
        matched = "allowed" if comparison.expected[flow].allowed else "denied"
        name = matched if kind is None else str(kind)
        bucket.setdefault(name, []).append(flow)
    cells = {
        pair: PairCell(
            allowed=tuple(bucket.get("allowed", ())),
            denied=tuple(bucket.get("denied", ())),
            leaked=tuple(bucket.get(str(MismatchKind.LEAK), ())),
            blocked=tuple(bucket.get(str(MismatchKind.BLOCKED), ())),
            unproven=tuple(bucket.get(str(MismatchKind.UNPROVEN), ())),
        )
        for pair, bucket in grouped.items()
    }
    sources = sorted({source for source, _ in cells})
    destinations = sorted({destination for _, destination in cells})
    loud = {pair for pair, cell in cells.items() if not cell.quiet}
    rows = tuple(s for s in sources if keep_quiet or any(pair[0] == s for pair in loud))
    columns = tuple(d for d in destinations if keep_quiet or any(pair[1] == d for pair in loud))
    return PairMatrix(
        rows=rows,
        columns=columns,
        cells=cells,
        quiet_rows=tuple(s for s in sources if s not in rows),
        quiet_columns=tuple(d for d in destinations if d not in columns),
        flows=len(comparison.expected),
    )


def legend(observed_label: str = "observed") -> str:
    return (
        f"cells: leak = {observed_label} allowed, required denied; blocked = {observed_label} denied, "
        f"required allowed; unproven = no verdict; allowed = allowed as required; - = denied as required"
    )


def render_pair_text(matrix: PairMatrix, observed_label: str = "observed") -> str:
    """The matrix as a text table with named rows and columns, the legend above it."""
    corner = "from \\ to"
    if not matrix.rows:
        return f"every flow of the {matrix.flows} probed was denied, as required ({len(matrix.cells)} pairs)"
    texts = {pair: cell.text() for pair, cell in matrix.cells.items()}
    row_width = max(len(corner), *(len(row) for row in matrix.rows))
    widths = [
        max(len(column), *(len(texts.get((row, column), "")) for row in matrix.rows))
        for column in matrix.columns
    ]
    header = f"{corner:<{row_width}} | " + " | ".join(
        f"{column:<{width}}" for column, width in zip(matrix.columns, widths, strict=True)
    )
    lines = [legend(observed_label), header.rstrip(), "-" * len(header.rstrip())]
    for row in matrix.rows:
        cells = " | ".join(
            f"{texts.get((row, column), ''):<{width}}"
            for column, width in zip(matrix.columns, widths, strict=True)
        )
        lines.append(f"{row:<{row_width}} | {cells}".rstrip())
    lines.extend(_quiet_lines(matrix))
    return "\n".join(lines)


QUIET_NAMES_LISTED = 4  # more quiet rows or columns than this are counted, not named


def _quiet_lines(matrix: PairMatrix) -> list[str]:
    """One line saying which rows and columns were left out (all denied, as required)."""
    parts = [
        _named(matrix.quiet_rows, "source"),
        _named(matrix.quiet_columns, "destination"),
    ]
    shown = [part for part in parts if part]
    if not shown:
        return []
    return [f"left out, every flow denied as required: {'; '.join(shown)}"]


def _named(names: tuple[str, ...], what: str) -> str:
    if not names:
        return ""
    if len(names) <= QUIET_NAMES_LISTED:
        return f"{what}s {', '.join(names)}"
    return f"{len(names)} other {what}s"


def render_pair_html(matrix: PairMatrix) -> str:
    """The matrix as an HTML table: class `leak`, `blocked`, `unproven`, `allowed` or `quiet` per cell;
    names break after their `/` so a column is as wide as its longest part, not its whole key."""
    if not matrix.rows:
        return (
            f'<p class="quiet">every flow of the {matrix.flows} probed was denied, as required '
            f"({len(matrix.cells)} pairs)</p>"
        )
    head = "".join(f'<th scope="col">{_name(column)}</th>' for column in matrix.columns)
    body = []
    for row in matrix.rows:
        tds = []
        for column in matrix.columns:
            cell = matrix.cell(row, column)
            if cell is None:
                tds.append('<td class="none"></td>')
                continue
            parts = cell.parts()
            css = parts[0][0] if cell.wrong or cell.allowed else "quiet"
            content = "<br>".join(_cell_html(kind, services) for kind, services in parts)
            tds.append(f'<td class="{css}">{content}</td>')
        body.append(f'<tr><th scope="row">{_name(row)}</th>{"".join(tds)}</tr>')
    names = "; ".join(filter(None, (", ".join(matrix.quiet_rows), ", ".join(matrix.quiet_columns))))
    quiet = "".join(
        f'<p class="quiet" title="{html.escape(names)}">{html.escape(line)}</p>'
        for line in _quiet_lines(matrix)
    )
    return (
        f'<table class="pairs"><thead><tr><th class="corner">from \\ to</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{quiet}"
    )


def _cell_html(kind: str, services: str) -> str:
    """`<b>leak</b> TCP 8443` for what is wrong, `allowed TCP 5044` for what is right, `-` for denied."""
    if kind == "denied":
        return html.escape(services)
    word = html.escape(kind) if kind == "allowed" else f"<b>{html.escape(kind)}</b>"
    return f"{word} {html.escape(services)}"


def _name(key: str) -> str:
    """A workload key with a break opportunity after the namespace: `royal-bank/<wbr>ledger`."""
    return "/<wbr>".join(html.escape(part) for part in key.split("/"))
