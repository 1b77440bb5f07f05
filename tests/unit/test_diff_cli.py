"""`calico-conformance diff`, driven through `cli.main` as a user (or a CI job) runs it.

The policy sets are the repository's reference set (policies/reference) and edits of a copy of it; the
layout and the register are the repository's. The logging policy lets royal-bank reach
platform/log-collector on 5044/TCP and nothing else, so widening its port to a range opens ports the
layout requires denied: a break, in every cluster of the register.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from calico_conformance.cli import main

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "policies" / "reference"
LAYOUT = ROOT / "policies" / "tenancy.yaml"
REGISTER = ROOT / "kind-configs"
LOGGING = "40-application-logging.yaml"
CLUSTERS = ("finland", "germany", "helsinki")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["diff", "--kind-configs", str(REGISTER), *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def widened(tmp_path: Path) -> Path:
    """The reference set with the logging rules' port 5044 widened to 5040-5050."""
    copy = tmp_path / "head"
    shutil.copytree(REFERENCE, copy)
    logging = copy / LOGGING
    logging.write_text(logging.read_text().replace("ports: [5044]", "ports: ['5040:5050']"))
    return copy


def test_a_set_against_itself_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, str(REFERENCE), str(REFERENCE), "--layout", str(LAYOUT))
    assert (status, err) == (0, "")
    assert "0 object(s) changed, 0 flow(s) change verdict; 0 layout requirement(s) broken" in out.splitlines()[0]


def test_opening_ports_the_layout_requires_denied_breaks_it_and_exits_1(
    capsys: pytest.CaptureFixture[str], widened: Path
) -> None:
    status, out, err = run(capsys, str(REFERENCE), str(widened), "--layout", str(LAYOUT), "--format", "json")
    assert (status, err) == (1, "")
    report = json.loads(out)
    assert [(c["kind"], c["name"], c["change"]) for c in report["changes"]] == [
        ("NetworkPolicy", "platform/application.accept-logging", "modified"),
        ("NetworkPolicy", "royal-bank/application.allow-logging", "modified"),
    ]
    assert [cluster["cluster"] for cluster in report["clusters"]] == list(CLUSTERS)
    finland = report["clusters"][0]
    opened = {
        (pair["source"], pair["destination"], flow["port"], pair["kind"], flow["change"])
        for group in finland["groups"]
        for pair in group["pairs"]
        for flow in pair["flows"]
    }
    # The probe surface derives 5040 (the range's first port) from HEAD; the ports between come from
    # nowhere. Both royal-bank workloads already reached the collector on 5044, so the pairs "changed".
    assert 5040 in {port for _, _, port, _, _ in opened}
    assert all(kind == "changed" and change == "opened" for *_, kind, change in opened)
    assert {(s, d) for s, d, *_ in opened} == {
        ("royal-bank/ledger", "platform/log-collector"),
        ("royal-bank/sentinel", "platform/log-collector"),
    }
    flow = finland["groups"][0]["pairs"][0]["flows"][0]
    assert flow["before"]["allowed"] is False
    assert flow["after"]["egress"]["policy"] == "NetworkPolicy royal-bank/application.allow-logging"
    assert flow["after"]["egress"]["location"].startswith(f"{widened / LOGGING}:")
    assert report["breaks"] == len(opened) * len(CLUSTERS)
    assert {r["effect"] for r in finland["requirements"]} == {"breaks"}


def test_the_same_change_reversed_repairs_and_exits_0(capsys: pytest.CaptureFixture[str], widened: Path) -> None:
    status, out, _ = run(capsys, str(widened), str(REFERENCE), "--layout", str(LAYOUT), "--format", "json")
    report = json.loads(out)
    assert (status, report["breaks"]) == (0, 0)
    assert report["repairs"] > 0


def test_without_layout_nothing_is_judged_and_the_exit_is_0(
    capsys: pytest.CaptureFixture[str], widened: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the default layout, policies/tenancy.yaml, provides the workloads
    status, out, _ = run(capsys, str(REFERENCE), str(widened))
    assert status == 0
    assert "flow(s) change verdict" in out
    assert "BREAKS" not in out
    assert "layout requirement" not in out


def test_markdown_is_a_pull_request_comment(capsys: pytest.CaptureFixture[str], widened: Path) -> None:
    status, out, _ = run(capsys, str(REFERENCE), str(widened), "--layout", str(LAYOUT), "--format", "markdown")
    assert status == 1
    assert out.startswith("### Policy change impact\n")
    assert "> [!CAUTION]" in out
    # the three clusters read alike: shown once under all their names
    assert "#### clusters finland, germany, helsinki:" in out
    assert "| change | from | to | port | before | after |" in out


def test_csv_has_one_row_per_flow_and_cluster(capsys: pytest.CaptureFixture[str], widened: Path) -> None:
    _, out, _ = run(capsys, str(REFERENCE), str(widened), "--layout", str(LAYOUT), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    _, text, _ = run(capsys, str(REFERENCE), str(widened), "--layout", str(LAYOUT), "--format", "json")
    assert len(rows) == json.loads(text)["flows"]
    assert {row["cluster"] for row in rows} == set(CLUSTERS)
    assert {row["layout"] for row in rows} == {"breaks"}
    assert all(row["before"] == "denied" and row["after"] == "allowed" for row in rows)


def test_clusters_option_limits_the_comparison(capsys: pytest.CaptureFixture[str], widened: Path) -> None:
    _, out, _ = run(capsys, str(REFERENCE), str(widened), "--layout", str(LAYOUT), "--clusters", "germany", "--format", "json")
    assert [cluster["cluster"] for cluster in json.loads(out)["clusters"]] == ["germany"]


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        pytest.param(["only-one"], "diff takes BASE and HEAD (two paths), not 1", id="one-path"),
        pytest.param(["--git-base", "HEAD", "a", "b"], "with --git-base REV, diff takes one PATH", id="git-two-paths"),
        pytest.param([str(REFERENCE), str(REFERENCE), "--clusters", "narnia"], "'narnia' is not in the register", id="cluster"),
        pytest.param([str(REFERENCE), "/nonexistent/policies"], "/nonexistent/policies: no such file", id="missing"),
        pytest.param([str(REFERENCE), str(REFERENCE), "--layout", "/nonexistent.yaml"], "/nonexistent.yaml:", id="layout"),
    ],
)
def test_usage_errors_exit_2_without_a_traceback(
    capsys: pytest.CaptureFixture[str], argv: list[str], complaint: str
) -> None:
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert err.startswith("calico-conformance diff: ")
    assert complaint in err
    assert "Traceback" not in err


def test_a_bad_manifest_in_head_exits_2_at_its_line(capsys: pytest.CaptureFixture[str], widened: Path) -> None:
    logging = widened / LOGGING
    text = logging.read_text().replace("order: 100", "order: 100\n  bogus: 1", 1)
    logging.write_text(text)
    line = text[: text.index("bogus")].count("\n") + 1
    status, out, err = run(capsys, str(REFERENCE), str(widened))
    assert (status, out) == (2, "")
    assert err.startswith(f"calico-conformance diff: {logging}:{line}:")


# --- --git-base ---------------------------------------------------------------------------------------------


def _git(repository: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repository), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A git repository whose committed policies/ is the reference set."""
    shutil.copytree(REFERENCE, tmp_path / "policies")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "policies")
    _git(tmp_path, "commit", "-q", "-m", "reference")
    return tmp_path


def test_git_base_compares_the_working_tree_with_the_revision(
    capsys: pytest.CaptureFixture[str], repository: Path
) -> None:
    policies = repository / "policies"
    status, out, _ = run(capsys, "--git-base", "HEAD", str(policies), "--layout", str(LAYOUT))
    assert status == 0
    assert " 0 flow(s) change verdict" in out
    logging = policies / LOGGING
    logging.write_text(logging.read_text().replace("ports: [5044]", "ports: ['5040:5050']"))
    status, out, _ = run(capsys, "--git-base", "HEAD", str(policies), "--layout", str(LAYOUT), "--format", "json")
    report = json.loads(out)
    assert (status, report["base"], report["head"]) == (1, f"HEAD:{policies}", str(policies))
    before = report["clusters"][0]["groups"][0]["pairs"][0]["flows"][0]["before"]
    # BASE locations name the revision and path, not the temporary directory it was unpacked into
    assert before["egress"]["location"].startswith(f"HEAD:{policies}/10-default-deny.yaml:")


def test_git_base_of_an_unknown_revision_exits_2(capsys: pytest.CaptureFixture[str], repository: Path) -> None:
    status, out, err = run(capsys, "--git-base", "no-such-rev", str(repository / "policies"))
    assert (status, out) == (2, "")
    assert "--git-base 'no-such-rev': no such revision" in err


def test_git_base_where_the_path_did_not_exist_compares_with_nothing(
    capsys: pytest.CaptureFixture[str], repository: Path
) -> None:
    added = repository / "more-policies"
    shutil.copytree(REFERENCE, added)
    status, out, _ = run(capsys, "--git-base", "HEAD", str(added), "--layout", str(LAYOUT), "--format", "json")
    report = json.loads(out)
    assert report["base"] == f"HEAD:{added} (absent)"
    assert report["changes"]
    assert all(change["change"] == "added" for change in report["changes"])
    # nothing was enforced before, so the reference set closes what the layout requires closed
    assert (status, report["breaks"]) == (0, 0)
    assert report["repairs"] > 0
