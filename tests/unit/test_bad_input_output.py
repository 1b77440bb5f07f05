"""Every subcommand, run as a process with its standard output closed or its reader gone: no traceback,
never exit 0 (the output was not delivered), and the documented status (cli.py: 74 closed, 141 pipe).

These run `python -m calico_conformance.cli` in a child process because the conditions are about the
process's own file descriptors, which an in-process `main()` under pytest's capture does not have.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from calico_conformance.cli import EXIT_BROKEN_PIPE, EXIT_OUTPUT_FAILED

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = """\
namespaces: [{name: x}]
pods:
  - {name: a, namespace: x}
  - {name: b, namespace: x}
probes:
  - {from: x/a, to: x/b, port: 80, protocol: TCP}
"""
BATCH = '{"selector": "has(a)", "labels": {}}\n'


def commands(tmp_path: Path) -> dict[str, list[str]]:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO)
    batch = tmp_path / "cases.jsonl"
    batch.write_text(BATCH * 3)
    return {
        "lint": ["lint", str(ROOT / "policies" / "reference")],
        "images": ["images"],
        "selector": ["selector", "has(a)", "--labels", "{}"],
        "selector-batch": ["selector", "--batch", str(batch)],
        "simulate": ["simulate", str(scenario), "--format", "json"],
        "help": ["lint", "--help"],  # argparse swallows the write error; the guarded stdout does not
    }


def cli(argv: list[str], **how: object) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "calico_conformance.cli", *argv],
        stderr=subprocess.PIPE,
        env=env,
        timeout=120,
        check=False,
        **how,
    )


NAMES = ["lint", "images", "selector", "selector-batch", "simulate"]


@pytest.mark.parametrize("name", NAMES)
def test_closed_stdout_exits_74_with_one_line_and_no_traceback(tmp_path: Path, name: str) -> None:
    argv = commands(tmp_path)[name]
    done = cli(argv, preexec_fn=lambda: os.close(1))
    assert done.returncode == EXIT_OUTPUT_FAILED
    assert b"Traceback" not in done.stderr
    assert b"standard output is closed" in done.stderr


@pytest.mark.parametrize("name", [*NAMES, "help"])
def test_a_reader_that_went_away_exits_141_silently(tmp_path: Path, name: str) -> None:
    argv = commands(tmp_path)[name]
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| head -0` that has already exited: every write is EPIPE
    try:
        done = cli(argv, stdout=write_end)
    finally:
        os.close(write_end)
    assert done.returncode == EXIT_BROKEN_PIPE
    assert done.stderr == b""


def test_help_to_a_full_disk_exits_74(tmp_path: Path) -> None:
    with open("/dev/full", "wb") as full:
        done = cli(commands(tmp_path)["help"], stdout=full)
    assert done.returncode == EXIT_OUTPUT_FAILED


@pytest.mark.parametrize("name", NAMES)
def test_a_full_disk_exits_74_saying_so(tmp_path: Path, name: str) -> None:
    argv = commands(tmp_path)[name]
    with open("/dev/full", "wb") as full:
        done = cli(argv, stdout=full)
    assert done.returncode == EXIT_OUTPUT_FAILED
    assert done.stderr.endswith(b": cannot write standard output: No space left on device\n"), done.stderr


def test_stdout_open_for_reading_only_exits_74(tmp_path: Path) -> None:
    with open(os.devnull, "rb") as read_only:
        done = cli(commands(tmp_path)["selector"], stdout=read_only)
    assert done.returncode == EXIT_OUTPUT_FAILED
    assert b"cannot write standard output: Bad file descriptor" in done.stderr


def test_closed_stdin_for_batch_dash_is_a_usage_error_not_a_traceback() -> None:
    done = cli(["selector", "--batch", "-"], stdout=subprocess.PIPE, preexec_fn=lambda: os.close(0))
    assert done.returncode == 2
    assert b"Traceback" not in done.stderr
    assert b"standard input is closed" in done.stderr
