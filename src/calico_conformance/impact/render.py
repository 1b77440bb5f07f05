"""How `calico-conformance diff` reads: text for a terminal, markdown for a pull-request comment, JSON and CSV.

Every format says the same things: the objects that changed, then per cluster the flows whose verdict
changes, grouped by cause (the object changes that explain them), each with the deciding policy, rule and
`file:line` before and after; then the layout requirements the change breaks or repairs. Clusters whose
changes read alike (the usual case: one layout in three subnets) are shown once, under all their names.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from calico_conformance.impact.clusters import ClusterImpact, Impact, RequirementChange
from calico_conformance.oracle.diff import PairChange, PortChange, ResourceChange, group_by_cause
from calico_conformance.oracle.explain import OUTSIDE, Decision, Verdict


def deciding(verdict: Verdict, other: Verdict) -> tuple[Decision, ...]:
    """The directions of `verdict` that differ from `other`'s: what decided the flip on this side."""
    flipped = tuple(
        mine for mine, theirs in ((verdict.egress, other.egress), (verdict.ingress, other.ingress))
        if mine.allowed != theirs.allowed
    )
    return flipped or tuple(d for d in (verdict.egress, verdict.ingress) if d.reason != OUTSIDE)


def _verb(allowed: bool) -> str:
    return "allowed" if allowed else "denied"


def _explain(verdict: Verdict, other: Verdict) -> str:
    return "; ".join(str(decision) for decision in deciding(verdict, other))


def _cause_text(cause: Sequence[ResourceChange]) -> str:
    return ", ".join(map(str, cause)) if cause else "no object change (unexplained)"


# --- text -------------------------------------------------------------------------------------------------


def render_text(impact: Impact) -> str:
    lines = [f"policy change {impact.base} -> {impact.head}: {_summary(impact)}"]
    if impact.changes:
        lines.append("objects changed:")
        lines.extend(f"  {change}" for change in impact.changes)
    for names, cluster in _alike(impact.clusters):
        lines.append("")
        lines.append(f"{_cluster_title(names)}: {cluster.flows} flow(s) change")
        for cause, pairs in group_by_cause(cluster.pairs).items():
            lines.append(f"  cause: {_cause_text(cause)}")
            for pair in pairs:
                lines.append(f"    {pair.kind:<7} {pair.source} -> {pair.destination}")
                for change in pair.ports:
                    lines.append(f"      {'opened' if change.opened else 'closed'} {change.flow.service}")
                    lines.append(f"        before: {_verb(change.before.allowed)}: {_explain(change.before, change.after)}")
                    lines.append(f"        after:  {_verb(change.after.allowed)}: {_explain(change.after, change.before)}")
        lines.extend(_requirement_lines(cluster.requirements, "  "))
    return "\n".join(lines)


def _requirement_lines(requirements: Sequence[RequirementChange], indent: str) -> Iterator[str]:
    for requirement in requirements:
        if requirement.breaks or requirement.repairs:
            what = "BREAKS" if requirement.breaks else "repairs"
            yield (
                f"{indent}{what} layout requirement: {requirement.flow} must be "
                f"{_verb(requirement.required)} ({requirement.why})"
            )


def _summary(impact: Impact) -> str:
    text = f"{len(impact.changes)} object(s) changed, {impact.flows} flow(s) change verdict"
    if impact.judged_layout:
        text += f"; {len(impact.broken)} layout requirement(s) broken, {len(impact.repaired)} repaired"
    return text


def _cluster_title(names: Sequence[str]) -> str:
    return f"cluster{'s' if len(names) > 1 else ''} {', '.join(names)}"


def _alike(clusters: Sequence[ClusterImpact]) -> list[tuple[list[str], ClusterImpact]]:
    """Clusters with the same changes (same flows, verdicts and requirements) merged under one entry."""
    merged: dict[str, tuple[list[str], ClusterImpact]] = {}
    for cluster in clusters:
        key = json.dumps(_cluster_record(cluster)["groups"]) + repr(cluster.requirements)
        merged.setdefault(key, ([], cluster))[0].append(cluster.cluster)
    return list(merged.values())


# --- json -------------------------------------------------------------------------------------------------


def _decision_record(decision: Decision) -> dict[str, Any]:
    return {
        "direction": str(decision.direction),
        "allowed": decision.allowed,
        "reason": decision.reason,
        "tier": decision.tier,
        "policy": decision.policy,
        "rule": decision.rule_index,
        "action": decision.action,
        "location": str(decision.location) if decision.location else None,
        "text": str(decision),
    }


def _verdict_record(verdict: Verdict) -> dict[str, Any]:
    return {
        "allowed": verdict.allowed,
        "egress": _decision_record(verdict.egress),
        "ingress": _decision_record(verdict.ingress),
    }


def _change_record(change: ResourceChange) -> dict[str, Any]:
    return {
        "kind": change.kind,
        "name": change.name,
        "change": change.change,
        "before": str(change.before) if change.before else None,
        "after": str(change.after) if change.after else None,
    }


def _flow_record(change: PortChange) -> dict[str, Any]:
    return {
        "port": change.flow.port,
        "protocol": change.flow.protocol,
        "change": "opened" if change.opened else "closed",
        "before": _verdict_record(change.before),
        "after": _verdict_record(change.after),
    }


def _pair_record(pair: PairChange) -> dict[str, Any]:
    return {
        "source": pair.source,
        "destination": pair.destination,
        "kind": pair.kind,
        "flows": [_flow_record(change) for change in pair.ports],
    }


def _requirement_record(requirement: RequirementChange) -> dict[str, Any]:
    return {
        "source": requirement.flow.source,
        "destination": requirement.flow.destination,
        "port": requirement.flow.port,
        "protocol": requirement.flow.protocol,
        "required": "allowed" if requirement.required else "denied",
        "why": requirement.why,
        "effect": "breaks" if requirement.breaks else "repairs",
    }


def _cluster_record(cluster: ClusterImpact) -> dict[str, Any]:
    return {
        "cluster": cluster.cluster,
        "groups": [
            {"causes": [_change_record(change) for change in cause], "pairs": [_pair_record(p) for p in pairs]}
            for cause, pairs in group_by_cause(cluster.pairs).items()
        ],
        "requirements": [
            _requirement_record(r) for r in cluster.requirements if r.breaks or r.repairs
        ],
    }


def impact_record(impact: Impact) -> dict[str, Any]:
    """The JSON document: every cluster, grouped by cause; `breaks`/`repairs` count layout requirements."""
    return {
        "base": impact.base,
        "head": impact.head,
        "changes": [_change_record(change) for change in impact.changes],
        "clusters": [_cluster_record(cluster) for cluster in impact.clusters],
        "flows": impact.flows,
        "layoutJudged": impact.judged_layout,
        "breaks": len(impact.broken),
        "repairs": len(impact.repaired),
    }


def render_json(impact: Impact) -> str:
    return json.dumps(impact_record(impact), indent=2)


# --- markdown ---------------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _short(decision: Decision) -> str:
    """A decision in a table cell: the deciding policy and rule with its location, or why none decided."""
    if decision.policy is not None and decision.rule_index is not None:
        where = f" (`{decision.location}`)" if decision.location else ""
        return f"{decision.direction}: {decision.policy} rule {decision.rule_index} {decision.action}{where}"
    return str(decision)


def render_markdown(impact: Impact) -> str:
    lines = ["### Policy change impact", "", f"`{impact.base}` → `{impact.head}`: {_summary(impact)}."]
    if impact.broken:
        lines += ["", "> [!CAUTION]", "> This change breaks layout requirements that the base met:"]
        lines += [
            f"> - **{', '.join(clusters)}**: `{r.flow}` must be {_verb(r.required)} ({_cell(r.why)})"
            for r, clusters in _by_requirement(impact.broken)
        ]
    if impact.repaired:
        lines += ["", "Repaired layout requirements:"]
        lines += [
            f"- **{', '.join(clusters)}**: `{r.flow}` must be {_verb(r.required)}"
            for r, clusters in _by_requirement(impact.repaired)
        ]
    if impact.changes:
        lines += ["", "<details><summary>Objects changed</summary>", ""]
        lines += [f"- {change.reference} **{change.change}** (`{change.location}`)" for change in impact.changes]
        lines += ["", "</details>"]
    for names, cluster in _alike(impact.clusters):
        lines += ["", f"#### {_cluster_title(names)}: {cluster.flows} flow(s) change"]
        for cause, pairs in group_by_cause(cluster.pairs).items():
            lines += ["", f"**Cause:** {_cell(_cause_text(cause))}", ""]
            lines += ["| change | from | to | port | before | after |", "|---|---|---|---|---|---|"]
            for pair in pairs:
                for change in pair.ports:
                    before = "<br>".join(_cell(_short(d)) for d in deciding(change.before, change.after))
                    after = "<br>".join(_cell(_short(d)) for d in deciding(change.after, change.before))
                    mark = ":unlock: opened" if change.opened else ":lock: closed"
                    lines.append(
                        f"| {mark} ({pair.kind}) | `{pair.source}` | `{pair.destination}` | {change.flow.service} "
                        f"| {_verb(change.before.allowed)}: {before} | {_verb(change.after.allowed)}: {after} |"
                    )
    if not impact.flows:
        lines += ["", "No flow changes verdict in any cluster."]
    return "\n".join(lines) + "\n"


def _by_requirement(
    found: Sequence[tuple[str, RequirementChange]],
) -> list[tuple[RequirementChange, list[str]]]:
    """The same requirement broken (or repaired) in several clusters: one line naming them all."""
    merged: dict[RequirementChange, list[str]] = {}
    for cluster, requirement in found:
        merged.setdefault(requirement, []).append(cluster)
    return list(merged.items())


# --- csv --------------------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "cluster", "cause", "pair", "source", "destination", "port", "protocol", "change",
    "before", "before_decision", "before_location", "after", "after_decision", "after_location", "layout",
)


def render_csv(impact: Impact) -> str:
    """One row per changed flow and cluster; `layout` says `breaks`/`repairs` when the layout is judged."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for cluster in impact.clusters:
        effects = {r.flow: ("breaks" if r.breaks else "repairs" if r.repairs else "") for r in cluster.requirements}
        for cause, pairs in group_by_cause(cluster.pairs).items():
            for pair in pairs:
                for change in pair.ports:
                    before, after = deciding(change.before, change.after), deciding(change.after, change.before)
                    writer.writerow(
                        (
                            cluster.cluster, _cause_text(cause), pair.kind, pair.source, pair.destination,
                            "" if change.flow.port is None else change.flow.port, change.flow.protocol,
                            "opened" if change.opened else "closed",
                            _verb(change.before.allowed), "; ".join(map(str, before)), _locations(before),
                            _verb(change.after.allowed), "; ".join(map(str, after)), _locations(after),
                            effects.get(change.flow, ""),
                        )
                    )
    return out.getvalue()


def _locations(decisions: Sequence[Decision]) -> str:
    return "; ".join(str(d.location) for d in decisions if d.location)


RENDERERS: Mapping[str, Callable[[Impact], str]] = {
    "text": render_text,
    "json": render_json,
    "markdown": render_markdown,
    "csv": render_csv,
}
