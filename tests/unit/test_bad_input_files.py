"""Inputs that are not regular files, are too large, or hold nothing: a located usage error at once,
never a hang (a FIFO), a runaway read (`/dev/zero`), a traceback, or a clean-looking empty result."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from calico_conformance.cli import main
from calico_conformance.oracle import inputs, yamlsrc
from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.loader import load_manifests
from calico_conformance.oracle.scenario import load_scenario
from calico_conformance.tenancy.layout import load_layout
from calico_conformance.tenancy.register import load_register

ROOT = Path(__file__).resolve().parents[2]
READERS: dict[str, Callable[[Path], Any]] = {
    "scenario": load_scenario,
    "layout": load_layout,
    "policy": lambda path: load_manifests([path]),
    "yaml": yamlsrc.load_file,
}


def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "input.yaml"
    os.mkfifo(path)  # opened for reading without a writer, a FIFO blocks: the old hang
    return path


@pytest.mark.parametrize("reader", READERS)
def test_a_fifo_is_not_a_regular_file(tmp_path: Path, reader: str) -> None:
    path = fifo(tmp_path)
    with pytest.raises(LocatedError) as caught:
        READERS[reader](path)
    assert str(caught.value) == f"{path}: not a regular file (a FIFO); give a file"


@pytest.mark.parametrize("reader", READERS)
def test_dev_zero_is_not_a_regular_file(reader: str) -> None:
    with pytest.raises(LocatedError) as caught:
        READERS[reader](Path("/dev/zero"))
    assert str(caught.value) == "/dev/zero: not a regular file (a character device); give a file"


def test_a_fifo_in_the_register_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "finland.yaml"
    os.mkfifo(path)
    with pytest.raises(LocatedError, match="not a regular file"):
        load_register(tmp_path)


def test_a_fifo_named_like_a_manifest_inside_a_policy_directory_is_named(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "policy.yaml")
    with pytest.raises(LocatedError) as caught:
        load_manifests([tmp_path])
    assert caught.value.location == Location(str(tmp_path / "policy.yaml"))


def test_an_input_over_the_bound_is_refused_saying_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inputs, "MAX_INPUT_BYTES", 1024)
    path = tmp_path / "big.yaml"
    path.write_text("# padding\n" * 200)
    with pytest.raises(LocatedError) as caught:
        yamlsrc.load_file(path)
    assert str(caught.value) == (
        f"{path}: larger than 1024 bytes, the most an input file may be; is it the right file?"
    )


def test_the_default_bound_is_said_in_mebibytes(tmp_path: Path) -> None:
    with pytest.raises(LocatedError, match="larger than 64 MiB"):
        inputs.decode_input(b"x" * (64 * 1024 * 1024 + 1), Location("big.yaml"))


def test_bytes_that_are_not_utf8_are_refused_at_their_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"kind: Namespace\nmetadata: {name: caf\xe9}\n")
    with pytest.raises(LocatedError) as caught:
        yamlsrc.load_file(path)
    assert caught.value.location == Location(str(path), 2)


def test_a_directory_given_as_a_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(LocatedError, match="is a directory, not a file"):
        load_layout(tmp_path)


# --- simulate and lint as the user runs them --------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_simulate_refuses_a_fifo_at_once(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = fifo(tmp_path)
    assert run(capsys, "simulate", str(path)) == (
        2,
        "",
        f"calico-conformance simulate: {path}: not a regular file (a FIFO); give a file\n",
    )


@pytest.mark.parametrize(
    "make", ["empty-dir", "dir-without-yaml", "empty-file", "comments-only", "layout-only"]
)
def test_lint_of_nothing_is_a_usage_error_not_zero_findings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make: str
) -> None:
    target = tmp_path / "policies"
    target.mkdir()
    if make == "dir-without-yaml":
        (target / "README.md").write_text("no policies here\n")
    elif make == "empty-file":
        target = target / "empty.yaml"
        target.write_text("")
    elif make == "comments-only":
        target = target / "none.yaml"
        target.write_text("# nothing yet\n---\n")
    elif make == "layout-only":
        (target / "tenancy.yaml").write_text((ROOT / "policies" / "tenancy.yaml").read_text())
    status, out, err = run(capsys, "lint", str(target))
    assert (status, out) == (2, "")
    assert err.startswith(f"calico-conformance lint: no policies found in {target}")


def test_lint_of_a_fifo_names_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = fifo(tmp_path)
    status, out, _ = run(capsys, "lint", str(path))
    assert status == 1  # a file that cannot be read is a finding of the set, like one that does not parse
    assert out.startswith(f"{path}: error invalid-manifest: not a regular file (a FIFO)")


# --- images --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "why"),
    [
        ("3.31.garbage", "is not a version like 3.31 or v3.27.5"),
        ("3.31.7-rc1", "is not a version like 3.31 or v3.27.5"),
        ("\uff13.31", "is not a version like 3.31 or v3.27.5"),
        ("3.31.9", "the pinned 3.31 release is v3.31.7; give 3.31 or v3.31.7"),
        ("v3.27.4", "the pinned 3.27 release is v3.27.5; give 3.27 or v3.27.5"),
    ],
)
def test_images_refuses_a_version_it_would_not_list_truly(
    capsys: pytest.CaptureFixture[str], version: str, why: str
) -> None:
    status, out, err = run(capsys, "images", "--calico-version", version)
    assert (status, out) == (2, "")
    assert why in err


@pytest.mark.parametrize("image", ["5", "1.31", "''", "'kindest/node:v1.31 extra'"])
def test_images_refuses_a_node_image_that_is_no_image(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, image: str
) -> None:
    (tmp_path / "finland.yaml").write_text(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"
        "networking: {podSubnet: 10.244.0.0/16, serviceSubnet: 10.96.0.0/16}\n"
        f"nodes:\n  - role: control-plane\n    image: {image}\n"
    )
    status, out, err = run(capsys, "images", "--kind-configs", str(tmp_path))
    assert (status, out) == (2, "")
    assert f"{tmp_path / 'finland.yaml'}:6: nodes[0].image:" in err


def test_a_dangling_link_named_like_a_manifest_is_named_not_skipped(tmp_path: Path) -> None:
    (tmp_path / "10-default-deny.yaml").write_text(
        (ROOT / "policies/reference/10-default-deny.yaml").read_text()
    )
    (tmp_path / "20-gone.yaml").symlink_to(tmp_path / "nowhere.yaml")
    (tmp_path / "loop").symlink_to(tmp_path)  # a directory loop is not followed
    with pytest.raises(LocatedError) as caught:
        load_manifests([tmp_path])
    assert str(caught.value) == f"{tmp_path / '20-gone.yaml'}: cannot read file: No such file or directory"
