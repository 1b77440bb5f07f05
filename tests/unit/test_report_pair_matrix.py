"""One matrix per test: named rows and columns, each cell the ports and protocols that differ."""

from __future__ import annotations

from calico_conformance.pair_matrix import pair_matrix, render_pair_html, render_pair_text, services_text
from calico_conformance.reachability import (
    Comparison,
    Expectation,
    ExpectedMatrix,
    Flow,
    Observation,
    ObservedMatrix,
    ProbeVerdict,
    compare,
)

LEDGER, SHOP, LOGS = "royal-bank/ledger", "customer-a/shop", "platform/log-collector"


def _comparison() -> Comparison:
    cells = {
        # ledger -> shop: denied as required, except 8443 and ICMP, which leak
        Flow(LEDGER, SHOP, 8443, "TCP"): (False, ProbeVerdict.ALLOWED),
        Flow(LEDGER, SHOP, None, "ICMP"): (False, ProbeVerdict.ALLOWED),
        Flow(LEDGER, SHOP, 53, "UDP"): (False, ProbeVerdict.DROPPED),
        # ledger -> logs: 5044 allowed as required, 5045 blocked
        Flow(LEDGER, LOGS, 5044, "TCP"): (True, ProbeVerdict.ALLOWED),
        Flow(LEDGER, LOGS, 5045, "TCP"): (True, ProbeVerdict.DROPPED),
        # shop -> ledger: everything denied, as required: a quiet row and no column of its own
        Flow(SHOP, LEDGER, 8443, "TCP"): (False, ProbeVerdict.DROPPED),
        Flow(SHOP, LEDGER, None, "ICMP"): (False, ProbeVerdict.DROPPED),
    }
    return compare(
        ExpectedMatrix({flow: Expectation(allowed) for flow, (allowed, _) in cells.items()}),
        ObservedMatrix({flow: Observation(verdict) for flow, (_, verdict) in cells.items()}),
    )


def test_services_are_listed_compactly_with_port_ranges() -> None:
    flows = [Flow("a/x", "b/y", port, "TCP") for port in (8080, 54, 5045, 5044, 5046)]
    flows += [Flow("a/x", "b/y", None, "ICMP"), Flow("a/x", "b/y", 53, "UDP")]
    assert services_text(flows) == "ICMP; TCP 54,5044-5046,8080; UDP 53"


def test_one_matrix_names_its_rows_and_columns_and_each_cell_says_what_differs() -> None:
    matrix = pair_matrix(_comparison())
    assert matrix.rows == (LEDGER,)
    assert matrix.columns == (SHOP, LOGS)
    assert matrix.quiet_rows == (SHOP,)  # every flow from the shop denied, as required
    assert matrix.quiet_columns == (LEDGER,)
    assert matrix.cells[(LEDGER, SHOP)].text() == "leak ICMP; TCP 8443"
    assert matrix.cells[(LEDGER, LOGS)].text() == "blocked TCP 5045"
    text = render_pair_text(matrix)
    header = next(line for line in text.splitlines() if line.startswith("from \\ to"))
    assert [cell.strip() for cell in header.split("|")] == ["from \\ to", SHOP, LOGS]
    assert f"left out, every flow denied as required: sources {SHOP}; destinations {LEDGER}" in text


def test_a_cell_with_nothing_wrong_shows_what_is_allowed_or_a_dash() -> None:
    comparison = compare(
        ExpectedMatrix(
            {
                Flow(LEDGER, LOGS, 5044, "TCP"): Expectation(True),
                Flow(SHOP, LOGS, 5044, "TCP"): Expectation(False),
            }
        ),
        ObservedMatrix(
            {
                Flow(LEDGER, LOGS, 5044, "TCP"): Observation(ProbeVerdict.ALLOWED),
                Flow(SHOP, LOGS, 5044, "TCP"): Observation(ProbeVerdict.DROPPED),
            }
        ),
    )
    matrix = pair_matrix(comparison, keep_quiet=True)
    assert matrix.cells[(LEDGER, LOGS)].text() == "allowed TCP 5044"
    assert matrix.cells[(SHOP, LOGS)].text() == "-"


def test_html_matrix_has_a_class_per_cell_and_breakable_names() -> None:
    page = render_pair_html(pair_matrix(_comparison()))
    assert '<td class="leak"><b>leak</b> ICMP; TCP 8443</td>' in page
    assert '<td class="blocked"><b>blocked</b> TCP 5045</td>' in page
    assert "platform/<wbr>log-collector" in page
    assert page.count("<tr>") == 2  # the header and the one row with something to show
