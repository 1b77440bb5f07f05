"""The agent stays one file of Python 3.8+ standard library, because that is all a netshoot pod has.

The syntax check uses the parser's 3.8 grammar; the import check uses the running interpreter's list of
standard-library modules; where a Python 3.8 is installed, the agent also really runs under it (locally:
no job here sends a packet).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from calico_conformance.probe.netns_executor import AGENT_PATH

OLDEST_PYTHON = Path("/root/.pyenv/versions/3.8.18/bin/python3.8")


def _tree() -> ast.Module:
    return ast.parse(AGENT_PATH.read_text(), feature_version=(3, 8))


def test_agent_parses_as_python_3_8() -> None:
    assert isinstance(_tree(), ast.Module)


def test_agent_imports_only_the_standard_library() -> None:
    imported = set()
    for node in ast.walk(_tree()):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert imported - sys.stdlib_module_names == set()


@pytest.mark.skipif(not OLDEST_PYTHON.exists(), reason=f"{OLDEST_PYTHON} is not installed")
def test_agent_runs_a_local_batch_under_python_3_8() -> None:
    jobs = [
        {"id": "lo", "kind": "mtu", "check": "interface", "interface": "lo"},
        {"id": "bad", "kind": "nope"},
    ]
    completed = subprocess.run(
        [str(OLDEST_PYTHON), "-I", "-S", str(AGENT_PATH), "probe"],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    results = {line["id"]: line for line in map(json.loads, completed.stdout.splitlines())}
    assert results["lo"]["verdict"] == "allowed"
    assert results["lo"]["mtu"] == int(Path("/sys/class/net/lo/mtu").read_text())
    assert results["bad"]["verdict"] == "error"
