"""A pytest plugin for suite runs against the stand-in (`-p standin_timeouts`): shorter live waits.

The live targets' waits are sized for real clusters (probe pods Ready within 300 s). A fault test that
expects a wait to time out (a pod that never becomes Ready) would sit through all of it, so this
plugin shortens the waits by the factor in $STANDIN_TIMEOUT_SCALE through `Timeouts.scaled`, the
live code's own knob for slow runners. It is loaded only into stand-in runs, never shipped.
"""

from __future__ import annotations

import os

from calico_conformance.cluster import waits

_from_run = waits.Timeouts.from_run


def _scaled_from_run(run: object) -> waits.Timeouts:
    factor = float(os.environ.get("STANDIN_TIMEOUT_SCALE", "1"))
    return _from_run(run).scaled(factor)  # type: ignore[arg-type]


waits.Timeouts.from_run = staticmethod(_scaled_from_run)  # type: ignore[assignment,method-assign]
