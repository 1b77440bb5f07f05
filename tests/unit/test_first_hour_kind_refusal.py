"""`--target=kind` refused on this machine says how to get what is missing, before any input is read.

The PATH is a folder of stub programs: `docker` stubs answer `docker info` the way the real client
does without an engine (this project's machines: a client, no daemon) or with one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from calico_conformance.targets.registry import TARGETS, require_target

ROOT = Path(__file__).resolve().parents[2]
# What docker 27's client prints to stderr, exit 1, when /var/run/docker.sock has no daemon behind it.
NO_DAEMON = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
STUB_OK = "#!/bin/sh\necho 27.3.1\n"
STUB_NO_ENGINE = f"#!/bin/sh\necho '{NO_DAEMON}' >&2\nexit 1\n"


def _path(tmp_path: Path, **programs: str) -> str:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, text in programs.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    return str(folder)


def test_missing_kind_is_refused_with_kinds_own_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", _path(tmp_path, docker=STUB_OK, kubectl=STUB_OK))
    with pytest.raises(pytest.UsageError) as refused:
        require_target("kind")
    lines = str(refused.value).splitlines()
    assert lines[0] == "--target=kind needs docker, kind, kubectl on PATH; missing:"
    assert lines[1].startswith("  kind (creates the clusters from kind-configs/): go install sigs.k8s.io/kind@v0.27.0")
    assert "https://kind.sigs.k8s.io/dl/v0.27.0/kind-linux-amd64" in lines[1]
    assert lines[-1] == "to check a policy set without a cluster use --target=static"


def test_docker_client_without_engine_is_refused_as_engine_not_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", _path(tmp_path, docker=STUB_NO_ENGINE, kind=STUB_OK, kubectl=STUB_OK))
    assert TARGETS["kind"].unavailable_because() == (
        f"--target=kind cannot start: Docker engine is not running (docker info failed: {NO_DAEMON})"
    )


def test_engine_answering_and_programs_present_is_no_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", _path(tmp_path, docker=STUB_OK, kind=STUB_OK, kubectl=STUB_OK))
    assert TARGETS["kind"].unavailable_because() is None


def test_other_targets_never_ask_the_docker_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "docker-was-called"
    monkeypatch.setenv("PATH", _path(tmp_path, docker=f"#!/bin/sh\ntouch {log}\nexit 1\n", kubectl=STUB_OK))
    assert TARGETS["static"].unavailable_because() is None
    assert TARGETS["kubeconfig"].unavailable_because() is None
    assert not log.exists()


def test_pytest_with_target_kind_and_no_engine_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    folder = _path(tmp_path, docker=STUB_NO_ENGINE, kind=STUB_OK, kubectl=STUB_OK)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["PATH"] = os.pathsep.join([folder, str(Path(sys.executable).parent)])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--target=kind", "-q", "-k", "isolation"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert run.returncode == int(pytest.ExitCode.USAGE_ERROR), run.stdout + run.stderr
    assert "Docker engine is not running (docker info failed: Cannot connect to the Docker daemon" in run.stderr
    assert "Traceback" not in run.stdout + run.stderr
