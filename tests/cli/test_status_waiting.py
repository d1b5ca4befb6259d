"""`gitdag status` hides nothing: open nodes waiting behind others, and proposals under review."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_gitdag


def _ok(repo: Path, *args: str) -> str:
    r = run_gitdag(repo, *args)
    assert r.code == 0, r.err
    return r.out


def test_status_lists_a_node_waiting_behind_a_needs_human_node_and_a_pending_proposal(
    repo: Path,
) -> None:
    _ok(repo, "init")
    _ok(repo, "add", "ask", "--title", "Which database?", "--kind", "checkpoint")
    _ok(repo, "add", "build", "--title", "Build it", "--deps", "ask")
    _ok(repo, "add", "later", "--title", "Later", "--after", "build")
    # The checkpoint node needs no runner: `run` asks its question and stops (exit 1).
    r = run_gitdag(repo, "run")
    assert r.code == 1, r.err
    _ok(repo, "propose", "more", "--add", "extra", "--title", "Extra work", "--deps", "build")

    report = json.loads(_ok(repo, "status", "--json"))
    assert report["needs_human"] == ["ask"]
    assert report["waiting"] == [
        {"id": "build", "for": ["dep ask: needs_human"]},
        {"id": "later", "for": ["after build: open"]},
    ]
    (proposal,) = report["proposals"]
    assert proposal["name"] == "more" and proposal["nodes"] == ["extra"]
    assert proposal["apply"] == "gitdag apply-proposal more"
    assert proposal["conflict"] is None

    text = _ok(repo, "status")
    assert "waiting (2): build (dep ask: needs_human), later (after build: open)" in text
    assert "proposal more awaits review (extra): gitdag diff dagain/state " in text
    assert "then gitdag apply-proposal more" in text

    # Applied, it is no longer pending; paused, every open node waits for `resume`.
    _ok(repo, "apply-proposal", "more")
    _ok(repo, "pause")
    report = json.loads(_ok(repo, "status", "--json"))
    assert report["proposals"] == []
    assert {"id": "extra", "for": ["dep build: open", "graph paused"]} in report["waiting"]
