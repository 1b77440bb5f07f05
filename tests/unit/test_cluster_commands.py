"""The kind and kubectl command lines of a live run, the missing-tool refusal, and the command runner.

The command lines are checked against kind's and kubectl's documented flags (`kind create cluster
--name --config --kubeconfig --wait`, `kubectl apply --server-side`); whether the binaries accept them
is only proven by a live run. The runner is exercised with real processes (`sh`, `false`, `sleep`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from calico_conformance.cluster.commands import (
    CommandFailed,
    KubeAccess,
    docker_node_mtu,
    kind_create,
    kind_delete,
    kind_export_kubeconfig,
    kind_export_logs,
    kind_get_clusters,
    kubectl,
    kubectl_exec_probe,
    kubectl_get_yaml,
    kubectl_logs,
    run_command,
    shell_line,
)
from calico_conformance.cluster.install import server_side_apply
from calico_conformance.cluster.tools import (
    KIND_TOOLS,
    MissingTools,
    docker_engine_problem,
    missing_tools,
    require_docker_engine,
    require_tools,
)

KUBECONFIG = Path("/tmp/run/finland.kubeconfig")


def test_kind_create_uses_the_register_file_and_a_private_kubeconfig() -> None:
    argv = kind_create("finland", Path("kind-configs/finland.yaml"), KUBECONFIG)

    assert argv == [
        "kind",
        "create",
        "cluster",
        "--name=finland",
        "--config=kind-configs/finland.yaml",
        "--kubeconfig=/tmp/run/finland.kubeconfig",
        "--wait=0s",
    ]


def test_kind_delete_export_and_listing() -> None:
    assert kind_delete("finland", KUBECONFIG) == [
        "kind",
        "delete",
        "cluster",
        "--name=finland",
        "--kubeconfig=/tmp/run/finland.kubeconfig",
    ]
    assert kind_export_kubeconfig("germany", KUBECONFIG) == [
        "kind",
        "export",
        "kubeconfig",
        "--name=germany",
        "--kubeconfig=/tmp/run/finland.kubeconfig",
    ]
    assert kind_export_logs("germany", Path("/r/d")) == ["kind", "export", "logs", "/r/d", "--name=germany"]
    assert kind_get_clusters() == ["kind", "get", "clusters"]
    assert docker_node_mtu("finland-worker") == [
        "docker",
        "exec",
        "finland-worker",
        "cat",
        "/sys/class/net/eth0/mtu",
    ]


def test_every_kubectl_command_names_its_kubeconfig_and_context() -> None:
    access = KubeAccess(KUBECONFIG, "staging-fi")

    argv = kubectl(access, "get", "nodes")

    assert argv == [
        "kubectl",
        "--kubeconfig=/tmp/run/finland.kubeconfig",
        "--context=staging-fi",
        "get",
        "nodes",
    ]


def test_kubectl_without_context_uses_only_the_kubeconfig() -> None:
    assert kubectl(KubeAccess(KUBECONFIG), "version") == [
        "kubectl",
        "--kubeconfig=/tmp/run/finland.kubeconfig",
        "version",
    ]


def test_server_side_apply_has_a_field_manager_and_takes_over_conflicts() -> None:
    assert server_side_apply("crds.yaml") == (
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=calico-conformance",
        "-f",
        "crds.yaml",
    )


def test_diagnostics_commands() -> None:
    access = KubeAccess(KUBECONFIG)
    assert kubectl_get_yaml(access, "tigerastatus") == [
        "kubectl",
        "--kubeconfig=/tmp/run/finland.kubeconfig",
        "get",
        "tigerastatus",
        "--all-namespaces",
        "-o",
        "yaml",
    ]
    assert kubectl_get_yaml(access, "pods", namespace="calico-system")[-4:] == [
        "pods",
        "--namespace=calico-system",
        "-o",
        "yaml",
    ]
    assert kubectl_logs(access, "calico-system", "calico-node-x", container="calico-node")[2:] == [
        "logs",
        "--namespace=calico-system",
        "calico-node-x",
        "--timestamps",
        "--container=calico-node",
    ]


def test_reproduce_command_is_a_pasteable_shell_line() -> None:
    argv = kubectl_exec_probe(
        KubeAccess(KUBECONFIG), "royal-bank", "ledger", ["python3", "/a/agent.py", "probe"]
    )

    assert shell_line(argv) == (
        "kubectl --kubeconfig=/tmp/run/finland.kubeconfig exec -i --namespace=royal-bank ledger -- "
        "python3 /a/agent.py probe"
    )
    assert shell_line(["echo", "it's"]) == "echo 'it'\"'\"'s'"


def test_missing_tools_are_named_with_why_and_how_to_get_them() -> None:
    present = {"docker": "/usr/bin/docker"}

    with pytest.raises(MissingTools) as raised:
        require_tools(KIND_TOOLS, "kind", which=present.get)

    message = str(raised.value)
    assert message.splitlines()[0] == "--target=kind cannot run on this machine; missing:"
    assert "  kind: creates the clusters from kind-configs/; go install sigs.k8s.io/kind@" in message
    assert "  kubectl: applies the Calico manifests server-side;" in message
    assert "docker:" not in message
    assert message.splitlines()[-1] == "to check a policy set without a cluster use --target=static"


def test_nothing_missing_is_no_error() -> None:
    assert missing_tools(KIND_TOOLS, which=lambda name: f"/bin/{name}") == []
    require_tools(KIND_TOOLS, "kind", which=lambda name: f"/bin/{name}")


def test_this_machine_has_no_kind_binary_and_says_so() -> None:
    # The project's own machines have the docker and kubectl clients but no kind: the real PATH lookup.
    names = [tool.name for tool in missing_tools(KIND_TOOLS)]
    assert "kind" in names


def _completed(returncode: int, stderr: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["docker", "info"], returncode, "", stderr)


def test_docker_client_without_engine_is_refused_with_the_reason() -> None:
    def no_engine(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return _completed(1, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock")

    problem = docker_engine_problem(no_engine)
    assert problem is not None
    assert "Cannot connect to the Docker daemon" in problem
    with pytest.raises(MissingTools, match=r"needs a running Docker engine.*--target=static"):
        require_docker_engine(no_engine)


def test_docker_engine_answering_is_no_problem() -> None:
    assert docker_engine_problem(lambda *a, **k: _completed(0)) is None


def test_run_command_returns_output() -> None:
    result = run_command(["sh", "-c", "cat; echo err >&2"], timeout_s=10, stdin=b"in")
    assert result.stdout == "in"
    assert result.stderr == "err\n"


def test_run_command_failure_carries_the_command_and_stderr() -> None:
    with pytest.raises(CommandFailed) as raised:
        run_command(["sh", "-c", "echo 'no such cluster' >&2; exit 3"], timeout_s=10)

    assert raised.value.returncode == 3
    assert (
        str(raised.value)
        == "`sh -c 'echo '\"'\"'no such cluster'\"'\"' >&2; exit 3'` exited 3: no such cluster"
    )


def test_run_command_timeout_and_missing_binary_are_command_failures() -> None:
    with pytest.raises(CommandFailed, match="timed out"):
        run_command(["sleep", "5"], timeout_s=0.2)
    with pytest.raises(CommandFailed) as raised:
        run_command(["no-such-binary-calico-conformance"], timeout_s=5)
    assert raised.value.returncode == 127
