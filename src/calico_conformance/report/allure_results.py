"""Allure results: matrices of every test as text and HTML, the run's inputs and its fingerprint.

Everything here is a no-op unless the allure-pytest plugin is active (`--alluredir DIR`): `allure.attach`
outside an Allure run would have nowhere to go. What lands where:

* each test that recorded cases gets, per cluster, its expected / observed / diff matrices as a text and
  an HTML attachment, and a `cluster` label;
* the session fixture `report_run_context` attaches the fingerprint, the tenancy layout and the policy
  set once; Allure shows them in the set-up section of every test;
* `environment.properties` in the results directory carries the fingerprint (target, Calico version,
  clusters and CIDRs, input digests) for the report's Environment widget.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from calico_conformance.reachability import Comparison
from calico_conformance.report.fingerprint import environment_properties
from calico_conformance.report.html import MatrixSection, matrices_document
from calico_conformance.report.model import Fingerprint

ENVIRONMENT_FILE = "environment.properties"


def allure_results_dir(config: pytest.Config) -> Path | None:
    """The `--alluredir` of the run, or None when allure-pytest is not reporting."""
    directory = getattr(config.option, "allure_report_dir", None)
    if not directory or not config.pluginmanager.hasplugin("allure_listener"):
        return None
    return Path(directory)


def attach_comparisons(test_name: str, comparisons: Mapping[str, Comparison]) -> None:
    """Attach each cluster's matrices to the running test (call only while Allure is active)."""
    import allure

    for cluster, comparison in comparisons.items():
        allure.dynamic.label("cluster", cluster)  # type: ignore[no-untyped-call]
        allure.attach(
            comparison.render(),
            name=f"{cluster}: reachability (text)",
            attachment_type=allure.attachment_type.TEXT,
        )
        allure.attach(
            matrices_document(f"{test_name} on {cluster}", [MatrixSection(cluster, comparison)]),
            name=f"{cluster}: reachability (HTML)",
            attachment_type=allure.attachment_type.HTML,
        )


def attach_run_context(fingerprint_yaml: str, layout: Path, policy_set: str) -> None:
    """Attach what the run was made of: the fingerprint, the layout file and the policy set."""
    import allure

    allure.attach(fingerprint_yaml, name="run fingerprint", attachment_type=allure.attachment_type.YAML)
    if layout.is_file():
        allure.attach(
            layout.read_text(encoding="utf-8", errors="replace"),
            name=f"tenancy layout ({layout.name})",
            attachment_type=allure.attachment_type.YAML,
        )
    allure.attach(
        policy_set or "(no manifests)", name="policy set", attachment_type=allure.attachment_type.YAML
    )


def write_environment(results_dir: Path, fingerprint: Fingerprint) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / ENVIRONMENT_FILE
    path.write_text(environment_properties(fingerprint), encoding="utf-8")
    return path


def fingerprint_facts(fingerprint: Fingerprint) -> dict[str, str]:
    """The fingerprint as ordered key/value pairs for the head of an HTML page."""
    facts = {
        "target": fingerprint.target,
        "Calico version": fingerprint.calico_version,
        "run id": fingerprint.run_id,
        "policies": fingerprint.policies.path,
        "layout": fingerprint.layout.path,
    }
    facts.update(_cluster_facts(fingerprint))
    return facts


def _cluster_facts(fingerprint: Fingerprint) -> Iterable[tuple[str, str]]:
    for cluster in fingerprint.clusters:
        yield (
            f"cluster {cluster.name}",
            f"pods {cluster.pod_subnet or 'unknown'}, services {cluster.service_subnet or 'unknown'}",
        )
