"""Where the package keeps `.dagain-template/` (copied into a repository by `gitdag init`).

The template is read through `importlib.resources` traversables, never through a string path:
in an installed wheel it is the data of the namespace package `gitdag._template`, for which
`importlib.resources.files()` returns a `MultiplexedPath` on Python 3.11 (its `str()` is not a
path). In a source checkout (`PYTHONPATH=.`) it is the `.dagain-template/` directory at the top of
the repository. `GITDAG_TEMPLATE=<dir>` uses another directory instead (an organisation's own).
"""

from __future__ import annotations

import importlib.resources
import os
from importlib.resources.abc import Traversable
from pathlib import Path

from gitdag.errors import ConfigError, GitdagError

TEMPLATE_ENV = "GITDAG_TEMPLATE"
_SKIPPED = frozenset({"__pycache__", "__init__.py"})


def _shipped() -> Traversable | None:
    try:
        shipped = importlib.resources.files("gitdag._template")
    except ModuleNotFoundError:
        return None
    return shipped if shipped.joinpath("config.yaml").is_file() else None


def template_dir() -> Traversable:
    """Return the template: `$GITDAG_TEMPLATE`, the installed package data, or the checkout's."""
    override = os.environ.get(TEMPLATE_ENV)
    if override:
        path = Path(override)
        if not (path / "config.yaml").is_file():
            raise ConfigError(f"{TEMPLATE_ENV}={override}: no config.yaml in that directory")
        return path
    shipped = _shipped()
    if shipped is not None:
        return shipped
    source = Path(__file__).resolve().parent.parent / ".dagain-template"
    if (source / "config.yaml").is_file():
        return source
    raise GitdagError("the gitdag installation has no .dagain-template (reinstall gitdag)")


def template_files(root: Traversable | None = None) -> dict[str, bytes]:
    """Return every file of the template as {relative posix path: content}.

    Raises:
      ConfigError: a file cannot be read (the template is broken).
    """
    base = template_dir() if root is None else root
    files: dict[str, bytes] = {}

    def walk(node: Traversable, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.name in _SKIPPED:
                continue
            rel = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, rel + "/")
                continue
            try:
                files[rel] = child.read_bytes()
            except OSError as exc:
                raise ConfigError(f"template file {rel}: cannot read: {exc}") from None

    try:
        walk(base, "")
    except OSError as exc:
        raise ConfigError(f"template {base}: cannot list: {exc}") from None
    return files


def copy_template(dest: Path) -> list[Path]:
    """Copy the template into `dest` without overwriting anything; return the files created."""
    created: list[Path] = []
    for rel, data in template_files().items():
        target = dest / rel
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        created.append(target)
    return created
