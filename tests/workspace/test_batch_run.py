"""`gitdag run` with `merge.batch`: batches land, each change once, also across a kill -9."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import git, run_gitdag
from tests.supervisor.conftest import Project, project  # noqa: F401 (the fixture)

# The check: slow for a lone merge (the serial path), so the other tasks finish meanwhile and
# queue up into a batch; each batch's members are written down; BROKEN anywhere fails it.
SCRIPT = """import os, subprocess, sys, time
batch = os.environ.get("GITDAG_BATCH")
if not batch:
    time.sleep(2)
with open(os.environ["SEEN"], "a") as fh:
    fh.write((batch or os.environ["GITDAG_NODE_ID"]) + "\\n")
sys.exit(subprocess.run(["git", "grep", "-q", "BROKEN", "HEAD", "--"]).returncode == 0)
"""


def setup(proj: Project, tmp_path: Path, n: int, culprit: int | None = None) -> dict[str, str]:
    tasks = [{"id": f"t{i}", "title": f"file {i}"} for i in range(n)]
    plan: dict[str, object] = {
        "plan-000": {"result": {"status": "success", "next": {"addNodes": tasks}}}
    }
    for i in range(n):
        text = f"content {i}\n" + ("BROKEN\n" if i == culprit else "")
        plan[f"t{i}"] = {"write": {f"f{i}.txt": text}}
    if culprit is not None:  # its retry repairs it
        fixed = {"write": {f"f{culprit}.txt": f"content {culprit}\n"}}
        plan[f"t{culprit}"] = [plan[f"t{culprit}"], fixed]
    proj.plan(plan)
    script = tmp_path / "check.py"
    script.write_text(SCRIPT)
    proj.config(f"merge:\n  check: {sys.executable} {script}\n  batch: 4\n  batch_checks: 2\n")
    return {**proj.env(), "SEEN": str(tmp_path / "seen.txt")}


def landed_once(proj: Project, n: int) -> None:
    subjects = git(proj.root, "log", "--first-parent", "--format=%s", "dagain/integration")
    merged = [s.split()[2] for s in subjects.splitlines() if s.startswith("gitdag: integrate")]
    assert sorted(merged) == [f"t{i}" for i in range(n)]  # every change, each exactly once
    for i in range(n):
        assert git(proj.root, "show", f"dagain/integration:f{i}.txt") == f"content {i}\n"
        node = proj.show(f"t{i}")
        assert node["status"] == "done"
        commit = node["work"]["merged"]  # type: ignore[index]
        assert git(proj.root, "log", "-1", "--format=%s", commit).startswith(
            f"gitdag: integrate t{i} "
        )


def records_agree_with_the_target(proj: Project, n: int) -> None:
    """Whatever the kill interrupted: a change is on the target exactly when its node is done
    (a batch's records ride in the ref transaction that moves the target)."""
    subjects = git(proj.root, "log", "--first-parent", "--format=%s", "dagain/integration")
    on_target = {s.split()[2] for s in subjects.splitlines() if s.startswith("gitdag: integrate")}
    done = {f"t{i}" for i in range(n) if proj.show(f"t{i}")["status"] == "done"}
    assert on_target == done


def test_batches_land_each_change_once_and_the_culprit_retries(
    project: Project,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    env = setup(project, tmp_path, 5, culprit=3)
    res = run_gitdag(project.root, "run", "--workers", "5", env=env)
    assert res.code == 0, res.err
    landed_once(project, 5)
    seen = (tmp_path / "seen.txt").read_text().splitlines()
    assert any(len(line.split()) >= 2 for line in seen), seen  # at least one real batch
    entries = json.loads(project.gitdag("log", "t3", "--json").out)
    assert any(e["verb"] == "merge" and "check failed" in e["summary"] for e in entries)


@pytest.mark.parametrize(
    "point",
    [
        "merge.batch_after_advance",
        "supervisor.before_merge_commit",
        "store.before_cas#11",
    ],
)
def test_a_kill_mid_batch_recovers_with_each_change_landed_once(
    project: Project,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
    point: str,
) -> None:
    env = setup(project, tmp_path, 4)
    killed = run_gitdag(
        project.root, "run", "--workers", "4", env={**env, "GITDAG_CRASH_AT": point}
    )
    assert killed.code == 137, killed.err
    records_agree_with_the_target(project, 4)
    res = run_gitdag(project.root, "run", "--workers", "4", env=env)
    assert res.code == 0, res.err
    landed_once(project, 4)
