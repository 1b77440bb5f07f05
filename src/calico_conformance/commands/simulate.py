"""`calico-conformance simulate`: what Calico would allow in a scenario, and why, without a cluster.

The scenario file (ARCHITECTURE.md "Scenario file") describes namespaces, pods, the policy manifests in
force and the probes to judge. Every probe gets the oracle's verdict with, per direction, the deciding
tier, policy and rule. `--format json` is the machine contract (`{"results": [...]}` in probe order);
`--format table` is for people: one line per probe, then a reachability grid per port/protocol.
Any bad input, in the scenario or its manifests, exits 2 with `file:line: why` before anything is printed.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from calico_conformance.cli import EXIT_OK, Command
from calico_conformance.oracle.errors import LocatedError
from calico_conformance.oracle.evaluate import Oracle, Verdict
from calico_conformance.oracle.model import ProbeSpec
from calico_conformance.oracle.scenario import load_scenario
from calico_conformance.reachability import Expectation, Flow, expectation_marks, render_text

FORMATS = ("json", "table")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO.yaml", help="the scenario file to evaluate")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="json: the machine-readable result contract; table: per-probe lines and reachability grids",
    )


def run(args: argparse.Namespace) -> int:
    results = simulate(args.scenario)
    print(render_json(results) if args.format == "json" else render_table(results))
    return EXIT_OK


def simulate(path: str) -> list[tuple[Flow, Verdict]]:
    """Every probe of the scenario with its verdict, in probe order. Raises LocatedError on bad input."""
    scenario = load_scenario(path)
    oracle = Oracle.from_scenario(scenario)
    return [(flow_of(probe), judge(oracle, probe)) for probe in scenario.probes]


def flow_of(probe: ProbeSpec) -> Flow:
    return Flow(probe.source, probe.destination, probe.port, probe.protocol)


def judge(oracle: Oracle, probe: ProbeSpec) -> Verdict:
    """The probe's verdict; an error about the probe itself is placed at the probe's line."""
    try:
        return oracle.verdict_for(flow_of(probe))
    except LocatedError as error:
        if error.location is not None:
            raise
        raise LocatedError(probe.location, error.why) from None


def result_record(flow: Flow, verdict: Verdict) -> dict[str, Any]:
    """One element of the json contract's `results`."""
    return {
        "from": flow.source,
        "to": flow.destination,
        "port": flow.port,
        "protocol": flow.protocol,
        "allowed": verdict.allowed,
        "egress": {"allowed": verdict.egress.allowed, "decision": str(verdict.egress)},
        "ingress": {"allowed": verdict.ingress.allowed, "decision": str(verdict.ingress)},
    }


def render_json(results: list[tuple[Flow, Verdict]]) -> str:
    return json.dumps({"results": [result_record(flow, verdict) for flow, verdict in results]}, indent=2)


def render_table(results: list[tuple[Flow, Verdict]]) -> str:
    """One block per probe (the flow, then each direction's decision), then the grids."""
    if not results:
        return "no probes (the scenario has no pods to probe between)"
    lines = []
    for flow, verdict in results:
        lines.append(f"{'ALLOW' if verdict.allowed else 'DENY '}  {flow}")
        lines.append(f"       {verdict.egress}")
        lines.append(f"       {verdict.ingress}")
    marks = expectation_marks({flow: Expectation(verdict.allowed) for flow, verdict in results})
    lines.extend(["", "reachability (rows: from, columns: to; . allowed, X denied):", render_text(marks)])
    return "\n".join(lines)


COMMAND = Command(
    name="simulate",
    help="expected reachability of a scenario file, with the deciding tier/policy/rule per direction",
    configure=configure,
    run=run,
)
