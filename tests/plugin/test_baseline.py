"""`--baseline` on the static target, as a user runs it: each failing test says if its failure is new.

The change under review widens the logging exception's port (5044 to 5040-5050) on a copy of the
reference set: the default-deny and exact-exception tests of royal-bank fail. Against the reference set
as baseline those failures are new; against the widened set itself they were already there. Each run is
`pytest suites` in a subprocess on one cluster and the tests that fail, to stay quick.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
REFERENCE = REPOSITORY / "policies" / "reference"
SELECTION = "default_deny or exception_is_exact"


@pytest.fixture(scope="module")
def widened(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("head") / "policies"
    shutil.copytree(REFERENCE, copy)
    logging = copy / "40-application-logging.yaml"
    logging.write_text(logging.read_text().replace("ports: [5044]", "ports: ['5040:5050']"))
    return copy


def run_suites(tmp_path: Path, *args: str) -> tuple[int, str, dict[str, str]]:
    """Exit status, output, and the `baseline` property of each failed test case in the JUnit XML."""
    junit = tmp_path / "junit.xml"
    completed = subprocess.run(
        [
            sys.executable, "-m", "pytest", str(REPOSITORY / "suites"), "--target=static", "--clusters=finland",
            f"--report-dir={tmp_path / 'reports'}", f"--junitxml={junit}", "-p", "no:cacheprovider", "-q",
            "-k", SELECTION, *args,
        ],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=False,
    )
    properties = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            for prop in case.iter("property"):
                if prop.get("name") == "baseline":
                    properties[case.get("name", "")] = prop.get("value", "")
    return completed.returncode, completed.stdout + completed.stderr, properties


def test_failures_the_change_causes_are_new(tmp_path: Path, widened: Path) -> None:
    status, out, properties = run_suites(tmp_path, f"--policies={widened}", f"--baseline={REFERENCE}")
    assert status == 1
    assert properties == {
        "test_default_deny[finland-royal-bank]": "new",
        "test_exception_is_exact[finland-royal-bank-logging]": "new",
    }
    assert f"failures against the baseline {REFERENCE}" in out
    assert "new in this change: the baseline" in out


def test_failures_the_baseline_has_too_were_already_there(tmp_path: Path, widened: Path) -> None:
    status, out, properties = run_suites(tmp_path, f"--policies={widened}", f"--baseline={widened}")
    assert status == 1
    assert set(properties.values()) == {"already failing"}
    assert "ALREADY FAILING  suites/test_default_deny.py::test_default_deny[finland-royal-bank]" in out


def test_baseline_applies_to_the_static_target_only(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPOSITORY / "suites"), "--target=kind", f"--baseline={REFERENCE}",
         "-p", "no:cacheprovider", "-q", "--co"],
        cwd=REPOSITORY, capture_output=True, text=True, check=False,
    )
    assert completed.returncode == 4  # pytest's usage error
    assert "--baseline only applies to --target=static, not --target=kind" in completed.stderr


def test_a_baseline_that_does_not_load_is_a_usage_error(tmp_path: Path) -> None:
    status, out, _ = run_suites(tmp_path, f"--baseline={tmp_path / 'absent'}")
    assert status == 4
    assert f"--baseline: {tmp_path / 'absent'}: no such file or directory" in out
