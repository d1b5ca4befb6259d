"""Which failures are the environment's, and how a runner's executable is found (pure parts)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from gitdag.attempts.holds import classify_error, executable_of, runner_problem
from gitdag.attempts.preflight import config_line
from gitdag.config import RunnerConfig
from gitdag.core.model import HoldKind
from gitdag.errors import WorkspaceError


@pytest.mark.parametrize(
    ("cmd", "prog"),
    [
        ("claude -p --output-format json", "claude"),
        ("env FOO=1 BAR=2 codex exec {packet}", "codex"),
        ("env -i -u HOME PATH=/x aider --yes", "aider"),
        ("FOO=1 exec /opt/bin/agent", "/opt/bin/agent"),
        ("$AGENT --go", None),
        ("(cd x && run)", None),
        ("'unterminated", None),
        ("", None),
    ],
)
def test_executable_of_a_runner_command(cmd: str, prog: str | None) -> None:
    assert executable_of(cmd) == prog


def test_runner_problem_honours_the_runners_path(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "agent").write_text("#!/bin/sh\n")
    (bindir / "agent").chmod(0o755)
    assert runner_problem(RunnerConfig(builtin="scripted"), tmp_path) is None
    assert runner_problem(RunnerConfig(cmd="agent x"), tmp_path) is not None
    assert runner_problem(RunnerConfig(cmd="agent x", env={"PATH": str(bindir)}), tmp_path) is None
    assert runner_problem(RunnerConfig(cmd="bin/agent"), tmp_path) is None  # relative to the repo
    (bindir / "agent").chmod(0o644)
    assert "not executable" in (runner_problem(RunnerConfig(cmd="bin/agent"), tmp_path) or "")


def test_config_line_names_the_cmd_of_the_runner(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "schema_version: 1\nrunners:\n  a:\n    cmd: x\n  b:\n    timeout_s: 5\n    cmd: y\n"
    )
    assert config_line(tmp_path, "b") == ".dagain/config.yaml:7 (runners.b.cmd)"
    assert config_line(tmp_path, "zz") == ".dagain/config.yaml (runners.zz.cmd)"


def test_classify_errors_by_side() -> None:
    full = classify_error(OSError(errno.ENOSPC, "No space left on device"), target="t", base=None)
    assert full is not None and full.kind is HoldKind.DISK_FULL
    ro = classify_error(WorkspaceError("`git commit-tree` failed: Read-only file system"),
                        target="t", base=None)  # fmt: skip
    assert ro is not None and ro.kind is HoldKind.DISK_FULL
    gone = classify_error(WorkspaceError("target branch main does not exist"), target="main",
                          base="abcdef1234567890")  # fmt: skip
    assert gone is not None and gone.kind is HoldKind.TARGET_MISSING
    assert "git branch main abcdef123456" in gone.repair
    lost = WorkspaceError("branch dagain/work/x does not exist")
    assert classify_error(lost, target="main", base=None) is None  # the node's own work is gone
    assert classify_error(ValueError("a bug"), target="main", base=None) is None
