"""The JSON Schema of the ConformanceReport YAML (schemaVersion 1), and the reader that checks it.

Tools that consume `conformance-report.yaml` (CI gates, dashboards, the handover checklist) read it with
`read_report`, which refuses a file of another schema version or shape with a message naming the file
and the offending field instead of handing them a half-understood dict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import jsonschema
import yaml

from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.model import PROTOCOL_NUMBERS
from calico_conformance.report.model import API_VERSION, KIND, SCHEMA_VERSION

_COUNT = {"type": "integer", "minimum": 0}
_TEXT = {"type": "string"}
_DIGEST = {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"}
_RESULT = {"enum": ["success", "partial", "failure", "error", "empty"]}

_STATISTICS = {
    "type": "object",
    "required": ["tests", "passed", "failed", "errors", "skipped", "notSupported", "cases", "wrongCases"],
    "additionalProperties": False,
    "properties": {
        name: _COUNT
        for name in ("tests", "passed", "failed", "errors", "skipped", "notSupported", "cases", "wrongCases")
    },
}

_REASON = {
    "type": "object",
    "required": ["test", "reason"],
    "additionalProperties": False,
    "properties": {"test": _TEXT, "reason": {"type": "string", "minLength": 1}},
}

_CASE = {
    "type": "object",
    "required": ["cluster", "from", "to", "port", "protocol", "expected", "observed", "result", "decidedBy"],
    "additionalProperties": False,
    "properties": {
        "cluster": _TEXT,
        "from": _TEXT,
        "to": _TEXT,
        "port": {"type": ["integer", "null"], "minimum": 0, "maximum": 65535},
        "protocol": {"enum": sorted(PROTOCOL_NUMBERS)},
        "expected": {"enum": ["allowed", "denied"]},
        "observed": {"enum": ["allowed", "dropped", "rejected", "error"]},
        # `masked`: the requirement held only because the cluster disobeyed a wrong policy set.
        "result": {"enum": ["ok", "leak", "blocked", "unproven", "masked"]},
        "decidedBy": _TEXT,
        "expectedBecause": _TEXT,
        "detail": _TEXT,
        "defect": {"enum": ["policy", "cluster", "masked"]},
    },
}

_PROBLEM = {
    "type": "object",
    "required": ["test", "suite", "profiles", "phase", "headline", "message"],
    "additionalProperties": False,
    "properties": {
        "test": _TEXT,
        "suite": _TEXT,
        "profiles": {"type": "array", "items": _TEXT},
        "phase": {"enum": ["collect", "setup", "call", "teardown"]},
        "headline": _TEXT,
        "message": _TEXT,
        "failureKind": {"enum": ["assertion", "infrastructure"]},
        "diff": _TEXT,
        "wrongCases": {"type": "array", "items": _CASE},
    },
}

_PROFILE = {
    "type": "object",
    "required": [
        "name",
        "result",
        "summary",
        "statistics",
        "failedTests",
        "erroredTests",
        "skippedTests",
        "notSupportedTests",
    ],
    "additionalProperties": False,
    "properties": {
        "name": _TEXT,
        "result": _RESULT,
        "summary": _TEXT,
        "statistics": _STATISTICS,
        "failedTests": {"type": "array", "items": _TEXT},
        "erroredTests": {"type": "array", "items": _TEXT},
        "skippedTests": {"type": "array", "items": _REASON},
        "notSupportedTests": {"type": "array", "items": _REASON},
    },
}

_INPUT = {
    "type": "object",
    "required": ["path", "sha256"],
    "additionalProperties": False,
    "properties": {"path": _TEXT, "sha256": _DIGEST},
}

_CIDR = {"type": ["string", "null"], "pattern": r"^[0-9a-fA-F.:]+/\d{1,3}$"}

_FINGERPRINT = {
    "type": "object",
    "required": [
        "target",
        "calicoVersion",
        "runId",
        "clusters",
        "policies",
        "layout",
        "kindConfigs",
        "toolVersion",
    ],
    "additionalProperties": False,
    "properties": {
        "target": _TEXT,
        "calicoVersion": {"type": "string", "pattern": r"^\d+\.\d+$"},
        "runId": _TEXT,
        "clusters": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "podSubnet", "serviceSubnet"],
                "additionalProperties": False,
                "properties": {"name": _TEXT, "podSubnet": _CIDR, "serviceSubnet": _CIDR},
            },
        },
        "policies": _INPUT,
        "layout": _INPUT,
        "kindConfigs": _INPUT,
        "toolVersion": _TEXT,
        "registerError": _TEXT,
    },
}

_COVERAGE: dict[str, Any] = {
    "type": "object",
    "required": ["cluster", "classes", "probed", "unprobed"],
    "additionalProperties": False,
    "properties": {
        "cluster": _TEXT,
        "classes": {"type": "integer", "minimum": 0},
        "probed": {"type": "integer", "minimum": 0},
        "unprobed": {"type": "array", "items": _TEXT},
    },
}

CONFORMANCE_REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "calico-conformance ConformanceReport",
    "type": "object",
    "required": [
        "apiVersion",
        "kind",
        "schemaVersion",
        "date",
        "fingerprint",
        "result",
        "summary",
        "exitStatus",
        "exitMeaning",
        "statistics",
        "profiles",
        "suites",
        "failures",
        "errors",
        "skipped",
        "notSupported",
    ],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": API_VERSION},
        "kind": {"const": KIND},
        "schemaVersion": {"const": SCHEMA_VERSION},
        "date": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"},
        "fingerprint": _FINGERPRINT,
        "result": _RESULT,
        "summary": _TEXT,
        "exitStatus": {"type": "integer"},
        "exitMeaning": _TEXT,
        "statistics": _STATISTICS,
        "profiles": {"type": "array", "items": _PROFILE},
        "suites": {"type": "array", "items": _PROFILE},
        "failures": {"type": "array", "items": _PROBLEM},
        "errors": {"type": "array", "items": _PROBLEM},
        "skipped": {"type": "array", "items": _REASON},
        "notSupported": {"type": "array", "items": _REASON},
        "coverage": {"type": "array", "items": _COVERAGE},
    },
}


def report_problems(data: Any) -> list[str]:
    """Every way `data` departs from the schema, as `field.path: why` ([] = a valid report)."""
    validator = jsonschema.Draft202012Validator(CONFORMANCE_REPORT_SCHEMA)
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(part) for part in error.absolute_path) or "(top level)"
        problems.append(f"{where}: {error.message}")
    return problems


def read_report(path: Path) -> dict[str, Any]:
    """Load a ConformanceReport YAML file; `LocatedError` (`file: field: why`) if it is not a valid one."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise LocatedError(Location(str(path), line), f"not YAML: {problem}") from None
    if isinstance(data, dict) and data.get("schemaVersion") not in (None, SCHEMA_VERSION):
        raise LocatedError(
            Location(str(path)),
            f"schemaVersion {data['schemaVersion']!r} is not {SCHEMA_VERSION}, the version this reader knows",
        )
    problems = report_problems(data)
    if problems:
        raise LocatedError(Location(str(path)), "not a valid ConformanceReport: " + "; ".join(problems[:5]))
    return cast(dict[str, Any], data)  # the schema requires an object
