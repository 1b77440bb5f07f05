"""`calico-conformance selector`: evaluate Calico selectors from the shell or in bulk.

Two uses: a person checking what a selector in a policy really selects (`selector EXPR --labels JSON`
prints `true` or `false`), and differential testing against Calico's own Go parser, which is why
`--batch` reads JSON Lines and answers one JSON line per input line, as each line arrives, reporting an
invalid selector as data (`{"valid": false, "error": ...}`) rather than as a failure. A malformed *input
line* (not JSON, not the shape, nested too deeply, too long, not UTF-8) is answered the same way, its
error naming `FILE:LINE`, and the lines after it are still answered; the exit status is then 2, with the
first such line named on stderr, so a script can tell a clean batch from one with bad lines.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, TextIO

from calico_conformance.cli import EXIT_OK, EXIT_USAGE, Command, UsageFailure
from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.inputs import open_input
from calico_conformance.oracle.selector import SelectorError, parse_selector

STDIN_NAME = "<stdin>"
# The longest batch line: a selector and a label set are a few hundred bytes; 1 MiB bounds the memory
# a line without a newline (`/dev/zero`-like input on stdin) can take.
MAX_LINE_BYTES = 1024 * 1024


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
        return run_batch(args.batch, sys.stdout, sys.stderr)
    if args.expression is None:
        raise UsageFailure("give a selector EXPR (with --labels) or --batch FILE.jsonl")
    labels = parse_labels_option(args.labels if args.labels is not None else "{}")
    print("true" if parse_selector(args.expression).matches(labels) else "false")
    return EXIT_OK


class DuplicateKey(ValueError):
    """A JSON object naming one key twice: JSON parsers keep one of the two, silently."""


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    document: dict[str, object] = {}
    for key, value in pairs:
        if key in document:
            raise DuplicateKey(f"gives the key {key!r} twice; JSON keeps only one of them")
        document[key] = value
    return document


def parse_labels_option(text: str) -> dict[str, str]:
    try:
        document = json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
    except json.JSONDecodeError as bad:
        raise UsageFailure(f"--labels is not valid JSON: {bad.msg} at column {bad.colno}") from None
    except RecursionError:
        raise UsageFailure("--labels is nested too deeply; labels are one flat JSON object") from None
    except DuplicateKey as twice:
        raise UsageFailure(f"--labels {twice}") from None
    labels = as_labels(document)
    if labels is None:
        raise UsageFailure('--labels must be a JSON object whose values are strings, e.g. {"app": "web"}')
    return labels


def as_labels(document: object) -> dict[str, str] | None:
    """The document as a label map, or None when it is not an object of string values."""
    if not isinstance(document, dict) or not all(isinstance(value, str) for value in document.values()):
        return None
    return dict(document)


def run_batch(path: str, out: TextIO, err: TextIO | None = None) -> int:
    """Answer every line of the batch as it is read; 2 when any line was malformed, else 0."""
    name = STDIN_NAME if path == "-" else path
    if path == "-":
        if sys.stdin is None:  # started with standard input closed (`<&-`)
            raise UsageFailure("--batch -: standard input is closed; give --batch FILE.jsonl")
        stdin: LineSource = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else _TextAsBinary(sys.stdin)
        return _answer_lines(stdin, name, out, err)
    with open_input(path) as stream:
        return _answer_lines(stream, name, out, err)


class LineSource(Protocol):
    def readline(self, limit: int = -1, /) -> bytes: ...


def _answer_lines(stream: LineSource, name: str, out: TextIO, err: TextIO | None) -> int:
    malformed: list[LocatedError] = []
    for number, data in enumerate(_bounded_lines(stream, Location(name)), start=1):
        where = Location(name, number)
        try:
            if isinstance(data, LocatedError):
                raise data
            answer = evaluate_case(read_case(where, _decoded(data, where).rstrip("\r\n")))
        except LocatedError as bad:
            malformed.append(bad)
            answer = {"valid": False, "error": str(bad)}
        out.write(json.dumps(answer) + "\n")
        out.flush()  # one answer per line as it comes: a differential tester may feed a pipe
    if malformed and err is not None:
        more = f" (and {len(malformed) - 1} more)" if len(malformed) > 1 else ""
        err.write(f"calico-conformance selector: malformed batch line {malformed[0]}{more}\n")
    return EXIT_USAGE if malformed else EXIT_OK


def _decoded(data: bytes, where: Location) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as bad:
        raise LocatedError(where, f"not UTF-8 text ({bad.reason})") from None


def _bounded_lines(stream: LineSource, where: Location) -> Iterator[bytes | LocatedError]:
    """The stream's lines; a line longer than MAX_LINE_BYTES is skipped to its end and given as the
    LocatedError that answers it, so the lines after it are still read."""
    number = 0
    while True:
        line = _readline(stream, where)
        if not line:
            return
        number += 1
        if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
            yield line
            continue
        while line and not line.endswith(b"\n"):
            line = _readline(stream, where)
        yield LocatedError(
            Location(where.file, number), f"a line longer than {MAX_LINE_BYTES // 1024} KiB; one case a line"
        )


def _readline(stream: LineSource, where: Location) -> bytes:
    try:
        return stream.readline(MAX_LINE_BYTES + 1)
    except OSError as error:
        raise LocatedError(where, f"cannot read: {error.strerror or error}") from None


class _TextAsBinary:
    """A text stream without `.buffer` (a test's StringIO) read as UTF-8 bytes."""

    def __init__(self, text: TextIO) -> None:
        self.text = text

    def readline(self, limit: int = -1, /) -> bytes:
        return self.text.readline(limit).encode("utf-8")


def read_case(where: Location, line: str) -> BatchCase:
    try:
        document = json.loads(line, object_pairs_hook=_refuse_duplicate_keys)
    except json.JSONDecodeError as bad:
        raise LocatedError(where, f"not valid JSON: {bad.msg} at column {bad.colno}") from None
    except RecursionError:
        raise LocatedError(where, "nested too deeply; a case is one flat JSON object") from None
    except DuplicateKey as twice:
        raise LocatedError(where, str(twice)) from None
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


def evaluate_case(case: BatchCase) -> dict[str, object]:
    try:
        selector = parse_selector(case.selector)
    except SelectorError as invalid:
        return {"valid": False, "error": str(invalid)}
    return {"valid": True, "matches": selector.matches(case.labels)}


def evaluate(cases: list[BatchCase]) -> Iterator[dict[str, object]]:
    for case in cases:
        yield evaluate_case(case)


COMMAND = Command(
    name="selector",
    help="Evaluate a Calico selector against labels (or a JSON Lines batch of them).",
    configure=configure,
    run=run,
)
