"""The `when:` grammar (core/expr.py): what it accepts, how it evaluates, that it runs no code."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitdag.core import expr

STATUSES = {"build": "done", "lint": "failed", "flow.step": "skipped"}
OUTPUTS = {"build": {"VERSION": "1.10.0", "N": "12", "EMPTY": ""}}


def truth(text: str) -> bool:
    return expr.evaluate(expr.parse(text), STATUSES, OUTPUTS)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("build.status == 'done'", True),
        ('lint.status != "done"', True),
        ("flow.step.status == 'skipped'", True),
        ("build.outputs.N > 9", True),  # numeric: 12 > 9
        ("build.outputs.VERSION > '1.9'", False),  # textual: '1.10.0' < '1.9'
        ("${build.outputs.VERSION} == '1.10.0'", True),
        ("build.outputs.EMPTY", False),
        ("not build.outputs.EMPTY and build.outputs.N", True),
        ("lint.status == 'failed' or build.status == 'failed'", True),
        ("(lint.status == 'done' or build.status == 'done') and not lint.status == 'done'", True),
        ("build.outputs.MISSING == ''", True),
        ("true and not false", True),
        ("'it\\'s' == \"it's\"", True),
    ],
)
def test_evaluates(text: str, want: bool) -> None:
    assert truth(text) is want


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("build.status ==", "ends too early"),
        ("build.status = 'done'", "unexpected"),
        ("__import__('os').system('x')", "unexpected"),
        ("build.status == 'done' extra.status", "after the condition"),
        ("(build.status == 'done'", "expected `)`"),
        ("'open", "unterminated string"),
        ("build.outputs.bad-key == 1", "not a value"),
        ("(" * 40 + "true" + ")" * 40, "deeper than 32"),
    ],
)
def test_refuses_with_a_reason(text: str, words: str) -> None:
    with pytest.raises(expr.ExprError, match=re.escape(words)):
        expr.parse(text)


def test_refs_are_listed_in_order() -> None:
    tree = expr.parse("a.status == 'done' and b.outputs.K != a.outputs.X")
    assert [(r.node, r.key) for r in expr.refs(tree)] == [("a", None), ("b", "K"), ("a", "X")]


@given(st.text(max_size=80))
def test_any_text_parses_or_is_refused_with_expr_error(text: str) -> None:
    try:
        tree = expr.parse(text)
    except expr.ExprError:
        return
    assert isinstance(expr.evaluate(tree, STATUSES, OUTPUTS), bool)
