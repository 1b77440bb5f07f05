"""Calico's selector grammar: text to `selector_ast` nodes, rejecting exactly what Calico rejects.

The tokenizer follows `libcalico-go/lib/selector/tokenizer/tokenizer.go` (v3.30 rewrite) and the parser
`parser/parser.go`, so that a policy the oracle accepts is a policy Calico accepts, and the reverse. What
Calico gets from its structure is kept on purpose:

* operator words (`contains`, `in`, `not in`, `starts with`, `ends with`, and the spaced-out or glued
  forms `startswith`, `endswith`, `notin`) are recognised only right after a label, which is why keywords
  are legal label names (`contains contains "contains"`);
* only space and tab separate tokens; a newline outside a quoted string is an invalid character;
* strings have no escapes and run to the next identical quote;
* runs of `!` collapse by parity, and a single group in parentheses adds no node.

Calico's errors carry no position; ours do (`SelectorError.position`), because a selector sits inside a
YAML file and the user needs to know where in it to look.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto

from calico_conformance.oracle.selector_ast import (
    All,
    And,
    Comparison,
    ComparisonOp,
    Global,
    Has,
    InSet,
    Node,
    Not,
    Or,
)

WHITESPACE = " \t"
LABEL_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-")
# `LabelKeyMatcher = [a-zA-Z0-9_./-]{1,512}` upstream; v3.27's regex tokenizer rejects longer keys, v3.30's
# hand-written one does not. We take the stricter reading so nothing passes here that some 3.27+ rejects.
MAX_LABEL_LENGTH = 512
# Calico's recursive parser has no depth limit; ours stops here so that parsing and the compiled
# evaluator stay far inside Python's recursion and parser limits. Real selectors nest a few levels.
MAX_NESTING = 100


class SelectorError(ValueError):
    """A selector Calico would reject; `position` is the 0-based character offset where parsing failed."""

    def __init__(self, selector: str, position: int, why: str) -> None:
        self.selector = selector
        self.position = position
        self.why = why
        super().__init__(f"invalid selector {selector!r} at position {position}: {why}")


class Kind(Enum):
    """Token kinds; operator kinds only ever follow a label."""

    LABEL = auto()
    STRING = auto()
    LBRACE = auto()
    RBRACE = auto()
    COMMA = auto()
    LPAREN = auto()
    RPAREN = auto()
    AND = auto()
    OR = auto()
    NOT = auto()
    OPERATOR = auto()  # value: "==", "!=", "contains", "starts with", "ends with", "in", "not in"
    HAS = auto()  # value: the label inside has( )
    ALL = auto()
    GLOBAL = auto()
    EOF = auto()


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    value: str
    position: int


_PUNCTUATION = {"(": Kind.LPAREN, ")": Kind.RPAREN, "{": Kind.LBRACE, "}": Kind.RBRACE, ",": Kind.COMMA}
_DOUBLED = {"==": Kind.OPERATOR, "!=": Kind.OPERATOR, "&&": Kind.AND, "||": Kind.OR}
# After a label: (first word, second word after optional blanks or "", operator). No first word is a
# prefix of another, so the order of the table does not matter.
_WORD_OPERATORS = (
    ("contains", "", "contains"),
    ("starts", "with", "starts with"),
    ("ends", "with", "ends with"),
    ("not", "in", "not in"),
    ("in", "", "in"),
)
_FUNCTIONS = (("all(", Kind.ALL), ("global(", Kind.GLOBAL))
_COMPARISONS: dict[str, ComparisonOp] = {
    "==": "==",
    "!=": "!=",
    "contains": "contains",
    "starts with": "starts with",
    "ends with": "ends with",
}


class _Tokenizer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0
        self.tokens: list[Token] = []

    def fail(self, position: int, why: str) -> SelectorError:
        return SelectorError(self.text, position, why)

    def skip_blanks(self) -> None:
        while self.at < len(self.text) and self.text[self.at] in WHITESPACE:
            self.at += 1

    def label_at(self, start: int) -> str:
        end = start
        while end < len(self.text) and self.text[end] in LABEL_CHARACTERS:
            end += 1
        if end - start > MAX_LABEL_LENGTH:
            raise self.fail(start, f"label key longer than {MAX_LABEL_LENGTH} characters")
        return self.text[start:end]

    def run(self) -> list[Token]:
        text = self.text
        while True:
            self.skip_blanks()
            start = self.at
            if start == len(text):
                self.tokens.append(Token(Kind.EOF, "", start))
                return self.tokens
            char, pair = text[start], text[start : start + 2]
            if char in _PUNCTUATION:
                self.emit(_PUNCTUATION[char], char, 1)
            elif pair in _DOUBLED:
                self.emit(_DOUBLED[pair], pair, 2)
            elif char == "!":
                self.emit(Kind.NOT, "!", 1)
            elif char in "\"'":
                end = text.find(char, start + 1)
                if end == -1:
                    raise self.fail(start, "unterminated string")
                self.tokens.append(Token(Kind.STRING, text[start + 1 : end], start))
                self.at = end + 1
            elif char in "=&|":
                raise self.fail(start, f"expected {char * 2!r}, found a single {char!r}")
            elif self.tokens and self.tokens[-1].kind is Kind.LABEL:
                self.word_operator()
            elif text.startswith("has(", start):
                self.has()
            elif not self.function():
                label = self.label_at(start)
                if not label:
                    raise self.fail(start, f"unexpected character {char!r}")
                self.emit(Kind.LABEL, label, len(label))

    def emit(self, kind: Kind, value: str, length: int) -> None:
        self.tokens.append(Token(kind, value, self.at))
        self.at += length

    def word_operator(self) -> None:
        start, text = self.at, self.text
        for first, second, operator in _WORD_OPERATORS:
            if not text.startswith(first, start):
                continue
            self.at = start + len(first)
            if second:
                self.skip_blanks()
                if not text.startswith(second, self.at):
                    break
                self.at += len(second)
            # Upstream the word-glued rest becomes a label the parser then rejects; saying so here is clearer.
            if self.at < len(text) and text[self.at] in LABEL_CHARACTERS:
                break
            self.tokens.append(Token(Kind.OPERATOR, operator, start))
            return
        label = self.tokens[-1].value
        raise self.fail(start, f"expected an operator after label {label!r}")

    def has(self) -> None:
        start = self.at
        self.at += len("has(")
        self.skip_blanks()
        label = self.label_at(self.at)
        if not label:
            raise self.fail(self.at, "expected a label name in has( )")
        self.at += len(label)
        self.skip_blanks()
        if not self.text.startswith(")", self.at):
            raise self.fail(self.at, "expected ')' to close has(")
        self.at += 1
        self.tokens.append(Token(Kind.HAS, label, start))

    def function(self) -> bool:
        for spelling, kind in _FUNCTIONS:
            if self.text.startswith(spelling, self.at):
                start = self.at
                self.at += len(spelling)
                self.skip_blanks()
                if not self.text.startswith(")", self.at):
                    raise self.fail(self.at, f"expected ')' to close {spelling}")
                self.at += 1
                self.tokens.append(Token(kind, spelling[:-1], start))
                return True
        return False


def tokenize(text: str) -> list[Token]:
    """The tokens of `text`, ending with an EOF token at `len(text)`; raises SelectorError."""
    return _Tokenizer(text).run()


class _Parser:
    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.next = 0
        self.depth = 0

    def fail(self, token: Token, why: str) -> SelectorError:
        found = "the end of the selector" if token.kind is Kind.EOF else describe(token)
        return SelectorError(self.text, token.position, f"{why}, found {found}")

    def peek(self) -> Token:
        return self.tokens[self.next]

    def take(self) -> Token:
        token = self.tokens[self.next]
        if token.kind is not Kind.EOF:
            self.next += 1
        return token

    def root(self) -> Node:
        if self.peek().kind is Kind.EOF:
            return All()  # "" and blanks select everything
        node = self.or_expression()
        if self.peek().kind is not Kind.EOF:
            raise self.fail(self.peek(), "expected '&&', '||' or the end of the selector")
        return node

    def or_expression(self) -> Node:
        operands = [self.and_expression()]
        while self.peek().kind is Kind.OR:
            self.take()
            operands.append(self.and_expression())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expression(self) -> Node:
        operands = [self.operation()]
        while self.peek().kind is Kind.AND:
            self.take()
            operands.append(self.operation())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def operation(self) -> Node:
        negated = False
        while self.peek().kind is Kind.NOT:
            self.take()
            negated = not negated
        node = self.operand()
        return Not(node) if negated else node

    def operand(self) -> Node:
        token = self.take()
        if token.kind is Kind.HAS:
            return Has(token.value)
        if token.kind is Kind.ALL:
            return All()
        if token.kind is Kind.GLOBAL:
            return Global()
        if token.kind is Kind.LABEL:
            return self.label_operation(token.value)
        if token.kind is Kind.LPAREN:
            return self.group(token)
        raise self.fail(token, "expected a label, has(), all(), global(), '!' or '('")

    def group(self, opening: Token) -> Node:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise SelectorError(self.text, opening.position, f"parentheses nested deeper than {MAX_NESTING}")
        node = self.or_expression()
        if self.peek().kind is not Kind.RPAREN:
            raise self.fail(self.peek(), f"expected ')' to close the '(' at position {opening.position}")
        self.take()
        self.depth -= 1
        return node

    def label_operation(self, label: str) -> Node:
        operator = self.take()
        if operator.kind is not Kind.OPERATOR:
            raise self.fail(operator, f"expected an operator after label {label!r}")
        if operator.value in ("in", "not in"):
            return InSet(label, self.set_literal(), negated=operator.value == "not in")
        literal = self.take()
        if literal.kind is not Kind.STRING:
            raise self.fail(literal, f"expected a quoted string after {operator.value!r}")
        return Comparison(label, _COMPARISONS[operator.value], literal.value)

    def set_literal(self) -> tuple[str, ...]:
        opening = self.take()
        if opening.kind is not Kind.LBRACE:
            raise self.fail(opening, "expected a set literal '{...}'")
        values: set[str] = set()
        # Calico's loop: string (',' string)* with one trailing ',' allowed, then '}'.
        while self.peek().kind is Kind.STRING:
            values.add(self.take().value)
            if self.peek().kind is not Kind.COMMA:
                break
            self.take()
        if self.peek().kind is not Kind.RBRACE:
            raise self.fail(self.peek(), "expected a quoted string, ',' or '}' in the set literal")
        self.take()
        return tuple(sorted(values))


def describe(token: Token) -> str:
    """A token as the user wrote it, for error messages."""
    if token.kind is Kind.STRING:
        return f"string {token.value!r}"
    if token.kind is Kind.LABEL:
        return f"label {token.value!r}"
    if token.kind is Kind.HAS:
        return f"has({token.value})"
    if token.kind in (Kind.ALL, Kind.GLOBAL):
        return f"{token.value}()"
    return repr(token.value)


def parse_tree(text: str) -> Node:
    """The tree of `text`, or SelectorError naming the 0-based position where it stops being valid."""
    return _Parser(text, tokenize(text)).root()
