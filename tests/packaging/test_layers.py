"""The layer table: which unit of gitdag/ may import which, read from docs/architecture.md.

A unit is a package of gitdag/ (`core/`, `store/`, ...) or a top-level module (`actions.py`).
Every import is checked, function-level and `TYPE_CHECKING` ones included (a lazy import is still
a dependency), relative ones resolved, and `importlib.import_module` calls must name a literal
prefix. The table lives in the doc, once: the doc and this test cannot drift apart, and a unit
added to gitdag/ without a row fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import gitdag

ROOT = Path(gitdag.__file__).parent
DOC = ROOT.parent / "docs" / "architecture.md"
DYNAMIC = ("import_module", "__import__")
MARK = "<!-- layer-table: tests/packaging/test_layers.py reads this table -->"

# Imports the table forbids that are known and being removed, each with the issue that removes
# it. An entry is (importing unit, imported module). An entry no longer seen fails the test, so
# the list only shrinks: whoever removes the import removes the entry.
KNOWN: dict[tuple[str, str], str] = {}


def read_table(text: str) -> dict[str, set[str]]:
    """The rows after MARK: `| \\`unit\\` | \\`a\\`, \\`b\\` or — | why |` -> {unit: {a, b}}."""
    lines = text[text.index(MARK) + len(MARK) :].lstrip("\n").splitlines()
    table: dict[str, set[str]] = {}
    for line in lines[2:]:  # the header and its rule
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        unit = cells[0].strip("`")
        assert unit not in table, f"{unit} has two rows"
        table[unit] = set(re.findall(r"`([^`]+)`", cells[1]))
    return table


def unit_of(module: str) -> str:
    """`gitdag.store.state` -> `store/`; `gitdag.actions` -> `actions.py`; `gitdag` -> the root.

    A name that is neither (`from gitdag import __version__`) is the package's `__init__.py`.
    """
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__.py"
    if (ROOT / parts[1]).is_dir():
        return parts[1] + "/"
    if (ROOT / f"{parts[1]}.py").is_file():
        return parts[1] + ".py"
    return "__init__.py"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, source: str | None = None) -> list[tuple[str, int]]:
    """Every gitdag module `path` imports (function-level too), with its line."""
    tree = ast.parse(source if source is not None else path.read_text())
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # `from gitdag.store import state` imports the module gitdag.store.state.
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                is_module = (ROOT.parent / sub.replace(".", "/")).is_dir() or (
                    ROOT.parent / (sub.replace(".", "/") + ".py")
                ).is_file()
                found.append((sub if is_module else base, node.lineno))
        elif isinstance(node, ast.Call) and _call_name(node.func) in DYNAMIC:
            found.append((_literal_prefix(node, path), node.lineno))
    return [(m, line) for m, line in found if m == "gitdag" or m.startswith("gitdag.")]


def _call_name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _literal_prefix(call: ast.Call, path: Path) -> str:
    arg = call.args[0] if call.args else None
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if (
        isinstance(arg, ast.JoinedStr)
        and arg.values
        and isinstance(arg.values[0], ast.Constant)
        and isinstance(arg.values[0].value, str)
    ):
        return arg.values[0].value.rstrip(".")
    raise AssertionError(f"{path}:{call.lineno}: a dynamic import the layer table cannot check")


def units() -> set[str]:
    found = {p.name + "/" for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    return found | {p.name for p in ROOT.glob("*.py")}


def edges() -> dict[tuple[str, str], list[str]]:
    """(importing unit, imported module) -> where, for imports across units."""
    found: dict[tuple[str, str], list[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        unit = unit_of(module_name(path))
        for module, line in imports_of(path):
            if unit_of(module) != unit:
                found.setdefault((unit, module), []).append(f"{path.relative_to(ROOT)}:{line}")
    return found


def test_every_unit_has_one_row_and_every_row_a_unit() -> None:
    table = read_table(DOC.read_text())
    assert set(table) == units()
    named = set().union(*table.values())
    assert named <= units(), f"rows name what does not exist: {sorted(named - units())}"


def test_every_import_follows_the_layer_table() -> None:
    table = read_table(DOC.read_text())
    seen = edges()
    assert len(seen) > 40
    wrong = {
        f"{unit} imports {module} ({', '.join(where)})"
        for (unit, module), where in seen.items()
        if unit_of(module) not in table[unit] and (unit, module) not in KNOWN
    }
    assert sorted(wrong) == []


def test_every_known_exception_is_still_needed() -> None:
    table = read_table(DOC.read_text())
    seen = edges()
    stale = [k for k in KNOWN if k not in seen or unit_of(k[1]) in table[k[0]]]
    assert stale == [], "gone or allowed by now: remove from KNOWN"


def test_the_checker_sees_nested_relative_and_dynamic_imports() -> None:
    path = ROOT / "store" / "read.py"
    source = (
        "import os\n"
        "from gitdag import actions\n"
        "def f():\n"
        "    from gitdag.supervisor.lock import SupervisorLock\n"
        "    from ..workspace import gc\n"
        "    from . import state\n"
        "    importlib.import_module(f'gitdag.ui.{name}')\n"
    )
    found = {unit_of(m) for m, _ in imports_of(path, source)}
    assert found == {"actions.py", "supervisor/", "workspace/", "store/", "ui/"}
    dynamic = "importlib.import_module(name)\n"
    try:
        imports_of(path, dynamic)
    except AssertionError as exc:
        assert "dynamic import" in str(exc)
    else:
        raise AssertionError("a dynamic import passed unchecked")


def test_the_table_reader_reads_rows_until_the_table_ends() -> None:
    doc = f"{MARK}\n\n| unit | may import | why |\n|---|---|---|\n| `a/` | `b/`, `c.py` | x |\n| `b/` | — | y |\n\nprose `d/`\n"  # noqa: E501
    assert read_table(doc) == {"a/": {"b/", "c.py"}, "b/": set()}
