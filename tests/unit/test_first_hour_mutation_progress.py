"""`make mutation` says how each fault went as it finishes, not only in the table at the end."""

from __future__ import annotations

from pathlib import Path

from calico_conformance.mutation.runner import Fault, FaultResult, SuiteRun, progress_line, run_faults
from calico_conformance.mutation.workspace import Inputs, Workspace
from calico_conformance.oracle.errors import Location

REFERENCE = Inputs.of_repository(Path(__file__).resolve().parents[2])


def _stale(name: str) -> Fault:
    """A fault whose edit no longer applies: try_fault judges it without starting a suite run."""

    def apply(workspace: Workspace) -> Location | None:
        raise LookupError(f"{name}: the edited block is gone")

    return Fault(name, "a stale fault", apply, ("test_default_deny",))


def test_each_fault_is_reported_once_as_it_finishes_and_results_keep_catalogue_order(tmp_path: Path) -> None:
    faults = [_stale("first"), _stale("second"), _stale("third")]
    seen: list[tuple[str, int]] = []
    results = run_faults(
        faults,
        REFERENCE,
        tmp_path,
        tmp_path / "scratch",
        jobs=2,
        timeout_s=5.0,
        on_result=lambda result, done: seen.append((result.fault.name, done)),
    )
    assert sorted(name for name, _ in seen) == ["first", "second", "third"]
    assert [done for _, done in seen] == [1, 2, 3]
    assert [result.fault.name for result in results] == ["first", "second", "third"]
    assert all(not result.caught for result in results)


def test_the_progress_line_names_fault_verdict_and_seconds() -> None:
    fault = _stale("label-typo")
    run = SuiteRun(1, ("test_default_deny::test_x[finland]",), (), "", 14.26)
    caught = FaultResult(fault, run, True, "1 failing test(s) in test_default_deny")
    assert progress_line(caught, 3, 21) == (
        "[ 3/21] caught  label-typo  14.3 s  1 failing test(s) in test_default_deny"
    )
    missed = FaultResult(fault, None, False, "could not apply the fault: gone")
    assert progress_line(missed, 21, 21) == "[21/21] MISSED  label-typo  0.0 s  could not apply the fault: gone"
