"""The reproduce command is printed so that it runs as printed, from where the user ran pytest."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from calico_conformance.suite import reproduce
from calico_conformance.suite.reproduce import CLI_NAME, cli_command, write_scenario


def test_the_installed_script_is_named_by_its_path_when_path_does_not_find_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / CLI_NAME).write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "executable", str(venv / "python"))
    monkeypatch.setattr(reproduce.shutil, "which", lambda name: None)  # `make setup` leaves PATH alone
    assert cli_command(tmp_path) == ".venv/bin/calico-conformance"
    assert cli_command(tmp_path / "elsewhere") == str(venv / CLI_NAME)


def test_the_bare_name_is_printed_only_when_path_finds_this_same_script(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / CLI_NAME).write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.setattr(reproduce.shutil, "which", lambda name: str(bin_dir / name))
    assert cli_command(tmp_path) == CLI_NAME
    monkeypatch.setattr(reproduce.shutil, "which", lambda name: "/usr/local/bin/" + name)  # another install
    assert cli_command(tmp_path) == "bin/calico-conformance"


def test_without_a_script_the_interpreter_runs_the_module(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "executable", "/opt/python 3/bin/python3")
    assert cli_command(tmp_path) == "'/opt/python 3/bin/python3' -m calico_conformance.cli"


def test_the_scenario_path_is_shown_relative_to_where_pytest_ran(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "scenarios" / "finland-t.yaml"
    command = write_scenario(path, {"namespaces": []}, tmp_path)
    assert command.endswith(" simulate reports/scenarios/finland-t.yaml")
    assert path.read_text().startswith(f"# Written by a failing calico-conformance test. Replay: {command}\n")


def test_each_resource_of_the_scenario_names_where_it_came_from_in_the_policy_set(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    manifest = policies / "10-deny.yaml"
    manifest.write_text(
        "# a comment first\n"
        "kind: NetworkPolicy\napiVersion: networking.k8s.io/v1\nmetadata: {name: a, namespace: x}\n"
        "---\n"
        "kind: NetworkPolicy\napiVersion: networking.k8s.io/v1\nmetadata: {name: b, namespace: x}\n"
    )
    documents = reproduce.policy_documents(policies)
    origins = reproduce.policy_origins(policies)
    assert origins == [f"{manifest}:2", f"{manifest}:6"]
    path = tmp_path / "reports" / "scenarios" / "s.yaml"
    scenario = {"namespaces": [{"name": "x"}], "resources": documents, "probes": []}
    write_scenario(path, scenario, tmp_path, origins)
    text = path.read_text()
    assert "# from policies/10-deny.yaml:2\n- kind: NetworkPolicy\n" in text
    assert "# from policies/10-deny.yaml:6\n- kind: NetworkPolicy\n" in text
    assert yaml.safe_load(text) == scenario  # the comments change nothing a reader of the YAML sees
