"""Bounds on what one YAML document may expand to: nesting depth and what aliases repeat.

`yamlsrc` composes with this composer on both of PyYAML's parsers (its own and libyaml's), so a
document nested more than `MAX_NESTING` levels deep is refused at the line where the bound is crossed,
with the same message whichever parser is installed and whatever the interpreter's recursion limit.
Composition pulls events from the parser one at a time, so the bound is crossed before either parser
reaches a limit of its own (libyaml 0.2.5 stops at 1000 flow levels; PyYAML's composer at the
recursion limit). The alias bound stops a "billion laughs" document: it reads in a millisecond, but
every later walk of the tree it expands to would take hours.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from yaml.composer import Composer

from calico_conformance.oracle.errors import LocatedError, Location

# The deepest a manifest may nest. A Kubernetes or Calico object nests about 8 levels (spec.ingress[0]
# .source.namespaceSelector ...), a CRD's schema about 40; 100 leaves room and keeps composition and
# construction (about 5 Python frames a level) far inside Python's default recursion limit of 1000.
MAX_NESTING = 100
# How many nodes aliases may repeat in one document, in all: no manifest uses aliases for more than a
# repeated label set or port list.
MAX_ALIASED_NODES = 100_000


class BoundedComposer(Composer):
    """PyYAML's composer with a bound on nesting depth and on what aliases repeat.

    Composition pulls events from the parser one at a time, so the bound is crossed before either
    parser reaches a limit of its own.
    """

    source: str
    _depth: int
    _aliased_nodes: int
    _anchor_sizes: dict[str, int]
    _nodes: int
    peek_event: Callable[[], yaml.Event]  # the parser's, from the other base

    def _reset_bounds(self) -> None:
        self._depth = 0
        self._aliased_nodes = 0
        self._anchor_sizes = {}
        self._nodes = 0

    def compose_document(self) -> yaml.Node | None:
        self._reset_bounds()
        return super().compose_document()

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
        if isinstance(event, yaml.AliasEvent):
            repeated = self._anchor_sizes.get(event.anchor or "", 1)
            self._aliased_nodes += repeated
            self._nodes += repeated
            if self._aliased_nodes > MAX_ALIASED_NODES:
                raise LocatedError(
                    Location(self.source, line),
                    f"invalid YAML: aliases repeat more than {MAX_ALIASED_NODES} nodes in this document",
                )
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_NESTING:
            raise LocatedError(
                Location(self.source, line), f"invalid YAML: nested more than {MAX_NESTING} levels deep"
            )
        before = self._nodes
        self._nodes += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._anchor_sizes[anchor] = self._nodes - before
        return node
