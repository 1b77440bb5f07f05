"""YAML-level findings: what the oracle's own loader refuses, and Calico objects written around the API.

The linter does not parse manifests a second way. It reads them with `collect_manifests`, the strict
loader the oracle uses, which keeps going past bad documents and returns every error it met; each error
becomes one finding. The loader's errors are all `LocatedError`s, so the finding's id is chosen from the
error's wording by one ordered table (`ERROR_KINDS`); anything the table does not name is still reported,
as `invalid-manifest`, so no loader error is ever dropped.

`crd.projectcalico.org/v1` objects load (the oracle models what felix does with them), but writing them
directly skips the Calico API server: no validation, no defaulting of `types` (felix then reads an empty
`types` as Ingress *and* Egress), so they get a finding of their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from calico_conformance.lint.findings import Finding
from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.loader import ALTERNATIVE_SETS, collect_manifests, manifest_files
from calico_conformance.oracle.loader_calico import FELIX_LEVEL_API_VERSION
from calico_conformance.oracle.model import ResourceSet
from calico_conformance.tenancy.layout import KIND as LAYOUT_KIND

# (pattern over the error's text, check id), first match wins. The patterns follow the wording of
# yamlsrc.py, loader*.py and selector_parser.py; tests/unit/test_lint_manifests.py pins each one.
ERROR_KINDS: Sequence[tuple[re.Pattern[str], str]] = tuple(
    (re.compile(pattern), check)
    for pattern, check in (
        (r"\bduplicate key\b", "duplicate-key"),
        (r"\bunknown field\b", "unknown-field"),
        (r"\binvalid selector\b", "invalid-selector"),
        (r"^invalid YAML\b|merge keys", "invalid-yaml"),
        (r"\bCalico (>= )?3\.29\b", "tier-needs-calico-3.29"),
        (r"\bis defined twice\b", "duplicate-object"),
    )
)
# How the loader refuses a document of the layout's kind (loader.py `_unsupported`).
LAYOUT_KIND_ERROR = f"kind {LAYOUT_KIND!r}"
ALTERNATIVE_SETS_FIX = "lint each set from its own directory (e.g. policies/reference/), not from their parent"
CRD_FIX = "write apiVersion: projectcalico.org/v3 and apply it with kubectl through the Calico API server"


def classify(error: LocatedError) -> str:
    """The check id of a loader error."""
    for pattern, check in ERROR_KINDS:
        if pattern.search(error.why):
            return check
    return "invalid-manifest"


def loader_findings(errors: Iterable[LocatedError]) -> Iterator[Finding]:
    for error in errors:
        fix = ALTERNATIVE_SETS_FIX if ALTERNATIVE_SETS in error.why else ""
        yield Finding.from_error(classify(error), error, fix)


def crd_api_findings(resources: ResourceSet) -> Iterator[Finding]:
    """Every Calico object written as `crd.projectcalico.org/v1`."""
    objects: list[tuple[str, str, Location | None, str]] = [
        (
            p.api_version,
            p.display_name,
            p.location,
            " (felix then reads an empty `types` as Ingress and Egress)",
        )
        for p in resources.policies
    ]
    objects += [(t.api_version, f"Tier {t.name}", t.location, "") for t in resources.tiers]
    objects += [
        (s.api_version, f"{'NetworkSet' if s.namespace else 'GlobalNetworkSet'} {s.name}", s.location, "")
        for s in resources.network_sets
    ]
    for api_version, name, location, consequence in objects:
        if api_version == FELIX_LEVEL_API_VERSION:
            why = (
                f"{name} is written as {FELIX_LEVEL_API_VERSION}: applied directly it bypasses Calico's"
                f" validation and defaulting{consequence}"
            )
            yield Finding("crd-api-version", location, why, CRD_FIX)


@dataclass(frozen=True)
class LoadedSet:
    resources: ResourceSet
    findings: list[Finding]
    notes: list[str]


def load_for_lint(
    paths: Iterable[str | Path], calico_version: str, *, layout: str | Path | None = None
) -> LoadedSet:
    """Load what loads; every refused document becomes a finding, as does every CRD-level object.

    A policy directory usually holds its tenancy layout too (`policies/tenancy.yaml`): the file given as
    `layout` is not read as a manifest, and any other layout file met is named in a note, not reported
    as a bad manifest.
    """
    files = manifest_files(paths)
    if layout is not None:
        files = [file for file in files if file.resolve() != Path(layout).resolve()]
    resources, errors = collect_manifests(files, calico_version=calico_version)
    notes = [
        f"{error.location.file if error.location else error.why}: a tenancy layout, not a manifest; it was"
        " not linted (pass it as --layout to run the inventory-based checks against it)"
        for error in errors
        if LAYOUT_KIND_ERROR in error.why
    ]
    findings = [
        *loader_findings(error for error in errors if LAYOUT_KIND_ERROR not in error.why),
        *crd_api_findings(resources),
    ]
    return LoadedSet(resources, findings, notes)
