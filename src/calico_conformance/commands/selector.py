"""`calico-conformance selector`: evaluate Calico selectors from the shell or in bulk.

Two uses: a person checking what a selector in a policy really selects (`selector EXPR --labels JSON`
prints `true` or `false`), and differential testing against Calico's own Go parser, which is why
`--batch` reads JSON Lines and answers one JSON line per input line, reporting an invalid selector as
data (`{"valid": false, ...}`) rather than as a failure. A malformed *input line* is a failure: it exits 2
naming `FILE:LINE`, before anything is printed, so a partial answer is never mistaken for a full one.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from calico_conformance.cli import EXIT_OK, Command, UsageFailure
from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.selector import SelectorError, parse_selector

STDIN_NAME = "<stdin>"


@dataclass(frozen=True)
class BatchCase:
    """One line of a batch file: a selector text and the labels to evaluate it against."""

    selector: str
    labels: dict[str, str]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("expression", nargs="?", metavar="EXPR", help="the selector, e.g. \"app == 'web'\"")
    parser.add_argument(
        "--labels",
        metavar="JSON",
        help="the labels to evaluate EXPR against, as a JSON object of strings (default: {})",
    )
    parser.add_argument(
        "--batch",
        metavar="FILE.jsonl",
        help='evaluate every line {"selector": ..., "labels": {...}} of FILE ("-" for stdin) instead',
    )


def run(args: argparse.Namespace) -> int:
    if args.batch is not None:
        if args.expression is not None or args.labels is not None:
            raise UsageFailure("--batch reads selectors and labels from the file; give no EXPR or --labels")
        return run_batch(args.batch, sys.stdout)
    if args.expression is None:
        raise UsageFailure("give a selector EXPR (with --labels) or --batch FILE.jsonl")
    labels = parse_labels_option(args.labels if args.labels is not None else "{}")
    print("true" if parse_selector(args.expression).matches(labels) else "false")
    return EXIT_OK


def parse_labels_option(text: str) -> dict[str, str]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as bad:
        raise UsageFailure(f"--labels is not valid JSON: {bad.msg} at column {bad.colno}") from None
    labels = as_labels(document)
    if labels is None:
        raise UsageFailure('--labels must be a JSON object whose values are strings, e.g. {"app": "web"}')
    return labels


def as_labels(document: object) -> dict[str, str] | None:
    """The document as a label map, or None when it is not an object of string values."""
    if not isinstance(document, dict) or not all(isinstance(value, str) for value in document.values()):
        return None
    return dict(document)


def run_batch(path: str, out: TextIO) -> int:
    name = STDIN_NAME if path == "-" else path
    if path == "-":
        lines = sys.stdin.read().splitlines()
    else:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as bad:
            raise LocatedError(Location(name), f"not UTF-8 text ({bad.reason})") from None
    cases = [read_case(Location(name, number), line) for number, line in enumerate(lines, start=1)]
    for answer in evaluate(cases):
        out.write(json.dumps(answer) + "\n")
    return EXIT_OK


def read_case(where: Location, line: str) -> BatchCase:
    try:
        document = json.loads(line)
    except json.JSONDecodeError as bad:
        raise LocatedError(where, f"not valid JSON: {bad.msg} at column {bad.colno}") from None
    if not isinstance(document, dict):
        raise LocatedError(where, 'expected a JSON object {"selector": ..., "labels": {...}}')
    missing = [key for key in ("selector", "labels") if key not in document]
    if missing:
        raise LocatedError(where, f"missing {' and '.join(repr(key) for key in missing)}")
    unknown = sorted(set(document) - {"selector", "labels"})
    if unknown:
        raise LocatedError(
            where,
            f"unknown key {', '.join(repr(key) for key in unknown)} (expected only 'selector' and 'labels')",
        )
    if not isinstance(document["selector"], str):
        raise LocatedError(where, '"selector" must be a string')
    labels = as_labels(document["labels"])
    if labels is None:
        raise LocatedError(where, '"labels" must be an object whose values are strings')
    return BatchCase(document["selector"], labels)


def evaluate(cases: list[BatchCase]) -> Iterator[dict[str, object]]:
    for case in cases:
        try:
            selector = parse_selector(case.selector)
        except SelectorError as invalid:
            yield {"valid": False, "error": str(invalid)}
            continue
        yield {"valid": True, "matches": selector.matches(case.labels)}


COMMAND = Command(
    name="selector",
    help="Evaluate a Calico selector against labels (or a JSON Lines batch of them).",
    configure=configure,
    run=run,
)
