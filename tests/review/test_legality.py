"""Legality of single steps (pure) and of ranges of a real state branch (`validate A..B`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gitdag.core import human_verbs, lifecycle
from gitdag.core.commit_message import StepInfo, step_info
from gitdag.core.graph_checks import check_graph
from gitdag.core.legality import Violation, check_step
from gitdag.core.model import (
    Claim,
    ErrorKind,
    GraphFile,
    HoldKind,
    Node,
    NodeSummary,
    Status,
    Work,
    summarize,
)
from gitdag.core.transitions import Rejected, Transition, message
from gitdag.store import ranges
from gitdag.store.state import StateStore
from tests.conftest import run_gitdag
from tests.review import helpers as h

NOW = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def node(nid: str, **fields: object) -> Node:
    return Node.model_validate({"id": nid, "title": nid, "created_at": NOW, "updated_at": NOW,
                                **fields})  # fmt: skip


def info_of(transition: Transition, actor: str = "supervisor@test:1") -> StepInfo:
    return step_info(message(transition, actor))


def check(before: list[Node], transition: Transition, context: list[Node] | None = None,
          **kwargs: object) -> list[Violation]:  # fmt: skip
    after = {n.id: n for n in transition.put}
    old = {n.id: n for n in before if n.id in after or n.id in transition.remove}
    ctx: dict[str, NodeSummary] = {n.id: summarize(n) for n in (context or before)}
    return check_step(old, after, info_of(transition), context=ctx, **kwargs)  # type: ignore[arg-type]


def fields_of(problems: list[Violation]) -> set[tuple[str | None, str | None]]:
    return {(p.node, p.field) for p in problems}


def test_a_real_claim_and_complete_are_legal() -> None:
    a = node("a")
    claim = lifecycle.claim(a, worker="w", now=NOW, lease_s=60)
    assert isinstance(claim, Transition)
    assert check([a], claim) == []
    running = claim.put[0]
    done = running.model_copy(update={"status": Status.DONE, "claim": None,
                                      "outputs": {"summary": "ok"}})  # fmt: skip
    complete = Transition(verb="complete", subject="a", from_status="running", to_status="done",
                          put=(done,), attempt=1)  # fmt: skip
    assert check([running], complete) == []


def test_done_without_a_result_is_named_whatever_the_verb() -> None:
    running = node("a", status="running", attempts=1,
                   claim=Claim(worker="w", attempt=1, since=NOW))  # fmt: skip
    bare = running.model_copy(update={"status": Status.DONE, "claim": None})
    for verb in ("complete", "edit"):
        t = Transition(verb=verb, subject="a", put=(bare,))
        problems = check([running], t)
        assert problems, verb
        assert all(p.node == "a" for p in problems)
    assert ("a", "outputs.summary") in fields_of(check([running], Transition(
        verb="complete", subject="a", put=(bare,))))  # fmt: skip
    assert ("a", "status") in fields_of(check([running], Transition(
        verb="edit", subject="a", put=(bare,))))  # fmt: skip


def test_attempts_rules() -> None:
    a = node("a", attempts=2, status="open")
    down = a.model_copy(update={"attempts": 1})
    assert ("a", "attempts") in fields_of(check([a], Transition(verb="edit", subject="a",
                                                                put=(down,))))  # fmt: skip
    up_without_claim = a.model_copy(update={"attempts": 3})
    lease = Transition(verb="lease", subject="a", put=(up_without_claim,))
    assert ("a", "attempts") in fields_of(check([a], lease))
    two = a.model_copy(update={"status": Status.RUNNING, "attempts": 4,
                               "claim": Claim(worker="w", attempt=4, since=NOW)})  # fmt: skip
    problems = check([a], Transition(verb="claim", subject="a", put=(two,)))
    assert any("exactly one" in p.message for p in problems)


def test_claim_needs_done_deps_and_a_matching_claim() -> None:
    dep = node("d")  # open, not done
    a = node("a", deps=["d"])
    claim = lifecycle.claim(a, worker="w", now=NOW, lease_s=60)
    assert isinstance(claim, Transition)
    problems = check([dep, a], claim)
    assert ("a", "deps") in fields_of(problems)
    wrong = claim.put[0].model_copy(update={"claim": Claim(worker="w", attempt=7, since=NOW)})
    problems = check([node("d", status="done"), a], Transition(verb="claim", subject="a",
                                                               put=(wrong,)))  # fmt: skip
    assert ("a", "claim.attempt") in fields_of(problems)


def test_trailers_are_required_and_every_changed_node_named() -> None:
    a, b = node("a"), node("b")
    a2, b2 = a.model_copy(update={"title": "x"}), b.model_copy(update={"title": "y"})
    t = Transition(verb="edit", subject="a", put=(a2, b2), nodes=("a",))
    problems = check([a, b], t)
    assert ("b", None) in fields_of(problems)
    hand = StepInfo(title="oops", verbs=(), subject=None, nodes=(), actor=None, attempt=None,
                    attempt_text=None)  # fmt: skip
    found = check_step({"a": a}, {"a": a2}, hand, context={})
    texts = " | ".join(map(str, found))
    assert "Gitdag-Transition" in texts and "Gitdag-Actor" in texts


def test_results_may_touch_their_scope_only() -> None:
    plan = node("p", kind="plan", status="running", attempts=1,
                claim=Claim(worker="w", attempt=1, since=NOW))  # fmt: skip
    child = node("c", parent="p", status="failed")
    stranger = node("s", status="failed")
    done = plan.model_copy(update={"status": Status.DONE, "claim": None,
                                   "outputs": {"summary": "replanned"}})  # fmt: skip
    reopened = child.model_copy(update={"status": Status.OPEN})
    ok = Transition(verb="complete", subject="p", put=(done, reopened), nodes=("p", "c"))
    assert check([plan, child, stranger], ok) == []
    bad = Transition(verb="complete", subject="p", put=(done, stranger.model_copy(
        update={"status": Status.OPEN})), nodes=("p", "s"))  # fmt: skip
    assert ("s", None) in fields_of(check([plan, child, stranger], bad))
    new = node("n", parent="p")
    added = Transition(verb="complete", subject="p", put=(done, new), nodes=("p", "n"))
    assert check([plan], added) == []
    born_done = node("m", parent="p", status="done")
    assert ("m", "status") in fields_of(check([plan], Transition(
        verb="complete", subject="p", put=(done, born_done), nodes=("p", "m"))))  # fmt: skip


def test_escalation_as_the_lifecycle_writes_it_is_legal() -> None:
    graph = GraphFile(created_at=NOW)
    a = node("a", status="running", attempts=3, claim=Claim(worker="w", attempt=3, since=NOW))
    plan = node("plan", kind="plan", status="done", outputs={"summary": "x"})
    a = a.model_copy(update={"parent": "plan"})
    summaries = {n.id: summarize(n) for n in (a, plan)}
    t = lifecycle.fail(
        a, summaries, graph, kind=ErrorKind.TASK_FAILURE, summary="no", now=NOW, attempt=3
    )
    assert isinstance(t, Transition) and t.verb == "escalate"
    assert check([a, plan], t) == []


def test_merge_needs_the_integrating_commit() -> None:
    merging = node("a", status="merging", attempts=1, outputs={"summary": "x"},
                   work=Work(branch="dagain/work/a"))  # fmt: skip
    t = lifecycle.merged(merging, merged_commit="abc", now=NOW)
    assert isinstance(t, Transition)
    assert check([merging], t) == []
    forged = merging.model_copy(update={"status": Status.DONE})
    assert ("a", "work.merged") in fields_of(check([merging], Transition(
        verb="merge", subject="a", put=(forged,))))  # fmt: skip


def test_a_hold_only_on_a_merging_node_and_only_by_hold() -> None:
    merging = node("a", status="merging", attempts=1, outputs={"summary": "x"},
                   work=Work(branch="dagain/work/a"))  # fmt: skip
    t = lifecycle.hold(merging, kind=HoldKind.TARGET_DIRTY, reason="dirty", repair="git stash",
                       now=NOW)  # fmt: skip
    assert isinstance(t, Transition) and t.verb == "hold" and t.attempt == 1
    assert check([merging], t) == []
    held = t.put[0]
    assert held.status is Status.MERGING and held.hold is not None
    # The same cause again is no change; another kind is a new hold.
    assert isinstance(lifecycle.hold(held, kind=HoldKind.TARGET_DIRTY, reason="x", repair="y",
                                     now=NOW), Rejected)  # fmt: skip
    # Whatever ends `merging` ends the hold: the lifecycle clears it, legality insists on it.
    landed = lifecycle.merged(held, merged_commit="abc", now=NOW)
    assert isinstance(landed, Transition) and landed.put[0].hold is None
    assert check([held], landed) == []
    stuck = landed.put[0].model_copy(update={"hold": held.hold})
    forged = Transition(verb="merge", subject="a", from_status="merging", to_status="done",
                        put=(stuck,))  # fmt: skip
    assert ("a", "hold") in fields_of(check([held], forged))
    # `hold` may not change anything else, and no other verb may set it.
    sneaky = t.put[0].model_copy(update={"outputs": {"summary": "other"}})
    assert ("a", "hold") in fields_of(check([merging], Transition(
        verb="hold", subject="a", put=(sneaky,))))  # fmt: skip
    assert ("a", "hold") in fields_of(check([merging], Transition(
        verb="edit", subject="a", put=(held,))))  # fmt: skip
    assert isinstance(lifecycle.hold(node("b"), kind=HoldKind.DISK_FULL, reason="r", repair="r",
                                     now=NOW), Rejected)  # fmt: skip


def test_pause_may_only_flip_paused() -> None:
    before = GraphFile(created_at=NOW)
    t = human_verbs.set_paused(before, True)
    assert isinstance(t, Transition) and t.graph is not None
    assert check([], t, graph_changed=True, graph_before=before, graph_after=t.graph) == []
    sneaky = t.graph.model_copy(update={"goal": "something else"})
    problems = check([], Transition(verb="pause", subject="graph", graph=sneaky),
                     graph_changed=True, graph_before=before, graph_after=sneaky)  # fmt: skip
    assert problems and problems[0].field == "graph.yaml"


def test_restoring_verbs_may_move_anything() -> None:
    done = node("a", status="done", attempts=2, outputs={"summary": "x"})
    back = node("a", status="running", attempts=1, claim=Claim(worker="w", attempt=1, since=NOW))
    t = Transition(verb="revert", subject="a", put=(back,))
    assert check([done], t) == []


def test_check_graph_names_unknown_refs_cycles_and_removed_targets() -> None:
    nodes = {"a": summarize(node("a", deps=["b"])), "b": summarize(node("b", deps=["a"])),
             "c": summarize(node("c", deps=["gone"]))}  # fmt: skip
    problems = check_graph(nodes, ["a", "c"], ["gone"])
    texts = [str(p) for p in problems]
    assert any("unknown node 'gone'" in t and "node c" in t for t in texts)
    assert any("cycle" in t for t in texts)
    assert any("removed node 'gone'" in t for t in texts)


# --- real repositories ------------------------------------------------------------------------


def hand_done(repo: Path, nid: str) -> str:
    name, text = h.node_file(repo, nid)
    return h.hand_commit(repo, {name: text.replace("status: running", "status: done")},
                         "finish it by hand")  # fmt: skip


def test_validate_range_names_a_hand_made_done_and_revert_repairs_it(repo: Path) -> None:
    start = h.init(repo, "", a={}, b={"deps": ["a"]})
    h.run_node(repo, "a")
    before = h.claim(repo, "b")
    bad = hand_done(repo, "b")
    r = run_gitdag(repo, "validate", f"{start}..dagain/state")
    assert r.code == 2, r.out + r.err
    lines = [line for line in r.err.splitlines() if line.startswith("commit ")]
    assert lines and all(line.startswith(f"commit {bad[:12]}") for line in lines)
    assert any("node b: field status" in line for line in lines)
    assert f"gitdag revert {bad[:12]}" in r.err and f"gitdag reset --to {before[:12]}" in r.err
    # the graph itself is fine: only the range check sees the illegal step
    assert run_gitdag(repo, "validate").code == 0
    with StateStore.open(repo) as store:
        head = store.head()
        assert head is not None
        invalid = ranges.first_invalid(store, start, head)
        assert invalid is not None and invalid.commit == bad
        assert "gitdag revert" in invalid.hint
    r = run_gitdag(repo, "revert", bad[:12])
    assert r.code == 0, r.err
    r = run_gitdag(repo, "validate", f"{start}..dagain/state")
    assert r.code == 0, r.err
    assert "repaired" in r.out
    assert h.node(repo, "b").status is Status.RUNNING
    with StateStore.open(repo) as store:
        head = store.head()
        assert head is not None
        assert ranges.first_invalid(store, start, head) is None


def test_validate_single_revision_is_unchanged(repo: Path) -> None:
    h.init(repo, "", a={})
    r = run_gitdag(repo, "validate")
    assert r.code == 0 and r.out.strip() == "ok"
    name, text = h.node_file(repo, "a")
    h.hand_commit(repo, {name: text.replace("deps: []", "deps:\n  - ghost")}, "bad dep")
    r = run_gitdag(repo, "validate", "dagain/state")
    assert r.code == 2
    assert "unknown node 'ghost'" in r.err
    r = run_gitdag(repo, "validate", "dagain/state~1")
    assert r.code == 0


def test_validate_whole_history_of_a_real_run_passes(repo: Path) -> None:
    h.init(repo, "build", a={}, b={"deps": ["a"]}, c={"deps": ["a"]})
    h.run_node(repo, "a")
    h.claim(repo, "b")
    h.fail(repo, "b")
    h.claim(repo, "c")
    h.complete(repo, "c")
    r = run_gitdag(repo, "validate", "..dagain/state")
    assert r.code == 0, r.err


@pytest.mark.parametrize("edit", ["attempts", "unnamed"])
def test_range_catches_other_hand_edits(repo: Path, edit: str) -> None:
    start = h.init(repo, "", a={})
    h.claim(repo, "a")
    name, text = h.node_file(repo, "a")
    if edit == "attempts":
        msg = "lease a\n\nGitdag-Transition: lease\nGitdag-Node: a\nGitdag-Actor: me\n"
        h.hand_commit(repo, {name: text.replace("attempts: 1", "attempts: 5")}, msg)
        expect = "node a: field attempts"
    else:
        msg = "edit graph\n\nGitdag-Transition: edit\nGitdag-Actor: me\n"
        h.hand_commit(repo, {name: text.replace("title: do a", "title: renamed")}, msg)
        expect = "node a: changed but not named"
    r = run_gitdag(repo, "validate", f"{start}..")
    assert r.code == 2
    assert expect in r.err
