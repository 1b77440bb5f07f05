"""`calico-conformance simulate`: what Calico would allow in a scenario, and why, without a cluster.

The scenario file (ARCHITECTURE.md "Scenario file") describes namespaces, pods, the policy manifests in
force and the probes to judge. Every probe gets the oracle's verdict with, per direction, the deciding
tier, policy and rule. `--format json` is the machine contract (`{"results": [...]}` in probe order, one
result per line, streamed); `--format table` is for people: one line per probe, then a reachability grid
per port/protocol, or, beyond `TABLE_DETAIL_LIMIT` probes, the probes counted per verdict.

A scenario without `probes` means every ordered pair of distinct pods on each destination port: millions
of probes for thousands of pods. Those are never listed: the grouped oracle decides every pair per port at
once and explains one pair per class pair (`oracle/default_probes.py`), and the output is written while
it is produced, so memory stays flat in the number of probes. Any bad input, in the scenario or its
manifests, exits 2 with `file:line: why` before anything is printed: everything that can fail (loading,
the oracle, the matrices) runs before the first byte is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from itertools import repeat
from operator import add, itemgetter, mul
from typing import Any, TextIO

from calico_conformance.cli import EXIT_OK, Command
from calico_conformance.oracle.default_probes import PairVerdicts, Service
from calico_conformance.oracle.errors import LocatedError
from calico_conformance.oracle.evaluate import Oracle, Verdict
from calico_conformance.oracle.loader_staged import promote_staged
from calico_conformance.oracle.model import Direction, ProbeSpec, Scenario
from calico_conformance.oracle.scenario import load_scenario
from calico_conformance.reachability import Expectation, Flow, expectation_marks, render_text

FORMATS = ("json", "table")
# Up to this many probes the table lists each one and draws the grids; beyond, it counts them per verdict
# (a grid of 2,000 pods is four million cells nobody reads).
TABLE_DETAIL_LIMIT = 400


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO.yaml", help="the scenario file to evaluate")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="json: the machine-readable result contract; table: per-probe lines and reachability grids",
    )
    parser.add_argument(
        "--promote-staged",
        action="store_true",
        help="evaluate staged policies (Staged*NetworkPolicy) as if they were enforced (Calico 3.30+)",
    )


def run(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario, expand_default_probes=False)
    if args.promote_staged:
        scenario = promote_scenario(scenario)
    oracle = Oracle.from_scenario(scenario)
    out = sys.stdout
    if scenario.default_probes:
        verdicts = PairVerdicts(oracle, scenario.pods)
        if args.format == "json":
            write_json(out, default_records(verdicts))
        elif verdicts.count <= TABLE_DETAIL_LIMIT:
            out.write(render_table(list(default_results(verdicts))) + "\n")
        else:
            out.write(render_summary(verdicts) + "\n")
    else:
        results = [(flow_of(probe), judge(oracle, probe)) for probe in scenario.probes]
        if args.format == "json":
            write_json(out, (json.dumps(result_record(flow, verdict)).encode() for flow, verdict in results))
        else:
            out.write(render_table(results) + "\n")
    out.flush()
    return EXIT_OK


def promote_scenario(scenario: Scenario) -> Scenario:
    """The scenario with its staged policies enforced (`--promote-staged`)."""
    return replace(scenario, resources=promote_staged(scenario.resources))


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


# --- json, streamed ------------------------------------------------------------------------------------


def write_json(out: TextIO, records: Iterable[bytes]) -> None:
    """`{"results": [...]}` with one record per line, written chunk by chunk as `records` yields them.

    The chunks are bytes written to the binary stream under `out`: gigabytes of ASCII need no encoding."""
    out.flush()
    binary = out.buffer
    binary.write(b'{"results": [')
    separator = b"\n"
    for chunk in records:
        if chunk:
            binary.write(separator)
            binary.write(chunk)
            separator = b",\n"
    binary.write(b"\n]}\n")
    binary.flush()


_EMPTY_ENDS = '{"from": "", "to": ""'


def _tail(service: Service, verdict: Verdict) -> bytes:
    """A result record without its two ends: what every probe of one class pair shares."""
    return json.dumps(result_record(Flow("", "", *service), verdict))[len(_EMPTY_ENDS) :].encode()


def default_records(verdicts: PairVerdicts) -> Iterator[bytes]:
    """The default probes' records in probe order, one chunk (all its probes) per source pod.

    Millions of records: no Python statement runs per record. Per source pod, each destination's pair of
    decision indices (egress of the source's class, ingress of the destination's class) is gathered at C
    speed into one code per probe, each code's record tail is rendered once, and the chunk is joined
    from the destination keys and the tails by `map`.
    """
    pods = verdicts.pods
    keys = [json.dumps(pod.key).encode() for pod in pods]
    services = list(verdicts.services)
    decided = [verdicts.services[service] for service in services]
    width = max((len(d.decisions) for d in decided), default=1)
    entry_pods: list[int] = []
    entry_services: list[int] = []
    first_entry = []
    for destination, pod in enumerate(pods):
        first_entry.append(len(entry_pods))
        for port in pod.ports:
            entry_pods.append(destination)
            entry_services.append(services.index((port.port, port.protocol)))
    first_entry.append(len(entry_pods))
    one_port_each = entry_pods == list(range(len(pods))) and len(services) == 1
    entry_keys = [keys[destination] for destination in entry_pods]
    gathers = [_gatherer(d.class_of) for d in decided]
    by_source = [tuple(zip(*d.table[Direction.INGRESS], strict=True)) for d in decided]  # [source class][dest class]
    tails: dict[int, bytes] = {}
    for source, source_key in enumerate(keys):
        per_service = []
        for index, (decisions, gather) in enumerate(zip(decided, gathers, strict=True)):
            source_class = decisions.class_of[source]
            egress = gather(decisions.table[Direction.EGRESS][source_class])
            ingress = gather(by_source[index][source_class])
            coded = map(add, map(mul, egress, repeat(width)), ingress)
            if index:
                coded = map(add, coded, repeat(index * width * width))
            per_service.append(list(coded))
        if one_port_each:
            codes = per_service[entry_services[0]] if entry_services else []
        else:
            codes = [per_service[j][d] for d, j in zip(entry_pods, entry_services, strict=True)]
        start, end = first_entry[source], first_entry[source + 1]
        codes = codes[:start] + codes[end:]
        for code in set(codes).difference(tails):
            index, rest = divmod(code, width * width)
            egress_decision = decided[index].decisions[rest // width]
            ingress_decision = decided[index].decisions[rest % width]
            verdict = Verdict(egress_decision.allowed and ingress_decision.allowed, egress_decision, ingress_decision)
            tails[code] = _tail(services[index], verdict)
        head = b'{"from": ' + source_key + b', "to": '
        destination_keys = entry_keys[:start] + entry_keys[end:]
        yield b",\n".join(map(add, map(add, repeat(head), destination_keys), map(tails.__getitem__, codes)))


def _gatherer(indices: Sequence[int]) -> Callable[[Sequence[int]], Sequence[int]]:
    """`itemgetter(*indices)` that always returns a tuple (itemgetter of one index returns the item)."""
    if len(indices) == 1:
        only = indices[0]
        return lambda row: (row[only],)
    return itemgetter(*indices)


# --- table -----------------------------------------------------------------------------------------------


def default_results(verdicts: PairVerdicts) -> Iterator[tuple[Flow, Verdict]]:
    """The default probes as (flow, verdict), in probe order: for scenarios small enough to list."""
    pods = verdicts.pods
    for source, source_pod in enumerate(pods):
        for destination, destination_pod in enumerate(pods):
            if destination != source:
                for port in destination_pod.ports:
                    service = (port.port, port.protocol)
                    flow = Flow(source_pod.key, destination_pod.key, *service)
                    yield flow, verdicts.verdict(service, source, destination)


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


def render_summary(verdicts: PairVerdicts) -> str:
    """The default probes counted per port and verdict, each verdict with one example flow."""
    pods = verdicts.pods
    lines = [
        f"{verdicts.count:,} probes between {len(pods):,} pods (every ordered pair x each destination port); "
        f"more than {TABLE_DETAIL_LIMIT} are counted per verdict (--format json lists each one)"
    ]
    for service in verdicts.services:
        counted: dict[str, tuple[int, Verdict, Flow]] = {}
        for source, destination, probes in verdicts.class_pairs(service):
            verdict = verdicts.verdict(service, source, destination)
            text = str(verdict)
            total, _, example = counted.get(text, (0, verdict, Flow(pods[source].key, pods[destination].key, *service)))
            counted[text] = (total + probes, verdict, example)
        allowed = sum(total for total, verdict, _ in counted.values() if verdict.allowed)
        denied = sum(total for total, verdict, _ in counted.values() if not verdict.allowed)
        lines.append("")
        lines.append(f"{Flow('', '', *service).service}: {allowed:,} allowed, {denied:,} denied")
        # most probes first; on a tie allowed before denied, then by the example flow
        for total, verdict, example in sorted(
            counted.values(), key=lambda item: (-item[0], not item[1].allowed, str(item[2]))
        ):
            lines.append(f"  {'ALLOW' if verdict.allowed else 'DENY '}  {total:,} probe(s), e.g. {example}")
            lines.append(f"         {verdict.egress}")
            lines.append(f"         {verdict.ingress}")
    return "\n".join(lines)


COMMAND = Command(
    name="simulate",
    help="expected reachability of a scenario file, with the deciding tier/policy/rule per direction",
    configure=configure,
    run=run,
)
