"""A bad suite input gives the same single usage error with pytest-xdist (`-n 2`) as without it.

The suites are run as a user runs them, in a child pytest, because the point is what the controller
does before its workers start; an in-process pytester run does not start real workers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
USAGE_ERROR = 4  # pytest.ExitCode.USAGE_ERROR


def suites(*options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "suites",
            "--target=static",
            "-q",
            "-p",
            "no:cacheprovider",
            *options,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("ERROR:")]


@pytest.mark.parametrize("bad", ["empty-policies", "fifo-layout"])
def test_a_bad_input_is_one_usage_error_serial_or_distributed(tmp_path: Path, bad: str) -> None:
    if bad == "empty-policies":
        option = f"--policies={tmp_path}"
    else:
        os.mkfifo(tmp_path / "tenancy.yaml")
        option = f"--layout={tmp_path / 'tenancy.yaml'}"
    serial = suites(option)
    distributed = suites(option, "-n", "2")
    for done in (serial, distributed):
        assert done.returncode == USAGE_ERROR, done.stdout[-2000:] + done.stderr[-2000:]
        assert "Traceback" not in done.stdout + done.stderr
        assert "INTERNALERROR" not in done.stdout + done.stderr
    assert len(error_lines(serial)) == 1
    assert error_lines(distributed) == error_lines(serial)


def test_a_bad_default_input_is_one_usage_error_serial_or_distributed(tmp_path: Path) -> None:
    """No input option at all, as `pytest -n 2` typed at the root: the controller reads the default
    inputs because the run's paths (testpaths) reach `suites/`, instead of a worker crashing on them."""
    root = tmp_path / "checkout"
    root.mkdir()
    for name in ("suites", "fixtures", "kind-configs", "policies"):
        shutil.copytree(ROOT / name, root / name)
    for name in ("conftest.py", "pyproject.toml"):
        shutil.copy(ROOT / name, root / name)
    (root / "policies" / "reference" / "99-broken.yaml").write_text(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: x, namespace: y}\n"
        'spec: {selector: "(("}\n'
    )

    def run(*options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "--target=static", "-q", "-p", "no:cacheprovider", *options],
            cwd=root, capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )  # fmt: skip

    serial, distributed = run(), run("-n", "2")
    for done in (serial, distributed):
        assert done.returncode == USAGE_ERROR, done.stdout[-2000:] + done.stderr[-2000:]
        assert "INTERNALERROR" not in done.stdout + done.stderr
    assert error_lines(distributed) == error_lines(serial)
    assert error_lines(serial)[0].startswith(
        f"ERROR: {root / 'policies' / 'reference' / '99-broken.yaml'}:4:"
    )
