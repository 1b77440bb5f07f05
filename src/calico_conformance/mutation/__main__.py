"""`python -m calico_conformance.mutation`: run the fault catalogue against the suites.

Exit status: 0 every fault caught and the baseline passed; 1 a fault was missed; 2 the unmutated
baseline did not pass (nothing can be concluded) or the arguments were wrong.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from calico_conformance.mutation.catalogue import CATALOGUE
from calico_conformance.mutation.runner import (
    DEFAULT_RUN_TIMEOUT_S,
    Fault,
    FaultResult,
    progress_line,
    render_table,
    run_faults,
    run_suites,
)
from calico_conformance.mutation.workspace import Inputs, Workspace

EXIT_ALL_CAUGHT = 0
EXIT_MISSED = 1
EXIT_NO_BASELINE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m calico_conformance.mutation",
        description="Apply each fault of the catalogue to a copy of the reference set and check the suites fail.",
    )
    parser.add_argument(
        "--repository",
        type=Path,
        default=Path.cwd(),
        metavar="DIR",
        help="the checkout (default: the current directory)",
    )
    parser.add_argument(
        "--jobs", type=int, default=2, metavar="N", help="faults run side by side (default 2)"
    )
    parser.add_argument(
        "--only", action="append", default=[], metavar="FAULT", help="run only this fault (repeatable)"
    )
    parser.add_argument("--list", action="store_true", help="list the catalogue and exit")
    parser.add_argument("--keep", action="store_true", help="keep the mutated copies and their reports")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_RUN_TIMEOUT_S, metavar="SECONDS", help="limit per suite run"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        for fault in CATALOGUE:
            print(f"{fault.name}: {fault.description}")
        return EXIT_ALL_CAUGHT
    known = {fault.name for fault in CATALOGUE}
    unknown = [name for name in args.only if name not in known]
    if unknown:
        parser.error(f"unknown fault {', '.join(unknown)}; choose from: {', '.join(sorted(known))}")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    faults = [fault for fault in CATALOGUE if not args.only or fault.name in args.only]
    repository = args.repository.resolve()
    original = Inputs.of_repository(repository)

    scratch = Path(tempfile.mkdtemp(prefix="calico-conformance-mutation-"))
    try:
        return run_catalogue(faults, original, repository, scratch, args.jobs, args.timeout)
    finally:
        if args.keep:
            print(f"mutated copies and their reports kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def run_catalogue(
    faults: Sequence[Fault], original: Inputs, repository: Path, scratch: Path, jobs: int, timeout_s: float
) -> int:
    baseline = Workspace(original, scratch / "baseline")
    print(f"baseline: the unmutated reference set ({original.policies}) ...", flush=True)
    run = run_suites(repository, baseline.inputs, baseline.root / "reports", timeout_s)
    if not run.passed:
        print(f"the unmutated baseline does not pass (exit {run.exit_code}); nothing can be concluded:")
        print(run.output[-4000:])
        return EXIT_NO_BASELINE
    print(f"baseline passed in {run.seconds:.1f} s; {len(faults)} faults, {jobs} at a time", flush=True)

    def report(result: FaultResult, done: int) -> None:
        print(progress_line(result, done, len(faults)), flush=True)

    results = run_faults(
        faults, original, repository, scratch, jobs=jobs, timeout_s=timeout_s, on_result=report
    )
    print(render_table(results))
    missed = [result for result in results if not result.caught]
    caught = [result for result in results if not result.fault.must_pass]
    kept = [result for result in results if result.fault.must_pass]
    print(
        f"{sum(r.caught for r in caught)}/{len(caught)} faults caught, "
        f"{sum(r.caught for r in kept)}/{len(kept)} behaviour-preserving edits passed"
    )
    return EXIT_MISSED if missed else EXIT_ALL_CAUGHT


if __name__ == "__main__":
    sys.exit(main())
