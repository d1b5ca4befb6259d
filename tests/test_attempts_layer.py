"""supervisor/ and remote/ are two composers over attempts/ (issue 14): neither imports the other,
and attempts/ imports neither (nor anything above them)."""

from __future__ import annotations

import ast
from pathlib import Path

import gitdag

ROOT = Path(gitdag.__file__).parent
ABOVE = ("gitdag.supervisor", "gitdag.remote", "gitdag.ui", "gitdag.cli", "gitdag.doctor")


def imports_of(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).glob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[path.name] = {n for n in names if n.startswith("gitdag")}
    return found


def offending(package: str, banned: tuple[str, ...]) -> dict[str, list[str]]:
    wrong = {}
    for name, modules in imports_of(package).items():
        bad = sorted(m for m in modules if any(m == b or m.startswith(b + ".") for b in banned))
        if bad:
            wrong[name] = bad
    return wrong


def test_remote_imports_nothing_of_supervisor() -> None:
    assert offending("remote", ("gitdag.supervisor",)) == {}


def test_supervisor_imports_nothing_of_remote() -> None:
    assert offending("supervisor", ("gitdag.remote",)) == {}


def test_attempts_imports_nothing_above_it() -> None:
    assert len(imports_of("attempts")) >= 8
    assert offending("attempts", ABOVE) == {}
