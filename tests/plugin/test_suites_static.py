"""The user-facing suites as a user runs them: options, `-k` selection, the static target, the reports.

Each test runs `pytest <repo>/suites` in a subprocess (the repository's own conftest and fixtures, the
installed plugin), with the report directory in a temporary directory so nothing lands in `reports/`.
The broken policy set is the reference set with the runbook's original bug put back (a namespaceSelector
on a label no namespace has), made by the mutation catalogue on a copy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from calico_conformance.mutation.catalogue import CATALOGUE
from calico_conformance.mutation.workspace import Inputs, Workspace
from calico_conformance.report.schema import read_report
from calico_conformance.suite.assertions import MAX_LINES

pytest_plugins = ["pytester"]

REPOSITORY = Path(__file__).resolve().parents[2]
SUITES = REPOSITORY / "suites"
BROKEN_BY = "exception-selects-unlabelled-namespace"
LOCATION = re.compile(r" at \S+:\d+")  # file:line of a rule differs between the policy set and a scenario


@dataclass(frozen=True)
class SuiteRun:
    returncode: int
    stdout: str
    report_dir: Path


def _run_suites(report_dir: Path, *args: str) -> SuiteRun:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(SUITES),
            "--target=static",
            f"--report-dir={report_dir}",
            f"--junitxml={report_dir / 'junit.xml'}",
            "-p",
            "no:cacheprovider",
            "-q",
            *args,
        ],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=False,
    )
    return SuiteRun(completed.returncode, completed.stdout + completed.stderr, report_dir)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """Every suite over the reference set, once for the tests that read it."""
    return _run_suites(tmp_path_factory.mktemp("reference") / "reports")


@pytest.fixture(scope="module")
def broken_inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    """A copy of the reference set with the runbook's namespaceSelector bug."""
    workspace = Workspace(Inputs.of_repository(REPOSITORY), tmp_path_factory.mktemp("broken"))
    (fault,) = [fault for fault in CATALOGUE if fault.name == BROKEN_BY]
    fault.apply(workspace)
    return workspace.inputs


@pytest.fixture(scope="module")
def broken_run(broken_inputs: Inputs) -> SuiteRun:
    """Every suite over the broken copy, its reports beside it."""
    return _run_suites(
        broken_inputs.policies.parent / "reports",
        f"--policies={broken_inputs.policies}",
        f"--layout={broken_inputs.layout}",
        f"--kind-configs={broken_inputs.kind_configs}",
    )


def test_an_unknown_target_is_a_usage_error_listing_the_choices(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(str(SUITES), "--target=bogus", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown --target 'bogus'; choose one of: kind, kubeconfig, static*"])


def test_k_isolation_selects_exactly_the_isolation_and_default_deny_tests(pytester: pytest.Pytester) -> None:
    def collected(*args: str) -> list[str]:
        result = pytester.runpytest_subprocess(
            str(SUITES), "--target=static", "--collect-only", "-q", "-p", "no:cacheprovider", *args
        )
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()
        return [line for line in result.stdout.lines if "::" in line]

    selected = collected("-k", "isolation")
    everything = collected()
    modules = {Path(test.split("::")[0]).stem for test in selected}
    assert modules == {"test_royal_bank_isolation", "test_default_deny"}
    expected = [test for test in everything if Path(test.split("::")[0]).stem in modules]
    assert selected == expected  # every test of both modules, and nothing else


def test_the_reference_set_passes_on_the_static_target(reference_run: SuiteRun) -> None:
    assert reference_run.returncode == 0, reference_run.stdout[-3000:]
    assert " failed" not in reference_run.stdout
    assert " error" not in reference_run.stdout


def test_the_reports_of_a_run_are_written_and_valid(reference_run: SuiteRun) -> None:
    junit = ET.parse(reference_run.report_dir / "junit.xml")
    outcomes: Counter[str] = Counter()
    for case in junit.iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[kinds[0] if kinds else "passed"] += 1
    report = read_report(reference_run.report_dir / "conformance-report.yaml")  # schema-checked
    statistics = report["statistics"]
    assert statistics["passed"] == outcomes["passed"]
    assert statistics["skipped"] + statistics["notSupported"] == outcomes["skipped"]
    assert (statistics["failed"], statistics["errors"]) == (0, 0)
    assert report["exitStatus"] == 0
    profiles = {profile["name"] for profile in report["profiles"]}
    assert {"isolation", "default_deny", "royal_bank", "tiers", "dns", "mtu", "cidr"} <= profiles
    # every skip says why
    assert all(entry["reason"] for entry in report["skipped"] + report["notSupported"])
    # a passing run records cases: the static target observed real flows
    assert statistics["cases"] > 0
    assert statistics["wrongCases"] == 0
    # a green run is called green, whatever it skipped with a reason
    assert report["result"] == "success"
    # JUnit carries counts, not a property per flow (it was 4.4 MB and 2,210 properties per test)
    for case in junit.iter("testcase"):
        names = [p.get("name") for p in case.iter("property")]
        assert len(names) <= 3, names
    assert (reference_run.report_dir / "junit.xml").stat().st_size < 200_000
    clusters = {cluster["name"]: cluster["podSubnet"] for cluster in report["fingerprint"]["clusters"]}
    assert clusters == {"finland": "10.244.0.0/16", "germany": "10.245.0.0/16", "helsinki": "10.246.0.0/16"}


def _failures(output: str) -> dict[str, list[str]]:
    """The failure sections of a pytest run's output: test name -> lines of its message."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        title = re.fullmatch(r"_{3,} (\S+) _{3,}", line)
        if title:
            current = sections.setdefault(title.group(1), [])
        elif line.startswith("=") or line.startswith("___"):
            current = None
        elif current is not None:
            current.append(line)
    return sections


def test_a_broken_set_fails_with_a_short_verdict_first_message(broken_run: SuiteRun) -> None:
    assert broken_run.returncode == 1, broken_run.stdout[-3000:]
    failures = _failures(broken_run.stdout)
    assert "test_exception_is_exact[finland-royal-bank-logging]" in failures
    for name, lines in failures.items():
        assert lines[0].startswith("POLICY DEFECT: "), (name, lines[0])
        assert len(lines) <= MAX_LINES, (name, len(lines))
        assert (
            "(oracle: what the policy set implies, no dataplane)" in lines[1]
        )  # the static target says oracle, not observed
    lines = failures["test_exception_is_exact[finland-royal-bank-logging]"]
    (cause,) = [line for line in lines if line.startswith("cause ")]
    assert "blocked flow(s): the policy set denies them" in cause
    assert "    royal-bank/ledger -> platform/log-collector: TCP 5044" in lines
    # the grids are for -vv and the attachments, not the short message
    assert "from \\ to" not in broken_run.stdout
    report = read_report(broken_run.report_dir / "conformance-report.yaml")
    failed_suites = {failure["suite"] for failure in report["failures"]}
    assert "test_royal_bank_isolation" in failed_suites
    assert all(failure["failureKind"] == "assertion" for failure in report["failures"])
    assert all(case["result"] == "blocked" for f in report["failures"] for case in f.get("wrongCases", []))
    assert all(case["defect"] == "policy" for f in report["failures"] for case in f.get("wrongCases", []))
    for failure in report["failures"]:
        assert failure["headline"].startswith("POLICY DEFECT: ")  # the verdict, not pytest's "Failed:"
        assert "leak = oracle allowed" in failure["diff"]  # the static target's matrix says oracle
        assert "observed" not in failure["diff"]


def test_the_cause_names_the_policy_sets_own_file_and_line(broken_run: SuiteRun) -> None:
    lines = _failures(broken_run.stdout)["test_exception_is_exact[finland-royal-bank-logging]"]
    (cause,) = [line for line in lines if line.startswith("cause ")]
    where = re.search(
        r"(?:by|policy:) (?:tier \S+, )?(\S+ \S+?)(?: rule \d+ \(\w+\))? at (\S+?):(\d+)\)?$", cause
    )
    assert where is not None, cause
    policy, file, line = where.group(1), Path(where.group(2)), int(where.group(3))
    policies = broken_run.report_dir.parent / "policies"
    assert file.parent == policies  # the run's policy set, not reports/scenarios/...
    text = file.read_text().splitlines()
    namespace, name = policy.split(" ")[1].split("/")
    # the line is inside the document of the named policy: its metadata name is at or below it
    document_start = max(i for i in range(line) if i == 0 or text[i - 1] == "---")
    document = text[document_start:]
    document = document[: document.index("---")] if "---" in document else document
    assert f"  name: {name}" in document
    assert f"  namespace: {namespace}" in document


def test_the_reproduce_command_runs_as_printed_and_replays_the_wrong_flow(broken_run: SuiteRun) -> None:
    lines = _failures(broken_run.stdout)["test_exception_is_exact[finland-royal-bank-logging]"]
    (command,) = [
        line.split(": ", 1)[1] for line in lines if line.startswith("reproduce (no cluster needed): ")
    ]
    assert command.split()[-2] == "simulate"
    # exactly as printed, from where pytest ran, by a shell whose PATH knows no virtualenv
    replay = subprocess.run(
        command,
        shell=True,
        cwd=REPOSITORY,
        env={**os.environ, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert replay.returncode == 0, replay.stderr
    # the first wrong flow: required allowed, denied by the policy set, and the replay says so
    (pair,) = [line.strip() for line in lines if line.startswith("    royal-bank/ledger ")]
    source, destination = pair.split(": ")[0].split(" -> ")
    assert f"DENY   {source} -> {destination} 5044/TCP" in replay.stdout
    decision = replay.stdout.split(f"{source} -> {destination} 5044/TCP", 1)[1].splitlines()[1].strip()
    (cause,) = [line for line in lines if line.startswith("cause ")]
    assert LOCATION.sub("", decision) in LOCATION.sub("", cause)


def test_with_vv_the_matrix_follows_the_short_message(tmp_path: Path, broken_inputs: Inputs) -> None:
    run = _run_suites(
        tmp_path / "reports",
        f"--policies={broken_inputs.policies}",
        f"--layout={broken_inputs.layout}",
        f"--kind-configs={broken_inputs.kind_configs}",
        "-vvv",  # the helper's -q and a user's -vv
        "-k",
        "test_exception_is_exact and finland",
    )
    (lines,) = _failures(run.stdout).values()
    assert lines[0].startswith("POLICY DEFECT: ")
    header = next(line for line in lines if line.startswith("from \\ to"))
    assert "platform/log-collector" in header  # named columns, one matrix for every port
    assert sum(1 for line in lines if line.startswith("from \\ to")) == 1
    assert any(
        line.startswith("  blocked: royal-bank/ledger -> platform/log-collector 5044/TCP") for line in lines
    )
