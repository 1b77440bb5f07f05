"""`.ci/system-packages.sh`, shared by `make setup` and `.ci/run`: what it installs, and what it says.

Each run gets a PATH of stub tools (the ones "installed") and a stub `apt-get` that records its
arguments, so nothing is installed for real. The non-root case runs the script as `nobody` (setpriv).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "system-packages.sh"
BASH = shutil.which("bash") or "/bin/bash"
APT_STUB = '#!/bin/sh\necho "$@" >> "{log}"\n'
NOBODY = 65534
SETPRIV = shutil.which("setpriv")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching to root and to nobody needs root")


def _bin(tmp_path: Path, present: tuple[str, ...], *, apt: bool = True) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir(mode=0o755)
    tmp_path.chmod(0o755)
    for tool in present:
        (folder / tool).write_text("#!/bin/sh\nexit 0\n")
        (folder / tool).chmod(0o755)
    if apt:
        log = tmp_path / "apt.log"
        (folder / "apt-get").write_text(APT_STUB.format(log=log))
        (folder / "apt-get").chmod(0o755)
    return folder


def _run(
    folder: Path, *args: str, as_user: int | None = None, script: Path = SCRIPT
) -> subprocess.CompletedProcess[str]:
    prefix = [] if as_user is None else [str(SETPRIV), f"--reuid={as_user}", f"--regid={as_user}", "--clear-groups"]
    return subprocess.run(
        [*prefix, BASH, str(script), *args],
        env={"PATH": str(folder)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_as_root_it_installs_only_what_is_missing_and_says_so_in_one_line(tmp_path: Path) -> None:
    run = _run(_bin(tmp_path, ("ip", "ping")))
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "system packages: apt-get install nftables dnsmasq-base (for the netns dataplane tests)"
    ]
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert calls == ["update -qq", "install -y -qq nftables dnsmasq-base"]


def test_extra_pairs_from_ci_are_installed_too(tmp_path: Path) -> None:
    run = _run(_bin(tmp_path, ("ip", "nft", "dnsmasq", "ping")), "make:make")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "apt.log").read_text().splitlines()[-1] == "install -y -qq make"


def test_nothing_missing_prints_nothing_and_installs_nothing(tmp_path: Path) -> None:
    run = _run(_bin(tmp_path, ("ip", "nft", "dnsmasq", "ping")))
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")
    assert not (tmp_path / "apt.log").exists()


@pytest.mark.skipif(SETPRIV is None, reason="needs setpriv (util-linux) to run as nobody")
def test_not_root_prints_the_one_command_and_installs_nothing() -> None:
    # Outside pytest's tmp_path (its parents are private to root), and a copy of the script (the checkout
    # may sit in a private directory too): nobody must reach both.
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        script = shutil.copy(SCRIPT, folder / SCRIPT.name)
        run = _run(_bin(folder, ("ip",)), as_user=NOBODY, script=Path(script))
        assert run.returncode == 0, run.stderr
        (line,) = run.stdout.splitlines()
        assert line.endswith("install them with: sudo apt-get install -y nftables dnsmasq-base iputils-ping")
        assert not (folder / "apt.log").exists()


def test_root_without_apt_get_fails_naming_the_packages(tmp_path: Path) -> None:
    run = _run(_bin(tmp_path, ("ip", "dnsmasq", "ping"), apt=False))
    assert run.returncode == 1
    assert "nftables" in run.stderr
    assert "no apt-get here" in run.stderr


def test_make_setup_and_ci_run_share_the_script() -> None:
    assert "@.ci/system-packages.sh" in (ROOT / "Makefile").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert ".ci/system-packages.sh make:make" in ci
    assert "apt-get" not in ci
