"""The user-facing suites as a user runs them: options, `-k` selection, the static target, the reports.

Each test runs `pytest <repo>/suites` in a subprocess (the repository's own conftest and fixtures, the
installed plugin), with the report directory in a temporary directory so nothing lands in `reports/`.
The broken policy set is the reference set with the runbook's original bug put back (a namespaceSelector
on a label no namespace has), made by the mutation catalogue on a copy.
"""

from __future__ import annotations

import json
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
def broken_run(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """Every suite over a copy of the reference set with the runbook's namespaceSelector bug."""
    workspace = Workspace(Inputs.of_repository(REPOSITORY), tmp_path_factory.mktemp("broken"))
    (fault,) = [fault for fault in CATALOGUE if fault.name == BROKEN_BY]
    fault.apply(workspace)
    return _run_suites(
        workspace.root / "reports",
        f"--policies={workspace.inputs.policies}",
        f"--layout={workspace.inputs.layout}",
        f"--kind-configs={workspace.inputs.kind_configs}",
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
    clusters = {cluster["name"]: cluster["podSubnet"] for cluster in report["fingerprint"]["clusters"]}
    assert clusters == {"finland": "10.244.0.0/16", "germany": "10.245.0.0/16", "helsinki": "10.246.0.0/16"}


def test_the_run_states_its_class_coverage(reference_run: SuiteRun) -> None:
    """Issue 11: the static target probes every class of (source, destination, port), and says so."""
    lines = re.findall(r"^coverage (\w+): (\d+) classes, all probed$", reference_run.stdout, re.MULTILINE)
    assert [cluster for cluster, _ in lines] == ["finland", "germany", "helsinki"]
    report = read_report(reference_run.report_dir / "conformance-report.yaml")
    assert [(c["cluster"], c["classes"], c["probed"]) for c in report["coverage"]] == [
        (cluster, int(classes), int(classes)) for cluster, classes in lines
    ]


def test_a_broken_set_fails_with_the_diff_table(broken_run: SuiteRun) -> None:
    assert broken_run.returncode == 1, broken_run.stdout[-3000:]
    assert (
        "diff (X = expected denied but allowed, B = expected allowed but denied, E = unproven):"
        in broken_run.stdout
    )
    assert "blocked: royal-bank/ledger -> platform/log-collector 5044/TCP" in broken_run.stdout
    report = read_report(broken_run.report_dir / "conformance-report.yaml")
    failed_suites = {failure["suite"] for failure in report["failures"]}
    assert "test_royal_bank_isolation" in failed_suites
    assert all(failure["failureKind"] == "assertion" for failure in report["failures"])
    assert all(case["result"] == "blocked" for f in report["failures"] for case in f.get("wrongCases", []))


def test_the_reproduce_command_reproduces_the_first_wrong_flow(broken_run: SuiteRun) -> None:
    output = broken_run.stdout
    command = re.search(r"^reproduce: (calico-conformance simulate \S+)$", output, re.MULTILINE)
    first = re.search(
        r"^first wrong flow: (\S+) -> (\S+) (\d+)/(\w+) \(policy defect\)$", output, re.MULTILINE
    )
    decided = re.search(r"^  the policy set decides it: (.*)$", output, re.MULTILINE)
    assert command is not None, output[-3000:]
    assert first is not None
    assert decided is not None
    argv = command.group(1).split()
    replay = subprocess.run(
        [sys.executable, "-m", "calico_conformance.cli", *argv[1:], "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    source, destination, port, protocol = first.groups()
    (result,) = [
        r
        for r in json.loads(replay.stdout)["results"]
        if (r["from"], r["to"], r["port"], r["protocol"]) == (source, destination, int(port), protocol)
    ]
    assert result["allowed"] is False  # the run observed this required flow dropped
    explanation = LOCATION.sub("", decided.group(1))
    assert LOCATION.sub("", result["egress"]["decision"]) in explanation
    assert LOCATION.sub("", result["ingress"]["decision"]) in explanation
