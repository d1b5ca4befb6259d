"""Transaction groups: members integrate all together or not at all (issue 17 part 3)."""

from __future__ import annotations

import json

from tests.agents.conftest import LoopProject
from tests.conftest import git


def group_nodes(*ids: str) -> list[dict[str, object]]:
    return [{"id": nid, "title": f"change {nid}", "group": "api"} for nid in ids]


def spent(loops: LoopProject, node_id: str) -> int:
    shown = loops.show(node_id)
    return int(shown["attempts"]) - int(shown["attempt_base"])  # type: ignore[call-overload]


def test_a_group_whose_third_member_fails_the_check_never_lands_half(loops: LoopProject) -> None:
    loops.config("merge:\n  check: test ! -f g3-a1.txt\n")
    packets = str(loops.tmp / "g1-packet-{attempt}.json")
    loops.plan(
        group_nodes("g1", "g2", "g3"),
        {
            "g1": {"write_attempt": True, "copy_packet": packets},
            "g2": {"write_attempt": True},
            "g3": {"write_attempt": True},
        },
    )
    res = loops.gitdag("run", "--workers", "3")
    assert res.code == 0, res.err
    for nid in ("g1", "g2", "g3"):
        assert loops.show(nid)["status"] == "done"
    # The target never held part of the group: every first-parent commit has all or none.
    for commit in git(loops.root, "rev-list", "--first-parent", "dagain/integration").split():
        files = set(git(loops.root, "ls-tree", "--name-only", commit).split())
        held = {name for name in ("g1-a1.txt", "g2-a1.txt", "g3-a2.txt") if name in files}
        assert held in (set(), {"g1-a1.txt", "g2-a1.txt", "g3-a2.txt"}), (commit, held)
    lands = [s for s in loops.target_log() if s.startswith("gitdag: integrate")]
    assert lands == ["gitdag: integrate group api (3 nodes)"]
    assert "g3-a1.txt" not in git(loops.root, "ls-tree", "--name-only", "dagain/integration")
    # Only the member whose merge failed the check spent an attempt; the others were sent back
    # with the reason in their packet, resuming from their own branch.
    assert (spent(loops, "g1"), spent(loops, "g2"), spent(loops, "g3")) == (1, 1, 2)
    second = json.loads((loops.tmp / "g1-packet-2.json").read_text())
    assert "group api did not land" in second["resume"]["summary"]
    assert "g3" in second["resume"]["summary"]
    merges = [m for m in loops.state_log() if "Gitdag-Group: api" in m]
    assert any(m.startswith("merge g1: merging -> done") for m in merges)
    assert loops.gitdag("validate").code == 0


def test_a_conflict_inside_a_group_sends_back_only_the_conflicting_members(
    loops: LoopProject,
) -> None:
    loops.plan(
        group_nodes("c1", "c2", "c3"),
        {
            "c1": {"files": [{"shared.txt": "one\n"}]},
            "c2": {"files": [{"shared.txt": "two\n"}, {"c2.txt": "apart\n"}]},
            "c3": {"files": [{"c3.txt": "three\n"}]},
        },
    )
    res = loops.gitdag("run", "--workers", "3")
    assert res.code == 0, res.err
    assert (spent(loops, "c1"), spent(loops, "c2"), spent(loops, "c3")) == (2, 2, 1)
    log = loops.state_log()
    conflict = [m for m in log if "merge conflict" in m and "Gitdag-Group: api" in m]
    assert {m.split()[1].rstrip(":") for m in conflict} == {"c1", "c2", "c3"}
    assert any("not involved" in m and m.startswith("merge c3") for m in conflict)
    lands = [s for s in loops.target_log() if s.startswith("gitdag: integrate")]
    assert lands == ["gitdag: integrate group api (3 nodes)"]
    assert git(loops.root, "show", "dagain/integration:shared.txt") == "one\n"
    assert loops.gitdag("validate").code == 0


def test_status_graph_and_readme_show_a_group_waiting_for_a_failed_member(
    loops: LoopProject,
) -> None:
    nodes = group_nodes("w1", "w2")
    nodes[1]["retry"] = {"max_attempts": 1, "backoff_s": 0}
    loops.plan(
        nodes,
        {"w1": {"write_attempt": True}, "w2": {"results": [{"status": "fail", "summary": "no"}]}},
    )
    res = loops.gitdag("run", "--workers", "2")
    assert res.code != 0
    assert "group api waits for w2 (failed)" in res.err
    assert loops.show("w1")["status"] == "merging"  # it never lands alone
    assert not [s for s in loops.target_log() if s.startswith("gitdag: integrate")]
    status = loops.gitdag("status")
    assert "group api: w1 merging, w2 failed (group api waits for w2 (failed))" in status.out
    data = json.loads(loops.gitdag("status", "--json").out)
    assert data["groups"][0]["members"] == [
        {"id": "w1", "status": "merging"},
        {"id": "w2", "status": "failed"},
    ]
    mermaid = loops.gitdag("graph", "--format", "mermaid").out
    assert 'subgraph group_0["group api"]' in mermaid
    readme = git(loops.root, "show", "dagain/state:README.md")
    assert "## Transaction groups (1)" in readme
    assert "merging" in readme.split("## Transaction groups")[1]
