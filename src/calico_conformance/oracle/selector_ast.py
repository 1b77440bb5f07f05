"""The parsed form of a Calico selector: node types, Calico's canonical text and a compiled evaluator.

The node types mirror `libcalico-go/lib/selector/parser/ast.go` one for one, because two things other
code depends on are defined by that file: the canonical string (`Selector.String()`, which Calico also
hashes into a selector's unique id and re-parses after its own textual rewrites) and the truth table for
absent labels (`!=` and `not in` are true when the label is missing, everything else that reads a label
is false).

Evaluation is the oracle's hot loop (millions of calls), so `compile_matcher` turns a tree into one
Python lambda expression instead of walking nodes: one call per evaluation, no per-node dispatch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

Labels: TypeAlias = Mapping[str, str]
Matcher: TypeAlias = Callable[[Labels], bool]

# Comparison operators exactly as the canonical form spells them (`startswith` reads `starts with`).
ComparisonOp: TypeAlias = Literal["==", "!=", "contains", "starts with", "ends with"]


@dataclass(frozen=True, slots=True)
class Comparison:
    """`label OP "value"` for ==, !=, contains, starts with, ends with."""

    label: str
    op: ComparisonOp
    value: str


@dataclass(frozen=True, slots=True)
class InSet:
    """`label in {...}` or `label not in {...}`; `values` is sorted and free of duplicates, as Calico keeps it."""

    label: str
    values: tuple[str, ...]
    negated: bool


@dataclass(frozen=True, slots=True)
class Has:
    """`has(label)`: true when the label is present, whatever its value (even "")."""

    label: str


@dataclass(frozen=True, slots=True)
class All:
    """`all()`: true for every label set."""


@dataclass(frozen=True, slots=True)
class Global:
    """`global()`: true for every label set; only its rewrite inside a namespaceSelector differs from all()."""


@dataclass(frozen=True, slots=True)
class Not:
    """`!operand`; the parser already collapsed runs of `!` by parity, so a Not never wraps a Not directly."""

    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    """`a && b && ...` with two or more operands, kept flat per source group like Calico's AndNode."""

    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """`a || b || ...` with two or more operands."""

    operands: tuple[Node, ...]


Node: TypeAlias = Comparison | InSet | Has | All | Global | Not | And | Or


def quote(value: str) -> str:
    """Quote a literal the way Calico's canonical form does: double quotes unless the value holds one."""
    mark = "'" if '"' in value else '"'
    return f"{mark}{value}{mark}"


def canonical_text(node: Node) -> str:
    """Calico's `Selector.String()`: groups parenthesised, `!` unspaced, sets sorted, literals re-quoted."""
    if isinstance(node, Comparison):
        return f"{node.label} {node.op} {quote(node.value)}"
    if isinstance(node, InSet):
        keyword = "not in" if node.negated else "in"
        return f"{node.label} {keyword} {{{', '.join(quote(value) for value in node.values)}}}"
    if isinstance(node, Has):
        return f"has({node.label})"
    if isinstance(node, All):
        return "all()"
    if isinstance(node, Global):
        return "global()"
    if isinstance(node, Not):
        return f"!{canonical_text(node.operand)}"
    joiner = " && " if isinstance(node, And) else " || "
    return f"({joiner.join(canonical_text(operand) for operand in node.operands)})"


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents before children."""
    yield node
    if isinstance(node, Not):
        yield from walk(node.operand)
    elif isinstance(node, And | Or):
        for operand in node.operands:
            yield from walk(operand)


def label_keys(node: Node) -> frozenset[str]:
    """Every label key the expression reads."""
    return frozenset(n.label for n in walk(node) if isinstance(n, Comparison | InSet | Has))


def with_prefix(node: Node, prefix: str) -> Node:
    """The same tree with `prefix` put before every label key: Calico's `PrefixVisitor`."""
    if isinstance(node, Comparison):
        return Comparison(prefix + node.label, node.op, node.value)
    if isinstance(node, InSet):
        return InSet(prefix + node.label, node.values, node.negated)
    if isinstance(node, Has):
        return Has(prefix + node.label)
    if isinstance(node, Not):
        return Not(with_prefix(node.operand, prefix))
    if isinstance(node, And):
        return And(tuple(with_prefix(operand, prefix) for operand in node.operands))
    if isinstance(node, Or):
        return Or(tuple(with_prefix(operand, prefix) for operand in node.operands))
    return node  # all() and global() read no label


class _SourceWriter:
    """Builds the Python expression for a tree; sets become named constants of the lambda's globals."""

    def __init__(self) -> None:
        self.constants: dict[str, object] = {}

    def expression(self, node: Node) -> str:
        if isinstance(node, Comparison):
            return self._comparison(node)
        if isinstance(node, InSet):
            name = f"_set{len(self.constants)}"
            self.constants[name] = frozenset(node.values)
            # labels.get() gives None for an absent label, which is in no set: `in` is false, `not in` true.
            return f"(labels.get({node.label!r}) {'not in' if node.negated else 'in'} {name})"
        if isinstance(node, Has):
            return f"({node.label!r} in labels)"
        if isinstance(node, All | Global):
            return "True"
        if isinstance(node, Not):
            return f"not {self.expression(node.operand)}"  # the operand is parenthesised already
        joiner = " and " if isinstance(node, And) else " or "
        return f"({joiner.join(self.expression(operand) for operand in node.operands)})"

    @staticmethod
    def _comparison(node: Comparison) -> str:
        label, value = repr(node.label), repr(node.value)
        if node.op == "==":
            return f"(labels.get({label}) == {value})"  # None (absent) equals no string: false
        if node.op == "!=":
            return f"(labels.get({label}) != {value})"  # None (absent) differs from every string: true
        if node.value == "":
            # Every present value contains, starts and ends with "", an absent label does not.
            return f"({label} in labels)"
        # With a non-empty needle, the "" stand-in for an absent label can never match: false, as Calico.
        method = {"contains": "__contains__", "starts with": "startswith", "ends with": "endswith"}[node.op]
        return f"(labels.get({label}, '').{method}({value}))"


def compile_matcher(node: Node) -> Matcher:
    """One Python function equivalent to evaluating `node` with Calico's `Evaluate`.

    Label keys and values enter the generated source only through `repr()`, so any selector text yields
    well-formed Python and never executes anything but the comparisons written here.
    """
    writer = _SourceWriter()
    body = writer.expression(node)
    namespace: dict[str, object] = {"__builtins__": {}, **writer.constants}
    matcher: Matcher = eval(f"lambda labels: {body}", namespace)  # the source is built from repr() only
    return matcher
