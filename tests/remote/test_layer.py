"""gitdag/transport/ is a layer of its own: it moves refs and objects and knows no gitdag state.

It may import gitdag's errors and core/ (pure), never store/, workspace/, runner/ or anything
above them; and store/ reaches it only through its package interface.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gitdag

ROOT = Path(gitdag.__file__).parent
ALLOWED = {"gitdag.errors", "gitdag.core", "gitdag.transport"}


def gitdag_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] == "gitdag"}


def test_transport_imports_only_core_and_errors() -> None:
    files = sorted((ROOT / "transport").glob("*.py"))
    assert len(files) >= 5
    wrong = {
        f.name: sorted(m for m in gitdag_imports(f) if not any(
            m == a or m.startswith(a + ".") for a in ALLOWED))
        for f in files
    }  # fmt: skip
    assert {k: v for k, v in wrong.items() if v} == {}


def test_the_hand_written_protocol_is_gone() -> None:
    for name in ("wire", "upload", "receive", "packs", "transport", "gitpush", "contention"):
        assert not (ROOT / "store" / f"{name}.py").exists(), name
