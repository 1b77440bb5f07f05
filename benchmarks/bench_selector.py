"""How fast selectors parse and match: the oracle evaluates every selector against every endpoint.

Run with `make bench` (or directly). Prints the figures, merges them under "selector" into
reports/bench.json, and exits 1 when matching falls below `MIN_MATCHES_PER_SECOND`.
"""

from __future__ import annotations

import sys
import timeit

from calico_conformance.oracle.selector import namespace_scope, parse_selector
from figures import record

# A floor well under what a 2-core CI runner measures (several million per second), so only a real
# regression (say, falling back to walking the tree per call) trips it.
MIN_MATCHES_PER_SECOND = 500_000

ENDPOINT = {
    "app": "web",
    "tier": "frontend",
    "version": "v2",
    "projectcalico.org/namespace": "customer-a",
    "projectcalico.org/orchestrator": "k8s",
    "projectcalico.org/serviceaccount": "default",
    "pcns.team": "a",
    "pcns.kubernetes.io/metadata.name": "customer-a",
    "pcns.projectcalico.org/name": "customer-a",
    "pcsa.projectcalico.org/name": "default",
}

SELECTORS = {
    "equality": "app == 'web'",
    "namespaced": "(projectcalico.org/namespace == 'customer-a') && (app == 'web' && tier in {'frontend', 'api'})",
    "negative": "!has(role) && version not in {'v1'} && app != 'db'",
    "string-ops": "app starts with 'w' || tier ends with 'end' || version contains '2'",
}


def per_second(statement: str, namespace: dict[str, object], number: int) -> float:
    best = min(timeit.repeat(statement, globals=namespace, number=number, repeat=5))
    return number / best


def main() -> int:
    figures: dict[str, float] = {}
    for name, text in SELECTORS.items():
        selector = parse_selector(text)
        namespace = {"selector": selector, "matcher": selector.matcher, "labels": ENDPOINT}
        figures[f"matches_per_second.{name}"] = per_second("selector.matches(labels)", namespace, 200_000)
        figures[f"matcher_calls_per_second.{name}"] = per_second("matcher(labels)", namespace, 200_000)
    uncached_parse = parse_selector.__wrapped__
    namespace = {"parse": uncached_parse, "text": SELECTORS["namespaced"]}
    figures["uncached_parses_per_second.namespaced"] = per_second("parse(text)", namespace, 2_000)
    namespace = {"scope": namespace_scope, "selector": parse_selector("team == 'a' && env != 'prod'")}
    figures["namespace_scopes_per_second"] = per_second("scope(selector)", namespace, 2_000)

    for name, value in figures.items():
        print(f"{name:48} {value:>14,.0f}")
    record("selector", {name: round(value) for name, value in figures.items()})

    slowest = min(value for name, value in figures.items() if name.startswith("matches_per_second."))
    if slowest < MIN_MATCHES_PER_SECOND:
        print(
            f"FAIL: slowest selector matches {slowest:,.0f}/s, below the floor {MIN_MATCHES_PER_SECOND:,}/s"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
