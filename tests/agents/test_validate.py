"""`gitdag validate A..B` checks iterate, defer and group merges (issue 17 part 4)."""

from __future__ import annotations

import re

from tests.agents.conftest import LoopProject
from tests.conftest import git
from tests.review.helpers import hand_commit, node_file

ONE_ATTEMPT = {"max_attempts": 1, "backoff_s": 0}


def first_commit(loops: LoopProject) -> str:
    return git(loops.root, "rev-list", "--max-parents=0", "dagain/state").split()[0]


def validate_range(loops: LoopProject, start: str) -> tuple[int, str]:
    res = loops.gitdag("validate", f"{start}..dagain/state")
    return res.code, res.out + res.err


def test_every_new_transition_kind_of_a_real_run_is_legal(loops: LoopProject) -> None:
    gen = {"id": "gen", "title": "gen", "kind": "verify"}
    loops.plan(
        [
            {"id": "count", "title": "count", "kind": "verify"},
            {"id": "wait", "title": "wait", "kind": "verify"},
            {"id": "g1", "title": "g1", "group": "pair"},
            {"id": "g2", "title": "g2", "group": "pair"},
        ],
        {
            "count": {"until": 2},
            "wait": {"results": [{"status": "needs", "needs": [gen]}, {"status": "success"}]},
            "g1": {"write_attempt": True},
            "g2": {"write_attempt": True},
        },
    )
    start = git(loops.root, "rev-parse", "dagain/state").strip()
    res = loops.gitdag("run", "--workers", "2")
    assert res.code == 0, res.err
    verbs = set(re.findall(r"Gitdag-Transition: (\w+)", "\n".join(loops.state_log())))
    assert {"iterate", "defer", "merge"} <= verbs
    assert any("Gitdag-Group: pair" in m for m in loops.state_log())
    code, out = validate_range(loops, start)
    assert code == 0, out


def test_a_hand_made_iteration_outside_iterate_is_named(loops: LoopProject) -> None:
    loops.plan([{"id": "count", "title": "count", "kind": "verify"}], {"count": {"until": 2}})
    assert loops.gitdag("run").code == 0
    before = git(loops.root, "rev-parse", "dagain/state").strip()
    path, text = node_file(loops.root, "count")
    assert "  iteration: 3\n" in text
    forged = text.replace("  iteration: 3\n", "  iteration: 7\n")
    hand_commit(loops.root, {path: forged}, "edit count\n\nGitdag-Transition: edit\n"
                "Gitdag-Node: count\nGitdag-Actor: someone\n")  # fmt: skip
    code, out = validate_range(loops, before)
    assert code != 0
    assert "carry.iteration 3 -> 7 by 'edit' (only iterate moves it)" in out


def test_a_hand_made_iterate_on_a_finished_node_is_named(loops: LoopProject) -> None:
    loops.plan([{"id": "count", "title": "count", "kind": "verify"}], {"count": {"until": 1}})
    assert loops.gitdag("run").code == 0
    before = git(loops.root, "rev-parse", "dagain/state").strip()
    path, text = node_file(loops.root, "count")
    forged = text.replace("  iteration: 2\n", "  iteration: 3\n")
    hand_commit(loops.root, {path: forged}, "iterate count\n\nGitdag-Transition: iterate\n"
                "Gitdag-Node: count\nGitdag-Actor: someone\nGitdag-Iteration: 3\n")  # fmt: skip
    code, out = validate_range(loops, before)
    assert code != 0
    assert "iterate on a node that is not running" in out


def test_a_group_member_merged_alone_by_hand_is_named(loops: LoopProject) -> None:
    nodes = [{"id": "w1", "title": "w1", "group": "api"},
             {"id": "w2", "title": "w2", "group": "api", "retry": ONE_ATTEMPT}]  # fmt: skip
    loops.plan(
        nodes,
        {"w1": {"write_attempt": True}, "w2": {"results": [{"status": "fail", "summary": "no"}]}},
    )
    assert loops.gitdag("run").code != 0
    before = git(loops.root, "rev-parse", "dagain/state").strip()
    path, text = node_file(loops.root, "w1")
    head = re.search(r"  head: \"?(\w+)\"?\n", text)
    assert head is not None and "status: merging" in text
    forged = re.sub(r"\n  merged: [^\n]*", "", text)  # then add the integrating commit
    forged = forged.replace("status: merging", "status: done").replace(
        head.group(0), head.group(0) + f"  merged: {head.group(1)}\n"
    )
    hand_commit(loops.root, {path: forged}, "merge w1: merging -> done\n\n"
                "Gitdag-Transition: merge\nGitdag-Node: w1\nGitdag-Actor: someone\n")  # fmt: skip
    code, out = validate_range(loops, before)
    assert code != 0
    assert "a member of group api merged alone" in out


def test_a_hand_made_defer_that_drops_a_dep_is_named(loops: LoopProject) -> None:
    gen = {"id": "gen", "title": "gen", "kind": "verify"}
    loops.plan(
        [{"id": "wait", "title": "wait", "kind": "verify"}],
        {"wait": {"results": [{"status": "needs", "needs": [gen]}, {"status": "success"}]}},
    )
    assert loops.gitdag("run").code == 0
    before = git(loops.root, "rev-parse", "dagain/state").strip()
    path, text = node_file(loops.root, "wait")
    assert "deps:\n  - gen\n" in text and "deferrals: 1" in text
    forged = text.replace("deps:\n  - gen\n", "deps: []\n").replace("deferrals: 1", "deferrals: 2")
    hand_commit(loops.root, {path: forged}, "defer wait: done -> done\n\n"
                "Gitdag-Transition: defer\nGitdag-Node: wait\nGitdag-Actor: someone\n")  # fmt: skip
    code, out = validate_range(loops, before)
    assert code != 0
    assert "defer dropped deps gen" in out
    assert "defer must give the attempt back" in out
