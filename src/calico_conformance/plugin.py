"""The pytest plugin (entry point `pytest11`): options, markers, the run's `RunConfig` and its preflight.

Every option of the suite is declared here, in one group, and resolved once into a frozen `RunConfig` on
`config.stash[RUN_CONFIG_KEY]`. Resolution in `pytest_configure` only checks values and combinations, so
`pytest tests/` (and every pytester run) works without a register, a layout or a cluster.

The inputs of the suites (register, layout, policy set) are read when the first suite test is collected
and the chosen target is checked after `-k`/`-m` selection (`pytest_collection_modifyitems`): a bad input
or an unusable target is a `pytest.UsageError` (`file:line: why`, exit status 4) before any cluster is
touched, and only when a selected test actually needs it.

Under pytest-xdist the controller collects nothing (its workers do), so a bad input found by a worker's
preflight would crash the worker ("bringing up nodes...", an internal error, exit 3). The controller
therefore reads the inputs itself before any worker starts (`controller_preflight`) whenever the run
was told where they are (`--policies`, `--layout`, `--kind-configs`, `--clusters`, `--calico-version`)
or its paths reach `suites/` (a bare `pytest -n 2` at the root: the default inputs):
the same single usage error as a serial run. (A bad option value is refused even if no selected test
would read it, as every other bad option is; the controller cannot know the selection.)
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

from calico_conformance.config import (
    DEFAULT_CONVERGE_TIMEOUT_S,
    DEFAULT_KIND_CONFIGS,
    DEFAULT_LAYOUT,
    DEFAULT_POLICIES,
    DEFAULT_POLICIES_WITHOUT_TIERS,
    DEFAULT_PROBE_TIMEOUT_S,
    DEFAULT_REPORT_DIR,
    DEFAULT_TARGET,
    RunConfig,
    resolve_run_config,
)
from calico_conformance.oracle.loader import load_manifests
from calico_conformance.oracle.model import DEFAULT_CALICO_VERSION
from calico_conformance.run_inputs import RunInputs, load_run_inputs
from calico_conformance.suite.cases import CASE_BUILDERS
from calico_conformance.targets.base import Target
from calico_conformance.targets.baseline import BASELINE_PLUGIN_NAME, BaselineRecorder, with_baseline
from calico_conformance.targets.registry import TARGETS, build_target, require_target, target_help

RUN_CONFIG_KEY = pytest.StashKey[RunConfig]()
# The suites' inputs, or the UsageError that reading them gave (raised once a selected test needs them).
RUN_INPUTS_KEY = pytest.StashKey["RunInputs | pytest.UsageError"]()

# Suite tests carry this marker (suites/ sets it module-wide): only they are parametrised by cluster and
# only they make the preflight read the inputs. Tests of the project itself may have a `cluster` of their own.
SUITE_MARKER = "conformance"
# A selected suite test that uses this needs the chosen target to be usable on this machine.
TARGET_FIXTURE = "target"
# The target built by the preflight: its constructor checks tools, contexts and schemas, and refuses with
# a UsageError before any cluster is touched; the session `target` fixture prepares this same object.
TARGET_KEY = pytest.StashKey[Target]()

MARKERS = {
    "isolation": "tenant isolation: royal-bank and default-deny (pytest -k isolation)",
    "default_deny": "every namespace denies ingress and egress by default",
    "royal_bank": "royal-bank is isolated from every other customer namespace",
    "tiers": "Calico tier ordering, Pass and tier default actions",
    "dns": "DNS egress to kube-dns only",
    "mtu": "the Installation's MTU fits the encapsulation",
    "cidr": "the CIDR register and the Installation rendered from it",
    "conformance": "a user-facing suite test (needs --target)",
    "netns": "runs on a real Linux dataplane of network namespaces (needs root)",
    "cases(name)": "parametrise `cluster` and `case` with the named builder of cases.CASE_BUILDERS",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("calico-conformance", "Calico conformance and tenant isolation")
    group.addoption(
        "--target",
        dest="target",
        metavar="NAME",
        default=DEFAULT_TARGET,
        help=f"where the reachability comes from (default {DEFAULT_TARGET}). {target_help()}",
    )
    group.addoption(
        "--clusters",
        dest="clusters",
        metavar="NAME[,NAME]",
        default=None,
        help="clusters of the register to test (default: every kind-configs/*.yaml)",
    )
    group.addoption(
        "--policies",
        dest="policies",
        metavar="DIR",
        default=None,
        help=(
            f"policy manifests (files or a directory) to test (default {DEFAULT_POLICIES}/, or "
            f"{DEFAULT_POLICIES_WITHOUT_TIERS}/ for --calico-version below 3.29)"
        ),
    )
    group.addoption(
        "--layout",
        dest="layout",
        metavar="FILE",
        default=None,
        help=f"tenancy layout: namespaces, workloads, exceptions, DNS, tiers (default {DEFAULT_LAYOUT})",
    )
    group.addoption(
        "--kind-configs",
        dest="kind_configs",
        metavar="DIR",
        default=None,
        help=f"the cluster register, one kind Cluster config per cluster (default {DEFAULT_KIND_CONFIGS}/)",
    )
    group.addoption(
        "--calico-version",
        dest="calico_version",
        metavar="X.Y",
        default=None,
        help=f"Calico version whose semantics apply (default {DEFAULT_CALICO_VERSION}); tiers need >= 3.29",
    )
    group.addoption(
        "--probe-timeout",
        dest="probe_timeout",
        metavar="SECONDS",
        default=None,
        help=f"how long one probe waits for an answer (default {DEFAULT_PROBE_TIMEOUT_S:g})",
    )
    group.addoption(
        "--converge-timeout",
        dest="converge_timeout",
        metavar="SECONDS",
        default=None,
        help=f"how long a live matrix may take to match policy (default {DEFAULT_CONVERGE_TIMEOUT_S:g})",
    )
    group.addoption(
        "--report-dir",
        dest="report_dir",
        metavar="DIR",
        default=None,
        help=f"where reports and reproduce scenarios are written (default {DEFAULT_REPORT_DIR}/)",
    )
    # Live targets only: each is refused with any other --target (config.OPTION_TARGETS).
    group.addoption(
        "--context",
        dest="contexts",
        metavar="CLUSTER=CONTEXT",
        action="append",
        default=[],
        help="kubeconfig context of a cluster (--target=kubeconfig); repeat per cluster",
    )
    group.addoption(
        "--reuse-clusters",
        dest="reuse_clusters",
        action="store_true",
        help="reuse kind clusters of the same name instead of creating them (--target=kind)",
    )
    group.addoption(
        "--keep-clusters",
        dest="keep_clusters",
        action="store_true",
        help="keep the kind clusters after the run (--target=kind)",
    )
    group.addoption(
        "--allow-cluster-scoped",
        dest="allow_cluster_scoped",
        action="store_true",
        help="let the run create cluster-scoped objects, e.g. GlobalNetworkPolicies (--target=kubeconfig)",
    )
    group.addoption(
        "--probe-existing-namespaces",
        dest="probe_existing_namespaces",
        action="store_true",
        help="also probe from the cluster's own layout namespaces, not only run-id scratch ones "
        "(--target=kubeconfig)",
    )
    group.addoption(
        "--calico-manifests",
        dest="calico_manifests",
        metavar="DIR",
        default=None,
        help="local Tigera operator manifests to install from instead of downloading (--target=kind)",
    )
    group.addoption(
        "--registry",
        dest="registry",
        metavar="HOST[:PORT]",
        default=None,
        help="image registry mirror for probe and Calico images (live targets)",
    )
    group.addoption(
        "--outside-echo",
        dest="outside_echo",
        action="store_true",
        default=None,
        help="deploy a hostNetwork agent pod per node that answers the layout's outside flows "
        "(live targets; default on for kind, off for kubeconfig, where Pod Security may forbid it)",
    )
    group.addoption(
        "--no-outside-echo",
        dest="outside_echo",
        action="store_false",
        default=None,
        help="deploy no outside stand-in: flows to outside addresses are NOT_SUPPORTED (live targets)",
    )
    group.addoption(
        "--baseline",
        dest="baseline",
        metavar="DIR",
        default=None,
        help="static target: the policy set before the change (e.g. the base branch's); each failing test "
        "says whether its failure is new in this change or was already there",
    )


OPTION_DESTS = (
    "target",
    "clusters",
    "policies",
    "layout",
    "kind_configs",
    "calico_version",
    "probe_timeout",
    "converge_timeout",
    "report_dir",
    "contexts",
    "reuse_clusters",
    "keep_clusters",
    "allow_cluster_scoped",
    "probe_existing_namespaces",
    "calico_manifests",
    "registry",
    "outside_echo",
    "baseline",
)


def run_config_from_pytest(config: pytest.Config) -> RunConfig:
    options = {dest: config.getoption(dest) for dest in OPTION_DESTS}
    # xdist workers share the controller's run id, so scratch names agree across workers.
    worker_input = getattr(config, "workerinput", None)
    options["run_id"] = worker_input.get("testrunuid") if worker_input else None
    return resolve_run_config(options, base_dir=Path(config.rootpath), target_names=tuple(TARGETS))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    run = config.stash[RUN_CONFIG_KEY] = run_config_from_pytest(config)
    if getattr(config.option, "testrunuid", "") is None and not hasattr(config, "workerinput"):
        config.option.testrunuid = run.run_id  # xdist hands the controller's id to every worker
    controller_preflight(config)
    _register_report_collector(config)
    if run.baseline is not None:
        config.pluginmanager.register(BaselineRecorder(str(run.baseline)), BASELINE_PLUGIN_NAME)


# The options that say where the suites' inputs are; giving one is asking for those inputs to be used.
INPUT_OPTION_DESTS = ("policies", "layout", "kind_configs", "clusters", "calico_version")
SUITES_DIR = "suites"  # the user-facing suites, under the rootdir (pyproject's testpaths)


def controller_preflight(config: pytest.Config) -> None:
    """On an xdist controller, refuse bad suite inputs now, as the serial preflight would later."""
    if getattr(config.option, "dist", "no") == "no" or hasattr(config, "workerinput"):
        return
    if getattr(config.option, "collectonly", False):
        return
    if not any(config.getoption(dest) for dest in INPUT_OPTION_DESTS) and not _collects_suites(config):
        return
    suite_inputs(config)
    error = config.stash[RUN_INPUTS_KEY]
    if isinstance(error, pytest.UsageError):
        raise error


def _collects_suites(config: pytest.Config) -> bool:
    """Whether the run's paths (the arguments, else `testpaths`) reach the suites' directory and its
    default inputs are there: they will be read, and a bad one must be the same usage error as serially."""
    suites = (config.rootpath / SUITES_DIR).resolve()
    run = config.stash[RUN_CONFIG_KEY]
    if not suites.is_dir() or not all(
        os.path.lexists(p) for p in (run.policies, run.layout, run.kind_configs)
    ):
        # Not this project's checkout (a synthetic suite whose tests read no inputs): the serial
        # preflight's rule, "only when a selected test needs them", is all that can apply.
        return False
    for arg in config.args:
        path = Path(arg.split("::", 1)[0])
        path = (path if path.is_absolute() else config.invocation_params.dir / path).resolve()
        if path == suites or suites in path.parents or path in suites.parents:
            return True
    return False


def _register_report_collector(config: pytest.Config) -> None:
    """Register the reports plugin (JUnit properties, Allure, ConformanceReport) when it is built."""
    try:
        collector_module = importlib.import_module("calico_conformance.report.collector")
    except ModuleNotFoundError as missing:
        if missing.name == "calico_conformance.report.collector":
            return
        raise
    collector = collector_module.ReportCollector(config.stash[RUN_CONFIG_KEY])
    config.pluginmanager.register(collector, collector_module.REPORT_PLUGIN_NAME)
    # The fixtures read the collector; the collector never imports them (a lower layer).
    fixtures_module = importlib.import_module("calico_conformance.report.fixtures")
    config.pluginmanager.register(fixtures_module, collector_module.FIXTURES_PLUGIN_NAME)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"calico-conformance: {config.stash[RUN_CONFIG_KEY].describe()}"]


# --- the suites' inputs and preflight -------------------------------------------------------------------


def suite_inputs(config: pytest.Config) -> RunInputs | None:
    """The run's register, layout and policy set, read on first use; None when they are bad.

    Collection must not stop at a bad input (a `pytest_generate_tests` error would be reported as a
    collection error with a traceback), so the error is kept and raised as a `UsageError` by the
    preflight, once it is known that a selected test needs the inputs.
    """
    if RUN_INPUTS_KEY not in config.stash:
        try:
            config.stash[RUN_INPUTS_KEY] = load_run_inputs(config.stash[RUN_CONFIG_KEY])
        except (ValueError, OSError) as problem:  # LocatedError is a ValueError: `file:line: why`
            config.stash[RUN_INPUTS_KEY] = pytest.UsageError(str(problem))
    inputs = config.stash[RUN_INPUTS_KEY]
    return None if isinstance(inputs, pytest.UsageError) else inputs


def require_suite_inputs(config: pytest.Config) -> RunInputs:
    inputs = suite_inputs(config)
    if inputs is None:
        error = config.stash[RUN_INPUTS_KEY]
        assert isinstance(error, pytest.UsageError)
        raise error
    return inputs


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Preflight, after -k/-m selection: the target must be usable and the inputs sound, or UsageError."""
    suite_items = [item for item in items if item.get_closest_marker(SUITE_MARKER) is not None]
    if not suite_items:
        return
    needs_target = any(TARGET_FIXTURE in getattr(item, "fixturenames", ()) for item in suite_items)
    run = config.stash[RUN_CONFIG_KEY]
    if needs_target:
        require_target(run.target)
    inputs = require_suite_inputs(config)
    if needs_target and TARGET_KEY not in config.stash:
        target = build_target(run, inputs.layout, inputs.resources)
        if run.baseline is not None:
            try:
                baseline = load_manifests([run.baseline], calico_version=run.calico_version)
            except (ValueError, OSError) as problem:
                raise pytest.UsageError(f"--baseline: {problem}") from None
            target = with_baseline(config, target, run, inputs.layout, baseline)
        config.stash[TARGET_KEY] = target


def preflight_target(config: pytest.Config) -> Target:
    """The target the preflight built (tests that reach the `target` fixture always passed the preflight)."""
    return config.stash[TARGET_KEY]


@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise `cluster` (and `case`) from the run's clusters and the layout.

    Only suite tests (marked `conformance`) are parametrised. One marked `@pytest.mark.cases("<name>")`
    takes a `case` from `cases.CASE_BUILDERS` together with its cluster, so ids read
    `finland-customer-a-tcp-8443`; any other suite test asking for `cluster` runs once per cluster.
    With bad inputs nothing is parametrised: the preflight reports them.
    """
    if metafunc.definition.get_closest_marker(SUITE_MARKER) is None:
        return
    marker = metafunc.definition.get_closest_marker("cases")
    if marker is None:
        if "cluster" in metafunc.fixturenames:
            inputs = suite_inputs(metafunc.config)
            metafunc.parametrize("cluster", inputs.clusters if inputs else (), indirect=True)
        return
    inputs = suite_inputs(metafunc.config)
    name = marker.args[0] if marker.args else ""
    if name not in CASE_BUILDERS:
        raise pytest.UsageError(
            f"{metafunc.definition.nodeid}: unknown cases {name!r}; choose one of: {', '.join(CASE_BUILDERS)}"
        )
    cases = CASE_BUILDERS[name](inputs.layout, inputs.clusters) if inputs else ()
    metafunc.parametrize(
        ("cluster", "case"),
        [pytest.param(case.cluster, case, id=case.id) for case in cases],
        indirect=["cluster"],
    )
