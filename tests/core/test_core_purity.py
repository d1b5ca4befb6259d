"""core/ does no I/O: no module under gitdag/core imports os, subprocess, time, dulwich, click or
random (spec: `now` is a parameter, randomness and the clock belong to the callers)."""

from __future__ import annotations

import ast
from pathlib import Path

import gitdag.core

FORBIDDEN = {"os", "subprocess", "time", "dulwich", "click", "random", "socket", "shutil",
             "pathlib", "sqlite3", "threading", "multiprocessing", "io", "tempfile"}  # fmt: skip
CORE = Path(gitdag.core.__file__).parent


def imported_roots(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
        ):
            found.add("__import__")
        elif isinstance(node, ast.Attribute) and node.attr == "import_module":
            found.add("importlib.import_module")
    return found


def test_core_modules_import_nothing_that_does_io() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) >= 8
    offenders = {
        str(path.relative_to(CORE)): sorted(imported_roots(ast.parse(path.read_text())) & (
            FORBIDDEN | {"__import__", "importlib.import_module"}))
        for path in files
    }  # fmt: skip
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_checker_catches_forbidden_imports() -> None:
    sample = "import os.path\nfrom time import monotonic\nimport dulwich.repo as d\n"
    assert {"os", "time", "dulwich"} <= imported_roots(ast.parse(sample))
    nested = "def f():\n    import subprocess\n    from click import echo\n"
    assert {"subprocess", "click"} <= imported_roots(ast.parse(nested))
