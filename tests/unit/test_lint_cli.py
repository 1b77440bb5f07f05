"""`calico-conformance lint` as a user and a CI gate run it: exit status, text, JSON and SARIF output."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from calico_conformance.cli import main
from calico_conformance.lint.findings import CHECKS

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = str(ROOT / "policies" / "reference")
TENANCY = str(ROOT / "policies" / "tenancy.yaml")
FIXTURES = ROOT / "tests" / "data" / "lint"
ERROR_FIXTURE = str(FIXTURES / "duplicate-key.yaml")  # one error finding, no layout needed
WARNING_FIXTURE = str(FIXTURES / "crd-api-version.yaml")  # one warning finding, no layout needed
TEXT_LINE = re.compile(
    r"^(?P<file>[^:]+):(?P<line>\d+): (?P<severity>info|warning|error) (?P<id>[a-z0-9.-]+): .+ \(fix: .+\)$"
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["lint", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize(
    ("policies", "version"),
    [("policies/reference", "3.31"), ("policies-v3.27", "3.27")],
    ids=["tiered", "single-tier"],
)
def test_the_reference_sets_pass_the_gate(
    capsys: pytest.CaptureFixture[str], policies: str, version: str
) -> None:
    path = str(ROOT / policies)
    status, out, err = run(capsys, path, "--layout", TENANCY, "--fail-on", "info", "--calico-version", version)
    assert (status, err) == (0, "")
    assert out.splitlines()[-1] == "0 findings (0 error, 0 warning, 0 info)"


def test_an_error_finding_exits_1_in_the_documented_text_form(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, ERROR_FIXTURE)
    assert status == 1
    finding = TEXT_LINE.match(out.splitlines()[0])
    assert finding is not None, out
    assert (finding["file"], finding["line"], finding["severity"], finding["id"]) == (
        ERROR_FIXTURE,
        "25",
        "error",
        "duplicate-key",
    )


@pytest.mark.parametrize(("fail_on", "status"), [("error", 0), ("warning", 1), ("info", 1)])
def test_fail_on_sets_the_threshold(capsys: pytest.CaptureFixture[str], fail_on: str, status: int) -> None:
    assert run(capsys, WARNING_FIXTURE, "--fail-on", fail_on)[0] == status


def test_fail_on_defaults_to_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, WARNING_FIXTURE)[0] == 0


def test_a_missing_path_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    status, out, err = run(capsys, str(missing))
    assert (status, out) == (2, "")
    assert err == f"calico-conformance lint: {missing}: no such file or directory\n"


def test_a_bad_layout_is_a_usage_error_naming_file_and_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    layout = tmp_path / "layout.yaml"
    layout.write_text("apiVersion: calico-conformance/v1\nkind: TenancyLayout\nsurprise: 1\n")
    status, out, err = run(capsys, REFERENCE, "--layout", str(layout))
    assert (status, out) == (2, "")
    assert err.startswith(f"calico-conformance lint: {layout}:3: ")


def test_an_unknown_calico_version_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, REFERENCE, "--calico-version", "2.0")
    assert status == 2
    assert "2.0" in err


def test_text_output_notes_the_skipped_checks_without_a_layout(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, REFERENCE)
    notes = [line for line in out.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1
    assert "no --layout given" in notes[0]


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, ERROR_FIXTURE, "--format", "json")
    document = json.loads(out)
    assert status == 1
    assert document["summary"] == {"info": 0, "warning": 0, "error": 1}
    [finding] = document["findings"]
    assert finding["id"] == "duplicate-key"
    assert (finding["file"], finding["line"], finding["severity"]) == (ERROR_FIXTURE, 25, "error")
    assert finding["fix"] == CHECKS["duplicate-key"].fix
    assert "duplicate key 'destination'" in finding["message"]


def test_sarif_output_is_sarif_2_1_0_with_a_rule_per_check(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # artifact URIs are relative to the working directory, as code scanning expects
    status, out, _ = run(capsys, "tests/data/lint/duplicate-key.yaml", "--format", "sarif")
    document = json.loads(out)
    assert status == 1
    assert document["version"] == "2.1.0"
    [sarif_run] = document["runs"]
    rules = sarif_run["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == list(CHECKS)
    [result] = sarif_run["results"]
    assert result["ruleId"] == "duplicate-key"
    assert rules[result["ruleIndex"]]["id"] == "duplicate-key"
    assert result["level"] == "error"
    [location] = result["locations"]
    assert location["physicalLocation"] == {
        "artifactLocation": {"uri": "tests/data/lint/duplicate-key.yaml"},
        "region": {"startLine": 25},
    }


def test_sarif_levels_follow_severities(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, WARNING_FIXTURE, "--format", "sarif")
    [result] = json.loads(out)["runs"][0]["results"]
    assert result["level"] == "warning"


def test_sarif_carries_the_notes_as_notifications(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, REFERENCE, "--format", "sarif")
    [invocation] = json.loads(out)["runs"][0]["invocations"]
    [notification] = invocation["toolExecutionNotifications"]
    assert "no --layout given" in notification["message"]["text"]


@pytest.fixture
def policy_repo(tmp_path: Path) -> Path:
    """A policy repository as users keep one: the layout beside the manifests it constrains."""
    shutil.copy(TENANCY, tmp_path / "tenancy.yaml")
    shutil.copytree(REFERENCE, tmp_path / "reference")
    return tmp_path


def test_the_layout_inside_the_policy_directory_is_not_linted_as_a_manifest(
    capsys: pytest.CaptureFixture[str], policy_repo: Path
) -> None:
    layout = str(policy_repo / "tenancy.yaml")
    status, out, _ = run(capsys, str(policy_repo), "--layout", layout, "--fail-on", "info")
    assert status == 0
    assert out.splitlines()[-1] == "0 findings (0 error, 0 warning, 0 info)"


def test_a_layout_met_without_layout_is_named_in_a_note(
    capsys: pytest.CaptureFixture[str], policy_repo: Path
) -> None:
    status, out, _ = run(capsys, str(policy_repo), "--fail-on", "info")
    notes = [line for line in out.splitlines() if line.startswith("note: ")]
    assert status == 0
    assert notes[0] == (
        f"note: {policy_repo / 'tenancy.yaml'}: a tenancy layout, not a manifest; it was not linted (pass it"
        " as --layout to run the inventory-based checks against it)"
    )
