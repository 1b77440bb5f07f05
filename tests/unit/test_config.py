"""RunConfig resolution: defaults, option parsers, and every bad value or combination as a UsageError
that names the valid choices. No pytest run is involved: `resolve_run_config` takes raw option values."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from calico_conformance.config import (
    parse_calico_version,
    parse_cluster_list,
    parse_contexts,
    parse_seconds,
    register_cluster_names,
    resolve_run_config,
)

TARGETS = ("kind", "kubeconfig", "static")


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A checkout with a register of two clusters."""
    (tmp_path / "kind-configs").mkdir()
    for name in ("germany", "finland"):
        (tmp_path / "kind-configs" / f"{name}.yaml").write_text("kind: Cluster\n")
    return tmp_path


def resolve(base: Path, **options: Any) -> Any:
    return resolve_run_config(options, base_dir=base, target_names=TARGETS)


def test_defaults_are_the_documented_ones(base: Path) -> None:
    run = resolve(base)
    assert run.target == "kind"
    assert run.clusters == ("finland", "germany")  # every register file, sorted
    assert run.policies == base / "policies" / "reference"
    assert run.layout == base / "policies" / "tenancy.yaml"
    assert run.kind_configs == base / "kind-configs"
    assert run.report_dir == base / "reports"
    assert run.calico_version == "3.31"
    assert (run.probe_timeout_s, run.converge_timeout_s) == (3.0, 90.0)
    assert run.contexts == {}
    assert len(run.run_id) == 8


def test_the_given_run_id_is_kept(base: Path) -> None:
    assert resolve(base, run_id="abc123").run_id == "abc123"


def test_relative_paths_are_taken_from_the_rootdir_and_absolute_ones_kept(base: Path, tmp_path: Path) -> None:
    run = resolve(base, policies="mine", layout=str(tmp_path / "elsewhere.yaml"))
    assert run.policies == base / "mine"
    assert run.layout == tmp_path / "elsewhere.yaml"


def test_clusters_keep_the_order_asked_for(base: Path) -> None:
    assert resolve(base, clusters="germany,finland").clusters == ("germany", "finland")


def test_a_cluster_outside_the_register_names_the_register(base: Path) -> None:
    with pytest.raises(pytest.UsageError, match=r"--clusters names spain, not in the register .*finland, germany"):
        resolve(base, clusters="finland,spain")


def test_without_a_register_directory_names_are_not_checked_yet(tmp_path: Path) -> None:
    run = resolve(tmp_path, clusters="finland")
    assert run.clusters == ("finland",)
    assert register_cluster_names(tmp_path / "kind-configs") == ()


def test_unknown_target_lists_the_choices(base: Path) -> None:
    with pytest.raises(pytest.UsageError, match=r"unknown --target 'bogus'; choose one of: kind, kubeconfig, static"):
        resolve(base, target="bogus")


@pytest.mark.parametrize(
    ("option", "value", "target", "allowed"),
    [
        ("contexts", ["finland=ctx"], "static", "--target=kubeconfig"),
        ("reuse_clusters", True, "static", "--target=kind"),
        ("keep_clusters", True, "kubeconfig", "--target=kind"),
        ("calico_manifests", "dir", "static", "--target=kind"),
        ("allow_cluster_scoped", True, "kind", "--target=kubeconfig"),
        ("probe_existing_namespaces", True, "static", "--target=kubeconfig"),
        ("registry", "mirror:5000", "static", "--target=kind or --target=kubeconfig"),
    ],
)
def test_a_live_option_with_another_target_is_refused(
    base: Path, option: str, value: object, target: str, allowed: str
) -> None:
    flag = "--context" if option == "contexts" else "--" + option.replace("_", "-")
    with pytest.raises(pytest.UsageError) as refused:
        resolve(base, target=target, **{option: value})
    assert str(refused.value) == f"{flag} only applies to {allowed}, not --target={target}"


def test_kubeconfig_needs_a_context(base: Path) -> None:
    with pytest.raises(pytest.UsageError, match=r"--target=kubeconfig needs --context CLUSTER=CONTEXT"):
        resolve(base, target="kubeconfig")


def test_kubeconfig_tests_the_clusters_it_has_contexts_for(base: Path) -> None:
    run = resolve(base, target="kubeconfig", contexts=["germany=staging-de"])
    assert run.clusters == ("germany",)
    assert run.contexts == {"germany": "staging-de"}


def test_kubeconfig_refuses_a_cluster_without_a_context(base: Path) -> None:
    with pytest.raises(pytest.UsageError, match=r"no --context for cluster\(s\): germany"):
        resolve(base, target="kubeconfig", clusters="finland,germany", contexts=["finland=fi"])


def test_kubeconfig_refuses_a_context_for_a_cluster_not_tested(base: Path) -> None:
    with pytest.raises(pytest.UsageError, match=r"--context given for cluster\(s\) not in --clusters: germany"):
        resolve(base, target="kubeconfig", clusters="finland", contexts=["finland=fi", "germany=de"])


@pytest.mark.parametrize(("text", "version"), [("3.27", "3.27"), ("v3.27.5", "3.27"), ("3.31.7", "3.31")])
def test_calico_versions_reduce_to_major_minor(text: str, version: str) -> None:
    assert parse_calico_version(text) == version


@pytest.mark.parametrize("text", ["latest", "3", "3.x", "", "\uff13.31", "3.31\n3.27"])
def test_a_calico_version_that_is_no_version_is_refused(text: str) -> None:
    with pytest.raises(pytest.UsageError, match=r"is not a version like 3\.31"):
        parse_calico_version(text)


def test_calico_version_tuple_orders_numerically(base: Path) -> None:
    assert resolve(base, calico_version="3.9").calico_version_tuple < (3, 29)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("soon", "is not a number"),
        ("0", "more than 0"),
        ("-1", "more than 0"),
        ("nan", "more than 0"),
        ("inf", "at most 86400 seconds"),
        ("1e400", "at most 86400 seconds"),
        ("100000", "at most 86400 seconds"),
        ("1e-320", "at least 0.01 seconds"),
        ("0.009", "at least 0.01 seconds"),
    ],
)
def test_timeouts_must_be_positive_finite_numbers(text: str, why: str) -> None:
    with pytest.raises(pytest.UsageError, match=why):
        parse_seconds("--probe-timeout", text)


def test_cluster_lists_refuse_empty_and_duplicates() -> None:
    assert parse_cluster_list(" finland , germany ") == ("finland", "germany")
    with pytest.raises(pytest.UsageError, match="at least one cluster"):
        parse_cluster_list(",")
    with pytest.raises(pytest.UsageError, match="names finland more than once"):
        parse_cluster_list("finland,finland")


def test_contexts_must_be_cluster_equals_context_once_each() -> None:
    assert parse_contexts(["finland=kind-finland", "germany=arn:aws:eks/x"]) == {
        "finland": "kind-finland",
        "germany": "arn:aws:eks/x",
    }
    with pytest.raises(pytest.UsageError, match="is not CLUSTER=CONTEXT"):
        parse_contexts(["finland"])
    with pytest.raises(pytest.UsageError, match="gives cluster 'finland' twice"):
        parse_contexts(["finland=a", "finland=b"])


@pytest.mark.parametrize(
    ("target", "given", "deployed"),
    [
        ("kind", None, True),  # the run's own clusters: on unless told otherwise
        ("kind", False, False),  # --no-outside-echo
        ("kubeconfig", None, False),  # shared clusters: Pod Security may forbid hostNetwork pods
        ("kubeconfig", True, True),  # --outside-echo
        ("static", None, False),
    ],
)
def test_outside_echo_is_on_for_kind_and_opt_in_for_kubeconfig(
    base: Path, target: str, given: bool | None, deployed: bool
) -> None:
    contexts = ["finland=ctx"] if target == "kubeconfig" else []
    assert resolve(base, target=target, outside_echo=given, contexts=contexts).outside_echo is deployed


@pytest.mark.parametrize("given", [True, False])
def test_outside_echo_either_way_is_refused_without_a_live_target(base: Path, given: bool) -> None:
    with pytest.raises(pytest.UsageError, match="--outside-echo only applies to --target=kind or --target=kubeconfig"):
        resolve(base, target="static", outside_echo=given)


@pytest.mark.parametrize(
    ("version", "policies"),
    [("3.31", "policies/reference"), ("3.29", "policies/reference"), ("3.28", "policies-v3.27"),
     ("v3.27.5", "policies-v3.27")],
)  # fmt: skip
def test_the_default_policy_set_fits_the_calico_version(base: Path, version: str, policies: str) -> None:
    # Calico below 3.29 has no tiers: the tiered reference set would not even load there.
    assert resolve(base, target="static", calico_version=version).policies == base / policies


def test_a_policy_set_that_is_given_wins_over_the_default_for_the_version(base: Path) -> None:
    assert resolve(base, target="static", calico_version="3.27", policies="mine").policies == base / "mine"


# --- --report-dir is checked before the run, not when the reports are written at its end ---------------


def test_a_report_dir_that_is_a_file_is_refused(base: Path) -> None:
    (base / "reports.txt").write_text("not a directory")
    with pytest.raises(pytest.UsageError, match=r"reports\.txt is not a directory"):
        resolve(base, report_dir="reports.txt")


def test_a_report_dir_inside_a_file_is_refused(base: Path) -> None:
    (base / "reports.txt").write_text("not a directory")
    with pytest.raises(pytest.UsageError, match=r"is inside .*reports\.txt, which is not a directory"):
        resolve(base, report_dir="reports.txt/run-1")


def test_a_report_dir_not_yet_made_under_a_writable_directory_is_fine(base: Path) -> None:
    assert resolve(base, report_dir="out/run-1").report_dir == base / "out" / "run-1"


def test_an_unwritable_report_dir_is_refused(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = base / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.access(locked, os.W_OK):
        # root may write anywhere, and no unprivileged interpreter is at hand here: let the operating
        # system answer for an ordinary user, as it does for one
        monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != locked)
    with pytest.raises(pytest.UsageError, match=f"--report-dir {locked / 'reports'}: {locked} is not writable"):
        resolve(base, report_dir="locked/reports")
