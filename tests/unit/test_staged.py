"""Staged policies: read and kept aside (never enforced), promoted on request as Calico's stagedAction says.

The cluster and the `diff` helper are `test_diff_cases.py`'s: shop/web, shop/api (8080, 8090),
bank/ledger (8443), bank/web. Expected diffs are written from Calico's staged semantics as
`loader_staged.py` cites them (Set: the staged spec becomes the enforced policy of the same name;
Delete: that policy goes), not from the code under test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from calico_conformance.cli import main
from calico_conformance.oracle.errors import LocatedError
from calico_conformance.oracle.loader import load_manifest_text
from calico_conformance.oracle.loader_staged import promote_staged
from tests.unit.test_diff_cases import DENY_INGRESS, diff, line_of

STAGED_OPENING = (
    DENY_INGRESS % "bank"
    + """---
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: allow-shop-web, namespace: bank}
spec:
  stagedAction: Set
  selector: app == 'ledger'
  types: [Ingress]
  ingress:
    - action: Allow
      protocol: TCP
      source: {selector: app == 'web', namespaceSelector: team == 'retail'}
"""
)


def promoted_text(text: str) -> str:
    """What `--promote-staged` stands for, written out by hand: the enforced kind, no stagedAction."""
    return text.replace("kind: StagedNetworkPolicy", "kind: NetworkPolicy").replace("  stagedAction: Set\n", "")


def test_a_staged_policy_is_read_but_changes_nothing() -> None:
    resources = load_manifest_text(STAGED_OPENING, "base.yaml")
    assert [p.display_name for p in resources.policies] == ["KubernetesNetworkPolicy bank/default-deny"]
    assert [(s.kind, s.namespace, s.name, s.action) for s in resources.staged] == [
        ("StagedNetworkPolicy", "bank", "allow-shop-web", "Set")
    ]
    without_it = DENY_INGRESS % "bank"
    assert diff(without_it, STAGED_OPENING) == []  # staged: never enforced


def test_a_promoted_staged_policy_opens_what_its_enforced_twin_would() -> None:
    rule = line_of(promoted_text(STAGED_OPENING), "- action: Allow")
    policy = line_of(STAGED_OPENING, "kind: StagedNetworkPolicy") - 1
    expected = [
        (
            "shop/web -> bank/ledger",
            "added",
            "opened 8443/TCP",
            "Ingress: end of tier default, KubernetesNetworkPolicy bank/default-deny @1",
            f"Ingress: NetworkPolicy bank/allow-shop-web #0 Allow @{rule}",
            f"NetworkPolicy bank/allow-shop-web added (head.yaml:{policy})",
        )
    ]
    assert diff(STAGED_OPENING, promoted_text(STAGED_OPENING)) == expected
    resources = load_manifest_text(STAGED_OPENING, "head.yaml")
    promoted = promote_staged(resources)
    assert promoted.staged == ()
    assert promoted.policies == load_manifest_text(promoted_text(STAGED_OPENING), "head.yaml").policies


def test_a_staged_delete_promoted_removes_the_enforced_policy_of_that_name() -> None:
    enforced = promoted_text(STAGED_OPENING)
    with_delete = (
        enforced
        + """---
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: allow-shop-web, namespace: bank}
spec: {stagedAction: Delete}
"""
    )
    resources = promote_staged(load_manifest_text(with_delete, "head.yaml"))
    assert [p.display_name for p in resources.policies] == ["KubernetesNetworkPolicy bank/default-deny"]


def test_a_staged_kubernetes_policy_promoted_is_a_kubernetes_network_policy() -> None:
    text = """\
apiVersion: projectcalico.org/v3
kind: StagedKubernetesNetworkPolicy
metadata: {name: deny-all, namespace: bank}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""
    resources = load_manifest_text(text, "staged.yaml")
    assert resources.policies == ()
    (policy,) = promote_staged(resources).policies
    assert policy == load_manifest_text(DENY_INGRESS.replace("default-deny", "deny-all") % "bank", "x.yaml").policies[0]
    assert policy.manifest is not None
    assert (policy.manifest["apiVersion"], policy.manifest["kind"]) == ("networking.k8s.io/v1", "NetworkPolicy")


@pytest.mark.parametrize(
    ("spec", "fragment", "why"),
    [
        pytest.param(
            "spec: {stagedAction: Maybe}",
            "stagedAction: Maybe",
            "spec.stagedAction: unknown stagedAction 'Maybe'; expected Set, Delete, Learn, Ignore",
            id="unknown-action",
        ),
        pytest.param(
            "spec: {stagedAction: Delete, selector: all()}",
            "spec: {stagedAction: Delete",
            "spec: a StagedNetworkPolicy with stagedAction Delete has no other spec fields than tier "
            "(Calico's validator refuses them): selector",
            id="delete-with-spec",
        ),
        pytest.param(
            "spec: {bogus: 1}",
            "spec: {bogus",
            "unknown field",
            id="unknown-field",
        ),
    ],
)
def test_bad_staged_documents_are_located_errors(spec: str, fragment: str, why: str) -> None:
    text = f"apiVersion: projectcalico.org/v3\nkind: StagedNetworkPolicy\nmetadata: {{name: s, namespace: bank}}\n{spec}\n"
    with pytest.raises(LocatedError) as raised:
        load_manifest_text(text, "staged.yaml")
    assert str(raised.value).startswith(f"staged.yaml:{line_of(text, fragment)}:")
    assert why in str(raised.value)


def test_promoting_learn_is_refused_at_the_document() -> None:
    text = "apiVersion: projectcalico.org/v3\nkind: StagedGlobalNetworkPolicy\nmetadata: {name: s}\nspec: {stagedAction: Learn}\n"
    resources = load_manifest_text(text, "staged.yaml")
    assert resources.staged[0].action == "Learn"
    with pytest.raises(LocatedError) as raised:
        promote_staged(resources)
    assert str(raised.value).startswith("staged.yaml:1: StagedGlobalNetworkPolicy s: stagedAction Learn cannot be promoted")


SCENARIO = """\
calicoVersion: "3.31"
namespaces: [{name: shop, labels: {team: retail}}, {name: bank}]
pods:
  - {name: web, namespace: shop, labels: {app: web}}
  - {name: ledger, namespace: bank, labels: {app: ledger}, ports: [{containerPort: 8443, protocol: TCP}]}
resources:
  - apiVersion: projectcalico.org/v3
    kind: StagedGlobalNetworkPolicy
    metadata: {name: deny-ledger}
    spec:
      selector: app == 'ledger'
      ingress: [{action: Deny}]
"""


def test_simulate_promote_staged_enforces_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO)
    assert main(["simulate", str(path)]) == 0
    assert capsys.readouterr().out.startswith("ALLOW  shop/web -> bank/ledger 8443/TCP")
    assert main(["simulate", str(path), "--promote-staged"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("DENY   shop/web -> bank/ledger 8443/TCP")
    assert f"GlobalNetworkPolicy deny-ledger rule 0 (Deny) at {path}:{line_of(SCENARIO, '[{action: Deny}]')}" in out


def test_diff_promote_staged_compares_the_promoted_sets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).resolve().parents[2]
    head = tmp_path / "head"
    head.mkdir()
    (head / "staged.yaml").write_text(  # a lockdown of royal-bank's egress, staged in the first tier
        "apiVersion: projectcalico.org/v3\nkind: StagedNetworkPolicy\n"
        "metadata: {name: security.lockdown, namespace: royal-bank}\n"
        "spec: {tier: security, order: 1, selector: all(), types: [Egress], egress: [{action: Deny}]}\n"
    )
    (head / "reference.yaml").write_text("".join(
        p.read_text() + "\n---\n" for p in sorted((root / "policies" / "reference").glob("*.yaml"))
    ))
    argv = ["diff", str(root / "policies" / "reference"), str(head), "--kind-configs", str(root / "kind-configs"),
            "--layout", str(root / "policies" / "tenancy.yaml"), "--clusters", "finland"]
    assert main(argv) == 0
    assert " 0 flow(s) change verdict" in capsys.readouterr().out  # staged: nothing enforced
    assert main([*argv, "--promote-staged"]) == 1  # royal-bank loses its egress: DNS and logging break
    out = capsys.readouterr().out
    assert "NetworkPolicy royal-bank/security.lockdown added" in out
    assert "BREAKS layout requirement: royal-bank/ledger -> kube-system/kube-dns 53/UDP must be allowed" in out
