"""One place that writes `reports/bench.json`: each benchmark merges its figures under its own key.

`make bench` runs the benchmarks one after another, but a user may run two at once; the file lock keeps
their read-modify-write cycles from losing each other's keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from filelock import FileLock

REPORT = Path(__file__).resolve().parents[1] / "reports" / "bench.json"


def record(key: str, figures: Any, report: Path = REPORT) -> None:
    """Merge `figures` under `key` into the benchmark report, leaving every other key alone."""
    report.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{report}.lock"):
        merged = json.loads(report.read_text()) if report.exists() else {}
        merged[key] = figures
        report.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
