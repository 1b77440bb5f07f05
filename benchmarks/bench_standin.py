"""How long the whole stand-in run of the reference set on one cluster takes: issue 10's bound.

Builds a cluster stand-in (`tests/standin/`: an API server whose discovery is the pinned release's,
pods as network namespaces, policy programmed into nftables from the oracle), provisions the layout's
namespaces and the reference policy set, and runs `pytest suites --target=kubeconfig` against it,
timing stand-in start to teardown. The upstream Kubernetes netpol catalogue (synthetic scenarios, not
the reference set) is left out with `-k`; probes wait 1 s (the stand-in's network is local); the
outside echo is on, as the stand-in's node addresses lie outside the pod network. The budget is 3 minutes on the 2-core machine this project runs on.
Needs root, `ip`, `nft` and `kubectl`; prints the figures, merges them under "standin_run" into
reports/bench.json, and exits 1 when the run fails or is over budget. Without them it says why,
records that, and exits 0.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from figures import record

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "standin"))

from standin_cluster import standin_cluster
from standin_run import provision, run_suites

from calico_conformance.probe.netns_lab import missing_requirements

KEY = "standin_run"
BUDGET_S = 180.0


def main() -> int:
    reason = missing_requirements() or (None if shutil.which("kubectl") else "the stand-in run needs kubectl")
    if reason is not None:
        print(f"{KEY}: skipped: {reason}")
        record(KEY, {"skipped": reason})
        return 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-standin-") as scratch:
        workdir = Path(scratch)
        with standin_cluster(workdir) as cluster:
            provision(cluster)
            provisioned = time.monotonic()
            run = run_suites(
                cluster, workdir / "reports", "--probe-timeout=1", "--outside-echo", "-k", "not upstream_netpol_case"
            )
            suites_s = time.monotonic() - provisioned
        total_s = time.monotonic() - started
    figures = {
        "total_s": round(total_s, 1),
        "suites_s": round(suites_s, 1),
        "exit_status": run.returncode,
        "budget_s": BUDGET_S,
        "summary": (run.stdout.strip().splitlines() or [""])[-1],
    }
    print(f"{KEY}: {figures}")
    record(KEY, figures)
    if run.returncode != 0:
        print(run.stdout[-4000:])
        return 1
    return 0 if total_s <= BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
