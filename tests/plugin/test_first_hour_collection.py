"""`pytest` typed at the repository root, as engineers type it: it collects the suites and only them.

Each run is a real pytest subprocess started in the repository root, so the root's `pyproject.toml`
(testpaths, addopts) and `conftest.py` are the ones a user gets.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NO_TESTS_COLLECTED = int(pytest.ExitCode.NO_TESTS_COLLECTED)


def _pytest_at_root(*args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "COV_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _collected(output: str) -> list[str]:
    return [line for line in output.splitlines() if "::" in line]


def test_bare_pytest_with_k_collects_the_suites_isolation_tests_and_nothing_from_tests() -> None:
    run = _pytest_at_root("--collect-only", "-q", "--target=static", "-k", "isolation")
    assert run.returncode == 0, run.stdout + run.stderr
    ids = _collected(run.stdout)
    assert any(i.startswith("suites/test_royal_bank_isolation.py::test_royal_bank_isolation[") for i in ids)
    assert all(i.startswith("suites/") for i in ids), [i for i in ids if not i.startswith("suites/")]
    assert "isolation" in "".join(ids)


def test_tests_and_suites_with_the_same_basename_collect_side_by_side() -> None:
    """`tests/netns/test_mtu.py` and `suites/test_mtu.py` once failed with "import file mismatch"."""
    run = _pytest_at_root("--collect-only", "-q", "--target=static", "tests/netns/test_mtu.py", "suites/test_mtu.py")
    assert run.returncode == 0, run.stdout + run.stderr
    files = {line.split("::")[0] for line in _collected(run.stdout)}
    assert files == {"tests/netns/test_mtu.py", "suites/test_mtu.py"}


def test_a_selection_that_collects_nothing_fails_with_pytest_exit_5() -> None:
    run = _pytest_at_root("--collect-only", "-q", "--target=static", "-k", "no_test_is_called_this")
    assert run.returncode == NO_TESTS_COLLECTED, run.stdout + run.stderr
