"""A reader that leaves early (`gitdag status | head`) is no crash: quiet, exit 141 as git's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, run_gitdag


@pytest.mark.parametrize(
    "args",
    [
        ["status"],  # the fast start (readonly.fast_main)
        ["status", "--local"],  # click
        ["log"],  # click, another command
    ],
)
def test_a_closed_pipe_is_no_unexpected_error(repo: Path, args: list[str]) -> None:
    assert run_gitdag(repo, "init", "--goal", "ship it").code == 0
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before gitdag writes its first line
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "gitdag", *args],
            cwd=repo, env=env, stdout=write_end, stderr=subprocess.PIPE, text=True, check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert "unexpected error" not in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list((repo / ".dagain" / "local" / "logs").glob("crash-*.log"))
