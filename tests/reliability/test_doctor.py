"""`gitdag doctor [--fix]` on real repositories left in the states crashes and hand edits leave."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import git, run_gitdag
from tests.supervisor.conftest import Project


def doctor(project: Project, *args: str) -> tuple[int, list[dict[str, object]]]:
    res = project.gitdag("doctor", "--json", *args)
    assert res.code in (0, 1), res.err
    return res.code, list(json.loads(res.out)["findings"])


def checks(findings: list[dict[str, object]]) -> list[str]:
    return [str(f["check"]) for f in findings]


def add_task(project: Project, nid: str, text: str) -> None:
    behaviours = json.loads(project.plan_path.read_text())
    behaviours[nid] = {"write": {f"{nid}.txt": text}}
    project.plan(behaviours)
    assert project.gitdag("add", nid, "--title", nid).code == 0


def test_a_clean_repository_after_a_run_has_nothing_to_repair(rproject: Project) -> None:
    add_task(rproject, "t", "t\n")
    assert rproject.gitdag("run").code == 0
    res = rproject.gitdag("doctor")
    assert res.code == 0 and "ok: nothing to repair" in res.out


def test_stale_locks_are_reported_and_removed(rproject: Project) -> None:
    lock = rproject.root / ".git" / "refs" / "heads" / "dagain" / "state.lock"
    lock.write_text("0" * 40 + "\n")
    old = time.time() - 120
    os.utime(lock, (old, old))
    local = rproject.root / ".dagain" / "local"
    (local / "supervisor.lock").touch()
    (local / "supervisor.json").write_text(json.dumps({"pid": 999999, "host": "h"}))
    code, found = doctor(rproject)
    assert code == 1 and checks(found) == ["lock", "lock"]
    assert found[0]["repair"] == f"rm {lock}" and found[0]["fixable"]
    code, found = doctor(rproject, "--fix")
    assert code == 0 and all(f["fixed"] for f in found)
    assert not lock.exists() and not (local / "supervisor.json").exists()
    assert rproject.gitdag("add", "x", "--title", "x").code == 0


def test_an_orphaned_runner_of_a_killed_supervisor_is_stopped(rproject: Project) -> None:
    rproject.plan({"slow": {"sleep": 60}})
    assert rproject.gitdag("add", "slow", "--title", "s", "--kind", "verify").code == 0
    env = {**os.environ, **rproject.env()}
    sup = subprocess.Popen([sys.executable, "-m", "gitdag", "run"], cwd=rproject.root, env=env,
                           stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 30
    while not any(r[0] == "start" for r in rproject.log()):
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(sup.pid, signal.SIGKILL)
    sup.wait()
    runner = rproject.log()[0][3]
    code, found = doctor(rproject)
    assert code == 1 and checks(found) == ["lock", "orphan"]  # the dead supervisor's record too
    assert "slow attempt 1" in str(found[1]["problem"])
    code, found = doctor(rproject, "--fix")
    assert code == 0 and "stopped" in str(found[1]["fixed"])
    assert not Path(f"/proc/{runner}").exists() or "Z" in Path(f"/proc/{runner}/stat").read_text()
    # `gitdag run` then reclaims the node with a new attempt; nothing is left to stop.
    rproject.plan({"slow": {}})
    assert rproject.gitdag("run").code == 0
    assert doctor(rproject) == (0, [])


def test_leftover_worktree_after_a_crash_is_removed(rproject: Project) -> None:
    add_task(rproject, "t", "t\n")
    behaviours = json.loads(rproject.plan_path.read_text())
    behaviours["t"]["exit"] = 3  # a failed attempt: its checkout is released after `fail`
    rproject.plan(behaviours)
    env = {**rproject.env(), "GITDAG_CRASH_AT": "store.after_cas#2"}  # right after the failure
    assert run_gitdag(rproject.root, "run", env=env).code == 137
    code, found = doctor(rproject)
    assert code == 1 and checks(found) == ["lock", "worktree"]  # and the dead supervisor's record
    assert "t" in str(found[1]["problem"])
    code, found = doctor(rproject, "--fix")
    assert code == 0
    assert not (rproject.root / ".dagain" / "local" / "worktrees" / "t").exists()


def test_merging_node_already_on_the_target_is_recorded(rproject: Project) -> None:
    add_task(rproject, "t", "t\n")
    env = {**rproject.env(), "GITDAG_CRASH_AT": "supervisor.before_merge_commit"}
    assert run_gitdag(rproject.root, "run", env=env).code == 137
    assert rproject.show("t")["status"] == "merging"
    # gitdag lands a merge and its record together; a person fast-forwarding the target to the
    # node's branch meanwhile is what leaves a merging node's code on the target unrecorded.
    git(rproject.root, "update-ref", "refs/heads/dagain/integration", "dagain/work/t")
    tip = git(rproject.root, "rev-parse", "dagain/integration").strip()
    code, found = doctor(rproject)
    assert code == 1 and checks(found) == ["lock", "target"] and found[1]["fixable"]
    code, found = doctor(rproject, "--fix")
    assert code == 0, found
    node = rproject.show("t")
    assert node["status"] == "done" and node["work"]["merged"] == tip  # type: ignore[index]
    assert git(rproject.root, "rev-parse", "dagain/integration").strip() == tip  # not merged twice
    assert rproject.gitdag("validate", "..dagain/state").code == 0


def test_done_node_whose_code_left_the_target_needs_a_person(rproject: Project) -> None:
    start = git(rproject.root, "rev-parse", "dagain/integration").strip()
    add_task(rproject, "t", "t\n")
    assert rproject.gitdag("run").code == 0
    git(rproject.root, "update-ref", "refs/heads/dagain/integration", start)
    code, found = doctor(rproject, "--fix")
    assert code == 1 and checks(found) == ["target"]
    assert found[0]["fixed"] is None and found[0]["repair"].startswith("gitdag retry --force t")  # type: ignore[union-attr]


def test_invalid_state_branch_and_bad_config_are_reported(rproject: Project) -> None:
    from gitdag.core.ids import node_path

    assert rproject.gitdag("add", "y", "--title", "y").code == 0
    path = node_path("y")
    text = git(rproject.root, "show", f"dagain/state:{path}")
    text = text.replace("status: open", "status: done")
    env = {**os.environ, "GIT_INDEX_FILE": str(rproject.root / ".git" / "doctor-index")}
    head = git(rproject.root, "rev-parse", "dagain/state").strip()
    subprocess.run(["git", "read-tree", head], cwd=rproject.root, env=env, check=True)
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=rproject.root, input=text,
                          text=True, capture_output=True, check=True).stdout.strip()  # fmt: skip
    subprocess.run(["git", "update-index", "--cacheinfo", f"100644,{blob},{path}"],
                   cwd=rproject.root, env=env, check=True)  # fmt: skip
    tree = subprocess.run(["git", "write-tree"], cwd=rproject.root, env=env, text=True,
                          capture_output=True, check=True).stdout.strip()  # fmt: skip
    bad = git(rproject.root, "commit-tree", tree, "-p", head, "-m", "by hand").strip()
    git(rproject.root, "update-ref", "refs/heads/dagain/state", bad)
    (rproject.root / ".dagain" / "config.yaml").write_text("schema_version: 1\nrunerz: {}\n")
    code, found = doctor(rproject, "--fix")
    assert code == 1 and checks(found) == ["config", "state"]
    assert "runerz: unknown key" in str(found[0]["problem"])
    assert f"gitdag revert {bad[:12]}" in str(found[1]["repair"])
    assert git(rproject.root, "rev-parse", "dagain/state").strip() == bad  # --fix left it alone


def test_many_loose_objects_suggest_git_gc(rproject: Project) -> None:
    from dulwich.objects import Blob, Commit, Tree
    from dulwich.repo import Repo

    # Reachable loose objects, as thousands of transitions leave them (git gc packs those).
    with Repo(str(rproject.root)) as repo:
        tree = Tree()
        for i in range(5100):
            blob = Blob.from_string(f"{i}\n".encode())
            repo.object_store.add_object(blob)
            tree.add(f"f{i}".encode(), 0o100644, blob.id)
        repo.object_store.add_object(tree)
        commit = Commit()
        commit.tree = tree.id
        commit.author = commit.committer = b"t <t@x>"
        commit.author_time = commit.commit_time = 0
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = b"many files\n"
        repo.object_store.add_object(commit)
        repo.refs[b"refs/heads/many"] = commit.id
    code, found = doctor(rproject)
    assert code == 1 and checks(found) == ["objects"] and found[0]["repair"] == "git gc"
    code, found = doctor(rproject, "--fix")
    assert code == 0 and found[0]["fixed"] == "ran git gc"
    assert doctor(rproject) == (0, [])
