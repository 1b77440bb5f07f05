"""Property tests: random selectors, written in every surface form Calico accepts, against a reference.

The reference below is a deliberately naive tree walker that restates calico-semantics.md §3's truth
table; the text is produced from the same random tree with random blanks, quote styles, glued operator
spellings and redundant parentheses. Agreement on random label maps shows that the parser reads what
was written and that the compiled evaluator computes what Calico computes; the algebraic laws
(double negation, De Morgan, `!=` as negated `==`) hold for Calico and so must hold here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from calico_conformance.oracle.selector import (
    NAMESPACE_LABEL,
    Selector,
    SelectorError,
    and_,
    namespace_scope,
    parse_selector,
)

KEYS = ["a", "b", "in", "has", "not", "contains", "pcns.team", "app.kubernetes.io/name"]
# Values hold at most one kind of quote, since Calico strings cannot hold both.
VALUES = ["", "x", "xy", "yx", "'", '"', "a b", "x'y"]
COMPARISONS = ["==", "!=", "contains", "starts with", "ends with"]
SPELLINGS = {
    "==": ["=="],
    "!=": ["!="],
    "contains": ["contains"],
    "starts with": ["starts with", "startswith", "starts  with", "starts\twith"],
    "ends with": ["ends with", "endswith", "ends \t with"],
    "in": ["in"],
    "not in": ["not in", "notin", "not\tin"],
}

blank = st.sampled_from([" ", "  ", "\t", " \t"])  # where Calico needs a separator
maybe_blank = st.sampled_from(["", " ", "\t"])  # where it does not
labels_strategy = st.dictionaries(st.sampled_from([*KEYS, "unrelated"]), st.sampled_from(VALUES), max_size=6)

Tree = tuple[Any, ...]


@st.composite
def literal(draw: st.DrawFn, value: str) -> str:
    if '"' in value:
        return f"'{value}'"
    if "'" in value:
        return f'"{value}"'
    mark = draw(st.sampled_from(["'", '"']))
    return f"{mark}{value}{mark}"


def plainly_quoted(value: str) -> str:
    return f"'{value}'" if '"' in value else f'"{value}"'


@st.composite
def leaf(draw: st.DrawFn) -> tuple[Tree, str]:
    key, kind = (
        draw(st.sampled_from(KEYS)),
        draw(st.sampled_from(["comparison", "set", "has", "all", "global"])),
    )
    if kind == "comparison":
        op, value = draw(st.sampled_from(COMPARISONS)), draw(st.sampled_from(VALUES))
        spelling = draw(st.sampled_from(SPELLINGS[op]))
        # A word operator must be separated from the label; == and != may be glued on.
        before = draw(blank if spelling[0].isalpha() else maybe_blank)
        return (
            "comparison",
            key,
            op,
            value,
        ), f"{key}{before}{spelling}{draw(maybe_blank)}{draw(literal(value))}"
    if kind == "set":
        negated = draw(st.booleans())
        values = draw(st.lists(st.sampled_from(VALUES), max_size=4))
        items = "," + draw(maybe_blank)
        body = items.join(draw(literal(value)) for value in values)
        trailing = "," if values and draw(st.booleans()) else ""
        spelling = draw(st.sampled_from(SPELLINGS["not in" if negated else "in"]))
        text = f"{key}{draw(blank)}{spelling}{draw(maybe_blank)}{{{draw(maybe_blank)}{body}{trailing}}}"
        return ("set", key, frozenset(values), negated), text
    if kind == "has":
        return ("has", key), f"has({draw(maybe_blank)}{key}{draw(maybe_blank)})"
    return (kind,), f"{kind}({draw(maybe_blank)})"


def expression(depth: int) -> st.SearchStrategy[tuple[Tree, str]]:
    if depth == 0:
        return leaf()
    return st.one_of(leaf(), negation(depth), group(depth, "and"), group(depth, "or"))


@st.composite
def negation(draw: st.DrawFn, depth: int) -> tuple[Tree, str]:
    tree, text = draw(expression(depth - 1))
    return ("not", tree), f"!{draw(maybe_blank)}({draw(maybe_blank)}{text}{draw(maybe_blank)})"


@st.composite
def group(draw: st.DrawFn, depth: int, kind: str) -> tuple[Tree, str]:
    operands = draw(st.lists(expression(depth - 1), min_size=2, max_size=3))
    joiner = draw(maybe_blank) + ("&&" if kind == "and" else "||") + draw(maybe_blank)
    text = joiner.join(f"({operand_text})" for _, operand_text in operands)
    return (kind, tuple(tree for tree, _ in operands)), text


selectors = expression(3)


def reference(tree: Tree, labels: Mapping[str, str]) -> bool:
    """calico-semantics.md §3, restated as plainly as possible."""
    kind = tree[0]
    if kind in ("all", "global"):
        return True
    if kind == "has":
        return tree[1] in labels
    if kind == "not":
        return not reference(tree[1], labels)
    if kind == "and":
        return all(reference(operand, labels) for operand in tree[1])
    if kind == "or":
        return any(reference(operand, labels) for operand in tree[1])
    key = tree[1]
    if kind == "set":
        _, _, values, negated = tree
        if key not in labels:
            return bool(negated)  # `in` is false and `not in` true for an absent label
        return (labels[key] in values) != negated
    _, _, op, value = tree
    if key not in labels:
        return op == "!="  # only != holds for an absent label
    present = labels[key]
    return {
        "==": present == value,
        "!=": present != value,
        "contains": value in present,
        "starts with": present.startswith(value),
        "ends with": present.endswith(value),
    }[op]


def keys_of(tree: Tree) -> set[str]:
    if tree[0] in ("comparison", "set", "has"):
        return {tree[1]}
    if tree[0] == "not":
        return keys_of(tree[1])
    if tree[0] in ("and", "or"):
        return set().union(*(keys_of(operand) for operand in tree[1]))
    return set()


@settings(max_examples=400)
@given(selectors, labels_strategy)
def test_parsed_selector_agrees_with_the_reference(
    selector: tuple[Tree, str], labels: dict[str, str]
) -> None:
    tree, text = selector
    assert parse_selector(text).matches(labels) is reference(tree, labels)


@given(selectors)
def test_label_keys_are_the_keys_written(selector: tuple[Tree, str]) -> None:
    tree, text = selector
    assert parse_selector(text).label_keys() == keys_of(tree)


def double_negations(tree: Tree) -> bool:
    """Whether a `!` applies directly to another `!` (written `!(!(x))`, which parentheses keep apart)."""
    if tree[0] == "not":
        return tree[1][0] == "not" or double_negations(tree[1])
    if tree[0] in ("and", "or"):
        return any(double_negations(operand) for operand in tree[1])
    return False


@given(selectors, labels_strategy)
def test_canonical_form_reparses_to_an_equal_selector(
    selector: tuple[Tree, str], labels: dict[str, str]
) -> None:
    tree, text = selector
    parsed = parse_selector(text)
    reparsed = parse_selector(str(parsed))
    assert reparsed.matches(labels) is parsed.matches(labels)
    # Calico prints `!(!(x))` as `!!x`, which its parser reads back as `x` (runs of `!` collapse), so its
    # canonical form is a fixed point only after one round trip. We keep that: unique ids depend on it.
    assert parse_selector(str(reparsed)) == reparsed
    assert str(parse_selector(str(reparsed))) == str(reparsed)
    if not double_negations(tree):
        assert reparsed == parsed


@given(selectors)
def test_double_negation_is_the_same_selector(selector: tuple[Tree, str]) -> None:
    text = selector[1]
    assert parse_selector(f"!!({text})") == parse_selector(text)
    assert parse_selector(f"!(!({text}))").matches({}) is parse_selector(text).matches({})


@given(selectors, selectors, labels_strategy)
def test_de_morgan(first: tuple[Tree, str], second: tuple[Tree, str], labels: dict[str, str]) -> None:
    a, b = first[1], second[1]
    assert parse_selector(f"!(({a}) && ({b}))").matches(labels) is parse_selector(
        f"!({a}) || !({b})"
    ).matches(labels)
    assert parse_selector(f"!(({a}) || ({b}))").matches(labels) is parse_selector(
        f"!({a}) && !({b})"
    ).matches(labels)


@given(st.sampled_from(KEYS), st.sampled_from(VALUES), st.lists(st.sampled_from(VALUES)), labels_strategy)
def test_negative_operators_are_negated_positive_ones(
    key: str, value: str, values: list[str], labels: dict[str, str]
) -> None:
    quoted = plainly_quoted(value)
    items = ", ".join(plainly_quoted(item) for item in values)
    assert parse_selector(f"{key} != {quoted}").matches(labels) is parse_selector(
        f"!({key} == {quoted})"
    ).matches(labels)
    assert parse_selector(f"{key} not in {{{items}}}").matches(labels) is parse_selector(
        f"!({key} in {{{items}}})"
    ).matches(labels)


@given(selectors, labels_strategy)
def test_prefixed_reads_the_prefixed_labels(selector: tuple[Tree, str], labels: dict[str, str]) -> None:
    parsed = parse_selector(selector[1])
    prefixed = parsed.prefixed("pcsa.")
    assert prefixed.matches({f"pcsa.{key}": value for key, value in labels.items()}) is parsed.matches(labels)
    assert prefixed.label_keys() == {f"pcsa.{key}" for key in parsed.label_keys()}
    assert parse_selector(str(prefixed)).matches({f"pcsa.{key}": value for key, value in labels.items()}) is (
        parsed.matches(labels)
    )


@given(selectors, labels_strategy)
def test_labels_outside_label_keys_change_nothing(selector: tuple[Tree, str], labels: dict[str, str]) -> None:
    parsed = parse_selector(selector[1])
    relevant = {key: value for key, value in labels.items() if key in parsed.label_keys()}
    assert parsed.matches(relevant) is parsed.matches(labels)


@given(selectors, selectors, labels_strategy)
def test_and_is_conjunction(
    first: tuple[Tree, str], second: tuple[Tree, str], labels: dict[str, str]
) -> None:
    a, b = parse_selector(first[1]), parse_selector(second[1])
    combined = and_(a, b)
    assert combined.matches(labels) is (a.matches(labels) and b.matches(labels))
    assert parse_selector(str(combined)).matches(labels) is combined.matches(labels)


def namespace_scoped(tree: Tree) -> Tree:
    """calico-semantics.md §2.2 on the reference tree: keys get `pcns.`, all()/global() test the namespace."""
    kind = tree[0]
    if kind == "all":
        return ("has", NAMESPACE_LABEL)
    if kind == "global":
        return ("not", ("has", NAMESPACE_LABEL))
    if kind == "not":
        return ("not", namespace_scoped(tree[1]))
    if kind in ("and", "or"):
        return (kind, tuple(namespace_scoped(operand) for operand in tree[1]))
    return (kind, f"pcns.{tree[1]}", *tree[2:])


@given(selectors, labels_strategy, st.booleans())
def test_namespace_scope_prefixes_and_rewrites_all_and_global(
    selector: tuple[Tree, str], labels: dict[str, str], namespaced: bool
) -> None:
    tree, text = selector
    endpoint = {f"pcns.{key}": value for key, value in labels.items()}
    if namespaced:
        endpoint[NAMESPACE_LABEL] = "customer-a"
    scoped = namespace_scope(parse_selector(text))
    assert scoped.matches(endpoint) is reference(namespace_scoped(tree), endpoint)


SELECTOR_ALPHABET = st.text(alphabet=list("ab !=&|(){},'\"\t\nhasinotcluewr-./_:%"), max_size=40)


def parsed_or_error(text: str) -> Selector | SelectorError:
    try:
        return parse_selector(text)
    except SelectorError as invalid:
        return invalid


@settings(max_examples=1000)
@given(SELECTOR_ALPHABET)
def test_any_text_parses_or_fails_with_a_position(text: str) -> None:
    outcome = parsed_or_error(text)
    if isinstance(outcome, SelectorError):
        assert 0 <= outcome.position <= len(text)
        assert outcome.selector == text
    else:
        assert parse_selector(str(outcome)).matches({}) is outcome.matches({})
