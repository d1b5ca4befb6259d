"""pyproject.toml's lower bounds are the pins .ci/run tests against (.ci/min-versions.txt)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def lower_bounds() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = {}
    for spec in project["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9.]*)(,<[0-9.]+)?", spec.strip())
        assert match, f"{spec!r}: every runtime dependency has a lower bound"
        found[match[1].lower()] = match[2]
    return found


def pins() -> dict[str, str]:
    found = {}
    for line in (ROOT / ".ci" / "min-versions.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            found[name.lower()] = version
    return found


def test_every_lower_bound_is_pinned_for_ci() -> None:
    bounds = lower_bounds()
    assert {"dulwich", "click", "pydantic"} <= set(bounds)
    assert pins() == bounds
