"""Option types that refuse what click's own let through: nan, inf and absurd magnitudes.

click's `FloatRange` compares with `<` and `>`, which are false for nan, so `--backoff nan`
passes any range; `inf` passes an open upper bound. Every numeric option of gitdag uses these
(docs/input-rules.md): a bad value is a usage error, exit 2, before anything runs.
"""

from __future__ import annotations

import math
from typing import Any

import click

# Ints past this are no count, priority or limit anyone means; bounded so arithmetic and
# the YAML/JSON written from them stay ordinary.
MAX_INT = 10**9


class FiniteFloat(click.FloatRange):
    """A float range that also refuses nan and ±inf."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if isinstance(number, float) and not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def bounded_int(low: int = -MAX_INT, high: int = MAX_INT) -> click.IntRange:
    """Return an int option type bounded on both sides (default: ±MAX_INT)."""
    return click.IntRange(low, high)
