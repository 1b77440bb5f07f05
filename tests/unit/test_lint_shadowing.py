"""Shadowing is decided with the oracle's rule matching, not by comparing rule text.

Each case adds one small policy to the reference set (which lints clean) and states which of its rules,
if any, must be reported as shadowed: a broader rule earlier in the policy or the tier shadows a
narrower one, while rules that merely look alike, rules behind a tier boundary and Log rules do not.
"""

from __future__ import annotations

from pathlib import Path

from calico_conformance.lint.runner import lint

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "policies" / "reference"
TENANCY = ROOT / "policies" / "tenancy.yaml"

HEAD = """\
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {{name: application.{name}, namespace: royal-bank}}
spec:
  tier: application
  order: {order}
  selector: all()
  types: [Egress]
  egress:
"""
DENY_9200_TO = """\
    - action: Deny
      protocol: TCP
      destination:
        namespaceSelector: kubernetes.io/metadata.name == "platform"
        selector: {selector}
        ports: [9200]
"""
DENY_9200_ANYWHERE = """\
    - action: Deny
      protocol: TCP
      destination:
        ports: [9200]
"""
LOG_9200 = """\
    - action: Log
      protocol: TCP
      destination:
        ports: [9200]
"""


def shadowed_rules(tmp_path: Path, *documents: str) -> set[tuple[int, str]]:
    """(line, file name) of every shadowed-rule finding in the documents added to the reference set."""
    path = tmp_path / "added.yaml"
    path.write_text("---\n".join(documents))
    report = lint([REFERENCE, path], layout_path=TENANCY)
    others = [f.as_text() for f in report.findings if f.check != "shadowed-rule"]
    assert others == []
    return {(f.line, Path(f.file).name) for f in report.findings if f.check == "shadowed-rule"}


def line_of(tmp_path: Path, needle: str, occurrence: int = 1) -> int:
    lines = (tmp_path / "added.yaml").read_text().splitlines()
    hits = [number for number, line in enumerate(lines, start=1) if needle in line]
    return hits[occurrence - 1]


def test_rules_that_look_alike_but_select_different_pods_are_not_shadowed(tmp_path: Path) -> None:
    policy = HEAD.format(name="alike", order=50)
    policy += DENY_9200_TO.format(selector='app == "log-collector"') + DENY_9200_TO.format(
        selector='app == "sentinel"'
    )
    assert shadowed_rules(tmp_path, policy) == set()


def test_a_broader_rule_earlier_in_the_policy_shadows_a_narrower_one(tmp_path: Path) -> None:
    policy = HEAD.format(name="broad-first", order=50)
    policy += DENY_9200_TO.format(selector="all()") + DENY_9200_TO.format(selector='app == "log-collector"')
    found = shadowed_rules(tmp_path, policy)
    assert found == {(line_of(tmp_path, "- action: Deny", occurrence=2), "added.yaml")}


def test_the_narrower_rule_first_is_not_shadowed(tmp_path: Path) -> None:
    policy = HEAD.format(name="narrow-first", order=50)
    policy += DENY_9200_TO.format(selector='app == "log-collector"') + DENY_9200_TO.format(selector="all()")
    assert shadowed_rules(tmp_path, policy) == set()


def test_an_earlier_policy_of_the_same_tier_shadows(tmp_path: Path) -> None:
    first = HEAD.format(name="first", order=50) + DENY_9200_ANYWHERE
    second = HEAD.format(name="second", order=60) + DENY_9200_TO.format(selector='app == "log-collector"')
    found = shadowed_rules(tmp_path, first, second)
    assert found == {(line_of(tmp_path, "- action: Deny", occurrence=2), "added.yaml")}


def test_a_rule_in_an_earlier_tier_does_not_shadow(tmp_path: Path) -> None:
    """Tiers are separate: a later tier's rule is evaluated for whatever the earlier tier passes on, and
    the definition of shadowing is within one policy or one tier."""
    earlier_tier = (HEAD.format(name="x", order=50) + DENY_9200_ANYWHERE).replace("application", "platform")
    later = HEAD.format(name="later", order=50) + DENY_9200_TO.format(selector='app == "log-collector"')
    assert shadowed_rules(tmp_path, earlier_tier, later) == set()


def test_a_log_rule_decides_nothing_and_shadows_nothing(tmp_path: Path) -> None:
    policy = HEAD.format(name="logged", order=50) + LOG_9200 + DENY_9200_ANYWHERE
    assert shadowed_rules(tmp_path, policy) == set()
