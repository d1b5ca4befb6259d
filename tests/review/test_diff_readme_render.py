"""The semantic diff, the state branch's README, and mermaid output."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from gitdag.core import readme, render
from gitdag.core.diff import diff_graphs, field_changes, render_text
from gitdag.core.model import Claim, GraphFile, Node, Status
from tests.conftest import git, run_gitdag
from tests.review import helpers as h

NOW = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def node(nid: str, **fields: object) -> Node:
    return Node.model_validate({"id": nid, "title": nid, "created_at": NOW, "updated_at": NOW,
                                **fields})  # fmt: skip


def test_field_changes_flatten_nested_records() -> None:
    a = node("a")
    b = a.model_copy(update={"status": Status.RUNNING, "attempts": 1,
                             "claim": Claim(worker="w", attempt=1, since=NOW),
                             "outputs": {"summary": "s"}})  # fmt: skip
    changes = {c.path: (c.old, c.new) for c in field_changes(a, b)}
    assert changes["status"] == ("open", "running")
    assert changes["claim.attempt"] == (None, 1)
    assert changes["claim.since"] == (None, "2025-03-01T00:00:00Z")
    assert changes["outputs.summary"] == (None, "s")
    assert "title" not in changes


def test_diff_graphs_added_removed_changed_and_graph_yaml() -> None:
    old = {"a": node("a"), "b": node("b")}
    new = {"a": node("a", title="A2"), "c": node("c")}
    g1 = GraphFile(created_at=NOW)
    g2 = g1.model_copy(update={"goal": "new goal"})
    diff = diff_graphs(old, new, g1, g2)
    assert [c.id for c in diff.added] == ["c"]
    assert [c.id for c in diff.removed] == ["b"]
    assert [(c.id, [f.path for f in c.fields]) for c in diff.changed] == [("a", ["title"])]
    assert [f.path for f in diff.graph] == ["goal"]
    text = render_text(diff)
    assert "+ c (open)" in text and "- b (open)" in text and "~ a" in text
    assert 'goal: "" -> new goal' in text
    assert diff_graphs(old, old, g1, g1).is_empty()


def test_cli_diff_across_many_transitions(repo: Path) -> None:
    start = h.init(repo, "", a={}, b={"deps": ["a"]})
    h.run_node(repo, "a", "built a")
    h.claim(repo, "b")
    h.add(repo, "c")
    r = run_gitdag(repo, "diff", start, "dagain/state")
    assert r.code == 0, r.err
    assert "~ a open -> done" in r.out and "outputs.summary: null -> built a" in r.out
    assert "~ b open -> running" in r.out and "claim.attempt: null -> 1" in r.out
    assert "+ c (open)" in r.out
    data = json.loads(run_gitdag(repo, "diff", start, "dagain/state", "--json").out)
    assert [c["id"] for c in data["changed"]] == ["a", "b"]
    assert [c["id"] for c in data["added"]] == ["c"]
    status = {c["id"]: (c["old_status"], c["new_status"]) for c in data["changed"]}
    assert status == {"a": ("open", "done"), "b": ("open", "running")}
    back = json.loads(run_gitdag(repo, "diff", "dagain/state", start, "--json").out)
    assert [c["id"] for c in back["removed"]] == ["c"]
    assert run_gitdag(repo, "diff", "nope", "dagain/state").code == 2


def test_readme_on_the_state_branch_tracks_counts_and_lists(repo: Path) -> None:
    h.init(repo, "Ship it", a={}, b={}, c={})
    h.claim(repo, "a")
    h.claim(repo, "b")
    h.complete(repo, "b")
    text = git(repo, "show", "dagain/state:README.md")
    assert "**Goal:** Ship it" in text
    assert "| running | 1 |" in text and "| done | 1 |" in text and "| open | 2 |" in text
    assert "- [a](nodes/" in text  # running, linked to its file
    data = readme.parse(text)
    assert data is not None and data.lists["running"] == ("a",)
    # a commit written without a README update (plumbing) is recounted once, correctly
    name, body = h.node_file(repo, "c")
    msg = "edit c\n\nGitdag-Transition: edit\nGitdag-Node: c\nGitdag-Actor: me\n"
    h.hand_commit(repo, {name: body.replace("title: do c", "title: C!")}, msg)
    h.claim(repo, "c")
    text = git(repo, "show", "dagain/state:README.md")
    assert "| running | 2 |" in text and "| open | 1 |" in text


_STATUSES = st.sampled_from(list(Status))


@given(st.lists(st.tuples(st.sampled_from("abcdef"), _STATUSES), max_size=40))
def test_incremental_counts_equal_a_full_recount(moves: list[tuple[str, Status]]) -> None:
    graph: dict[str, Node] = {}
    data = readme.from_nodes([], None)
    for nid, status in moves:
        before = dict(graph)
        new = node(nid, status=status)
        graph[nid] = new
        data = readme.update(data, readme.moves_of(before, [new], []), None)
    full = readme.from_nodes(graph.values(), None)
    assert data.counts == full.counts and data.lists == full.lists
    assert readme.parse(readme.render(data, goal="g", target="t", paused=False)) == data


def test_mermaid_is_well_formed_with_awkward_ids_and_titles() -> None:
    nodes = {
        "a-b": node("a-b"), "a_b": node("a_b", deps=["a-b"]), "a.b": node("a.b", after=["a_b"]),
        "end": node("end", deps=["a.b"], status="done"),
    }  # fmt: skip
    titles = {"a-b": 'say "hi" <b>#1; & go', "end": "the end"}
    text = render.mermaid(nodes, titles)
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    node_lines = [line for line in lines if "[" in line]
    ids = [line.split("[")[0].strip() for line in node_lines]
    assert len(set(ids)) == 4  # distinct ids although the names differ only by punctuation
    for mid in ids:
        assert re.fullmatch(r"n_[A-Za-z0-9_]+", mid)
    for line in node_lines:
        label = re.fullmatch(r'\s+n_\w+\["(.*)"\]:::\w+', line)
        assert label, line
        assert '"' not in label.group(1) and "<b>" not in label.group(1)
    assert "#quot;hi#quot;" in text and "#lt;b#gt;" in text and "#35;1; #amp; go" in text
    edges = [line.strip() for line in lines if "->" in line]
    assert sorted(edges) == sorted(["n_a_hb --> n_a__b", "n_a__b -.-> n_a_db", "n_a_db --> n_end"])
    assert all(line.startswith("  classDef ") for line in lines[len(node_lines) + 4 :])
