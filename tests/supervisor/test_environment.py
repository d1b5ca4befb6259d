"""Environment failures hold the work; they never re-run the agent nor escalate (issue 12)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import git, run_gitdag
from tests.supervisor.conftest import Project
from tests.supervisor.test_merge import plan_tasks


def starts(project: Project) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind, node, *_ in project.log():
        if kind == "start":
            counts[node] = counts.get(node, 0) + 1
    return counts


def statuses(project: Project) -> dict[str, str]:
    data = json.loads(project.gitdag("graph", "--format", "json").out)
    return {n["id"]: n["status"] for n in data["nodes"]}


def two_tasks(project: Project) -> None:
    behaviours = plan_tasks({"id": "t1", "title": "one"}, {"id": "t2", "title": "two"})
    behaviours["t1"] = {"write": {"one.txt": "1\n"}}
    behaviours["t2"] = {"write": {"two.txt": "2\n"}}
    project.plan(behaviours)


def test_dirty_checkout_of_the_target_holds_merges_then_stash_lets_them_land(
    project: Project,
) -> None:
    two_tasks(project)
    git(project.root, "checkout", "-q", "dagain/integration")
    (project.root / "README.md").write_text("# an edit of the user's\n")
    res = project.gitdag("run", "--workers", "2")
    assert res.code == 1, res.err
    assert starts(project) == {"plan-000": 1, "t1": 1, "t2": 1}
    assert statuses(project) == {"plan-000": "done", "t1": "merging", "t2": "merging"}
    held = [line for line in res.err.splitlines() if "held (target_dirty)" in line]
    assert len(held) == 1 and "README.md" in held[0] and "stash" in held[0], res.err
    hold = project.show("t1")["hold"]
    assert isinstance(hold, dict) and hold["kind"] == "target_dirty" and "stash" in hold["repair"]
    assert "escalate" not in " ".join(statuses(project))
    report = json.loads(project.gitdag("status", "--json").out)
    assert [h["id"] for h in report["held"]] == ["t2", "t1"] or len(report["held"]) == 2
    assert {h["kind"] for h in report["held"]} == {"target_dirty"}
    assert "held (2): " in project.gitdag("status").out
    shown = git(project.root, "show", "dagain/state:README.md")
    assert "## Held for a repair (2)" in shown and "t1](nodes/" in shown, shown
    assert ": target_dirty" in shown
    doctor = project.gitdag("doctor")
    assert doctor.code == 1 and "t1 waits to be merged (target_dirty)" in doctor.out + doctor.err
    # The user's checkout is as they left it.
    assert (project.root / "README.md").read_text() == "# an edit of the user's\n"

    git(project.root, "stash", "-q")
    again = project.gitdag("run")
    assert again.code == 0, again.err
    assert starts(project) == {"plan-000": 1, "t1": 1, "t2": 1}  # no agent ran again
    assert statuses(project) == {"plan-000": "done", "t1": "done", "t2": "done"}
    assert project.show("t1").get("hold") is None
    assert "Held for a repair" not in git(project.root, "show", "dagain/state:README.md")
    assert (project.root / "one.txt").read_text() == "1\n"  # the checkout moved with the target
    assert project.gitdag("validate").code == 0


def test_dirty_checkout_under_watch_merges_once_the_user_stashes(project: Project) -> None:
    two_tasks(project)
    git(project.root, "checkout", "-q", "dagain/integration")
    (project.root / "README.md").write_text("# wip\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitdag", "run", "--watch"],
        cwd=project.root,
        env={**__import__("os").environ, **project.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (
                project.log_path.exists()
                and starts(project).get("t2")
                and starts(project).get("t1")
            ):
                break
            time.sleep(0.2)
        time.sleep(1.5)  # it holds (and must not spin) for a while
        git(project.root, "stash", "-q")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            landed = [
                git(project.root, "show", f"dagain/integration:{name}", check=False).strip()
                for name in ("one.txt", "two.txt")
            ]
            if landed == ["1", "2"]:
                break
            time.sleep(0.2)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert starts(project) == {"plan-000": 1, "t1": 1, "t2": 1}
    assert sum("held (target_dirty)" in line for line in err.splitlines()) == 1, err
    assert len(err.splitlines()) < 40, err  # nothing polled loudly


def test_target_deleted_mid_run_exits_quickly_with_one_line_and_nothing_failed(
    project: Project,
) -> None:
    behaviours = plan_tasks(
        {"id": "t1", "title": "one"}, {"id": "t2", "title": "two", "deps": ["t1"]}
    )
    behaviours["t1"] = {"write": {"one.txt": "1\n"}, "sleep": 1.0}
    project.plan(behaviours)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitdag", "run"],
        cwd=project.root,
        env={**__import__("os").environ, **project.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not starts(project).get("t1"):
        time.sleep(0.05)
    git(project.root, "branch", "-D", "dagain/integration")
    deleted = time.monotonic()
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - deleted
    assert proc.returncode == 1, err
    assert took < 20, took  # the product's number is 5 s; generous under load
    lines = [line for line in (out + err).splitlines() if "target_missing" in line]
    assert len(lines) >= 1 and sum("held (target_missing)" in x for x in lines) == 1, err
    assert "git branch dagain/integration" in lines[0]
    assert len(err.splitlines()) < 15, err
    st = statuses(project)
    assert "failed" not in st.values() and st["t1"] == "merging", st
    assert starts(project) == {"plan-000": 1, "t1": 1}


def test_a_runner_executable_that_disappears_mid_run_is_held_not_failed(
    project: Project, tmp_path: Path
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    agent = bindir / "my-agent"
    fake = Path(__file__).with_name("fake_runner.py")
    agent.write_text(f'#!/bin/sh\nexec {sys.executable} {fake} "$@"\n')
    agent.chmod(0o755)
    behaviours = plan_tasks(
        {"id": "t1", "title": "one"}, {"id": "t2", "title": "two", "deps": ["t1"]}
    )
    # The first task's agent removes the executable: the next start finds it gone.
    behaviours["t1"] = {"write": {"one.txt": "1\n"}, "delete": str(agent)}
    project.plan(behaviours)
    project.config(runners="  mine:\n    cmd: my-agent\n", roles=(
        "  planner: fake\n  executor: mine\n  verifier: fake\n"))  # fmt: skip
    env = {**project.env(), "PATH": f"{bindir}:/usr/bin:/bin"}
    res = run_gitdag(project.root, "run", env=env, timeout=120)
    assert res.code == 1, res.err
    assert starts(project) == {"plan-000": 1, "t1": 1}
    st = statuses(project)
    assert st["t2"] == "open" and "failed" not in st.values(), st
    assert not any(nid.startswith("escalate") for nid in st)
    held = [line for line in res.err.splitlines() if "held (runner_missing)" in line]
    assert len(held) == 1 and "my-agent" in held[0] and "config.yaml" in held[0], res.err
    node = project.show("t2")
    assert node["attempts"] == 1 and node["attempt_base"] == 1  # the lost start does not count
    # Repaired: the next run starts it without further ado.
    agent.write_text(f'#!/bin/sh\nexec {sys.executable} {fake} "$@"\n')
    agent.chmod(0o755)
    again = run_gitdag(project.root, "run", env=env, timeout=120)
    assert again.code == 0, again.err
    assert starts(project) == {"plan-000": 1, "t1": 1, "t2": 1}


def test_a_full_disk_keeps_the_work_and_retries_without_the_agent(
    project: Project, tmp_path: Path
) -> None:
    two_tasks(project)
    flag = tmp_path / "disk-full"
    flag.write_text("")
    env = {**project.env(), "GITDAG_FAULT_AT": f"git.commit:ENOSPC@{flag}"}
    res = run_gitdag(project.root, "run", env=env, timeout=120)
    assert res.code == 1, res.err
    assert starts(project) == {"plan-000": 1, "t1": 1, "t2": 1}
    st = statuses(project)
    assert st == {"plan-000": "done", "t1": "merging", "t2": "merging"}, st
    held = [line for line in res.err.splitlines() if "held (disk_full)" in line]
    assert len(held) == 1 and "No space left on device" in held[0], res.err
    flag.unlink()
    again = run_gitdag(project.root, "run", env=env, timeout=120)
    assert again.code == 0, again.err
    assert starts(project) == {"plan-000": 1, "t1": 1, "t2": 1}
    assert git(project.root, "show", "dagain/integration:two.txt").strip() == "2"
    assert git(project.root, "show", "dagain/integration:one.txt").strip() == "1"


def test_a_runner_that_moves_the_state_back_below_its_claim_starts_at_most_max_attempts(
    project: Project,
) -> None:
    behaviours = plan_tasks({"id": "t1", "title": "one"})
    # Its runner resets dagain/state to the commit before its own claim, every time.
    behaviours["t1"] = {
        "shell": "git update-ref refs/heads/dagain/state $(git rev-parse dagain/state~1)",
        "write": {"one.txt": "1\n"},
        "sleep": 0.3,
    }
    project.plan(behaviours)
    res = project.gitdag("run", timeout=120)
    assert starts(project).get("t1", 0) <= 3, (starts(project), res.err)
    assert res.code in (1, 2), res.err
    assert "Traceback" not in res.err and "FileNotFoundError" not in res.err, res.err
    incidents = (project.root / ".dagain/local/incidents.log").read_text()
    assert "t1" in incidents and "moved back" in incidents
    again = project.gitdag("run", timeout=120)
    assert starts(project).get("t1", 0) <= 3, (starts(project), again.err)
    assert again.code in (1, 2) and "Traceback" not in again.err, again.err


def test_a_state_commit_on_a_full_disk_exits_2_naming_the_path(
    project: Project, tmp_path: Path
) -> None:
    flag = tmp_path / "state-disk-full"
    behaviours = plan_tasks({"id": "t1", "title": "one"})
    # t1's first agent run fills the disk as it finishes: the next state commit fails.
    once = tmp_path / "filled-once"
    fill = f"[ -e {once} ] || {{ touch {once} {flag}; }}"
    behaviours["t1"] = {"write": {"one.txt": "1\n"}, "shell": fill}
    project.plan(behaviours)
    env = {**project.env(), "GITDAG_FAULT_AT": f"supervisor.state_commit:ENOSPC@{flag}"}
    res = run_gitdag(project.root, "run", env=env, timeout=120)
    assert res.code == 2, res.err
    errors = [line for line in res.err.splitlines() if line.startswith("gitdag: error:")]
    assert len(errors) == 1, res.err
    assert "No space left on device" in errors[0] and ".git/objects" in errors[0], res.err
    assert "Traceback" not in res.err and "unexpected error" not in res.err
    # Nothing half-written: the graph is valid and t1 is as its claim left it.
    assert project.gitdag("validate").code == 0
    assert statuses(project) == {"plan-000": "done", "t1": "running"}
    flag.unlink()  # the disk is freed: a restart recovers
    again = run_gitdag(project.root, "run", env=env, timeout=120)
    assert again.code == 0, again.err
    assert statuses(project) == {"plan-000": "done", "t1": "done"}
    assert git(project.root, "show", "dagain/integration:one.txt").strip() == "1"


def test_status_shows_the_starts_a_running_supervisor_holds(
    project: Project, tmp_path: Path
) -> None:
    import os

    from tests.remote.conftest import wait_for

    bindir = tmp_path / "bin"
    bindir.mkdir()
    agent = bindir / "my-agent"
    fake = Path(__file__).with_name("fake_runner.py")
    agent.write_text(f'#!/bin/sh\nexec {sys.executable} {fake} "$@"\n')
    agent.chmod(0o755)
    behaviours = plan_tasks({"id": "t1", "title": "one"}, {"id": "t2", "title": "two"})
    behaviours["plan-000"]["delete"] = str(agent)  # the executor's executable goes missing
    project.plan(behaviours)
    project.config(runners="  mine:\n    cmd: my-agent\n", roles=(
        "  planner: fake\n  executor: mine\n  verifier: fake\n"))  # fmt: skip
    env = {**os.environ, **project.env(), "PATH": f"{bindir}:/usr/bin:/bin"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitdag", "run", "--watch"], cwd=project.root, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def held() -> list[dict[str, object]]:
        return list(json.loads(project.gitdag("status", "--json").out)["start_holds"])

    try:
        wait_for(lambda: held(), 60, "a start hold in status")
        hold = held()[0]
        assert hold["kind"] == "runner_missing" and "my-agent" in str(hold["reason"]), hold
        assert hold["nodes"] == ["t1", "t2"] and hold["count"] == 2, hold
        text = project.gitdag("status").out
        assert "starts held (runner_missing)" in text and "2 ready node(s): t1, t2" in text, text
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert held() == []  # the supervisor stopped: nothing is held any more
