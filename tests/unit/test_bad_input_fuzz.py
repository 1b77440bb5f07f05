"""Property: whatever bytes or mangled policy YAML `simulate`, `lint` and the layout loader are given,
they end with a documented exit status and a message that names the file, never a traceback or a hang.

Inputs are random byte strings and random mutations of the reference policy set and layout
(`policies/reference/*.yaml`, `policies/tenancy.yaml`): lines deleted, repeated, swapped, re-indented or
cut short, and words replaced by values known to trip loaders (`.nan`, block scalars, full-width
digits, IPv6 zones, deep brackets, aliases and merge keys, tags, timestamps). The commands run
in-process through `cli.main`, so an exception escaping it fails the test with its traceback. The
examples are bounded and each has a deadline, so this runs in `make test`; a hang is a failed deadline.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calico_conformance.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, main
from calico_conformance.oracle.errors import LocatedError
from calico_conformance.tenancy.layout import load_layout

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "policies" / "reference"
LAYOUT = ROOT / "policies" / "tenancy.yaml"
SOURCES = (*sorted(REFERENCE.glob("*.yaml")), LAYOUT)

FUZZ = settings(
    max_examples=25,
    deadline=timedelta(seconds=15),  # generous for a loaded 2-core machine; a hang still fails it
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Values that have tripped YAML and manifest loaders: each replaces a word of a reference file.
TRICKY = (
    ".nan", ".inf", "-.inf", "1e400", "1" + "0" * 400, "|", ">-", "~", "null", "-1", "0x1F", "0o17",
    "\uff18\uff10", "\u00b2", "8\u0660", "fe80::1%eth0/64", "10.64.3.1", "10.0.0.1/8", "::/0",
    "[" * 300, "{" * 300, "&a", "*a", "*undefined", "<<: *a", "!!int x", "!!binary x", "!!python/object x",
    "2024-13-45", "? x", ": ", "- ", "---", "...", "%YAML 1.1", "'", '"', "\t", "\x00", "\ufeff",
    "\u2028", "caf\u00e9", "knp.default.x", "default.", "a" * 300, "all()", "has(", "!has(x)",
)  # fmt: skip
MUTATIONS = ("delete", "repeat", "swap", "indent", "cut", "replace-word", "insert-word")
WORD = re.compile(r"\S+")


@st.composite
def mutated_file(draw: st.DrawFn) -> tuple[Path, str]:
    """A reference file and its text after one to three random mutations."""
    source = draw(st.sampled_from(SOURCES))
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 3))):
        if not lines:
            break
        index = draw(st.integers(0, len(lines) - 1))
        mutation = draw(st.sampled_from(MUTATIONS))
        if mutation == "delete":
            del lines[index]
        elif mutation == "repeat":
            lines.insert(index, lines[index])
        elif mutation == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
        elif mutation == "indent":
            lines[index] = " " * draw(st.integers(0, 9)) + lines[index].lstrip(" ")
        elif mutation == "cut":
            lines = [*lines[:index], lines[index][: draw(st.integers(0, len(lines[index])))]]
        else:
            value = draw(st.one_of(st.sampled_from(TRICKY), st.text(max_size=12)))
            words = list(WORD.finditer(lines[index]))
            if not words:
                continue
            word = draw(st.sampled_from(words))
            start = word.start() if mutation == "replace-word" else word.end()
            end = word.end()
            lines[index] = lines[index][:start] + value + lines[index][end:]
    return source, "".join(lines)


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    """A copy of the reference policy set and layout in a fresh directory."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as directory:
        root = Path(directory)
        shutil.copytree(REFERENCE, root / "policies")
        shutil.copy(LAYOUT, root / "tenancy.yaml")
        yield root


def place(root: Path, source: Path, text: str | bytes) -> Path:
    """Write the mutated text where its source sits in the workspace."""
    target = root / "tenancy.yaml" if source == LAYOUT else root / "policies" / source.name
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    return target


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


def scenario_for(root: Path) -> Path:
    """A scenario that puts the workspace's policy set in force between a few reference workloads."""
    scenario = root / "scenario.yaml"
    scenario.write_text(
        "namespaces:\n"
        "  - {name: royal-bank, labels: {tenancy.golem-trust.io/role: customer}}\n"
        "  - {name: customer-a, labels: {tenancy.golem-trust.io/role: customer}}\n"
        "  - {name: kube-system, labels: {tenancy.golem-trust.io/role: system}}\n"
        "pods:\n"
        "  - {name: ledger, namespace: royal-bank, labels: {app: ledger}}\n"
        "  - {name: shop, namespace: customer-a, labels: {app: shop}}\n"
        "  - {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}\n"
        "resources:\n"
        "  - {file: policies}\n"
        "probes:\n"
        "  - {from: customer-a/shop, to: royal-bank/ledger, port: 8443, protocol: TCP}\n"
        "  - {from: royal-bank/ledger, to: kube-system/kube-dns, port: 53, protocol: UDP}\n"
    )
    return scenario


def assert_usage_error_names_a_file(status: int, err: str, *files: Path) -> None:
    assert "Traceback" not in err
    if status == EXIT_USAGE:
        assert err.count("\n") == 1, err  # one line: `calico-conformance CMD: file:line: why`
        assert any(str(file) in err for file in files), err


# --- lint ------------------------------------------------------------------------------------------------


@FUZZ
@given(mutated_file())
def test_lint_of_a_mutated_reference_set_ends_in_a_documented_status(mutation: tuple[Path, str]) -> None:
    source, text = mutation
    with workspace() as root:
        target = place(root, source, text)
        status, out, err = cli("lint", str(root / "policies"), "--layout", str(root / "tenancy.yaml"))
    assert status in (EXIT_OK, EXIT_FINDINGS, EXIT_USAGE)
    assert_usage_error_names_a_file(status, err, root / "policies", target)
    if status == EXIT_FINDINGS:
        assert str(root) in out  # findings are `file:line: ...` of the set or the layout


@FUZZ
@given(st.binary(max_size=1500))
def test_lint_of_random_bytes_ends_in_a_documented_status(data: bytes) -> None:
    with workspace() as root:
        target = place(root, REFERENCE / "10-default-deny.yaml", data)
        status, out, err = cli("lint", str(target))
    assert status in (EXIT_OK, EXIT_FINDINGS, EXIT_USAGE)
    assert_usage_error_names_a_file(status, err, target)
    if status == EXIT_FINDINGS:
        assert str(target) in out


# --- simulate ----------------------------------------------------------------------------------------------


@FUZZ
@given(mutated_file())
def test_simulate_with_a_mutated_reference_set_ends_in_a_documented_status(
    mutation: tuple[Path, str],
) -> None:
    source, text = mutation
    if source == LAYOUT:
        source = REFERENCE / "20-security-tenant-isolation.yaml"
        text = LAYOUT.read_text()  # a layout where policies belong: refused, naming it
    with workspace() as root:
        target = place(root, source, text)
        scenario = scenario_for(root)
        status, out, err = cli("simulate", str(scenario), "--format", "json")
    assert status in (EXIT_OK, EXIT_USAGE)
    assert_usage_error_names_a_file(status, err, scenario, target, root / "policies")
    if status == EXIT_OK:
        assert isinstance(json.loads(out)["results"], list)  # streamed, one record per line: still one JSON document


@FUZZ
@given(st.binary(max_size=1500))
def test_simulate_of_random_bytes_ends_in_a_documented_status(data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="fuzz-") as directory:
        scenario = Path(directory) / "scenario.yaml"
        scenario.write_bytes(data)
        status, _, err = cli("simulate", str(scenario))
    assert status in (EXIT_OK, EXIT_USAGE)
    assert_usage_error_names_a_file(status, err, scenario)


# --- the layout loader ------------------------------------------------------------------------------------


@FUZZ
@given(
    st.one_of(
        mutated_file().map(lambda pair: pair[1].encode("utf-8", "surrogatepass")), st.binary(max_size=1500)
    )
)
def test_the_layout_loader_reads_or_refuses_naming_the_file(data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="fuzz-") as directory:
        path = Path(directory) / "tenancy.yaml"
        path.write_bytes(data)
        try:
            load_layout(path)
            refusal = ""
        except LocatedError as refused:
            refusal = str(refused)
    assert refusal == "" or refusal.startswith(str(path)), refusal
