"""The fingerprint of a run: target, Calico version, clusters with their CIDRs and digests of the inputs.

Two reports with the same fingerprint were produced from the same policy set, layout and register
against the same target, so their results can be compared; a changed digest says which input moved.
CIDRs come from the cluster register (`kind-configs/`), read with the register's own loader; a register
that does not load leaves the CIDRs out and says why instead of failing the report.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterable
from pathlib import Path

from calico_conformance import __version__
from calico_conformance.config import RunConfig
from calico_conformance.report.model import ClusterFingerprint, Fingerprint, InputFingerprint

# The files a policy directory or register contributes, as the loaders read them.
INPUT_SUFFIXES = (".yaml", ".yml", ".json")


def input_digest(path: Path) -> str | None:
    """sha256 over a file, or over every manifest file below a directory (relative path and content)."""
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    if not path.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in INPUT_SUFFIXES):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


def input_fingerprint(path: Path) -> InputFingerprint:
    return InputFingerprint(str(path), input_digest(path))


def cluster_fingerprints(run: RunConfig) -> tuple[tuple[ClusterFingerprint, ...], str | None]:
    """The run's clusters with the register's CIDRs, and why the CIDRs are missing if they are."""
    names_only = tuple(ClusterFingerprint(name) for name in run.clusters)
    try:
        register = importlib.import_module("calico_conformance.tenancy.register")
        specs = register.load_register(run.kind_configs)
    except ModuleNotFoundError as missing:
        return names_only, f"the cluster register reader is not installed ({missing.name})"
    except (ValueError, OSError) as problem:  # a LocatedError names the file and line
        return names_only, str(problem)
    by_name = {spec.name: spec for spec in specs}
    clusters = []
    for name in run.clusters:
        spec = by_name.get(name)
        if spec is None:
            clusters.append(ClusterFingerprint(name))
        else:
            clusters.append(ClusterFingerprint(name, str(spec.pod_subnet), str(spec.service_subnet)))
    return tuple(clusters), None


def run_fingerprint(run: RunConfig) -> Fingerprint:
    clusters, register_error = cluster_fingerprints(run)
    return Fingerprint(
        target=run.target,
        calico_version=run.calico_version,
        run_id=run.run_id,
        clusters=clusters,
        policies=input_fingerprint(run.policies),
        layout=input_fingerprint(run.layout),
        kind_configs=input_fingerprint(run.kind_configs),
        tool_version=__version__,
        register_error=register_error,
    )


def environment_properties(fingerprint: Fingerprint) -> str:
    """The fingerprint as Allure's `environment.properties` (the Environment widget of the report)."""
    lines = [
        ("target", fingerprint.target),
        ("calico.version", fingerprint.calico_version),
        ("run.id", fingerprint.run_id),
        ("policies", fingerprint.policies.path),
        ("policies.sha256", fingerprint.policies.sha256 or "missing"),
        ("layout", fingerprint.layout.path),
        ("layout.sha256", fingerprint.layout.sha256 or "missing"),
        ("kind-configs.sha256", fingerprint.kind_configs.sha256 or "missing"),
        ("calico-conformance.version", fingerprint.tool_version),
    ]
    for cluster in fingerprint.clusters:
        lines.append((f"cluster.{cluster.name}.podSubnet", cluster.pod_subnet or "unknown"))
        lines.append((f"cluster.{cluster.name}.serviceSubnet", cluster.service_subnet or "unknown"))
    return "".join(f"{_escape(key)}={_escape(value)}\n" for key, value in lines)


def _escape(text: str) -> str:
    """Java properties escaping for the characters that occur in paths and values here."""
    return text.replace("\\", "\\\\").replace("=", "\\=").replace(":", "\\:").replace("\n", "\\n")


def policy_set_text(paths: Iterable[Path]) -> str:
    """Every manifest of the policy set in one YAML text, each file headed by its name (for Allure)."""
    parts = []
    for root in paths:
        files = (
            [root]
            if root.is_file()
            else sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in INPUT_SUFFIXES)
        )
        for file in files:
            parts.append(f"# --- {file}\n{file.read_text(encoding='utf-8', errors='replace').rstrip()}\n")
    return "\n".join(parts)
