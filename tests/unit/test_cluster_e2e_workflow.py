"""The e2e-kind workflow runs what the pins say: kind v0.27.0 (whose default node image the 3.31 configs
pin, kubernetes-sigs/kind v0.27.0 pkg/apis/config/defaults/image.go:21), both pinned Calico releases, the
tierless reference set for 3.27 (KindTarget refuses tiers there), and the progress lines live."""

from __future__ import annotations

from pathlib import Path

import yaml

from calico_conformance.cluster.releases import RELEASES

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "e2e-kind.yml"


def test_the_workflow_runs_both_pinned_releases_on_kind_v0_27_0() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow["env"]["KIND_VERSION"] == "v0.27.0"
    job = workflow["jobs"]["conformance"]
    matrix = job["strategy"]["matrix"]
    for version in RELEASES:
        assert f'"{version}"' in matrix["calico"]  # the default when no input narrows it
    (run,) = [step["run"] for step in job["steps"] if "pytest suites" in step.get("run", "")]
    assert '--calico-version="${{ matrix.calico }}"' in run
    assert "matrix.calico == '3.27' && 'policies/reference-v3.27' || 'policies/reference'" in run
    assert "-o log_cli=true --log-cli-level=INFO" in run
