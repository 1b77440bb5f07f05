"""Writing the ConformanceReport: YAML that a person can read and `git diff` can compare.

Multi-line text (failure messages, diff matrices) is written as YAML literal blocks rather than escaped
one-line strings, keys keep the order of the model, and the file is replaced atomically so a reader
never sees half a report.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from calico_conformance.report.model import ConformanceReport
from calico_conformance.report.schema import report_problems


class _ReportDumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings as literal blocks (`|`)."""


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_ReportDumper.add_representer(str, _represent_text)


def dump_report_data(data: Mapping[str, Any]) -> str:
    return yaml.dump(
        dict(data),
        Dumper=_ReportDumper,
        sort_keys=False,
        allow_unicode=True,
        width=120,
        default_flow_style=False,
    )


def write_report(report: ConformanceReport, path: Path) -> Path:
    """Write `report` to `path` (directories created), after checking it against its own schema.

    A report that fails its schema is a bug of this package; it is still written, so the run's evidence
    is not lost, with the problems listed in a comment at the top.
    """
    data = report.to_data()
    text = dump_report_data(data)
    problems = report_problems(data)
    if problems:
        text = "".join(f"# SCHEMA PROBLEM: {problem}\n" for problem in problems) + text
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.chmod(temporary, 0o644)  # mkstemp makes it private; a report is an artifact others read
    os.replace(temporary, path)
    return path
