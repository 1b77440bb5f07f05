"""`calico-conformance lint`: find policy mistakes before they reach a cluster.

Reads a policy set (files and directories of manifests) the way the oracle reads it and reports every
finding as `file:line: severity id: message (fix: hint)`, as JSON, or as SARIF 2.1.0 for code-scanning
pages that show findings inline on a pull request. Exit status: 1 when a finding at or above `--fail-on`
exists, 0 otherwise, 2 for bad usage (a path that does not exist, a bad layout, no policies found in
the paths: an empty set would otherwise read as a clean one); 74 and 141 when the output cannot be
delivered (cli.py).
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

from calico_conformance.cli import EXIT_FINDINGS, EXIT_OK, Command
from calico_conformance.lint.findings import Severity, render_json, render_sarif, render_text
from calico_conformance.lint.runner import lint
from calico_conformance.oracle.loader_document import parse_calico_version, version_text
from calico_conformance.oracle.model import DEFAULT_CALICO_VERSION

FORMATS = ("text", "json", "sarif")
SEVERITIES = tuple(str(severity) for severity in Severity)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="manifest files or directories (searched for *.yaml, *.yml, *.json)",
    )
    parser.add_argument(
        "--layout",
        metavar="FILE",
        help="the tenancy layout (e.g. policies/tenancy.yaml); without it the inventory-based checks are skipped",
    )
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    parser.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        default="error",
        help="exit 1 when a finding of this severity or worse exists (default: error)",
    )
    parser.add_argument(
        "--calico-version",
        metavar="X.Y",
        default=DEFAULT_CALICO_VERSION,
        help=f"the Calico version the policies are for (default: {DEFAULT_CALICO_VERSION}); tiers need 3.29+",
    )


def _tool_version() -> str:
    try:
        return metadata.version("calico-conformance")
    except metadata.PackageNotFoundError:
        return ""


def run(args: argparse.Namespace) -> int:
    calico_version = version_text(parse_calico_version(args.calico_version))
    report = lint(args.paths, layout_path=args.layout, calico_version=calico_version)
    if args.format == "sarif":
        sys.stdout.write(render_sarif(report, version=_tool_version()))
    elif args.format == "json":
        sys.stdout.write(render_json(report))
    else:
        sys.stdout.write(render_text(report))
    return EXIT_FINDINGS if report.fails(Severity.parse(args.fail_on)) else EXIT_OK


COMMAND = Command(
    name="lint",
    help="Find policy mistakes (YAML, selectors, default-deny, shadowing, tiers, DNS, one-sided exceptions).",
    configure=configure,
    run=run,
)
