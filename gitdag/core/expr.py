"""`when:` conditions: a small, safe expression grammar, parsed by hand (no eval, no code).

    expr  := or
    or    := and ("or" and)*
    and   := not ("and" not)*
    not   := "not" not | cmp
    cmp   := value (("==" | "!=" | "<" | "<=" | ">" | ">=") value)?
    value := "(" expr ")" | STRING | NUMBER | "true" | "false" | REF
    REF   := <node-id>.status | <node-id>.outputs.<KEY>    (also written ${...})

Strings are quoted with `'` or `"` (a backslash escapes the next character). Comparisons are
numeric when both sides read as numbers, textual otherwise. A value alone is true when it is not
empty, `false` or `0`. A reference to a skipped node's output reads as the empty string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gitdag.core.ids import id_problem

MAX_EXPR = 4000
_OPS = ("==", "!=", "<=", ">=", "<", ">")
_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")


class ExprError(ValueError):
    """A condition that does not parse; the message says where."""


@dataclass(frozen=True)
class Ref:
    """A reference to an upstream node: its status (`key` None) or one of its outputs."""

    node: str
    key: str | None = None


@dataclass(frozen=True)
class Lit:
    """A literal string, number or boolean (kept as text)."""

    text: str


@dataclass(frozen=True)
class Not:
    """Negation."""

    arg: Expr


@dataclass(frozen=True)
class Bool:
    """`and` / `or` of two expressions."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Cmp:
    """A comparison of two values."""

    op: str
    left: Expr
    right: Expr


Expr = Ref | Lit | Not | Bool | Cmp


def parse_ref(text: str) -> Ref | None:
    """Read `id.status` or `id.outputs.KEY` (the id may itself contain dots), else None."""
    if text.endswith(".status"):
        node, key = text[: -len(".status")], None
    elif ".outputs." in text:
        node, _, key = text.rpartition(".outputs.")
        if not _KEY.match(key):
            return None
    else:
        return None
    return Ref(node, key) if id_problem(node) is None else None


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "()":
            out.append(c)
            i += 1
        elif c in "'\"":
            j, chars = i + 1, []
            while j < len(text) and text[j] != c:
                if text[j] == "\\" and j + 1 < len(text):
                    j += 1
                chars.append(text[j])
                j += 1
            if j >= len(text):
                raise ExprError(f"unterminated string at column {i + 1}")
            out.append(c + "".join(chars))  # the quote marks a string token
            i = j + 1
        elif text.startswith("${", i):
            end = text.find("}", i)
            if end < 0:
                raise ExprError(f"unterminated ${{ at column {i + 1}")
            out.append(text[i + 2 : end].strip())
            i = end + 1
        elif any(text.startswith(op, i) for op in _OPS):
            op = next(op for op in _OPS if text.startswith(op, i))
            out.append(op)
            i += len(op)
        else:
            match = _WORD.match(text, i) or re.compile(r"-[0-9.]+").match(text, i)
            if match is None:
                raise ExprError(f"unexpected {c!r} at column {i + 1}")
            out.append(match.group())
            i = match.end()
    return out


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.pos = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ExprError("the condition ends too early")
        self.pos += 1
        return token

    def expr(self, depth: int = 0) -> Expr:
        if depth > 32:
            raise ExprError("the condition nests deeper than 32 levels")
        left = self.conj(depth)
        while self.peek() == "or":
            self.take()
            left = Bool("or", left, self.conj(depth))
        return left

    def conj(self, depth: int) -> Expr:
        left = self.neg(depth)
        while self.peek() == "and":
            self.take()
            left = Bool("and", left, self.neg(depth))
        return left

    def neg(self, depth: int) -> Expr:
        if self.peek() == "not":
            self.take()
            return Not(self.neg(depth + 1))
        left = self.value(depth)
        if self.peek() in _OPS:
            op = self.take()
            return Cmp(op, left, self.value(depth))
        return left

    def value(self, depth: int) -> Expr:
        token = self.take()
        if token == "(":
            inner = self.expr(depth + 1)
            if self.peek() != ")":
                found = self.peek()
                raise ExprError("expected `)`" + (f", found {found!r}" if found else " at the end"))
            self.take()
            return inner
        if token[:1] in "'\"":
            return Lit(token[1:])
        if token in ("true", "false") or _NUMBER.match(token):
            return Lit(token)
        if token in ("and", "or", "not", ")") or token in _OPS:
            raise ExprError(f"expected a value, found {token!r}")
        ref = parse_ref(token)
        if ref is None:
            raise ExprError(
                f"{token!r} is not a value: write NODE.status, NODE.outputs.KEY, "
                "a quoted string, a number, true or false"
            )
        return ref


def parse(text: str) -> Expr:
    """Parse a condition, or raise ExprError naming what is wrong."""
    if len(text) > MAX_EXPR:
        raise ExprError(f"the condition is over {MAX_EXPR} characters")
    tokens = _tokens(text)
    if not tokens:
        raise ExprError("the condition is empty")
    parser = _Parser(tokens)
    tree = parser.expr()
    if parser.peek() is not None:
        raise ExprError(f"unexpected {parser.peek()!r} after the condition")
    return tree


def refs(tree: Expr) -> list[Ref]:
    """Return every reference in a parsed condition, in order."""
    if isinstance(tree, Ref):
        return [tree]
    if isinstance(tree, Lit):
        return []
    if isinstance(tree, Not):
        return refs(tree.arg)
    return refs(tree.left) + refs(tree.right)


Lookup = Callable[[Ref], str]


def _value(tree: Expr, lookup: Lookup) -> str:
    if isinstance(tree, Lit):
        return tree.text
    if isinstance(tree, Ref):
        return lookup(tree)
    return "true" if _truth(tree, lookup) else "false"


def _compare(op: str, left: str, right: str) -> bool:
    a: float | str = left
    b: float | str = right
    if _NUMBER.match(left.strip()) and _NUMBER.match(right.strip()):
        a, b = float(left), float(right)
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if isinstance(a, float) != isinstance(b, float):  # pragma: no cover - both or neither
        return False
    if op == "<":
        return a < b  # type: ignore[operator]
    if op == "<=":
        return a <= b  # type: ignore[operator]
    if op == ">":
        return a > b  # type: ignore[operator]
    return a >= b  # type: ignore[operator]


def _truth(tree: Expr, lookup: Lookup) -> bool:
    if isinstance(tree, Not):
        return not _truth(tree.arg, lookup)
    if isinstance(tree, Bool):
        if tree.op == "and":
            return _truth(tree.left, lookup) and _truth(tree.right, lookup)
        return _truth(tree.left, lookup) or _truth(tree.right, lookup)
    if isinstance(tree, Cmp):
        return _compare(tree.op, _value(tree.left, lookup), _value(tree.right, lookup))
    return _value(tree, lookup).strip().lower() not in ("", "false", "0")


def evaluate(
    tree: Expr, statuses: Mapping[str, str], outputs: Mapping[str, Mapping[str, str]]
) -> bool:
    """Evaluate a parsed condition over upstream statuses and outputs (missing reads as "")."""

    def lookup(ref: Ref) -> str:
        if ref.key is None:
            return statuses.get(ref.node, "")
        return outputs.get(ref.node, {}).get(ref.key, "")

    return _truth(tree, lookup)
