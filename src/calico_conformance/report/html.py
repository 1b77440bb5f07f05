"""Reachability matrices as standalone HTML: the Allure attachment of a test and `reports/matrices.html`.

The page opens with what needs reading: a table of the tests that did not pass (test, cluster, whose
fault, how many flows are wrong, the head line of the failure), each linking to its section. Then one
section per test and cluster, failing ones first: its one matrix (`pair_matrix`: sources by
destinations, each cell the ports and protocols that differ, or what is allowed) and, folded, every
wrong flow with its explanation. Passing tests follow, folded. The page needs no script and no network
and fits a 1400-pixel window for the reference layout: names break after their namespace and the table
is as wide as the window, never wider.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from calico_conformance.pair_matrix import legend, pair_matrix, render_pair_html
from calico_conformance.reachability import Comparison, MismatchKind

MATRICES_FILE_NAME = "matrices.html"
_UNSAFE_ANCHOR = re.compile(r"[^A-Za-z0-9_.-]+")

_STYLE = """
body { font-family: sans-serif; margin: 1.2em; max-width: 1360px; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.05em; margin: 1.6em 0 0.3em; word-break: break-word; }
table { border-collapse: collapse; margin: 0.4em 0 0.8em; }
th, td { border: 1px solid #c8c8c8; padding: 3px 6px; vertical-align: top; }
th { background: #f3f3f3; font-weight: normal; text-align: left; }
table.facts td, table.facts th { font-size: 0.85em; }
table.summary { width: 100%; font-size: 0.9em; }
table.summary td { word-break: break-word; }
table.pairs { table-layout: fixed; width: 100%; font-size: 0.8em; font-family: monospace; }
table.pairs th { word-break: break-word; }
table.pairs th.corner { color: #777; }
table.pairs td { word-break: break-word; }
td.leak { background: #f4a3a3; }
td.blocked { background: #a9c8f4; }
td.unproven { background: #ffd27f; }
td.allowed { background: #dff3df; }
td.quiet { color: #999; text-align: center; }
td.none { background: #fafafa; }
.policy { color: #a00000; font-weight: bold; } .cluster { color: #00489a; font-weight: bold; }
.masked { color: #7a3e00; font-weight: bold; } .error { color: #8a6d00; font-weight: bold; }
p.legend, p.quiet { color: #555; font-size: 0.85em; margin: 0.2em 0; }
ul.wrong li { font-family: monospace; font-size: 0.8em; margin-bottom: 0.3em; }
details.passed > summary { cursor: pointer; color: #2c662d; }
"""


@dataclass(frozen=True)
class MatrixSection:
    """One test on one cluster: its comparison and how the test ended."""

    title: str  # the test's node id
    comparison: Comparison
    cluster: str = ""
    outcome: str = "passed"  # report Outcome value: passed, failed, error, skipped, not_supported
    headline: str = ""  # the first line of the failure
    defects: tuple[str, ...] = ()  # whose fault: policy, cluster, masked

    @property
    def anchor(self) -> str:
        return section_anchor(self.title, self.cluster)

    @property
    def failing(self) -> bool:
        return self.outcome != "passed" or not self.comparison.ok


def section_anchor(nodeid: str, cluster: str) -> str:
    """The fragment id of a test's section: safe characters only, stable across runs."""
    return _UNSAFE_ANCHOR.sub("-", f"{nodeid}-{cluster}" if cluster else nodeid).strip("-")


def matrices_link(report_dir: Path, nodeid: str, cluster: str) -> Path:
    """Where a test's matrix is: `reports/matrices.html#<anchor>` (as a path, for display)."""
    return report_dir / f"{MATRICES_FILE_NAME}#{section_anchor(nodeid, cluster)}"


def comparison_fragment(comparison: Comparison, observed_label: str = "observed") -> str:
    """The one matrix of a comparison, then its wrong flows (folded) with their explanations."""
    parts = [render_pair_html(pair_matrix(comparison))]
    if comparison.mismatches:
        items = "".join(
            f"<li>{html.escape(mismatch.describe(observed_label))}</li>" for mismatch in comparison.mismatches
        )
        parts.append(
            f"<details><summary>{len(comparison.mismatches)} wrong flow(s), each explained</summary>"
            f'<ul class="wrong">{items}</ul></details>'
        )
    return "\n".join(parts)


def one_test_page(section: MatrixSection, observed_label: str = "observed") -> str:
    """One test's matrix as a page of its own (the Allure attachment): no summary, no facts."""
    title = f"{section.title} on {section.cluster}"
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="legend">{html.escape(legend(observed_label))}</p>',
        comparison_fragment(section.comparison, observed_label),
    ]
    return _page(title, body)


def _page(title: str, body: list[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _summary_table(sections: list[MatrixSection]) -> str:
    rows = []
    for section in sections:
        wrong = section.comparison.mismatches
        leaks = sum(1 for m in wrong if m.kind is MismatchKind.LEAK)
        fault = (
            ", ".join(
                f'<span class="{html.escape(kind)}">{html.escape(kind)}</span>' for kind in section.defects
            )
            or f'<span class="error">{html.escape(section.outcome)}</span>'
        )
        rows.append(
            f'<tr><td><a href="#{section.anchor}">{html.escape(section.title)}</a></td>'
            f"<td>{html.escape(section.cluster)}</td><td>{fault}</td>"
            f"<td>{len(wrong)} of {len(section.comparison.expected)} ({leaks} leaked)</td>"
            f"<td>{html.escape(section.headline)}</td></tr>"
        )
    head = "<tr><th>test</th><th>cluster</th><th>whose fault</th><th>wrong flows</th><th>failure</th></tr>"
    return f'<table class="summary"><colgroup><col style="width:30%"><col style="width:7%"><col style="width:9%"><col style="width:11%"><col></colgroup>{head}{"".join(rows)}</table>'


def matrices_document(
    title: str,
    sections: Iterable[MatrixSection],
    facts: Mapping[str, str] | None = None,
    observed_label: str = "observed",
) -> str:
    """A complete HTML page: failing tests first (a linked summary, then their matrices), then passing
    tests folded, with the run's facts (target, Calico version...) below the summary."""
    ordered = sorted(sections, key=lambda section: (not section.failing, section.title, section.cluster))
    failing = [section for section in ordered if section.failing]
    body = [f"<h1>{html.escape(title)}</h1>"]
    if failing:
        body.append(f"<p><b>{len(failing)} test(s) did not pass</b> — each links to its matrix below.</p>")
        body.append(_summary_table(failing))
    elif ordered:
        body.append(f"<p><b>every one of the {len(ordered)} test(s) passed</b> on every flow.</p>")
    else:
        body.append("<p>no test recorded reachability cases</p>")
    if facts:
        rows = "".join(
            f"<tr><th>{html.escape(key)}</th><td>{html.escape(value)}</td></tr>"
            for key, value in facts.items()
        )
        body.append(f'<details><summary>run facts</summary><table class="facts">{rows}</table></details>')
    body.append(f'<p class="legend">{html.escape(legend(observed_label))}</p>')
    for section in ordered:
        heading = (
            f'<h2 id="{section.anchor}">{html.escape(section.title)} on {html.escape(section.cluster)}</h2>'
        )
        fragment = comparison_fragment(section.comparison, observed_label)
        if section.failing:
            headline = f"<p>{html.escape(section.headline)}</p>" if section.headline else ""
            body.append(heading + headline + fragment)
        else:
            body.append(
                f'<details class="passed" id="{section.anchor}"><summary>passed: {html.escape(section.title)} '
                f"on {html.escape(section.cluster)} ({len(section.comparison.expected)} flows)</summary>"
                f"{fragment}</details>"
            )
    return _page(title, body)
