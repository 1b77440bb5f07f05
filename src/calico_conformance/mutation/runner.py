"""Running the suites over a (mutated) copy of the inputs, and judging whether a fault was caught.

Each run is a separate `pytest suites/ --target=static ...` process with its own workspace, report
directory and JUnit file, so runs can go side by side and nothing of one leaks into another. The
verdict is read from the JUnit XML (which tests failed, which errored) and the output (load errors).

A fault is **caught** only when the suite that exists to catch it fails an assertion: an error, a
crash or a failure elsewhere does not count. A fault that makes an input fail to load is caught only
when the run fails and its output names the bad input as `file:line`, which is what a user needs.
"""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from calico_conformance.mutation.workspace import Inputs, Workspace
from calico_conformance.oracle.errors import Location

DEFAULT_RUN_TIMEOUT_S = 900.0  # one static run of every suite takes seconds; this only stops a hang


@dataclass(frozen=True)
class Fault:
    """A realistic mistake in the inputs, applied to a workspace copy.

    `apply` edits the workspace and returns the location of the bad input when the fault is one that
    must stop the inputs from loading (a duplicate key), or None for a fault the suites must fail on.
    `catchers` are the suite modules that exist to catch it. A `must_pass` entry is no fault but a
    behaviour-preserving edit (rules reordered, a policy renamed...): it is "caught" when every suite
    passes on it, since a suite that fails on an equivalent policy set is wrong too.
    """

    name: str
    description: str
    apply: Callable[[Workspace], Location | None]
    catchers: tuple[str, ...]
    must_pass: bool = False


@dataclass(frozen=True)
class SuiteRun:
    exit_code: int
    failed: tuple[str, ...]  # `module::test[id]` of tests that failed an assertion
    errored: tuple[str, ...]  # tests that errored (setup, teardown, collection)
    output: str
    seconds: float

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.failed and not self.errored


@dataclass(frozen=True)
class FaultResult:
    fault: Fault
    run: SuiteRun | None  # None when the fault could not even be applied
    caught: bool
    why: str

    def failed_by_module(self) -> Counter[str]:
        return Counter(module_of(test) for test in (self.run.failed if self.run else ()))


def suite_command(repository: Path, inputs: Inputs, report_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        str(repository / "suites"),
        "--target=static",
        "--policies",
        str(inputs.policies),
        "--layout",
        str(inputs.layout),
        "--kind-configs",
        str(inputs.kind_configs),
        "--report-dir",
        str(report_dir),
        f"--junitxml={report_dir / 'junit.xml'}",
        "-q",
        "-p",
        "no:cacheprovider",
    ]


def run_suites(repository: Path, inputs: Inputs, report_dir: Path, timeout_s: float) -> SuiteRun:
    """Run every suite on the static target over `inputs`; never raises for a failing run."""
    report_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        completed = subprocess.run(
            suite_command(repository, inputs, report_dir),
            cwd=repository,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        partial = [_text(expired.stdout), _text(expired.stderr)]
        output = f"timed out after {timeout_s:g} s\n" + "".join(partial)
        return SuiteRun(-1, (), (), output, time.monotonic() - started)
    failed, errored = junit_outcomes(report_dir / "junit.xml")
    return SuiteRun(
        completed.returncode, failed, errored, completed.stdout + completed.stderr, time.monotonic() - started
    )


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode("utf-8", errors="replace")
    return output or ""


def junit_outcomes(path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(failed, errored) test names from a JUnit XML file; empty when the file was never written."""
    if not path.is_file():
        return (), ()
    failed, errored = [], []
    for case in ET.parse(path).iter("testcase"):
        name = f"{module_of(case.get('classname', ''))}::{case.get('name', '')}"
        if case.find("failure") is not None:
            failed.append(name)
        if case.find("error") is not None:
            errored.append(name)
    return tuple(failed), tuple(errored)


def module_of(test: str) -> str:
    """`suites.test_dns_egress` or `test_dns_egress::test_x[a]` -> `test_dns_egress`."""
    head = test.split("::")[0]
    for part in head.split("."):
        if part.startswith("test_"):
            return part
    return head


def judge(fault: Fault, bad_input: Location | None, run: SuiteRun) -> FaultResult:
    if fault.must_pass:
        if run.passed:
            return FaultResult(fault, run, True, "every suite passed, as on the reference set")
        broken = ", ".join(sorted({module_of(test) for test in (*run.failed, *run.errored)})) or f"exit {run.exit_code}"
        return FaultResult(fault, run, False, f"a behaviour-preserving edit failed: {broken}")
    if bad_input is not None:
        named = f"{Path(bad_input.file).name}:{bad_input.line}"
        if run.exit_code == 0:
            return FaultResult(fault, run, False, f"the run passed although {named} does not load")
        if named not in run.output:
            return FaultResult(
                fault, run, False, f"the run failed (exit {run.exit_code}) without naming {named}"
            )
        return FaultResult(fault, run, True, f"refused to load, naming {named}")
    if run.exit_code < 0:
        return FaultResult(fault, run, False, run.output.splitlines()[0])
    catching = [test for test in run.failed if not fault.catchers or module_of(test) in fault.catchers]
    if catching:
        return FaultResult(
            fault, run, True, f"{len(catching)} failing test(s) in {', '.join(fault.catchers)}"
        )
    if run.failed:
        elsewhere = ", ".join(sorted({module_of(test) for test in run.failed}))
        return FaultResult(
            fault, run, False, f"failed only in {elsewhere}, not in {', '.join(fault.catchers)}"
        )
    if run.errored:
        return FaultResult(
            fault, run, False, f"{len(run.errored)} test(s) errored but none failed an assertion"
        )
    return FaultResult(fault, run, False, f"every suite passed (exit {run.exit_code})")


def try_fault(
    fault: Fault, original: Inputs, repository: Path, scratch: Path, timeout_s: float
) -> FaultResult:
    """Copy the inputs, apply `fault`, run the suites and judge the run."""
    workspace = Workspace(original, scratch / fault.name)
    try:
        bad_input = fault.apply(workspace)
    except (LookupError, KeyError, ValueError) as stale:
        return FaultResult(fault, None, False, f"could not apply the fault: {stale}")
    run = run_suites(repository, workspace.inputs, workspace.root / "reports", timeout_s)
    return judge(fault, bad_input, run)


def run_faults(
    faults: Sequence[Fault],
    original: Inputs,
    repository: Path,
    scratch: Path,
    *,
    jobs: int,
    timeout_s: float,
    on_result: Callable[[FaultResult, int], None],
) -> list[FaultResult]:
    """Try every fault, `jobs` side by side; `on_result(result, done)` is called as each one finishes
    (a run takes tens of seconds: the user sees progress, not silence until the table). The results
    come back in the order of `faults`."""
    results: dict[str, FaultResult] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        pending = [pool.submit(try_fault, fault, original, repository, scratch, timeout_s) for fault in faults]
        for done, future in enumerate(as_completed(pending), start=1):
            result = future.result()
            results[result.fault.name] = result
            on_result(result, done)
    return [results[fault.name] for fault in faults]


def verdict_word(result: FaultResult) -> str:
    """caught / MISSED for a fault; passed / FAILED for a behaviour-preserving edit."""
    if result.fault.must_pass:
        return "passed" if result.caught else "FAILED"
    return "caught" if result.caught else "MISSED"


def progress_line(result: FaultResult, done: int, total: int) -> str:
    """`[3/21] caught  label-typo  14.2 s  3 failing test(s) in test_default_deny`: one finished fault."""
    seconds = result.run.seconds if result.run is not None else 0.0
    verdict = verdict_word(result)
    width = len(str(total))
    return f"[{done:>{width}}/{total}] {verdict}  {result.fault.name}  {seconds:.1f} s  {result.why}"


def render_table(results: Sequence[FaultResult]) -> str:
    """fault | tests that failed | verdict, one row per fault, then why each missed fault was missed."""
    rows = [("fault", "tests that failed", "verdict")]
    for result in results:
        modules = result.failed_by_module()
        failed = ", ".join(f"{module} ({count})" for module, count in sorted(modules.items()))
        if not failed:
            failed = result.why if result.caught else "-"  # a load fault: "refused to load, naming f:l"
        if result.run is not None and result.run.errored:
            failed += f"; {len(result.run.errored)} errored"
        rows.append((result.fault.name, failed, verdict_word(result)))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    for result in results:
        if not result.caught:
            lines.append(f"{'FAILED' if result.fault.must_pass else 'MISSED'} {result.fault.name}: {result.why}")
    return "\n".join(line.rstrip() for line in lines)
