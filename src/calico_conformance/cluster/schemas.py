"""Schema validation of every manifest the suite would apply, before any cluster sees it.

Calico kinds are checked against the CRD schemas vendored from the pinned release (`data/calico/<tag>/
schemas/`, see `cluster/vendor.py`); core Kubernetes kinds against `kubernetes-validate`'s strict
schemas for `KUBERNETES_VERSION`. Strict means what `kubectl apply` does by default on a current
cluster (`--validate=strict`): an unknown field is an error, not something the server silently prunes.

`projectcalico.org/v3` objects are served by the Calico API server, which stores them as the
`crd.projectcalico.org/v1` CRDs of the same kind and shape; this module validates both against that
CRD schema. The API server validates more than the schema can say (selector syntax, action names):
that part is the oracle loader's job (`oracle/loader.py`), not this module's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate

from calico_conformance.cluster.releases import RELEASES, release_for

# kubernetes-validate ships schemas per minor; 1.31 is what the kind node images of the pinned kind
# release run (and what the e2e workflow uses), and every field the suite writes exists there.
KUBERNETES_VERSION = "1.31"

CALICO_API_GROUPS = frozenset({"projectcalico.org", "crd.projectcalico.org", "operator.tigera.io"})

# The fields of a Kubernetes ObjectMeta. CRD schemas leave `metadata` as a bare object, and the API
# server checks it itself; a misspelt `labels` would otherwise pass here and be dropped there.
OBJECT_META_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
        "uid": {"type": "string"},
        "resourceVersion": {"type": "string"},
        "generation": {"type": "integer"},
        "creationTimestamp": {"type": ["string", "null"]},
        "deletionTimestamp": {"type": ["string", "null"]},
        "deletionGracePeriodSeconds": {"type": "integer"},
        "managedFields": {"type": "array"},
        "selfLink": {"type": "string"},
    },
}


def validate_manifest(manifest: Mapping[str, Any], *, calico_version: str = "3.31") -> list[str]:
    """Every schema error of one manifest, as `path: message` lines; `[]` means valid."""
    api_version = manifest.get("apiVersion")
    kind = manifest.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return ["apiVersion and kind must both be strings"]
    group = api_version.split("/")[0] if "/" in api_version else ""
    if group in CALICO_API_GROUPS:
        return _validate_calico(manifest, group, kind, calico_version)
    return _validate_core(manifest)


def _validate_calico(manifest: Mapping[str, Any], group: str, kind: str, calico_version: str) -> list[str]:
    release = release_for(calico_version)
    schemas = _calico_schemas(release.tag)
    storage_group = "crd.projectcalico.org" if group == "projectcalico.org" else group
    validator = schemas.get((storage_group, kind))
    if validator is None:
        known = sorted(k for g, k in schemas if g == storage_group)
        return [
            f"no {kind} schema in {storage_group} for Calico {release.tag}; it has: {', '.join(known) or 'none'}"
        ]
    return [_describe(error) for error in sorted(validator.iter_errors(dict(manifest)), key=_error_order)]


def _validate_core(manifest: Mapping[str, Any]) -> list[str]:
    try:
        kubernetes_validate.validate(dict(manifest), KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [_describe(error)]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [str(error.message)]
    return []


def _describe(error: jsonschema.ValidationError) -> str:
    return f"{_dotted(error.absolute_path) or '(top level)'}: {error.message}"


def _error_order(error: jsonschema.ValidationError) -> tuple[str, str]:
    return _dotted(error.absolute_path), error.message


def _dotted(path: Any) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


@cache
def _calico_schemas(tag: str) -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    (release,) = [release for release in RELEASES.values() if release.tag == tag]
    validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
    for path in sorted(release.schema_dir.glob("*.json")):
        vendored = json.loads(path.read_text())
        schema = strict_structural_schema(vendored["openAPIV3Schema"])
        schema.setdefault("properties", {})["metadata"] = dict(OBJECT_META_SCHEMA)
        schema["required"] = sorted({*schema.get("required", ()), "apiVersion", "kind", "metadata"})
        validators[(vendored["group"], vendored["kind"])] = jsonschema.Draft7Validator(schema)
    return validators


def strict_structural_schema(node: Any) -> Any:
    """A Kubernetes structural schema as plain JSON Schema, with unknown fields refused.

    The API server prunes (or, with strict field validation, rejects) fields a structural schema does
    not list; JSON Schema allows them. So every object that lists properties and does not ask to keep
    unknown fields gets `additionalProperties: false`. `nullable` becomes a `null` alternative.
    """
    if isinstance(node, list):
        return [strict_structural_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: strict_structural_schema(value) for key, value in node.items()}
    keeps_unknown = converted.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in converted and "additionalProperties" not in converted and not keeps_unknown:
        converted["additionalProperties"] = False
    if converted.pop("nullable", False) and isinstance(converted.get("type"), str):
        converted["type"] = [converted["type"], "null"]
    return converted


def iter_invalid(
    manifests: Mapping[str, Mapping[str, Any]], *, calico_version: str = "3.31"
) -> Iterator[tuple[str, list[str]]]:
    """`(name, errors)` for every manifest of `{name: manifest}` that has errors."""
    for name, manifest in manifests.items():
        errors = validate_manifest(manifest, calico_version=calico_version)
        if errors:
            yield name, errors
