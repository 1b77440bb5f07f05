"""Reachability matrices as standalone HTML: the Allure attachment of a test and the report-dir page.

`reachability.render_html` gives bare tables, one per port/protocol, whose cells carry a class per mark
(`m46` for `.`, `m88` for `X`, ...). This module wraps them in a document with a legend and colours that
depend on the matrix: in an *expected* or *observed* matrix `X` is an ordinary deny, in a *diff* matrix
`X` is a leak (isolation broken) and is shown in red. The page needs no script and no network.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from calico_conformance.reachability import (
    Comparison,
    diff_marks,
    expectation_marks,
    observation_marks,
    render_html,
)

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; } h3 { font-size: 1em; }
table { border-collapse: collapse; margin: 0.5em 1em 1em 0; display: inline-table; vertical-align: top; }
caption { font-weight: bold; text-align: left; }
th, td { border: 1px solid #bbb; padding: 2px 6px; font-family: monospace; text-align: center; }
th { background: #f3f3f3; font-weight: normal; }
td.m46 { background: #dff3df; }
.expected td.m88, .observed td.m88 { background: #e4e4e4; }
.observed td.m82 { background: #fff0c2; }
td.m69 { background: #ffd27f; font-weight: bold; }
.diff td.m88 { background: #f4a3a3; font-weight: bold; }
.diff td.m66 { background: #a9c8f4; font-weight: bold; }
.diff td.m46 { background: #ffffff; }
ul.wrong li { font-family: monospace; }
p.legend { color: #555; }
"""

LEGEND = (
    "expected/observed: . allowed, X denied (dropped), R rejected, E error (nothing proven); "
    "diff: X leak (expected denied, observed allowed), B blocked (expected allowed, observed denied), "
    "E unproven"
)


@dataclass(frozen=True)
class MatrixSection:
    """One titled comparison: a test on a cluster."""

    title: str
    comparison: Comparison


def comparison_fragment(comparison: Comparison) -> str:
    """Expected, observed and diff tables of one comparison, plus its wrong flows."""
    parts = []
    for css_class, marks in (
        ("expected", expectation_marks(comparison.expected)),
        ("observed", observation_marks(comparison.observed)),
        ("diff", diff_marks(comparison)),
    ):
        parts.append(f'<div class="{css_class}"><h3>{css_class}</h3>{render_html(marks)}</div>')
    if comparison.mismatches:
        items = "".join(f"<li>{html.escape(str(mismatch))}</li>" for mismatch in comparison.mismatches)
        parts.append(f'<ul class="wrong">{items}</ul>')
    else:
        parts.append("<p>every flow as expected</p>")
    return "\n".join(parts)


def matrices_document(
    title: str, sections: Iterable[MatrixSection], facts: Mapping[str, str] | None = None
) -> str:
    """A complete HTML page of comparisons, with the run's facts (target, Calico version...) on top."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    if facts:
        rows = "".join(
            f"<tr><th>{html.escape(key)}</th><td>{html.escape(value)}</td></tr>"
            for key, value in facts.items()
        )
        body.append(f"<table>{rows}</table>")
    body.append(f'<p class="legend">{html.escape(LEGEND)}</p>')
    count = 0
    for section in sections:
        count += 1
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        body.append(comparison_fragment(section.comparison))
    if not count:
        body.append("<p>no test recorded reachability cases</p>")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
