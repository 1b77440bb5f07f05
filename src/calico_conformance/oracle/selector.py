"""Calico label selectors as the oracle uses them: parse once, match millions of times.

Every selector in a policy (endpoint selectors, namespaceSelectors, serviceAccount selectors, the
policy's own selector) goes through `parse_selector`, which accepts exactly the language of
`libcalico-go/lib/selector` (grammar and absent-label truth table: calico-semantics.md §3). A `Selector`
compares equal to another when Calico's canonical strings are equal, which is also how Calico itself
de-duplicates selectors (its unique id is a hash of that string).

The scoping rewrites of calico-semantics.md §2.2 live here too, because Calico performs them on the
selector *text*: `namespace_scope` reproduces them byte for byte, quirks included.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NoReturn

from calico_conformance.oracle.selector_ast import (
    All,
    And,
    Global,
    Matcher,
    Node,
    canonical_text,
    compile_matcher,
    label_keys,
    walk,
    with_prefix,
)
from calico_conformance.oracle.selector_parser import LABEL_CHARACTERS, SelectorError, parse_tree

__all__ = [
    "ALL",
    "NAMESPACE_LABEL",
    "NAMESPACE_PREFIX",
    "ORCHESTRATOR_LABEL",
    "SERVICE_ACCOUNT_LABEL",
    "SERVICE_ACCOUNT_PREFIX",
    "Selector",
    "SelectorError",
    "and_",
    "namespace_scope",
    "parse_selector",
    "rewrite_text",
]

# Pseudo-labels Calico puts on every workload endpoint (calico-semantics.md §2.3). They are plain keys
# to the selector language; the oracle writes them into each endpoint's label map.
NAMESPACE_LABEL = "projectcalico.org/namespace"
ORCHESTRATOR_LABEL = "projectcalico.org/orchestrator"
SERVICE_ACCOUNT_LABEL = "projectcalico.org/serviceaccount"
# Inherited namespace / service-account labels appear on endpoints under these prefixes.
NAMESPACE_PREFIX = "pcns."
SERVICE_ACCOUNT_PREFIX = "pcsa."

# The size of the parse cache: a policy set has far fewer distinct selector texts than this.
PARSE_CACHE_SIZE = 65_536


class Selector:
    """A parsed Calico selector: immutable, hashable, equal to another when the canonical forms are equal."""

    __slots__ = ("_canonical", "_keys", "_match", "_root", "source")

    source: str
    _root: Node
    _canonical: str
    _keys: frozenset[str]
    _match: Matcher

    def __init__(self, source: str, root: Node) -> None:
        """Wrap an already parsed tree; use `parse_selector` to get one from text."""
        for name, value in (
            ("source", source),
            ("_root", root),
            ("_canonical", canonical_text(root)),
            ("_keys", label_keys(root)),
            ("_match", compile_matcher(root)),
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError(f"Selector is immutable (tried to set {name!r})")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"Selector is immutable (tried to delete {name!r})")

    def __reduce__(self) -> tuple[type[Selector], tuple[str, Node]]:
        # The compiled matcher cannot be pickled or copied; rebuilding from the tree recompiles it.
        return (Selector, (self.source, self._root))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an object with these labels is selected (Calico's `Evaluate`)."""
        return self._match(labels)

    @property
    def matcher(self) -> Matcher:
        """`matches` as a bare function, one call cheaper, for the oracle's innermost loops."""
        return self._match

    def label_keys(self) -> frozenset[str]:
        """Every label key the expression reads: objects equal on these keys are never told apart."""
        return self._keys

    def prefixed(self, prefix: str) -> Selector:
        """Every label key with `prefix` in front (Calico's PrefixVisitor), e.g. `pcns.` for namespaces."""
        if not set(prefix) <= LABEL_CHARACTERS:
            raise ValueError(f"label prefix {prefix!r} holds characters a label key cannot contain")
        return _from_tree(with_prefix(self._root, prefix))

    @property
    def is_all(self) -> bool:
        """The expression is exactly `all()` (which is also what empty or blank text means)."""
        return isinstance(self._root, All)

    def uses_global(self) -> bool:
        """`global()` appears anywhere in the expression (a string value spelling it does not count)."""
        return any(isinstance(node, Global) for node in walk(self._root))

    def unique_id(self) -> str:
        """Calico's `UniqueID()`: "s:" + unpadded URL-safe base64 of SHA-224 over "s:" + canonical form."""
        digest = hashlib.sha224(f"s:{self._canonical}".encode()).digest()
        return "s:" + base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def __str__(self) -> str:
        """Calico's canonical form (`Selector.String()`)."""
        return self._canonical

    def __repr__(self) -> str:
        return f"Selector({self._canonical!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Selector) and other._canonical == self._canonical

    def __hash__(self) -> int:
        return hash(self._canonical)


def _from_tree(root: Node) -> Selector:
    """A selector built by a transformation: its source text is its canonical form."""
    return Selector(canonical_text(root), root)


@lru_cache(maxsize=PARSE_CACHE_SIZE)
def parse_selector(text: str) -> Selector:
    """Parse Calico selector text; "" and blanks mean all(). Raises SelectorError (a ValueError)."""
    return Selector(text, parse_tree(text))


def and_(*selectors: Selector) -> Selector:
    """The conjunction, shaped as Calico shapes `(a) && (b)`: one `&&` group, operands kept as they are.

    No selectors gives all(); one gives itself.
    """
    if not selectors:
        return ALL
    if len(selectors) == 1:
        return selectors[0]
    return _from_tree(And(tuple(selector._root for selector in selectors)))


def rewrite_text(selector: Selector, old: str, new: str) -> Selector:
    """Calico's `strings.Replace(canonical, old, new, -1)`, re-parsed: the textual rewrite it applies.

    Being textual, it also rewrites `old` inside quoted values; that is what Calico does, so we do too.
    """
    return parse_selector(str(selector).replace(old, new))


def namespace_scope(selector: Selector) -> Selector:
    """What a rule's `namespaceSelector` becomes in Calico (calico-semantics.md §2.2, `getEndpointSelector`).

    Exactly: (1) every label key gets the `pcns.` prefix, so the selector reads the namespace labels each
    endpoint inherits; (2) in the canonical text, every `all()` is replaced by
    `has(projectcalico.org/namespace)` (any namespaced endpoint) and then every `global()` by
    `!has(projectcalico.org/namespace)` (only non-namespaced objects: GlobalNetworkSets, host endpoints);
    (3) the result is parsed again. Step 2 is a plain text replacement, as in Calico, so a quoted value
    containing `all()` or `global()` is rewritten as well. The rule's own `selector`, the policy namespace
    and the `(nsSel) && (sel)` combination are the caller's business (use `and_`).
    """
    text = str(selector.prefixed(NAMESPACE_PREFIX))
    text = text.replace("all()", f"has({NAMESPACE_LABEL})").replace("global()", f"!has({NAMESPACE_LABEL})")
    return parse_selector(text)


ALL: Selector = parse_selector("all()")
