"""Where the package keeps `.dagain-template/` (copied into a repository by `gitdag init`)."""

from __future__ import annotations

import importlib.resources
import shutil
from pathlib import Path

from gitdag.errors import GitdagError


def template_dir() -> Path:
    """Return the template directory: in a source checkout, or shipped inside the package."""
    source = Path(__file__).resolve().parent.parent / ".dagain-template"
    if (source / "config.yaml").is_file():
        return source
    try:
        shipped = Path(str(importlib.resources.files("gitdag._template")))
    except ModuleNotFoundError:
        shipped = Path(__file__).resolve().parent / "_template"
    if (shipped / "config.yaml").is_file():
        return shipped
    raise GitdagError("the gitdag installation has no .dagain-template (reinstall gitdag)")


def copy_template(dest: Path) -> list[Path]:
    """Copy the template into `dest` without overwriting anything; return the files created."""
    created: list[Path] = []
    src = template_dir()
    for path in sorted(src.rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts or path.name == "__init__.py":
            continue
        target = dest / path.relative_to(src)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        created.append(target)
    return created
