"""Every lint finding on a minimal bad example, and the reference policy set clean.

Each fixture in tests/data/lint/ says in its first line how it is linted and marks, with `# lint: <id>`,
every line a finding must point at (tests/data/lint/README.md). The expected findings are written by
hand in the fixture, next to the mistake; the test demands exactly those, nothing missing, nothing extra.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from calico_conformance.lint.findings import CHECKS, Severity
from calico_conformance.lint.runner import lint
from calico_conformance.tenancy.layout import load_layout

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "data" / "lint"
REFERENCE = ROOT / "policies" / "reference"
TENANCY = ROOT / "policies" / "tenancy.yaml"
HEADER = re.compile(r"^# lint-case:(?P<options>.*)$")
MARKER = re.compile(r"# lint: (?P<ids>[a-z0-9.\- ]+?)(?: @layout (?P<namespace>[a-z0-9-]+))?\s*$")


@dataclass(frozen=True)
class Case:
    fixture: Path
    paths: tuple[Path, ...]
    layout: Path | None
    calico_version: str
    expected: frozenset[tuple[str, int, str]]  # (file, line, check id)


def read_case(fixture: Path) -> Case:
    lines = fixture.read_text(encoding="utf-8").splitlines()
    header = HEADER.match(lines[0])
    assert header is not None, f"{fixture}:1: the first line must be '# lint-case: ...'"
    options = dict(item.split("=", 1) for item in header["options"].split())
    layout = ROOT / options["layout"] if "layout" in options else None
    paths: list[Path] = []
    if "with" in options:
        left_out = set(options.get("without", "").split(","))
        paths += sorted(p for p in (ROOT / options["with"]).glob("*.yaml") if p.name not in left_out)
    paths.append(fixture)
    expected: set[tuple[str, int, str]] = set()
    for number, line in enumerate(lines, start=1):
        marker = MARKER.search(line)
        if marker is None:
            continue
        for check in marker["ids"].split():
            if marker["namespace"]:
                assert layout is not None, f"{fixture}:{number}: @layout needs a layout"
                where = load_layout(layout).namespace(marker["namespace"]).location
                assert where is not None
                expected.add((where.file, where.line, check))
            else:
                expected.add((str(fixture), number, check))
    return Case(fixture, tuple(paths), layout, options.get("calico", "3.31"), frozenset(expected))


CASES = [read_case(path) for path in sorted(FIXTURES.glob("*.yaml"))]


@pytest.mark.parametrize("case", CASES, ids=[case.fixture.stem for case in CASES])
def test_fixture_gets_exactly_its_marked_findings(case: Case) -> None:
    report = lint(case.paths, layout_path=case.layout, calico_version=case.calico_version)
    found = {(Path(f.file).resolve().as_posix(), f.line, f.check) for f in report.findings}
    expected = {(Path(file).resolve().as_posix(), line, check) for file, line, check in case.expected}
    assert found == expected, "\n".join(finding.as_text() for finding in report.findings)


def test_every_check_has_a_minimal_bad_example() -> None:
    marked = {check for case in CASES for _, _, check in case.expected}
    assert set(CHECKS) - marked == set()


@pytest.mark.parametrize("layout", [TENANCY, None], ids=["with-layout", "without-layout"])
def test_reference_policy_set_is_clean(layout: Path | None) -> None:
    report = lint([REFERENCE], layout_path=layout)
    assert [finding.as_text() for finding in report.findings] == []
    assert not report.fails(Severity.INFO)


def test_without_layout_the_skipped_checks_are_named_in_a_note() -> None:
    report = lint([REFERENCE])
    assert len(report.notes) == 1
    for check in ("selector-matches-nothing", "shadowed-rule", "one-sided-exception", "dns-blocked"):
        assert check in report.notes[0]


def test_seed_000_runbook_exception_is_caught_at_every_stage_of_repair() -> None:
    """Verbatim it does not load; with its syntax fixed its selector matches nothing; with the selector
    fixed too it is one-sided. Each stage is a fixture; here they are tied to the seed's own text."""
    seed = next((ROOT.parent / "shared" / "seeds").glob("000_*.txt"), None)
    if seed is None:
        pytest.skip("the seeds are not beside the checkout (../shared/seeds)")
    text = seed.read_text(encoding="utf-8")
    assert 'namespaceSelector: name == "platform"' in text
    stages = {"unknown-field": "unknown-field", "seed-000-runbook": "selector-matches-nothing",
              "one-sided-exception": "one-sided-exception"}  # fmt: skip
    for stem, check in stages.items():
        case = next(c for c in CASES if c.fixture.stem == stem)
        assert "allow-platform-logging" in case.fixture.read_text(encoding="utf-8")
        report = lint(case.paths, layout_path=case.layout)
        assert check in {finding.check for finding in report.findings}
        assert report.fails(Severity.WARNING)
