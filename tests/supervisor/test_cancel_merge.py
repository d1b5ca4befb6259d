"""Cancel wins (issue 12.3): a node cancelled while it merges never reaches the target."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import git
from tests.supervisor.conftest import Project
from tests.supervisor.test_merge import plan_tasks


def _wait_for(path: Path, proc: subprocess.Popen[str], limit_s: float = 120) -> None:
    deadline = time.monotonic() + limit_s
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the merge check never started"
        time.sleep(0.05)


def test_cancel_during_a_slow_merge_check_keeps_the_change_off_the_target(
    project: Project, tmp_path: Path
) -> None:
    marker, survivor = tmp_path / "check-started", tmp_path / "check-survived"
    # The check would pass, after a long time; the cancel must both stop it and keep it off.
    check = f"touch {marker}; sleep 60; touch {survivor}"
    project.config(extra=f"merge:\n  check: {check}\n")
    project.plan({**plan_tasks({"id": "t", "title": "t"}), "t": {"write": {"t.txt": "t\n"}}})
    tip = git(project.root, "rev-parse", "dagain/integration").strip()
    env = {**os.environ, **project.env()}
    run = subprocess.Popen(
        [sys.executable, "-m", "gitdag", "run"],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(marker, run)
        started = time.monotonic()
        assert project.gitdag("cancel", "t").code == 0
        out, err = run.communicate(timeout=50)  # well before the check's 60 s
        stopped_after = time.monotonic() - started
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert stopped_after < 50 and not survivor.exists()  # the check was killed, not waited for
    assert git(project.root, "rev-parse", "dagain/integration").strip() == tip
    assert git(project.root, "cat-file", "-e", "dagain/integration:t.txt", check=False) == ""
    node = project.show("t")
    assert node["status"] == "cancelled"
    assert "merge abandoned, the target was not touched" in out + err
    assert "(merging" not in out and not out.rstrip().endswith(";")  # every stop names its reason
    assert git(project.root, "rev-parse", "dagain/work/t").strip()  # the work is kept
    # A later run does not bring it back either.
    assert project.gitdag("run").code == 0
    assert git(project.root, "rev-parse", "dagain/integration").strip() == tip


def test_interrupting_the_run_stops_a_slow_check_and_the_merge_lands_on_restart(
    project: Project, tmp_path: Path
) -> None:
    marker, slow = tmp_path / "check-started", tmp_path / "slow"
    slow.touch()
    check = f"touch {marker}; if [ -e {slow} ]; then sleep 60; fi"
    project.config(extra=f"merge:\n  check: {check}\n")
    project.plan({**plan_tasks({"id": "t", "title": "t"}), "t": {"write": {"t.txt": "t\n"}}})
    tip = git(project.root, "rev-parse", "dagain/integration").strip()
    run = subprocess.Popen(
        [sys.executable, "-m", "gitdag", "run"],
        cwd=project.root,
        env={**os.environ, **project.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(marker, run)
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=50)  # not the check's 60 s
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 130
    assert git(project.root, "rev-parse", "dagain/integration").strip() == tip
    assert project.show("t")["status"] == "merging"
    slow.unlink()
    assert project.gitdag("run").code == 0
    assert git(project.root, "show", "dagain/integration:t.txt") == "t\n"
    assert project.show("t")["attempts"] == 1
