"""What `calico-conformance lint` reports: findings with stable ids, and their text, JSON and SARIF forms.

A finding is only useful if a person (or a pull-request page) can act on it without reading our code:
it names a stable check id, a severity, the `file:line` to change, what is wrong and a one-line fix.
The ids and their default severities live in one catalogue (`CHECKS`), which also builds the SARIF rule
table and the `--help` of `--fail-on`, so a check cannot be reported without being documented.

Notes are not findings: they say what the run could *not* check (no `--layout`, say), so silence is
never mistaken for a clean bill.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from calico_conformance.oracle.errors import LocatedError, Location

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
TOOL_NAME = "calico-conformance lint"


class Severity(enum.IntEnum):
    """Ordered, so `--fail-on warning` means "warning or worse"."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    def __str__(self) -> str:
        return self.name.lower()

    @property
    def sarif_level(self) -> str:
        return {Severity.INFO: "note", Severity.WARNING: "warning", Severity.ERROR: "error"}[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r}; choose one of: info, warning, error") from None


@dataclass(frozen=True)
class Check:
    """One kind of finding: its stable id, default severity, what it means and how it is usually fixed."""

    id: str
    severity: Severity
    title: str
    fix: str


def _catalogue(*checks: Check) -> Mapping[str, Check]:
    return {check.id: check for check in checks}


ERR, WARN = Severity.ERROR, Severity.WARNING
CHECKS: Mapping[str, Check] = _catalogue(
    # --- YAML and manifests (the loader's own errors) ---
    Check("duplicate-key", ERR, "a mapping repeats a key; YAML silently keeps only the last one",
          "merge the two keys into one (e.g. one `destination:` holding selector and ports)"),
    Check("unknown-field", ERR, "a field Calico does not know; the API server rejects or drops it",
          "move or rename the field as the message says"),
    Check("invalid-selector", ERR, "a selector Calico would reject", "fix the selector syntax"),
    Check("invalid-yaml", ERR, "the file is not valid YAML", "fix the YAML syntax at that line"),
    Check("invalid-manifest", ERR, "a manifest Calico or Kubernetes would reject",
          "correct the value the message names"),
    Check("duplicate-object", ERR, "two documents define the same object; the second replaces the first",
          "rename one of them or delete the duplicate"),
    Check("crd-api-version", WARN,
          "a crd.projectcalico.org/v1 object applied directly bypasses Calico's validation and defaulting",
          "write apiVersion: projectcalico.org/v3 and apply it through the Calico API server"),
    Check("unjudged-rule", WARN, "a rule the oracle cannot evaluate; the other checks leave it out",
          "rewrite the rule with selectors, nets and ports the oracle models"),
    # --- selectors ---
    Check("selector-matches-nothing", WARN, "a selector that matches nothing in the layout's inventory",
          "select by labels the layout's namespaces and workloads really carry"),
    Check("convention-label", WARN,
          "a namespace selector reads `name`, a label only set by convention",
          "select namespaces by kubernetes.io/metadata.name (set by the API server on every namespace)"),
    # --- default deny ---
    Check("missing-default-deny", ERR, "a layout namespace without default-deny for ingress or egress",
          "apply a NetworkPolicy with podSelector: {} and policyTypes [Ingress, Egress] in the namespace"),
    # --- shadowing ---
    Check("shadowed-rule", WARN,
          "a rule that never decides: an earlier rule of its policy or tier decides all its traffic",
          "delete the rule, or move it before the rule that decides its traffic"),
    # --- tiers ---
    Check("tier-denies-lower-tiers", ERR,
          "a tier that selects workloads ends in the implicit deny, so what lower tiers allow is denied",
          "end the tier's policies with `- action: Pass`, or set the Tier's defaultAction: Pass"),
    Check("unknown-tier", ERR, "a policy names a tier that does not exist; Calico refuses it",
          "create the Tier, or fix spec.tier and the name's `<tier>.` prefix"),
    Check("tier-needs-calico-3.29", ERR, "tiers (Tier objects, spec.tier) need Calico 3.29 or later",
          "upgrade Calico to 3.29+, or move the policies to the default tier"),
    # --- DNS ---
    Check("dns-blocked", ERR, "a namespace that must resolve cannot reach kube-dns on 53 over UDP or TCP",
          "allow egress to kube-dns on 53/UDP and 53/TCP (and kube-dns's ingress from the namespace)"),
    Check("dns-any-destination", WARN, "DNS (53) is allowed to any destination, not only to kube-dns",
          "restrict the rule's destination to the kube-dns pods"),
    # --- one-sided exceptions ---
    Check("one-sided-exception", ERR,
          "an allow on one side of a flow whose other side denies it by default (no matching allow)",
          "add the matching allow on the other side (destination ingress for egress, and the reverse)"),
)  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """One problem at one place. `fix` defaults to the check's usual fix."""

    check: str
    location: Location | None
    message: str
    fix: str = ""

    def __post_init__(self) -> None:
        if self.check not in CHECKS:
            raise ValueError(f"finding of unknown check {self.check!r}; add it to lint.findings.CHECKS")

    @property
    def severity(self) -> Severity:
        return CHECKS[self.check].severity

    @property
    def fix_hint(self) -> str:
        return self.fix or CHECKS[self.check].fix

    @property
    def file(self) -> str:
        return self.location.file if self.location else ""

    @property
    def line(self) -> int:
        return self.location.line if self.location else 0

    def sort_key(self) -> tuple[str, int, str, str]:
        return (self.file, self.line, self.check, self.message)

    def as_text(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.severity} {self.check}: {self.message} (fix: {self.fix_hint})"

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.check,
            "severity": str(self.severity),
            "file": self.file,
            "line": self.line,
            "message": self.message,
            "fix": self.fix_hint,
        }

    @classmethod
    def from_error(cls, check: str, error: LocatedError, fix: str = "") -> Finding:
        return cls(check, error.location, error.why, fix)


@dataclass(frozen=True)
class LintReport:
    """Every finding of one run, sorted by place, and the notes on what the run could not check."""

    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, findings: Iterable[Finding], notes: Iterable[str] = ()) -> LintReport:
        unique = dict.fromkeys(findings)  # one problem found by two paths is reported once
        return cls(tuple(sorted(unique, key=Finding.sort_key)), tuple(notes))

    def count(self, severity: Severity) -> int:
        return sum(1 for finding in self.findings if finding.severity is severity)

    def fails(self, threshold: Severity) -> bool:
        """Whether a finding at or above `threshold` exists (the exit status of `lint`)."""
        return any(finding.severity >= threshold for finding in self.findings)

    def summary(self) -> str:
        counts = ", ".join(f"{self.count(s)} {s}" for s in sorted(Severity, reverse=True))
        return f"{len(self.findings)} finding{'' if len(self.findings) == 1 else 's'} ({counts})"


# --- output --------------------------------------------------------------------------------------------


def render_text(report: LintReport) -> str:
    """`file:line: severity id: message (fix: hint)` per finding, then the notes and a summary."""
    lines = [finding.as_text() for finding in report.findings]
    lines += [f"note: {note}" for note in report.notes]
    lines.append(report.summary())
    return "\n".join(lines) + "\n"


def render_json(report: LintReport) -> str:
    document = {
        "findings": [finding.as_json() for finding in report.findings],
        "notes": list(report.notes),
        "summary": {str(s): report.count(s) for s in Severity},
    }
    return json.dumps(document, indent=2) + "\n"


def _artifact_uri(file: str, root: Path) -> str:
    """A path relative to `root` with forward slashes (how code-scanning UIs match files), else a file URI."""
    path = Path(file)
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_uri()


def _sarif_result(finding: Finding, rule_index: Mapping[str, int], root: Path) -> dict[str, object]:
    result: dict[str, object] = {
        "ruleId": finding.check,
        "ruleIndex": rule_index[finding.check],
        "level": finding.severity.sarif_level,
        "message": {"text": f"{finding.message} (fix: {finding.fix_hint})"},
    }
    if finding.file:
        physical: dict[str, object] = {"artifactLocation": {"uri": _artifact_uri(finding.file, root)}}
        if finding.line > 0:  # SARIF regions are 1-based; an unknown line has no region
            physical["region"] = {"startLine": finding.line}
        result["locations"] = [{"physicalLocation": physical}]
    return result


def render_sarif(report: LintReport, root: Path | None = None, version: str = "") -> str:
    """SARIF 2.1.0: every check as a rule, every finding as a result, notes as tool notifications."""
    root = root or Path.cwd()
    checks: Sequence[Check] = list(CHECKS.values())
    rule_index = {check.id: index for index, check in enumerate(checks)}
    driver: dict[str, object] = {
        "name": TOOL_NAME,
        "rules": [
            {
                "id": check.id,
                "shortDescription": {"text": check.title},
                "help": {"text": check.fix},
                "defaultConfiguration": {"level": check.severity.sarif_level},
            }
            for check in checks
        ],
    }
    if version:
        driver["version"] = version
    run = {
        "tool": {"driver": driver},
        "invocations": [
            {
                "executionSuccessful": True,
                "toolExecutionNotifications": [
                    {"level": "note", "message": {"text": note}} for note in report.notes
                ],
            }
        ],
        "results": [_sarif_result(finding, rule_index, root) for finding in report.findings],
    }
    document = {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}
    return json.dumps(document, indent=2) + "\n"

