"""Fixtures for the reliability tests: a project driven through the real CLI (tests/supervisor)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import make_repo
from tests.supervisor.conftest import Project

HERE = Path(__file__).resolve().parent


@pytest.fixture
def rproject(tmp_path: Path) -> Project:
    """An initialised repository without a goal (no plan node), fake runner configured."""
    root = make_repo(tmp_path / "proj", {"README.md": "# p\n", "src/app.py": "x = 1\n"})
    proj = Project(root, tmp_path / "plan.json", tmp_path / "runs.log")
    proj.plan({})
    res = proj.gitdag("init", "--backoff", "0")
    assert res.code == 0, res.err
    proj.config(runners=f"  forger:\n    cmd: {sys.executable} {HERE / 'forger.py'}\n")
    return proj
