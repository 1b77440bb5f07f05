"""Judging a mutation run: caught means the right suite failed an assertion, or a load error named its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from calico_conformance.mutation.__main__ import main
from calico_conformance.mutation.runner import (
    Fault,
    FaultResult,
    SuiteRun,
    judge,
    junit_outcomes,
    module_of,
    render_table,
    try_fault,
)
from calico_conformance.mutation.workspace import Inputs, Workspace, insert_after_block
from calico_conformance.oracle.errors import Location

REFERENCE = Inputs.of_repository(Path(__file__).resolve().parents[2])


def _fault(*catchers: str) -> Fault:
    return Fault("some-fault", "a fault", lambda workspace: None, catchers)


def _run(
    exit_code: int, failed: tuple[str, ...] = (), errored: tuple[str, ...] = (), output: str = ""
) -> SuiteRun:
    return SuiteRun(exit_code, failed, errored, output, 1.0)


def test_a_failure_in_the_catching_suite_is_caught() -> None:
    result = judge(_fault("test_dns_egress"), None, _run(1, failed=("test_dns_egress::test_x[finland]",)))
    assert result.caught


def test_a_failure_elsewhere_is_not_proof() -> None:
    result = judge(_fault("test_dns_egress"), None, _run(1, failed=("test_mtu::test_y",)))
    assert not result.caught
    assert result.why == "failed only in test_mtu, not in test_dns_egress"


def test_errors_without_failed_assertions_are_missed() -> None:
    result = judge(_fault("test_dns_egress"), None, _run(6, errored=("test_dns_egress::test_x",)))
    assert not result.caught
    assert "errored but none failed an assertion" in result.why


def test_a_passing_run_misses_the_fault() -> None:
    assert not judge(_fault("test_dns_egress"), None, _run(0)).caught


def test_a_load_fault_is_caught_only_when_the_output_names_its_line() -> None:
    bad = Location("/tmp/copy/policies/40-application-logging.yaml", 25)
    named = _run(
        4, output="ERROR: /tmp/copy/policies/40-application-logging.yaml:25: duplicate key 'destination'"
    )
    assert judge(_fault(), bad, named).caught
    wrong_line = _run(4, output="ERROR: /tmp/copy/policies/40-application-logging.yaml:21: duplicate key")
    assert not judge(_fault(), bad, wrong_line).caught
    assert not judge(_fault(), bad, _run(0, output="40-application-logging.yaml:25")).caught


def test_a_timed_out_run_is_missed() -> None:
    result = judge(_fault("test_mtu"), None, _run(-1, output="timed out after 5 s\n"))
    assert not result.caught
    assert result.why == "timed out after 5 s"


def test_junit_outcomes_tell_failures_from_errors(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">'
        '<testcase classname="suites.test_dns_egress" name="test_a[finland]"><failure message="x"/></testcase>'
        '<testcase classname="suites.test_mtu" name="test_b"><error message="y"/></testcase>'
        '<testcase classname="suites.test_mtu" name="test_c"/>'
        "</testsuite></testsuites>"
    )
    assert junit_outcomes(junit) == (("test_dns_egress::test_a[finland]",), ("test_mtu::test_b",))
    assert junit_outcomes(tmp_path / "never-written.xml") == ((), ())


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("suites.test_dns_egress", "test_dns_egress"),
        ("test_dns_egress::test_a[x]", "test_dns_egress"),
        ("suites.test_tier_ordering.TestTiers", "test_tier_ordering"),
    ],
)
def test_module_of(name: str, module: str) -> None:
    assert module_of(name) == module


def test_a_behaviour_preserving_edit_must_pass_every_suite() -> None:
    edit = Fault("renamed", "a policy renamed", lambda workspace: None, (), must_pass=True)
    assert judge(edit, None, _run(0)).caught
    failing = judge(edit, None, _run(1, failed=("test_dns_egress::t",)))
    assert not failing.caught
    assert failing.why == "a behaviour-preserving edit failed: test_dns_egress"
    assert not judge(edit, None, _run(1, errored=("test_x::t",))).caught
    lines = render_table([failing]).splitlines()
    assert [cell.strip() for cell in lines[2].split("|")] == ["renamed", "test_dns_egress (1)", "FAILED"]
    assert lines[-1] == "FAILED renamed: a behaviour-preserving edit failed: test_dns_egress"


def test_the_table_has_a_row_per_fault_and_says_why_a_fault_was_missed() -> None:
    caught = FaultResult(
        Fault("a", "", lambda w: None, ("test_x",)), _run(1, failed=("test_x::t1", "test_x::t2")), True, ""
    )
    missed = FaultResult(
        Fault("b", "", lambda w: None, ("test_y",)), _run(0), False, "every suite passed (exit 0)"
    )
    lines = render_table([caught, missed]).splitlines()
    assert [cell.strip() for cell in lines[0].split("|")] == ["fault", "tests that failed", "verdict"]
    assert [cell.strip() for cell in lines[2].split("|")] == ["a", "test_x (2)", "caught"]
    assert [cell.strip() for cell in lines[3].split("|")] == ["b", "-", "MISSED"]
    assert lines[-1] == "MISSED b: every suite passed (exit 0)"


def test_a_fault_that_no_longer_fits_the_reference_set_is_missed_not_crashed(tmp_path: Path) -> None:
    def remove_absent_policy(workspace: Workspace) -> None:
        workspace.remove("NetworkPolicy", "no-such-policy", "royal-bank")

    stale = Fault("stale", "", remove_absent_policy, ("test_x",))
    result = try_fault(stale, REFERENCE, tmp_path, tmp_path, timeout_s=1)
    assert not result.caught
    assert result.run is None
    assert "no NetworkPolicy no-such-policy in namespace royal-bank" in result.why


def test_insert_after_block_places_a_sibling_key_after_the_nested_block(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("rule:\n  destination:\n    ports: [1]\n\n    selector: a\n  action: Allow\n")
    location = insert_after_block(path, "destination:", "destination: {}")
    lines = path.read_text().splitlines()
    assert location == Location(str(path), 6)
    assert lines[5] == "  destination: {}"
    assert lines[6] == "  action: Allow"


def test_the_command_line_refuses_an_unknown_fault(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--only", "no-such-fault"])
    assert exited.value.code == 2
    assert "unknown fault no-such-fault; choose from:" in capsys.readouterr().err


def test_the_command_line_lists_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    assert (
        "royal-bank-default-deny-removed: royal-bank has no default-deny-all NetworkPolicy"
        in capsys.readouterr().out
    )
