"""`gitdag revert` and `gitdag reset` on real repositories: forward commits, refusals, trailers."""

from __future__ import annotations

from pathlib import Path

from gitdag.core.model import Status
from gitdag.store.layout import STATE_BRANCH
from tests.conftest import git, run_gitdag
from tests.review import helpers as h


def log_titles(repo: Path, n: int = 50) -> list[str]:
    return git(repo, "log", f"-{n}", "--format=%s", STATE_BRANCH).splitlines()


def trailers(repo: Path, rev: str = STATE_BRANCH) -> list[str]:
    body = git(repo, "log", "-1", "--format=%B", rev)
    return [line for line in body.splitlines() if line.startswith("Gitdag-")]


def test_revert_a_complete_without_dependents(repo: Path) -> None:
    h.init(repo, "", a={}, b={})
    h.claim(repo, "a")
    done = h.complete(repo, "a", "did a")
    assert h.node(repo, "a").status is Status.DONE
    r = run_gitdag(repo, "revert", done)
    assert r.code == 0, r.err
    assert "revert a: done -> running" in r.out
    node = h.node(repo, "a")
    assert node.status is Status.RUNNING and node.attempts == 1 and node.claim is not None
    assert node.outputs == {}
    titles = log_titles(repo, 2)
    assert titles == ["revert a: done -> running", "complete a: running -> done"]
    assert f"Gitdag-Reverts: {done}" in trailers(repo)
    assert run_gitdag(repo, "validate").code == 0
    assert run_gitdag(repo, "validate", "..dagain/state").code == 0


def test_revert_refused_when_a_later_node_used_it(repo: Path) -> None:
    h.init(repo, "", a={}, b={"deps": ["a"]})
    h.claim(repo, "a")
    done = h.complete(repo, "a")
    h.claim(repo, "b")
    h.complete(repo, "b")
    head = h.head(repo)
    r = run_gitdag(repo, "revert", done)
    assert r.code == 2
    assert "refused" in r.err and "nothing written" in r.err
    assert "node b ran after a (deps)" in r.err
    assert "--force" in r.err
    assert h.head(repo) == head  # nothing written


def test_revert_refused_when_the_node_changed_since(repo: Path) -> None:
    h.init(repo, "", a={})
    claim = h.claim(repo, "a")
    h.complete(repo, "a")
    head = h.head(repo)
    r = run_gitdag(repo, "revert", claim)
    assert r.code == 2
    assert "node a changed since" in r.err and "complete a" in r.err
    assert h.head(repo) == head


def test_force_reverts_the_later_transitions_in_one_commit(repo: Path) -> None:
    h.init(repo, "", a={}, b={"deps": ["a"]})
    h.claim(repo, "a")
    done_a = h.complete(repo, "a")
    claim_b = h.claim(repo, "b")
    complete_b = h.complete(repo, "b")
    r = run_gitdag(repo, "revert", done_a, "--force")
    assert r.code == 0, r.err
    reverted = [t.split(": ")[1] for t in trailers(repo) if t.startswith("Gitdag-Reverts")]
    assert reverted == [complete_b, claim_b, done_a]  # newest first
    assert h.node(repo, "a").status is Status.RUNNING
    assert h.node(repo, "b").status is Status.OPEN
    assert run_gitdag(repo, "validate", "..dagain/state").code == 0


def test_revert_an_add_refused_while_referenced(repo: Path) -> None:
    h.init(repo, "", a={})
    add_b = h.add(repo, "b")
    h.add(repo, "c", deps=["b"])
    head = h.head(repo)
    r = run_gitdag(repo, "revert", add_b)
    assert r.code == 2 and "node c refers to b (deps)" in r.err
    assert h.head(repo) == head
    r = run_gitdag(repo, "revert", add_b, "--force")
    assert r.code == 0, r.err
    listed = git(repo, "ls-tree", "-r", "--name-only", STATE_BRANCH)
    assert "/b.yaml" not in listed and "/c.yaml" not in listed and "/a.yaml" in listed


def test_revert_of_a_revert_restores_and_a_second_revert_is_refused(repo: Path) -> None:
    h.init(repo, "", a={})
    h.claim(repo, "a")
    done = h.complete(repo, "a")
    assert run_gitdag(repo, "revert", done).code == 0
    undo = h.head(repo)
    again = run_gitdag(repo, "revert", done)
    assert again.code == 2 and "changed since" in again.err
    assert run_gitdag(repo, "revert", undo).code == 0
    assert h.node(repo, "a").status is Status.DONE


def test_revert_of_the_root_and_of_foreign_commits_is_refused(repo: Path) -> None:
    root = h.init(repo, "", a={})
    first = git(repo, "rev-list", "--max-parents=0", STATE_BRANCH).strip()
    r = run_gitdag(repo, "revert", first)
    assert r.code == 2 and "reset --to" in r.err
    main = git(repo, "rev-parse", "main").strip()
    r = run_gitdag(repo, "revert", main)
    assert r.code == 2 and "not a commit of dagain/state" in r.err
    assert h.head(repo) == root


def test_reverting_a_claim_of_a_running_node_asks_the_supervisor_to_stop_it(repo: Path) -> None:
    h.init(repo, "", a={})
    claim = h.claim(repo, "a")
    assert run_gitdag(repo, "revert", claim).code == 0
    assert "Gitdag-Stop: a" in trailers(repo)
    assert h.node(repo, "a").status is Status.OPEN


def test_reset_to_an_earlier_graph_is_one_new_commit(repo: Path) -> None:
    after_init = h.init(repo, "goal", a={}, b={"deps": ["a"]})
    h.run_node(repo, "a")
    h.claim(repo, "b")
    h.add(repo, "c")
    old_head = h.head(repo)
    r = run_gitdag(repo, "reset", "--to", after_init)
    assert r.code == 0, r.err
    new_head = h.head(repo)
    assert git(repo, "rev-parse", f"{new_head}~1").strip() == old_head  # history kept
    # the graph (graph.yaml and every node file) equals the earlier one, except the attempt
    # counters, which never go back (they fence late results of earlier attempts)
    for rev in (after_init, new_head):
        assert git(repo, "rev-parse", f"{rev}:graph.yaml")
    diff = git(repo, "diff", "-U0", after_init, new_head, "--", "graph.yaml", "nodes")
    changed = [
        line
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed and all(line[1:].startswith(("attempts:", "attempt_base:")) for line in changed)
    a_now = git(repo, "show", f"{new_head}:nodes/86/a.yaml")
    assert "status: open" in a_now and "attempts: 1" in a_now and "attempt_base: 1" in a_now
    tr = trailers(repo)
    assert f"Gitdag-Reset-To: {after_init}" in tr
    assert "Gitdag-Stop: b" in tr and "Gitdag-Node: c" in tr
    assert run_gitdag(repo, "validate", "..dagain/state").code == 0
    again = run_gitdag(repo, "reset", "--to", after_init)
    assert again.code == 0 and "nothing to reset" in again.out


def test_reset_repairs_a_bad_range(repo: Path) -> None:
    start = h.init(repo, "", a={})
    good = h.claim(repo, "a")
    name, text = h.node_file(repo, "a")
    h.hand_commit(repo, {name: text.replace("status: running", "status: done")}, "by hand")
    assert run_gitdag(repo, "validate", f"{start}..").code == 2
    assert run_gitdag(repo, "reset", "--to", good).code == 0
    r = run_gitdag(repo, "validate", f"{start}..")
    assert r.code == 0, r.err
