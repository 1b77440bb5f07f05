"""One frozen `RunConfig`: every option of a run, checked and resolved once.

`plugin.py` declares the pytest options and hands their raw values to `resolve_run_config`, which turns
them into a `RunConfig` or raises `pytest.UsageError` naming the valid choices. Nothing else reads
pytest options: fixtures and library code receive the `RunConfig` (or one field of it). Resolution only
checks values and combinations; reading the files the paths point at (register, layout, policies) is
left to the preflight that runs when a suite is actually selected, so `pytest tests/` never needs them.
"""

from __future__ import annotations

import math
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from calico_conformance.oracle.loader_document import TIERS_SINCE
from calico_conformance.oracle.model import DEFAULT_CALICO_VERSION

DEFAULT_TARGET = "kind"
DEFAULT_POLICIES = Path("policies/reference")
# Calico below 3.29 has no tiers (calico-semantics.md §0): the same promises in its single default tier.
DEFAULT_POLICIES_WITHOUT_TIERS = Path("policies-v3.27")  # beside, not inside, policies/: see its README
DEFAULT_LAYOUT = Path("policies/tenancy.yaml")
DEFAULT_KIND_CONFIGS = Path("kind-configs")
DEFAULT_REPORT_DIR = Path("reports")
DEFAULT_PROBE_TIMEOUT_S = 3.0  # one connect attempt; the runbook's `nc -zv` times out in a few seconds
DEFAULT_CONVERGE_TIMEOUT_S = 90.0  # Calico programs a policy in seconds; 90 s covers a loaded kind node

# `\Z`, not `$`: Python's `$` also matches before a trailing newline.
CALICO_VERSION_PATTERN = re.compile(r"^v?(?P<major>[0-9]+)\.(?P<minor>[0-9]+)(?:\.[0-9]+)?\Z")
CONTEXT_PATTERN = re.compile(r"^(?P<cluster>[a-z0-9]([-a-z0-9]*[a-z0-9])?)=(?P<context>\S+)\Z")

# Which options make sense for which target: anything else is a bad combination, reported before any
# cluster is touched rather than silently ignored.
LIVE_TARGETS = frozenset({"kind", "kubeconfig"})
OPTION_TARGETS: Mapping[str, frozenset[str]] = {
    "--context": frozenset({"kubeconfig"}),
    "--reuse-clusters": frozenset({"kind"}),
    "--keep-clusters": frozenset({"kind"}),
    "--calico-manifests": frozenset({"kind"}),
    "--allow-cluster-scoped": frozenset({"kubeconfig"}),
    "--probe-existing-namespaces": frozenset({"kubeconfig"}),
    "--registry": LIVE_TARGETS,
    "--outside-echo": LIVE_TARGETS,  # and --no-outside-echo (same dest)
    "--baseline": frozenset({"static"}),
}
# Where the outside stand-in (a hostNetwork pod, cluster/stand_ins.py) is deployed unless told otherwise:
# on the run's own kind clusters; not on shared ones, whose Pod Security may forbid hostNetwork pods.
OUTSIDE_ECHO_BY_DEFAULT = frozenset({"kind"})


@dataclass(frozen=True)
class RunConfig:
    """Everything a run was asked to do, after validation. Paths are absolute."""

    target: str
    clusters: tuple[str, ...]  # in the order asked for; default: every cluster of the register
    policies: Path
    layout: Path
    kind_configs: Path
    calico_version: str  # "major.minor", e.g. "3.31"
    probe_timeout_s: float
    converge_timeout_s: float
    report_dir: Path
    contexts: Mapping[str, str] = field(default_factory=dict)  # cluster -> kubeconfig context
    reuse_clusters: bool = False
    keep_clusters: bool = False
    allow_cluster_scoped: bool = False
    probe_existing_namespaces: bool = False
    calico_manifests: Path | None = None
    registry: str | None = None
    outside_echo: bool = False  # deploy the outside stand-in (live targets): --outside-echo/--no-outside-echo
    run_id: str = ""
    baseline: Path | None = None  # static: the policy set before the change, to tell new failures from old

    @property
    def calico_version_tuple(self) -> tuple[int, int]:
        major, minor = self.calico_version.split(".")
        return int(major), int(minor)

    def describe(self) -> str:
        """One line for the pytest header and the report fingerprint."""
        clusters = ",".join(self.clusters) or "(none)"
        return (
            f"target={self.target} clusters={clusters} calico={self.calico_version} "
            f"policies={self.policies} layout={self.layout} run-id={self.run_id}"
        )


# --- option value parsers (argparse `type=`): a bad value names the valid form --------------------------


def parse_cluster_list(text: str) -> tuple[str, ...]:
    """`finland,germany` -> ("finland", "germany"); order kept, duplicates refused."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise pytest.UsageError("--clusters needs at least one cluster name, e.g. --clusters finland,germany")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise pytest.UsageError(f"--clusters names {', '.join(duplicates)} more than once")
    return names


def parse_calico_version(text: str) -> str:
    """`3.27`, `v3.27.5` -> `3.27`: the semantics are gated on major.minor only."""
    match = CALICO_VERSION_PATTERN.match(text.strip())
    if match is None:
        raise pytest.UsageError(f"--calico-version {text!r} is not a version like 3.31 or v3.27.5")
    return f"{int(match['major'])}.{int(match['minor'])}"


# The longest timeout accepted: a day. `inf` or `1e400` would make every wait wait forever.
MAX_TIMEOUT_S = 86_400.0
# The shortest bound worth waiting: the agent's sockets and the runner's deadlines are set in these units,
# and below it a probe could not even see a reply from a pod on the same node (1e-320 was accepted).
MIN_TIMEOUT_S = 0.01


def parse_seconds(option: str, text: str | float) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise pytest.UsageError(f"{option} {text!r} is not a number of seconds") from None
    if not seconds > 0:
        raise pytest.UsageError(f"{option} must be more than 0 seconds, got {text}")
    if seconds < MIN_TIMEOUT_S:
        raise pytest.UsageError(f"{option} must be at least {MIN_TIMEOUT_S:g} seconds, got {text}")
    if not math.isfinite(seconds) or seconds > MAX_TIMEOUT_S:
        raise pytest.UsageError(f"{option} must be at most {MAX_TIMEOUT_S:g} seconds (a day), got {text}")
    return seconds


def check_report_dir(path: Path) -> Path:
    """`path` if the run can write its reports there: a directory, or a path whose nearest existing
    ancestor is a writable directory. Checked now, not when the reports are written at the end."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():
            raise pytest.UsageError(f"--report-dir {path}: {existing} is a dangling symbolic link")
        existing = existing.parent
    if not existing.is_dir():
        where = "is" if existing == path else f"is inside {existing}, which is"
        raise pytest.UsageError(f"--report-dir {path} {where} not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise pytest.UsageError(f"--report-dir {path}: {existing} is not writable")
    return path


# A registry mirror as image names start with it: host (or IP), optional :port, optional path. No scheme:
# `http://mirror/calico/node:v3.31.7` is no image name.
REGISTRY_PATTERN = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]([-a-z0-9._]*[a-z0-9])?)*\Z")


def parse_registry(text: str) -> str:
    """`--registry HOST[:PORT][/PATH]`, as image names are prefixed with it."""
    if not text.isascii() or not REGISTRY_PATTERN.match(text):
        raise pytest.UsageError(
            f"--registry {text!r} is not HOST[:PORT][/PATH] (lowercase, no scheme), e.g. mirror.example.com:5000"
        )
    return text


def parse_contexts(values: Sequence[str]) -> dict[str, str]:
    """Repeated `--context CLUSTER=CONTEXT` -> {cluster: context}."""
    contexts: dict[str, str] = {}
    for value in values:
        match = CONTEXT_PATTERN.match(value)
        if match is None:
            raise pytest.UsageError(f"--context {value!r} is not CLUSTER=CONTEXT, e.g. --context finland=staging-fi")
        if match["cluster"] in contexts:
            raise pytest.UsageError(f"--context gives cluster {match['cluster']!r} twice")
        contexts[match["cluster"]] = match["context"]
    return contexts


# --- resolution ----------------------------------------------------------------------------------------


def _absolute(path: str | Path, base: Path) -> Path:
    path = Path(path).expanduser()
    return path if path.is_absolute() else (base / path)


def resolve_run_config(options: Mapping[str, Any], *, base_dir: Path, target_names: Sequence[str]) -> RunConfig:
    """Check every option and every combination; raise `pytest.UsageError` at the first problem.

    `options` holds the raw values by dest name (what `config.getoption` returns); relative paths are
    taken from `base_dir` (the pytest rootdir). `target_names` are the registered targets.
    """
    target = str(options.get("target") or DEFAULT_TARGET)
    if target not in target_names:
        raise pytest.UsageError(f"unknown --target {target!r}; choose one of: {', '.join(sorted(target_names))}")

    given_for_other_target = [
        option
        for option, targets in OPTION_TARGETS.items()
        if _was_given(options, option) and target not in targets
    ]
    if given_for_other_target:
        option = given_for_other_target[0]
        allowed = " or ".join(f"--target={name}" for name in sorted(OPTION_TARGETS[option]))
        raise pytest.UsageError(f"{option} only applies to {allowed}, not --target={target}")

    kind_configs = _absolute(options.get("kind_configs") or DEFAULT_KIND_CONFIGS, base_dir)
    register_names = register_cluster_names(kind_configs)
    clusters_value = options.get("clusters")
    clusters = (
        parse_cluster_list(clusters_value) if isinstance(clusters_value, str) else tuple(clusters_value or ())
    )
    unknown = [name for name in clusters if register_names and name not in register_names]
    if unknown:
        raise pytest.UsageError(
            f"--clusters names {', '.join(unknown)}, not in the register {kind_configs}; "
            f"choose from: {', '.join(register_names)}"
        )
    contexts = parse_contexts(options.get("contexts") or ())
    if target == "kubeconfig":
        if not contexts:
            raise pytest.UsageError(
                "--target=kubeconfig needs --context CLUSTER=CONTEXT for every cluster it tests, "
                "e.g. --clusters finland --context finland=staging-fi"
            )
        if not clusters:
            clusters = tuple(contexts)  # test exactly the clusters a context was given for
        missing = [name for name in clusters if name not in contexts]
        if missing:
            raise pytest.UsageError(f"--target=kubeconfig has no --context for cluster(s): {', '.join(missing)}")
        unused = [name for name in contexts if name not in clusters]
        if unused:
            raise pytest.UsageError(f"--context given for cluster(s) not in --clusters: {', '.join(unused)}")

    if not clusters:
        clusters = register_names  # default: every cluster of the register
    calico_manifests = options.get("calico_manifests")
    if calico_manifests and not _absolute(calico_manifests, base_dir).is_dir():
        raise pytest.UsageError(
            f"--calico-manifests {calico_manifests}: not a directory (it holds the pinned operator manifests)"
        )
    calico_version = parse_calico_version(str(options.get("calico_version") or DEFAULT_CALICO_VERSION))
    return RunConfig(
        target=target,
        clusters=clusters,
        policies=_absolute(options.get("policies") or default_policies(calico_version), base_dir),
        layout=_absolute(options.get("layout") or DEFAULT_LAYOUT, base_dir),
        kind_configs=kind_configs,
        calico_version=calico_version,
        probe_timeout_s=parse_seconds("--probe-timeout", options.get("probe_timeout") or DEFAULT_PROBE_TIMEOUT_S),
        converge_timeout_s=parse_seconds(
            "--converge-timeout", options.get("converge_timeout") or DEFAULT_CONVERGE_TIMEOUT_S
        ),
        report_dir=check_report_dir(_absolute(options.get("report_dir") or DEFAULT_REPORT_DIR, base_dir)),
        contexts=contexts,
        reuse_clusters=bool(options.get("reuse_clusters")),
        keep_clusters=bool(options.get("keep_clusters")),
        allow_cluster_scoped=bool(options.get("allow_cluster_scoped")),
        probe_existing_namespaces=bool(options.get("probe_existing_namespaces")),
        calico_manifests=_absolute(calico_manifests, base_dir) if calico_manifests else None,
        registry=parse_registry(options["registry"]) if options.get("registry") else None,
        outside_echo=(
            target in OUTSIDE_ECHO_BY_DEFAULT if options.get("outside_echo") is None else bool(options["outside_echo"])
        ),
        run_id=str(options.get("run_id") or uuid.uuid4().hex[:8]),
        baseline=_absolute(options["baseline"], base_dir) if options.get("baseline") else None,
    )


def default_policies(calico_version: str) -> Path:
    """The bundled reference set for the Calico version: tiered from 3.29, single-tier before."""
    major, minor = calico_version.split(".")
    return DEFAULT_POLICIES if (int(major), int(minor)) >= TIERS_SINCE else DEFAULT_POLICIES_WITHOUT_TIERS


def register_cluster_names(kind_configs: Path) -> tuple[str, ...]:
    """The cluster names of the register: the stems of `kind-configs/*.yaml`, sorted.

    Only the names: parsing the files is the preflight's job (`register.load_register`). An absent
    directory gives no names, so runs that never touch a cluster do not need one.
    """
    if not kind_configs.is_dir():
        return ()
    return tuple(sorted(path.stem for path in kind_configs.glob("*.yaml")))


def _was_given(options: Mapping[str, Any], option: str) -> bool:
    dest = "contexts" if option == "--context" else option.lstrip("-").replace("-", "_")
    if option == "--outside-echo":  # a flag pair: --no-outside-echo (False) was given too
        return options.get(dest) is not None
    return bool(options.get(dest))
