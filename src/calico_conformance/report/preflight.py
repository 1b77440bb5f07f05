"""What a run leaves in the report directory when it stops early, and when it writes new reports.

A run that the preflight refuses (no Docker, a bad option, an unreadable layout) proved nothing, so it
must not replace the evidence of the last run: pytest's JUnit writer would otherwise write an empty
`junit.xml` over it at the end of the session. A run that does write new reports must not leave the
reproduce scenarios of earlier runs beside its own: a reader of `reports/scenarios/` would replay a
failure that no longer exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from calico_conformance.suite.reproduce import SCENARIO_DIRECTORY

SCENARIO_SUFFIX = ".yaml"


def keep_previous_junit(config: pytest.Config) -> bool:
    """Stop pytest's `--junitxml` writer before it replaces the last run's file; True if it was on.

    pytest keeps its writer on `config.stash` under a private key and writes at session finish; it
    offers no switch to skip that, so the writer is unregistered (and taken off the stash, where its
    own unconfigure would look for it) while the session has not finished yet.
    """
    from _pytest.junitxml import xml_key  # private: the only handle on the writer

    writer = config.stash.get(xml_key, None)
    if writer is None:
        return False
    del config.stash[xml_key]
    config.pluginmanager.unregister(writer)
    return True


def remove_stale_scenarios(report_dir: Path, keep: Iterable[Path]) -> list[Path]:
    """Remove the reproduce scenarios under `report_dir` that this run did not write; returns them."""
    directory = report_dir / SCENARIO_DIRECTORY
    if not directory.is_dir():
        return []
    kept = {path.resolve() for path in keep}
    removed = []
    for path in sorted(directory.glob(f"*{SCENARIO_SUFFIX}")):
        if path.resolve() not in kept:
            path.unlink()
            removed.append(path)
    return removed
