"""One policy set per directory, so the README's commands are right; and a clear word when two are given.

`policies/` holds the reference set (`policies/reference/`) and its layout; the single-tier set for
Calico 3.27/3.28 is an alternative and lives beside it (`policies-v3.27/`). Two alternative sets under
one directory define every object twice: the loader says so in those words.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from calico_conformance.cli import main
from calico_conformance.cluster.deploy import read_policy_manifests
from calico_conformance.config import default_policies, resolve_run_config
from calico_conformance.lint.manifests import ALTERNATIVE_SETS_FIX, load_for_lint
from calico_conformance.oracle.errors import LocatedError
from calico_conformance.oracle.loader import ALTERNATIVE_SETS, collect_manifests, load_manifests
from calico_conformance.run_inputs import load_run_inputs
from calico_conformance.targets.registry import TARGETS

ROOT = Path(__file__).resolve().parents[2]
LAYOUT = ROOT / "policies" / "tenancy.yaml"


def _names(paths: list[Path], version: str = "3.31") -> set[tuple[str, str | None, str]]:
    resources = load_manifests(paths, calico_version=version)
    return {(p.kind, p.namespace, p.name) for p in resources.policies} | {("Tier", None, t.name) for t in resources.tiers}


def test_the_readme_lint_command_finds_nothing_on_a_clean_checkout(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    status = main(["lint", "policies/", "--layout", "policies/tenancy.yaml"])
    out = capsys.readouterr().out
    assert (status, out.splitlines()[-1]) == (0, "0 findings (0 error, 0 warning, 0 info)")


@pytest.mark.parametrize("version", ["3.31", "3.29", "3.28", "3.27"])
def test_the_default_set_for_each_calico_version_is_one_set_that_loads(version: str) -> None:
    folder = ROOT / default_policies(version)
    assert folder.is_dir()
    assert _names([folder], version), f"{folder} holds no policies"


def test_policies_as_a_whole_is_the_reference_set_for_the_suites() -> None:
    """`--policies policies`: the layout beside the set is left out, nothing else is read twice."""
    run = resolve_run_config({"target": "static", "policies": "policies"}, base_dir=ROOT, target_names=tuple(TARGETS))
    whole = load_run_inputs(run).resources
    reference = load_manifests([ROOT / "policies" / "reference"])
    assert {p.display_name for p in whole.policies} == {p.display_name for p in reference.policies}
    assert {t.name for t in whole.tiers} == {t.name for t in reference.tiers}


def test_policies_as_a_whole_applies_no_layout_to_a_cluster() -> None:
    kinds = [manifest["kind"] for manifest in read_policy_manifests([ROOT / "policies"])]
    assert "TenancyLayout" not in kinds
    assert len(kinds) == len(read_policy_manifests([ROOT / "policies" / "reference"]))


def _two_sets(tmp_path: Path) -> Path:
    parent = tmp_path / "policies"
    shutil.copytree(ROOT / "policies" / "reference", parent / "reference")
    shutil.copytree(ROOT / "policies-v3.27", parent / "reference-v3.27")
    return parent


def test_two_sets_in_one_directory_are_named_as_such(tmp_path: Path) -> None:
    parent = _two_sets(tmp_path)
    _, errors = collect_manifests([parent])
    assert errors
    for error in errors:
        assert "is defined twice" in error.why
        assert error.why.endswith(
            f"{parent / 'reference'}/ and {parent / 'reference-v3.27'}/ look like {ALTERNATIVE_SETS};"
            f" pass one of them, not {parent}/ as a whole"
        )
    with pytest.raises(LocatedError, match=ALTERNATIVE_SETS):
        load_manifests([parent])


def test_the_linter_reports_them_as_duplicate_objects_with_the_fix_for_two_sets(tmp_path: Path) -> None:
    loaded = load_for_lint([_two_sets(tmp_path)], "3.31")
    assert loaded.findings
    assert {(finding.check, finding.fix_hint) for finding in loaded.findings} == {
        ("duplicate-object", ALTERNATIVE_SETS_FIX)
    }


DENY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: royal-bank}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""


@pytest.mark.parametrize(
    "files",
    [("a.yaml", "b.yaml"), ("a.yaml", "sub/b.yaml"), ("sub/a.yaml", "sub/b.yaml")],
    ids=["same-directory", "file-beside-a-subdirectory", "one-subdirectory"],
)
def test_a_duplicate_that_is_not_two_sibling_sets_says_only_defined_twice(tmp_path: Path, files: tuple[str, str]) -> None:
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(DENY)
    (error,) = collect_manifests([tmp_path])[1]
    assert error.why.startswith("NetworkPolicy royal-bank/deny is defined twice (first at ")
    assert ALTERNATIVE_SETS not in error.why
