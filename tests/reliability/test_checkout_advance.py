"""The user's checkout of the target is never left half-moved (issue 12.4).

The target is checked out (clean) in the user's main working tree, so each merge moves its
files and its ref. The supervisor is killed -9 at every point around that move; afterwards the
checkout is clean at the old or the new tip, and after a restart the change lands exactly once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gitdag.workspace.advance import INTENT_DIR
from tests.conftest import git
from tests.reliability.test_doctor import add_task, checks, doctor
from tests.supervisor.conftest import Project

TARGET = "dagain/integration"
POINTS = (
    "checkout.after_intent",
    "checkout.after_files",
    "supervisor.before_merge_commit",  # files moved, the ref transaction not yet run
    "checkout.after_ref",
    "merge.after_advance",
)


def _killed_run(project: Project, point: str) -> None:
    env = {**os.environ, **project.env(), "GITDAG_CRASH_AT": point}
    proc = subprocess.run(
        [sys.executable, "-m", "gitdag", "run"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 137, proc.stdout + proc.stderr


def _tracked_changes(root: Path) -> str:
    return git(root, "status", "--porcelain", "--untracked-files=no")


def _user_checks_out_the_target(project: Project) -> str:
    git(project.root, "checkout", "-q", TARGET)
    return git(project.root, "rev-parse", "HEAD").strip()


@pytest.mark.parametrize("point", POINTS)
def test_kill_at_each_point_of_a_checkout_advance_then_restart(
    rproject: Project, point: str
) -> None:
    add_task(rproject, "t", "t\n")
    old = _user_checks_out_the_target(rproject)
    _killed_run(rproject, point)

    # Restart: the supervisor settles what the kill left, then the change lands exactly once.
    res = rproject.gitdag("run")
    assert res.code == 0, res.out + res.err
    root = rproject.root
    assert _tracked_changes(root) == ""
    tip = git(root, "rev-parse", TARGET).strip()
    assert git(root, "rev-parse", "HEAD").strip() == tip != old
    assert git(root, "symbolic-ref", "HEAD").strip() == "refs/heads/" + TARGET
    assert (root / "t.txt").read_text() == "t\n"
    merges = git(root, "log", "--first-parent", "--format=%s", f"{old}..{tip}").splitlines()
    assert merges == ["gitdag: integrate t (attempt 1)"]
    node = rproject.show("t")
    assert node["status"] == "done" and node["work"]["merged"] == tip  # type: ignore[index]
    assert node["attempts"] == 1  # the kill cost no agent run, and never failed the node
    assert not list((root / ".dagain" / "local" / INTENT_DIR).glob("*.json"))
    assert rproject.gitdag("doctor").code == 0


def test_right_after_the_kill_the_checkout_is_at_a_tip_or_named_by_doctor(
    rproject: Project,
) -> None:
    add_task(rproject, "t", "t\n")
    old = _user_checks_out_the_target(rproject)
    _killed_run(rproject, "checkout.after_files")
    root = rproject.root
    # Half-moved: the merge's change staged on the old HEAD. Doctor names it and repairs it.
    assert git(root, "rev-parse", "HEAD").strip() == old and _tracked_changes(root) != ""
    code, found = doctor(rproject)
    assert code == 1 and "checkout" in checks(found)
    finding = next(f for f in found if f["check"] == "checkout")
    assert "half-moved by merging t" in str(finding["problem"]) and finding["fixable"]
    code, found = doctor(rproject, "--fix")
    assert any(f["check"] == "checkout" and f["fixed"] for f in found)
    assert _tracked_changes(root) == "" and git(root, "rev-parse", "HEAD").strip() == old
    assert rproject.show("t")["status"] == "merging"  # nothing landed: it merges again
    assert rproject.gitdag("run").code == 0
    assert (root / "t.txt").read_text() == "t\n" and _tracked_changes(root) == ""


def test_a_half_moved_checkout_the_user_edited_is_left_alone_and_named(
    rproject: Project,
) -> None:
    add_task(rproject, "t", "t\n")
    old = _user_checks_out_the_target(rproject)
    _killed_run(rproject, "checkout.after_files")
    root = rproject.root
    (root / "src" / "app.py").write_text("x = 'mine'\n")  # the user's own edit, on top
    res = rproject.gitdag("doctor", "--json")
    found = json.loads(res.out)["findings"]
    finding = next(f for f in found if f["check"] == "checkout")
    assert not finding["fixable"] and "git -C" in finding["repair"]
    rproject.gitdag("doctor", "--fix")
    assert (root / "src" / "app.py").read_text() == "x = 'mine'\n"  # never theirs to discard
    assert git(root, "rev-parse", "HEAD").strip() == old
