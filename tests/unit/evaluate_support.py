"""Inline scenarios for the evaluator's unit tests: YAML text in, an Oracle out, line numbers kept.

A test states its cluster in the scenario format users write (ARCHITECTURE.md), so what it pins reads
like the input it is about; `file:line` in explanations refer to lines of that text (source `case.yaml`).
"""

from __future__ import annotations

import textwrap

from calico_conformance.oracle.evaluate import Oracle, Verdict
from calico_conformance.oracle.scenario import scenario_from_data
from calico_conformance.oracle.yamlsrc import load_documents
from calico_conformance.reachability import Flow

SOURCE = "case.yaml"


def oracle_for(text: str) -> Oracle:
    """The oracle of a scenario written as YAML text (dedented)."""
    (document,) = load_documents(textwrap.dedent(text), SOURCE)
    return Oracle.from_scenario(scenario_from_data(document, SOURCE))


def verdict(
    oracle: Oracle, source: str, destination: str, port: int | None = 80, protocol: str = "TCP"
) -> Verdict:
    """The verdict of one flow given as `ns/pod` keys or IP literals."""
    return oracle.verdict_for(Flow(source, destination, port, protocol))


def allowed(
    oracle: Oracle, source: str, destination: str, port: int | None = 80, protocol: str = "TCP"
) -> bool:
    return verdict(oracle, source, destination, port, protocol).allowed
