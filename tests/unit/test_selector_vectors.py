"""Every vector Calico's own tests assert about its selector language, run against ours.

The vectors were transcribed from `libcalico-go/lib/selector` tests (see the file's `meta`); they are
the ground truth this parser is held to. The suite reads the copy vendored in `tests/data/` so that a
fresh clone runs it; one test keeps that copy identical to the research copy when it is present.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from calico_conformance.oracle.selector import SelectorError, parse_selector

VENDORED_VECTORS = Path(__file__).parents[1] / "data" / "calico-selector-vectors.yaml"
SHARED_VECTORS = Path(__file__).parents[2].parent / "shared" / "reference" / "calico-selector-vectors.yaml"

VECTORS: dict[str, Any] = yaml.safe_load(VENDORED_VECTORS.read_text(encoding="utf-8"))

# Every top-level section this module knows how to check. A new section in the vectors file must be
# wired in here, not silently ignored.
CHECKED_SECTIONS = {
    "meta",
    "vectors",
    "derived_vectors",
    "invalid_selectors",
    "derived_invalid_selectors",
    "tokenize_ok_but_invalid",
    "valid_selectors",
    "canonicalisation",
}


def shown(text: str) -> str:
    """A selector as a readable test id: escapes visible, the empty selector named."""
    return text.encode("unicode_escape").decode() if text.strip() else f"<blank {text!r}>"


def labels_shown(labels: dict[str, str]) -> str:
    return "{" + ",".join(f"{key}={value}" for key, value in labels.items()) + "}"


def match_cases() -> list[Any]:
    return [
        pytest.param(
            case["selector"],
            case["labels"],
            case["matches"],
            id=f"{shown(case['selector'])} on {labels_shown(case['labels'])} "
            f"{'matches' if case['matches'] else 'does not match'}",
        )
        for section in ("vectors", "derived_vectors")
        for case in VECTORS[section]
    ]


def invalid_cases() -> list[Any]:
    return [
        pytest.param(case["selector"], id=f"{section}: {shown(case['selector'])}")
        for section in ("invalid_selectors", "derived_invalid_selectors", "tokenize_ok_but_invalid")
        for case in VECTORS[section]
    ]


def canonical_cases() -> list[Any]:
    return [
        pytest.param(
            case["selector"], case["canonical"], id=f"{shown(case['selector'])} is {case['canonical']}"
        )
        for case in VECTORS["valid_selectors"]
    ] + [
        pytest.param(case["input"], case["canonical"], id=f"{shown(case['input'])} is {case['canonical']}")
        for case in VECTORS["canonicalisation"]
    ]


def unique_id_cases() -> list[Any]:
    return [
        pytest.param(case["input"], case["uid"], id=f"{shown(case['input'])} has id {case['uid']}")
        for case in VECTORS["canonicalisation"]
        if case["uid"]
    ]


def test_the_vendored_vectors_are_the_researched_vectors() -> None:
    if not SHARED_VECTORS.exists():
        pytest.skip(f"no shared research copy at {SHARED_VECTORS} (a fresh clone has only the vendored one)")
    assert VENDORED_VECTORS.read_bytes() == SHARED_VECTORS.read_bytes(), (
        f"{VENDORED_VECTORS} differs from {SHARED_VECTORS}; copy the shared file over the vendored one"
    )


def test_every_section_of_the_vectors_file_is_checked() -> None:
    assert set(VECTORS) == CHECKED_SECTIONS


@pytest.mark.parametrize(("text", "labels", "expected"), match_cases())
def test_selector_matches_as_calico_does(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(text).matches(labels) is expected


@pytest.mark.parametrize("text", invalid_cases())
def test_selector_is_rejected_as_calico_rejects_it(text: str) -> None:
    with pytest.raises(SelectorError) as raised:
        parse_selector(text)
    assert raised.value.selector == text
    assert 0 <= raised.value.position <= len(text)


@pytest.mark.parametrize(("text", "canonical"), canonical_cases())
def test_canonical_form_is_calicos(text: str, canonical: str) -> None:
    selector = parse_selector(text)
    assert str(selector) == canonical
    assert parse_selector(canonical) == selector


@pytest.mark.parametrize(("text", "unique_id"), unique_id_cases())
def test_unique_id_is_calicos(text: str, unique_id: str) -> None:
    assert parse_selector(text).unique_id() == unique_id
