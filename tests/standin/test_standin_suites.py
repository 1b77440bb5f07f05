"""The user-facing suites, run for real with `--target=kubeconfig` against a cluster stand-in.

Each test builds its own stand-in (API server, two lab nodes, pods as network namespaces, policy
programmed from the oracle: see `standin_policy` for why a pass here proves the plumbing, not Calico),
provisions the layout's namespaces and the reference policy set as a cluster operator would, runs
`pytest suites` in a subprocess exactly as `make nightly` does, and judges the outcome from the
subprocess's JUnit report and the stand-in's API afterwards. The fault tests flip one switch
(`standin_cluster.Faults`) and name the outcome the issue requires of it.

Needs root, `ip`, `nft` and `kubectl`; skipped with that reason otherwise.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from standin_cluster import REPO, StandinCluster
from standin_run import SUITES_TIMEOUT_S, provision, run_suites, suites_command, suites_env
from tenacity import Retrying, stop_after_delay, wait_fixed

from calico_conformance.probe.executor import ExecutorError
from calico_conformance.probe.jobs import connect_job
from calico_conformance.probe.kube_executor import KubeExecutor, stream_exec

pytestmark = [
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="the suites run needs kubectl"),
    # One worker runs them one after another (`make test` uses --dist loadgroup): each is a whole
    # stand-in cluster and a pytest run, and two at once on a 2-core machine would only slow both.
    pytest.mark.xdist_group("standin-suites"),
]
OUTSIDE_ECHO = "--outside-echo"  # the stand-in's node addresses lie outside the pod network, as kind's do
PROBE_TIMEOUT = "--probe-timeout=1"  # the stand-in's network is local: a second is generous
REFERENCE_ONLY = ("-k", "not upstream_netpol_case")  # the reference set and layout; the upstream
# Kubernetes netpol catalogue is synthetic scenarios, ~24 more scratch spaces (see the report)
ONE_MATRIX = (
    "test_royal_bank_isolation and customer-a-tcp-9999"  # one matrix on a port every probe pod serves
)
LAG_S = 3600.0  # a fault that lasts longer than any run here
FAULT_CONVERGE = "--converge-timeout=10"  # a fault lasts the whole run: waiting 90 s proves nothing more
CLUSTER_DEFECT = ("CLUSTER DEFECT: ", "whose fault: the cluster")  # the failure's head (suite/assertions.py)


def outcomes(junit: Path) -> dict[str, str]:
    """`classname::name` -> passed / failure / error / skipped, from a JUnit report (a teardown error
    after a failure is a second testcase of the same name: the first outcome is kept)."""
    found: dict[str, str] = {}
    for case in ET.parse(junit).iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        found.setdefault(
            f"{case.get('classname', '')}::{case.get('name', '')}", kinds[0] if kinds else "passed"
        )
    return found


def skip_messages(junit: Path) -> dict[str, str]:
    """`classname::name` -> the skip message, for each skipped testcase of a JUnit report."""
    return {
        f"{case.get('classname', '')}::{case.get('name', '')}": skipped.get("message", "")
        for case in ET.parse(junit).iter("testcase")
        for skipped in case.iter("skipped")
    }


def provisioned(cluster: StandinCluster) -> list[str]:
    provision(cluster)
    return cluster.everything()


def test_reference_set_passes_writes_the_reports_and_leaves_nothing_behind(
    standin_cluster: StandinCluster, tmp_path: Path
) -> None:
    before = provisioned(standin_cluster)
    reports = tmp_path / "reports"
    run = run_suites(standin_cluster, reports, PROBE_TIMEOUT, OUTSIDE_ECHO, *REFERENCE_ONLY)
    after = standin_cluster.everything()
    assert after == before, f"left behind: {sorted(set(after) - set(before))}"
    assert (reports / "conformance-report.yaml").is_file()  # the same reports as the static target
    assert list((reports / "allure-results").glob("*-result.json"))
    results = outcomes(reports / "junit.xml")
    assert run.returncode == 0, run.stdout[-8000:]
    assert set(results.values()) == {"passed", "skipped"}, results
    # Every module of the suites ran and has tests that passed on the stand-in's dataplane, default-deny
    # and DNS included: with --outside-echo, flows from and to outside the cluster go to the agent on the
    # nodes' own addresses. Only ICMP from outside is NOT_SUPPORTED (no chosen source for an echo
    # request, and nothing reports which source the answering kernel saw): said, never passed.
    passed_modules = {name.split("::")[0].rsplit(".", 1)[-1] for name, v in results.items() if v == "passed"}
    assert passed_modules == {
        "test_cidr_allocation", "test_default_deny", "test_dns_egress", "test_mtu", "test_royal_bank_isolation",
        "test_tier_ordering",
    }, passed_modules  # fmt: skip
    skips = skip_messages(reports / "junit.xml")
    assert all("NOT_SUPPORTED" in why and "ICMP: 192.0.2.10: an ICMP echo cannot be sent" in why
               for why in skips.values()), skips  # fmt: skip


def test_sigint_mid_run_removes_everything_the_run_created(
    standin_cluster: StandinCluster, tmp_path: Path
) -> None:
    before = provisioned(standin_cluster)
    env = suites_env(standin_cluster)
    command = suites_command(standin_cluster, tmp_path / "reports", PROBE_TIMEOUT, "-k", ONE_MATRIX)
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        for attempt in Retrying(stop=stop_after_delay(SUITES_TIMEOUT_S), wait=wait_fixed(0.5), reraise=True):
            with attempt:  # the run is mid-way: its probe pods exist
                assert process.poll() is None
                assert any(" royal-bank/cc-" in entry for entry in standin_cluster.everything())
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=SUITES_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    after = standin_cluster.everything()
    assert after == before, f"left behind after SIGINT: {sorted(set(after) - set(before))}\n{output[-4000:]}"


def test_ignored_policies_fail_as_a_cluster_defect(standin_cluster: StandinCluster, tmp_path: Path) -> None:
    provision(standin_cluster)
    # Felix ignores the policies that keep customer-a and royal-bank apart (both sides: ignoring one
    # side leaves the other's default-deny in force, as `pytest suites --target=static` shows).
    for namespace in ("customer-a", "royal-bank"):
        for name in ("default-deny-all", "security.isolate-tenant"):
            standin_cluster.faults.ignored_policies.add(f"networkpolicies/{namespace}/{name}")
    reports = tmp_path / "reports"
    run = run_suites(standin_cluster, reports, PROBE_TIMEOUT, FAULT_CONVERGE, "-k", ONE_MATRIX)
    assert run.returncode == 1, run.stdout[-8000:]
    assert list(outcomes(reports / "junit.xml").values()) == ["failure"]
    assert all(line in run.stdout for line in CLUSTER_DEFECT), run.stdout[-8000:]
    assert "32 leaked, 0 blocked, 0 unproven" in run.stdout  # every pair, both ways, is seen to leak


def test_an_ignored_allow_fails_as_a_cluster_defect(standin_cluster: StandinCluster, tmp_path: Path) -> None:
    provision(standin_cluster)
    # The royal-bank -> platform logging exception's egress allow: the oracle (and the requirement)
    # say allowed, the stand-in's dataplane drops it.
    standin_cluster.faults.ignored_policies.add("networkpolicies/royal-bank/application.allow-logging")
    reports = tmp_path / "reports"
    run = run_suites(
        standin_cluster, reports, PROBE_TIMEOUT, FAULT_CONVERGE, "-k", "test_exception_is_exact and royal-bank-logging"
    )
    assert run.returncode == 1, run.stdout[-8000:]
    # The control pod reaches the collector in the same rounds, so the drops are proven blocks: a cluster
    # defect, not "unproven" (the runner sends a control to every service a flow is expected to reach).
    assert all(line in run.stdout for line in CLUSTER_DEFECT), run.stdout[-8000:]
    assert "0 leaked, 4 blocked, 0 unproven" in run.stdout


def test_felix_lag_never_yields_a_pass_built_on_the_pre_policy_state(
    standin_cluster: StandinCluster, tmp_path: Path
) -> None:
    provision(standin_cluster)
    standin_cluster.faults.programming_delay_s = LAG_S  # the scenario's policies never take effect
    reports = tmp_path / "reports"
    run = run_suites(
        standin_cluster,
        reports,
        PROBE_TIMEOUT,
        "--converge-timeout=10",
        "-k",
        "upstream_netpol_case and tcp-01",
    )
    results = outcomes(reports / "junit.xml")
    assert results, run.stdout[-4000:]
    assert "passed" not in results.values(), run.stdout[-8000:]


def test_a_source_that_cannot_send_makes_its_denies_errors(
    standin_cluster: StandinCluster, tmp_path: Path
) -> None:
    provision(standin_cluster)
    standin_cluster.faults.new_pod_programming_delay_s = LAG_S  # every probe pod's egress drops
    reports = tmp_path / "reports"
    run = run_suites(standin_cluster, reports, PROBE_TIMEOUT, "--converge-timeout=10", "-k", ONE_MATRIX)
    results = outcomes(reports / "junit.xml")
    assert results, run.stdout[-4000:]
    assert "passed" not in results.values(), run.stdout[-8000:]
    # The plugin's verdict: an infrastructure error (a denial nothing proved), exit status 6, never a pass
    # and never a "proven wrong" (JUnit records the InfrastructureError as a failure element).
    assert run.returncode == 6, run.stdout[-8000:]
    assert "nothing was proven wrong" in run.stdout


def test_a_lowered_vxlan_mtu_fails_the_mtu_suite(standin_cluster: StandinCluster, tmp_path: Path) -> None:
    provision(standin_cluster)
    control_nodes: set[str] = set()

    def note_control(event: str, key: tuple[str, str, str, str], obj: dict[str, Any]) -> None:
        if key[1] == "pods" and key[2].endswith("-control") and key[3].endswith("-control"):
            control_nodes.add(str(obj.get("spec", {}).get("nodeName")))

    standin_cluster.store.listeners.append(note_control)
    run = run_suites(standin_cluster, tmp_path / "reports", PROBE_TIMEOUT, "-k", "mtu")
    assert run.returncode == 0, f"the MTU suite must pass before the fault:\n{run.stdout[-6000:]}"
    # Every node sends (the control pod and an MTU peer on each): lower the MTU of the node the control
    # pod is NOT on (placement is deterministic, so the next run's control lands on the same node), the
    # one a suite measuring from the control pod alone would miss.
    [control_node] = control_nodes
    [node] = set(standin_cluster.lab.nodes) - {control_node}
    standin_cluster.lab_set_vxlan_mtu(node, 1400)
    run = run_suites(standin_cluster, tmp_path / "faulty", PROBE_TIMEOUT, "-k", "pod_mtu_on_the_wire")
    results = outcomes(tmp_path / "faulty" / "junit.xml")
    assert "failure" in results.values(), run.stdout[-8000:]
    assert "did not cross nodes" in run.stdout


def test_a_hung_exec_upgrade_is_an_executor_error_within_the_batch_deadline(
    standin_cluster: StandinCluster, tmp_path: Path
) -> None:
    from test_standin_pods import deploy_two

    kube, pods = deploy_two(standin_cluster, tmp_path)
    b_ip = next(p["status"]["podIP"] for p in pods if p["metadata"]["name"] == "b")  # type: ignore[index]
    standin_cluster.faults.hang_exec = True
    executor = KubeExecutor(stream_exec(kube.core))
    deadline_s = 5.0
    outcome: list[BaseException | object] = []

    def batch() -> None:
        try:
            outcome.append(
                executor.run_batch(
                    "tenant/a", [connect_job("j", b_ip, 8080, "TCP", timeout_s=1)], deadline_s=deadline_s
                )
            )
        except BaseException as error:
            outcome.append(error)

    started = time.monotonic()
    worker = threading.Thread(target=batch, daemon=True)
    worker.start()
    worker.join(timeout=deadline_s + 30)  # bounded whatever the client does; the stand-in's stop frees it
    took = time.monotonic() - started
    assert outcome, (
        f"the batch was still waiting on a hung exec upgrade {took:.0f}s after a {deadline_s:g}s deadline"
    )
    assert isinstance(outcome[0], ExecutorError), outcome[0]
    assert took <= deadline_s + 10, f"the hung exec took {took:.1f}s to fail, the deadline is {deadline_s:g}s"


def test_a_pod_that_never_becomes_ready_fails_the_run_with_diagnostics(
    standin_cluster: StandinCluster, tmp_path: Path
) -> None:
    provision(standin_cluster)
    standin_cluster.faults.never_ready.add("ledger")
    reports = tmp_path / "reports"
    env_scale = {"STANDIN_TIMEOUT_SCALE": "0.1"}  # 300 s pod wait -> 30 s
    run = run_suites(
        standin_cluster,
        reports,
        PROBE_TIMEOUT,
        "-p",
        "standin_timeouts",
        "-k",
        "cluster_ranges_match_register",
        env=env_scale,
    )
    assert run.returncode != 0
    results = outcomes(reports / "junit.xml")
    assert "error" in results.values(), run.stdout[-6000:]
    bundles = list((reports / "diagnostics").glob("*/finland/probes"))
    assert bundles, f"no diagnostics bundle under {reports / 'diagnostics'}:\n{run.stdout[-4000:]}"
    assert "ledger" in run.stdout
