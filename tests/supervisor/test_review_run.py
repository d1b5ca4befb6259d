"""Git-native recovery with a supervisor in the loop (issue 5): bad heads, revert, reset."""

from __future__ import annotations

import json
import os
import subprocess

from tests.conftest import git
from tests.supervisor.conftest import Project


def hand_commit(project: Project, path: str, text: str, message: str) -> str:
    """Commit one changed file onto dagain/state with git plumbing, as a person might."""
    root = project.root
    env = {**os.environ, "GIT_INDEX_FILE": str(root / ".git" / "hand-index")}
    head = git(root, "rev-parse", "dagain/state").strip()
    subprocess.run(["git", "read-tree", head], cwd=root, env=env, check=True)
    blob = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"],
        cwd=root,
        input=text,
        text=True,
        capture_output=True,
        check=True,
    ).stdout.strip()
    subprocess.run(
        ["git", "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}"],
        cwd=root,
        env=env,
        check=True,
    )
    tree = subprocess.run(
        ["git", "write-tree"], cwd=root, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    commit = subprocess.run(
        ["git", "commit-tree", tree, "-p", head, "-m", message],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    git(root, "update-ref", "refs/heads/dagain/state", commit, head)
    return commit


def node_path(project: Project, node_id: str) -> str:
    from gitdag.core.ids import node_path as path_of

    return path_of(node_id)


def test_hand_made_done_without_result_is_refused_until_repaired(project: Project) -> None:
    assert (
        project.gitdag("add", "y", "--title", "y", "--kind", "command", "--run", "true").code == 0
    )
    init = git(project.root, "rev-list", "--max-parents=0", "dagain/state").strip()
    path = node_path(project, "y")
    text = git(project.root, "show", f"dagain/state:{path}").replace("status: open", "status: done")
    bad = hand_commit(project, path, text, "mark y done by hand")
    res = project.gitdag("validate", f"{init}..dagain/state")
    assert res.code == 2
    assert bad[:12] in res.err and "y" in res.err
    run = project.gitdag("run")
    assert run.code == 2
    assert f"gitdag revert {bad[:12]}" in run.err
    assert git(project.root, "rev-parse", "dagain/state").strip() == bad  # nothing built on it
    assert project.gitdag("revert", bad).code == 0
    assert project.gitdag("validate", f"{init}..dagain/state").code == 0
    res = project.gitdag("run")
    assert res.code == 0, res.err
    assert project.show("y")["status"] == "done" and project.show("y")["outputs"]["summary"]  # type: ignore[index]


def test_reset_to_after_init_reruns_a_finished_50_node_graph(project: Project) -> None:
    project.plan(
        {
            "plan-000": {
                "result": {
                    "status": "success",
                    "next": {
                        "addNodes": [
                            {
                                "id": f"n{i:02d}",
                                "title": f"n{i}",
                                "kind": "command",
                                "run": "true",
                                "deps": [f"n{i - 1:02d}"] if i % 10 else [],
                            }
                            for i in range(50)
                        ]
                    },
                }
            }
        }
    )
    assert project.gitdag("run", "--workers", "4").code == 0
    after_init = git(project.root, "rev-list", "--max-parents=0", "dagain/state").strip()
    before = int(git(project.root, "rev-list", "--count", "dagain/state"))
    res = project.gitdag("reset", "--to", after_init)
    assert res.code == 0, res.err
    status = json.loads(project.gitdag("status", "--json").out)
    assert status["total"] == 1 and status["counts"]["open"] == 1  # the graph of REV: plan-000 only
    assert (
        int(git(project.root, "rev-list", "--count", "dagain/state")) == before + 1
    )  # history kept
    res = project.gitdag("run", "--workers", "4")
    assert res.code == 0, res.err
    status = json.loads(project.gitdag("status", "--json").out)
    assert status["counts"]["done"] == 51
    claims = [
        e
        for e in json.loads(project.gitdag("log", "plan-000", "--json").out)
        if e["verb"] == "claim"
    ]
    assert len(claims) == 2  # planned once before the reset, once after
    assert project.gitdag("validate").code == 0


def test_review_required_turns_a_plan_into_a_proposal_a_person_applies(project: Project) -> None:
    project.config(extra="review: required\n")
    project.plan(
        {
            "plan-000": {
                "result": {
                    "status": "success",
                    "summary": "two steps",
                    "next": {
                        "addNodes": [
                            {"id": "s1", "title": "step 1", "kind": "command", "run": "true"},
                            {
                                "id": "s2",
                                "title": "step 2",
                                "kind": "command",
                                "run": "true",
                                "deps": ["s1"],
                            },
                        ]
                    },
                }
            }
        }
    )
    res = project.gitdag("run")
    assert res.code == 1 and "proposal plan-000-a1 awaits review" in res.err
    status = json.loads(project.gitdag("status", "--json").out)
    assert status["total"] == 1  # nothing applied without review
    assert project.show("plan-000")["outputs"]["proposal"] == "dagain/proposals/plan-000-a1"  # type: ignore[index]
    diff = project.gitdag("diff", "dagain/state", "dagain/proposals/plan-000-a1")
    assert diff.code == 0 and "s1" in diff.out and "s2" in diff.out
    assert project.gitdag("apply-proposal", "plan-000-a1").code == 0
    res = project.gitdag("run")
    assert res.code == 0, res.err
    assert project.show("s2")["status"] == "done" and project.show("s2")["parent"] == "plan-000"


def test_the_verified_head_persists_across_restarts(project: Project) -> None:
    """A restart checks only the commits since the persisted verified head, not all history."""
    verified = project.root / ".dagain" / "local" / "verified-head"
    assert (
        project.gitdag("add", "y", "--title", "y", "--kind", "command", "--run", "true").code == 0
    )
    assert project.gitdag("run").code == 0
    ran = git(project.root, "rev-parse", "dagain/state").strip()
    assert verified.read_text().strip() == ran  # the supervisor's own last commit is verified
    assert (
        project.gitdag("add", "z", "--title", "z", "--kind", "command", "--run", "true").code == 0
    )
    path = node_path(project, "z")
    text = git(project.root, "show", f"dagain/state:{path}").replace("status: open", "status: done")
    bad = hand_commit(project, path, text, "mark z done by hand")  # illegal; the graph is valid
    refused = project.gitdag("run")
    assert refused.code == 2 and f"gitdag revert {bad[:12]}" in refused.err
    assert verified.read_text().strip() == ran  # a refused head is never recorded as verified
    # As if a supervisor had verified `bad` before: a restart does not re-validate it, so it runs
    # (were all history re-checked, or the check made from the branch's root, it would refuse).
    verified.write_text(bad + "\n")
    assert project.gitdag("run").code == 0
    assert verified.read_text().strip() == bad  # nothing new to build: the head is unchanged
    assert git(project.root, "rev-parse", "dagain/state").strip() == bad
    # Without the record, the same restart checks from the root and refuses again.
    verified.unlink()
    again = project.gitdag("run")
    assert again.code == 2 and f"gitdag revert {bad[:12]}" in again.err
    assert not verified.exists()
