"""The diagnostics bundle: what it collects, where it goes, and that a failing collector never hides
the rest. Commands are run through a recorded runner here; on a live failure they are real kubectl calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from calico_conformance.cluster.commands import CommandFailed, CommandResult, KubeAccess
from calico_conformance.cluster.diagnostics import bundle_dir, collect, diagnostics_plan

ACCESS = KubeAccess(Path("/run/finland.kubeconfig"), "kind-finland")


def plan(release: str = "v3.31.7") -> list:  # type: ignore[type-arg]
    return diagnostics_plan(
        ACCESS,
        release=release,
        calico_node_pods={"finland-worker": "calico-node-abc", "finland-worker2": "calico-node-def",
                          "finland-control-plane": "calico-node-ghi"},
        nodes_involved=["finland-worker2", "finland-worker"],
        probe_pods=[("royal-bank", "ledger"), ("platform", "log-collector")],
    )  # fmt: skip


def test_the_bundle_has_policies_tiers_pools_felix_installation_status_and_logs() -> None:
    names = [artifact.name for artifact in plan()]

    for expected in ("calico-networkpolicies.yaml", "calico-globalnetworkpolicies.yaml", "calico-tiers.yaml",
                     "kubernetes-networkpolicies.yaml", "ippools.yaml", "felixconfigurations.yaml",
                     "installation.yaml", "tigerastatus.yaml", "probe-pods.yaml"):  # fmt: skip
        assert expected in names
    assert "calico-node-finland-worker.log" in names
    assert "calico-node-finland-worker2.log" in names
    assert "calico-node-finland-control-plane.log" not in names  # only the nodes involved
    assert "probe-royal-bank-ledger.log" in names


def test_resources_are_fully_qualified_and_logs_name_the_container() -> None:
    by_name = {artifact.name: artifact.argv for artifact in plan()}

    assert "networkpolicies.projectcalico.org" in by_name["calico-networkpolicies.yaml"]
    assert "networkpolicies.networking.k8s.io" in by_name["kubernetes-networkpolicies.yaml"]
    assert by_name["calico-node-finland-worker.log"][-5:] == (
        "logs",
        "--namespace=calico-system",
        "calico-node-abc",
        "--timestamps",
        "--container=calico-node",
    )
    assert all(
        argv[1:3] == ("--kubeconfig=/run/finland.kubeconfig", "--context=kind-finland")
        for argv in by_name.values()
    )


def test_bundle_directory_is_per_run_cluster_and_failure(tmp_path: Path) -> None:
    assert bundle_dir(tmp_path, "r1", "finland", "test_x[finland-tcp 80]") == (
        tmp_path / "diagnostics" / "r1" / "finland" / "test_x-finland-tcp-80"
    )


def test_collect_writes_every_file_and_keeps_going_past_failures(tmp_path: Path) -> None:
    def runner(argv: Sequence[str]) -> CommandResult:
        if "tiers.projectcalico.org" in argv:
            raise CommandFailed(argv, 1, 'the server doesn\'t have a resource type "tiers"')
        return CommandResult(tuple(argv), f"output of {argv[-3]}\n", "")

    bundle = collect(tmp_path / "b", plan(), summary="TigeraStatus calico Degraded", run=runner)

    assert (tmp_path / "b" / "summary.txt").read_text() == "TigeraStatus calico Degraded\n"
    assert (tmp_path / "b" / "ippools.yaml").read_text().startswith("output of")
    assert not (tmp_path / "b" / "calico-tiers.yaml").exists()
    assert bundle.errors == (
        "calico-tiers.yaml: `kubectl --kubeconfig=/run/finland.kubeconfig --context=kind-finland get "
        'tiers.projectcalico.org --all-namespaces -o yaml` exited 1: the server doesn\'t have a resource type "tiers"',
    )
    assert (tmp_path / "b" / "errors.txt").read_text() == bundle.errors[0] + "\n"
    commands = (tmp_path / "b" / "commands.txt").read_text()
    assert "ippools.yaml: kubectl --kubeconfig=/run/finland.kubeconfig" in commands
    assert len(bundle.files) == len(plan()) - 1 + 3  # minus the failure; plus summary, commands, errors


def test_the_bundle_asks_only_for_what_the_release_serves() -> None:
    # No release serves workloadendpoints (storage_calico.go registers none; cluster/data/served-resources);
    # the probe pods' Calico CNI annotations stand for them. v3.27.5 serves no tiers.
    for release in ("v3.31.7", "v3.27.5"):
        argvs = [artifact.argv for artifact in plan(release)]
        assert not any("workloadendpoints.projectcalico.org" in argv for argv in argvs)
    assert "calico-tiers.yaml" in [artifact.name for artifact in plan("v3.31.7")]
    assert "calico-tiers.yaml" not in [artifact.name for artifact in plan("v3.27.5")]
    probe_pods = {artifact.name: artifact.argv for artifact in plan()}["probe-pods.yaml"]
    assert probe_pods[-5:] == ("pods", "--all-namespaces", "--selector=calico-conformance.io/role", "-o", "yaml")
