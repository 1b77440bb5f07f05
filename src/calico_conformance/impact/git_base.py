"""BASE from a git revision: the policy directory as it was at REV, extracted into a temporary directory.

`calico-conformance diff --git-base origin/main policies/` compares the working tree's `policies/` with the
same path at `origin/main`, which is what a pull-request check wants. The tree is read with
`git archive` (never a checkout, so the working tree is left alone) and unpacked with tarfile's `data`
filter (no links out of the directory, no device files). A path that does not exist at REV is an empty
BASE: the change adds the whole directory. Everything else git refuses (not a repository, unknown
revision) is a usage error quoting git.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from calico_conformance.oracle.errors import LocatedError, Location

GIT_TIMEOUT_S = 60.0  # a local `git archive` of a policy directory takes well under a second


def _git(repository: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", "-C", str(repository), *args], capture_output=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except FileNotFoundError:
        raise LocatedError(None, "--git-base needs git on the PATH") from None


def _fail(path: Path, result: subprocess.CompletedProcess[bytes], what: str) -> LocatedError:
    said = result.stderr.decode(errors="replace").strip().splitlines()
    return LocatedError(Location(str(path)), f"{what}: git says: {said[-1] if said else result.returncode}")


def extract_revision(path: Path, revision: str, into: Path) -> Path | None:
    """`path` (a file or directory of the working tree) as it was at `revision`, unpacked under `into`.

    Returns the extracted copy of `path`, or None when `path` did not exist at `revision`.
    """
    if revision.startswith("-"):
        raise LocatedError(None, f"--git-base {revision!r} is not a revision (it starts with '-')")
    anchor = path if path.is_dir() else path.parent
    if not anchor.is_dir():
        raise LocatedError(Location(str(path)), "no such file or directory")
    top = _git(anchor, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise _fail(path, top, "--git-base needs the policies inside a git repository")
    root = Path(top.stdout.decode().strip())
    relative = path.resolve().relative_to(root.resolve()).as_posix() or "."
    commit = _git(root, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if commit.returncode != 0:
        raise LocatedError(None, f"--git-base {revision!r}: no such revision in {root}")
    listed = _git(root, "ls-tree", "--name-only", commit.stdout.decode().strip(), "--", relative)
    if listed.returncode != 0:
        raise _fail(path, listed, f"--git-base {revision!r}")
    if not listed.stdout.strip() and relative != ".":
        return None
    archive = _git(root, "archive", "--format=tar", commit.stdout.decode().strip(), "--", relative)
    if archive.returncode != 0:
        raise _fail(path, archive, f"--git-base {revision!r}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into / relative
