"""Proposals as branches: propose, push to a bare remote, review, apply; conflicts; the API."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from gitdag.core.merge3 import merge_graphs, merge_record
from gitdag.core.model import Node, Status
from gitdag.core.transitions import Rejected
from gitdag.store.proposal_branches import Proposed, propose_nodes
from gitdag.store.state import StateStore
from tests.conftest import git, run_gitdag
from tests.review import helpers as h

NOW = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def test_proposal_round_trip_through_a_bare_remote(tmp_path: Path, repo: Path) -> None:
    h.init(repo, "", a={})
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main", "dagain/state")
    # A reviewer-to-be proposes from their own clone.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    git(clone, "fetch", "-q", "origin", "dagain/state:dagain/state")
    r = run_gitdag(clone, "propose", "x", "--add", "b", "--title", "Build b", "--deps", "a")
    assert r.code == 0, r.err
    nodes_file = clone / "more.yaml"
    nodes_file.write_text("- id: c\n  title: Check c\n  kind: verify\n  dependsOn: [b]\n")
    assert run_gitdag(clone, "propose", "x", "--from-file", str(nodes_file)).code == 0
    assert run_gitdag(clone, "validate", "dagain/state..dagain/proposals/x").code == 0
    git(clone, "push", "-q", "origin", "dagain/proposals/x")
    # Meanwhile the state moves on in the main repository.
    h.claim(repo, "a")
    # The maintainer fetches the proposal back, reviews it as a diff, applies it.
    git(repo, "fetch", "-q", "origin", "dagain/proposals/x:dagain/proposals/x")
    r = run_gitdag(repo, "diff", "dagain/state", "dagain/proposals/x", "--json")
    assert r.code == 0, r.err
    diff = json.loads(r.out)
    assert sorted(c["id"] for c in diff["added"]) == ["b", "c"]
    text = run_gitdag(repo, "diff", "dagain/state", "dagain/proposals/x").out
    assert "+ b (open): Build b" in text and "+ c (open): Check c" in text
    r = run_gitdag(repo, "apply-proposal", "x")
    assert r.code == 0, r.err
    body = git(repo, "log", "-1", "--format=%B", "dagain/state")
    assert "Gitdag-Transition: edit" in body and "Gitdag-Proposal: x" in body
    assert h.node(repo, "a").status is Status.RUNNING  # the state's own change is kept
    assert h.node(repo, "c").deps == ("b",)
    assert run_gitdag(repo, "validate", "..dagain/state").code == 0
    again = run_gitdag(repo, "apply-proposal", "x")
    assert again.code == 0 and "nothing to apply" in again.out


def test_a_remote_tracking_proposal_can_be_applied_directly(tmp_path: Path, repo: Path) -> None:
    h.init(repo, "", a={})
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "dagain/state")
    assert run_gitdag(repo, "propose", "y", "--add", "z", "--title", "Z").code == 0
    git(repo, "push", "-q", "origin", "dagain/proposals/y")
    git(repo, "branch", "-q", "-D", "dagain/proposals/y")
    git(repo, "fetch", "-q", "origin")
    r = run_gitdag(repo, "apply-proposal", "y")
    assert r.code == 0, r.err
    assert h.node(repo, "z").title == "Z"


def test_a_conflicting_proposal_names_node_and_field(repo: Path) -> None:
    h.init(repo, "", a={})
    path = repo / "edit.yaml"
    path.write_text("- id: a\n  title: Proposed title\n")
    assert run_gitdag(repo, "propose", "t", "--from-file", str(path)).code == 0
    # the state changes the same field differently
    name, text = h.node_file(repo, "a")
    msg = "edit a\n\nGitdag-Transition: edit\nGitdag-Node: a\nGitdag-Actor: me\n"
    h.hand_commit(repo, {name: text.replace("title: do a", "title: State title")}, msg)
    head = h.head(repo)
    r = run_gitdag(repo, "apply-proposal", "t")
    assert r.code == 2
    assert "node a: field title: changed on both sides" in r.err
    assert "State title" in r.err and "Proposed title" in r.err
    assert h.head(repo) == head
    assert "<<<<<<<" not in git(repo, "show", f"dagain/state:{name}")


def test_proposals_may_not_touch_run_state(repo: Path) -> None:
    h.init(repo, "", a={})
    path = repo / "bad.yaml"
    path.write_text("- id: a\n  status: done\n")
    r = run_gitdag(repo, "propose", "bad", "--from-file", str(path))
    assert r.code == 2 and "nodes[0].status" in r.err
    assert git(repo, "branch", "--list", "dagain/proposals/bad").strip() == ""


def test_propose_nodes_api_for_the_supervisor(repo: Path) -> None:
    h.init(repo, "goal")
    with StateStore.open(repo) as store:
        base = store.head()
        out = propose_nodes(store, "plan-000-1", [
            {"id": "t1", "title": "first"}, {"id": "t2", "title": "second", "deps": ["t1"]},
        ], parent="plan-000", actor="supervisor@test:1")  # fmt: skip
        assert isinstance(out, Proposed)
        assert out.base == base and store.head() == base  # the state itself is untouched
        bad = propose_nodes(store, "plan-000-2", [{"id": "t3", "title": "x", "deps": ["nope"]}])
        assert isinstance(bad, Rejected) and "nope" in str(bad)
    with StateStore.open(repo) as store:
        snap = store.snapshot_of(store.resolve("dagain/proposals/plan-000-1"))
        assert store.node(snap, "t2").parent == "plan-000"
    body = git(repo, "log", "-1", "--format=%B", "dagain/proposals/plan-000-1")
    assert "Gitdag-Actor: supervisor@test:1" in body and "Gitdag-Node: t2" in body


@pytest.mark.parametrize("name", ["", "a..b", "x.lock", "has space", "-x"])
def test_bad_proposal_names(repo: Path, name: str) -> None:
    h.init(repo, "")
    r = run_gitdag(repo, "propose", name, "--add", "q", "--title", "Q")
    assert r.code == 2


def node(nid: str, **fields: object) -> Node:
    return Node.model_validate({"id": nid, "title": nid, "created_at": NOW, "updated_at": NOW,
                                **fields})  # fmt: skip


def test_merge_record_takes_each_side_field_by_field() -> None:
    base = node("a")
    ours = base.model_copy(update={"status": Status.RUNNING, "attempts": 1,
                                   "updated_at": NOW + dt.timedelta(seconds=5)})  # fmt: skip
    theirs = base.model_copy(update={"description": "better",
                                     "updated_at": NOW + dt.timedelta(seconds=9)})  # fmt: skip
    merged, conflicts = merge_record(Node, "a", base, ours, theirs)
    assert conflicts == [] and merged is not None
    assert merged.status is Status.RUNNING and merged.description == "better"
    assert merged.updated_at == NOW + dt.timedelta(seconds=9)
    _, conflicts = merge_record(Node, "a", base, ours, base.model_copy(update={"attempts": 2}))
    assert [(c.node, c.field) for c in conflicts] == [("a", "attempts")]


def test_merge_graphs_reports_removed_versus_changed() -> None:
    base = {"a": node("a")}
    ours = {"a": node("a", title="changed")}
    result = merge_graphs(["a"], base, ours, {})
    assert result.conflicts and result.conflicts[0].node == "a"
    clean = merge_graphs(["a"], base, {"a": node("a")}, {})
    assert clean.remove == ["a"] and not clean.conflicts
