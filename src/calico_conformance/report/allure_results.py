"""Allure results: matrices of every test as text and HTML, the run's inputs and its fingerprint.

Everything here is a no-op unless the allure-pytest plugin is active (`--alluredir DIR`): `allure.attach`
outside an Allure run would have nowhere to go. What lands where:

* each test that recorded cases gets, per cluster, its one matrix (`pair_matrix`) as a text and an
  HTML attachment, the reproduce scenario when it failed, labels for `cluster`, `module`, `namespace`,
  `tier` and `defect`, and short parameters (a case's id, not its repr of thousands of characters);
* `categories.json` in the results directory sorts failures by whose fault they are (policy defect,
  cluster defect, masked policy defect, infrastructure error) instead of one "Product errors" bucket:
  the categories match the head word of the failure (`suite/assertions.py`, `VERDICT_WORDS`). Allure 2
  (and Allure 3's classic report) read that file; Allure 3's default report reads categories from its
  configuration only, so the same rules are written beside it as `allurerc.json`:
  `npx allure@3 generate --config reports/allure/allurerc.json reports/allure -o reports/allure-report`;
* the session fixture `report_run_context` attaches the fingerprint, the tenancy layout and the policy
  set once; Allure shows them in the set-up section of every test;
* `environment.properties` in the results directory carries the fingerprint (target, Calico version,
  clusters and CIDRs, input digests) for the report's Environment widget.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from calico_conformance.reachability import Comparison
from calico_conformance.report.fingerprint import environment_properties
from calico_conformance.report.html import MatrixSection, one_test_page
from calico_conformance.report.model import Fingerprint
from calico_conformance.suite.defects import DEFECT_MEANING, Defect

ENVIRONMENT_FILE = "environment.properties"
CATEGORIES_FILE = "categories.json"
ALLURE3_CONFIG_FILE = "allurerc.json"  # `allure generate --config` (Allure 3 reads no categories.json)
MAX_PARAMETER_CHARS = 80  # a parameter longer than this is shown by its id (str) instead of its repr


def _head(word: str) -> str:
    """A message regex matching `word` on the first line (JavaScript and Java regexes alike: Allure 3
    searches, Allure 2 matches the whole message; `[\\s\\S]` is "any character" in both)."""
    return rf"^[^\n]*\b{word}\b[\s\S]*"


# First match wins: the masked defect before the plain policy defect its head line also names.
CATEGORIES: tuple[dict[str, Any], ...] = (
    {
        "name": "masked policy defect",
        "description": DEFECT_MEANING[Defect.MASKED],
        "matchedStatuses": ["failed"],
        "messageRegex": _head("MASKED POLICY DEFECT"),
    },
    {
        "name": "cluster defect",
        "description": DEFECT_MEANING[Defect.CLUSTER],
        "matchedStatuses": ["failed"],
        "messageRegex": _head("CLUSTER DEFECT"),
    },
    {
        "name": "policy defect",
        "description": DEFECT_MEANING[Defect.POLICY],
        "matchedStatuses": ["failed"],
        "messageRegex": _head("POLICY DEFECT"),
    },
    {
        "name": "infrastructure error",
        "description": "nothing was proven: a probe, the cluster or the harness broke (never a pass)",
        "matchedStatuses": ["broken"],
    },
    {
        "name": "infrastructure error",
        "description": "nothing was proven: a probe, the cluster or the harness broke (never a pass)",
        "matchedStatuses": ["failed"],
        "messageRegex": _head("UNPROVEN"),
    },
)


def allure_results_dir(config: pytest.Config) -> Path | None:
    """The `--alluredir` of the run, or None when allure-pytest is not reporting."""
    directory = getattr(config.option, "allure_report_dir", None)
    if not directory or not config.pluginmanager.hasplugin("allure_listener"):
        return None
    return Path(directory)


def attach_comparisons(
    test_name: str, comparisons: Mapping[str, Comparison], observed_label: str = "observed"
) -> None:
    """Attach each cluster's matrix to the running test (call only while Allure is active)."""
    import allure

    for cluster, comparison in comparisons.items():
        allure.dynamic.label("cluster", cluster)  # type: ignore[no-untyped-call]
        allure.attach(
            comparison.render(observed_label),
            name=f"{cluster}: reachability (text)",
            attachment_type=allure.attachment_type.TEXT,
        )
        allure.attach(
            one_test_page(MatrixSection(test_name, comparison, cluster), observed_label),
            name=f"{cluster}: reachability (HTML)",
            attachment_type=allure.attachment_type.HTML,
        )


def attach_labels(labels: Mapping[str, Iterable[str]]) -> None:
    """Add labels (`module`, `namespace`, `tier`, `defect`...) to the running test."""
    import allure

    for name, values in labels.items():
        for value in values:
            allure.dynamic.label(name, value)  # type: ignore[no-untyped-call]


def attach_scenario(path: Path, command: str) -> None:
    """Attach the reproduce scenario a failing test wrote, named by the command that replays it."""
    import allure

    if path.is_file():
        allure.attach(
            path.read_text(encoding="utf-8", errors="replace"),
            name=f"reproduce: {command}",
            attachment_type=allure.attachment_type.YAML,
        )


def short_parameters(params: Mapping[str, object]) -> None:
    """Show each long pytest parameter by its id instead of its repr (a case's repr runs to 22,000
    characters; its `str` is its test id). Allure keeps the full value for the history id."""
    import allure

    for name, value in params.items():
        if len(repr(value)) > MAX_PARAMETER_CHARS:
            text = str(value)
            if len(text) > MAX_PARAMETER_CHARS:
                text = text[: MAX_PARAMETER_CHARS - 1] + "…"
            allure.dynamic.parameter(name, text)


def write_categories(results_dir: Path) -> tuple[Path, Path]:
    """`categories.json` and `allurerc.json`: failures sorted by whose fault they are (module docstring)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    categories = results_dir / CATEGORIES_FILE
    categories.write_text(json.dumps(list(CATEGORIES), indent=2) + "\n", encoding="utf-8")
    config = results_dir / ALLURE3_CONFIG_FILE
    settings = {"name": "calico-conformance", "categories": {"rules": list(CATEGORIES)}}
    config.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return categories, config


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
