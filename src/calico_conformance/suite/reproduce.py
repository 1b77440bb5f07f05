"""Reproduce scenarios: a failing test writes the scenario `calico-conformance simulate` replays.

When a matrix disagrees, the failure message ends with a command that shows, per wrong flow, which
tier, policy and rule decide it, with no cluster and no pytest. The scenario holds the cluster's layout
namespaces and pods (same names, labels and addresses as the test used), the policy set inline (so the
file still answers after the policy directory has changed) and, as probes, exactly the wrong flows.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from calico_conformance.oracle.loader import manifest_files
from calico_conformance.oracle.model import Pod, ServiceAccount
from calico_conformance.reachability import Flow
from calico_conformance.tenancy.layout import TenancyLayout
from calico_conformance.tenancy.model import DEFAULT_SERVICE_ACCOUNT
from calico_conformance.tenancy.workloads import layout_pods, layout_service_accounts

SCENARIO_DIRECTORY = "scenarios"  # under --report-dir
CLI_NAME = "calico-conformance"  # the console script (pyproject.toml [project.scripts])
UNSAFE_FILE_CHARACTERS = re.compile(r"[^A-Za-z0-9_.-]+")


def scenario_path(report_dir: Path, cluster: str, test_name: str) -> Path:
    """`reports/scenarios/<cluster>-<test>.yaml`, the test name made safe for a file name."""
    safe = UNSAFE_FILE_CHARACTERS.sub("-", test_name).strip("-")
    return report_dir / SCENARIO_DIRECTORY / f"{cluster}-{safe}.yaml"


def policy_documents(policies: Path) -> list[Any]:
    """The manifests of the policy set as plain data, in the order the loader reads them."""
    documents: list[Any] = []
    for path in manifest_files([policies]):
        documents.extend(
            doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None
        )
    return documents


def policy_origins(policies: Path) -> list[str]:
    """`file:line` where each document of `policy_documents` starts, in the same order: the scenario
    names them above each resource, so a reader of a replayed verdict finds the policy set's own line."""
    origins: list[str] = []
    for path in manifest_files([policies]):
        text = path.read_text(encoding="utf-8")
        nodes = yaml.compose_all(text, Loader=yaml.SafeLoader)
        for node, document in zip(nodes, yaml.safe_load_all(text), strict=True):
            if document is not None and node is not None:
                origins.append(f"{path}:{node.start_mark.line + 1}")
    return origins


def layout_origins(layout: TenancyLayout, policies: Path) -> list[str | None]:
    """The origin of each resource of `layout_scenario` (None for what the layout adds itself)."""
    accounts: list[str | None] = [None] * len(layout_service_accounts(layout))
    return accounts + list(policy_origins(policies))


def probe_entries(flows: Iterable[Flow]) -> list[dict[str, Any]]:
    entries = []
    for flow in flows:
        entry: dict[str, Any] = {"from": flow.source, "to": flow.destination, "protocol": flow.protocol}
        if flow.port is not None:
            entry["port"] = flow.port
        entries.append(entry)
    return entries


def _pod_entry(pod: Pod) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": pod.name,
        "namespace": pod.namespace,
        "labels": pod.labels.as_dict(),
        "ip": str(pod.ip),
    }
    if pod.service_account != DEFAULT_SERVICE_ACCOUNT:
        entry["serviceAccount"] = pod.service_account
    ports = [
        {"containerPort": port.port, "protocol": port.protocol, **({"name": port.name} if port.name else {})}
        for port in pod.ports
    ]
    if ports:
        entry["ports"] = ports
    return entry


def _account_manifest(account: ServiceAccount) -> dict[str, Any]:
    metadata = {"name": account.name, "namespace": account.namespace, "labels": account.labels.as_dict()}
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}


def layout_scenario(
    layout: TenancyLayout,
    pod_subnet: Any,
    policies: Path,
    calico_version: str,
    flows: Sequence[Flow],
    description: str,
) -> dict[str, Any]:
    """The scenario of one cluster's layout under the policy set, probing `flows`."""
    return {
        "calicoVersion": calico_version,
        "description": description,
        "namespaces": [
            {"name": namespace.name, "labels": namespace.labels.as_dict()}
            for namespace in layout.all_namespaces
        ],
        "pods": [_pod_entry(pod) for pod in layout_pods(layout, pod_subnet)],
        # The strangers' ServiceAccounts first: their labels are what the run's oracle saw (first wins).
        "resources": [_account_manifest(account) for account in layout_service_accounts(layout)]
        + policy_documents(policies),
        "probes": probe_entries(flows),
    }


def cli_command(base: Path) -> str:
    """How to run this installation's `calico-conformance` from `base`, as a shell word list.

    `make setup` installs the command into `.venv/bin`, which is not on PATH: the bare name would not
    work as printed. The command is the bare name only when PATH finds the same script beside the
    running interpreter; else the script's path (relative to `base` when below it, `.venv/bin/...`);
    else the running interpreter with `-m calico_conformance.cli`.
    """
    script = Path(sys.executable).parent / CLI_NAME
    if script.is_file():
        found = shutil.which(CLI_NAME)
        if found is not None and Path(found).resolve() == script.resolve():
            return CLI_NAME
        return shlex.quote(_shown(script, base))
    return f"{shlex.quote(_shown(Path(sys.executable), base))} -m calico_conformance.cli"


def _shown(path: Path, base: Path) -> str:
    """`path` relative to `base` when it lies below it (without resolving symlinks: `.venv` often is one)."""
    absolute = path if path.is_absolute() else Path.cwd() / path
    try:
        return str(absolute.relative_to(base.absolute()))
    except ValueError:
        return str(absolute)


def write_scenario(
    path: Path,
    scenario: Mapping[str, Any],
    base: Path | None = None,
    origins: Sequence[str | None] = (),
) -> str:
    """Write the scenario and return the command that replays it, runnable as printed from `base`
    (the directory the user ran pytest in; default the current directory). `origins` (one per resource,
    see `layout_origins`) become a `# from file:line` comment above each resource."""
    base = base or Path.cwd()
    path.parent.mkdir(parents=True, exist_ok=True)
    command = f"{cli_command(base)} simulate {shlex.quote(_shown(path, base))}"
    header = f"# Written by a failing calico-conformance test. Replay: {command}\n"
    path.write_text(header + _dump(scenario, origins, base), encoding="utf-8")
    return command


def _dump(scenario: Mapping[str, Any], origins: Sequence[str | None], base: Path) -> str:
    """The scenario as YAML, each resource headed by the place it came from when known."""
    if not origins:
        return yaml.safe_dump(dict(scenario), sort_keys=False)
    parts = []
    for key, value in scenario.items():
        if key != "resources":
            parts.append(yaml.safe_dump({key: value}, sort_keys=False))
            continue
        parts.append("resources:\n")
        for resource, origin in zip(value, [*origins, *[None] * len(value)], strict=False):
            if origin:
                file, _, line = origin.rpartition(":")
                parts.append(f"# from {_shown(Path(file), base)}:{line}\n")
            parts.append(yaml.safe_dump([resource], sort_keys=False))
    return "".join(parts)
