"""The graph commands through the real CLI: status, show, ready, log, graph, validate."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from gitdag.core import codec
from gitdag.core.ids import node_path
from tests.conftest import GIT_ENV, git, make_repo, run_gitdag

CLAIM = "claim:\n  worker: supervisor@box:42\n  attempt: 1\n  since: 2025-01-01T00:00:00Z\n"
CLAIM += "  lease_until: null"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """plan-000 <- lexer <- parser; docs after parser; a verify node; one node failed by hand,
    one blocked behind it, one running with a claim (built once, copied per test)."""
    home = tmp_path_factory.mktemp("cli-home")
    env = {**GIT_ENV, "HOME": str(home), "GIT_CONFIG_GLOBAL": str(home / ".gitconfig")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        repo = make_repo(tmp_path_factory.mktemp("cli") / "repo")
        steps = [
            ["init", "--goal", "Ship the parser"],
            ["add", "lexer", "--title", "Write the lexer", "--kind", "task",
             "--description", "Tokens: numbers, names.\nKeep it small.\n"],
            ["add", "parser", "--title", "Write the parser", "--deps", "lexer", "--priority", "2"],
            ["add", "docs", "--title", "Document it", "--after", "parser", "--kind", "command",
             "--run", "make docs"],
            ["add", "check", "--title", "Run the checks", "--kind", "verify", "--deps", "plan-000"],
            ["add", "flaky", "--title", "A step that failed"],
            ["add", "after-flaky", "--title", "Blocked", "--deps", "flaky"],
            ["add", "busy", "--title", "Someone is on it"],
        ]  # fmt: skip
        for args in steps:
            r = run_gitdag(repo, *args)
            assert r.code == 0, r.err
        from tests.store.helpers import node_file, state_checkout

        with state_checkout(repo, "fail flaky, claim busy, finish plan") as wt:
            f = node_file(wt, "flaky")
            f.write_text(f.read_text().replace("status: open", "status: failed"))
            b = node_file(wt, "busy")
            b.write_text(
                b.read_text()
                .replace("status: open", "status: running")
                .replace("attempts: 0", "attempts: 1")
                .replace("claim: null", CLAIM)
            )
            p = node_file(wt, "plan-000")
            p.write_text(p.read_text().replace("status: open", "status: done"))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return repo


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:  # overrides conftest's `repo` here
    dest = tmp_path / "repo"
    shutil.copytree(template, dest, symlinks=True)
    return dest


def test_status_json(repo: Path) -> None:
    r = run_gitdag(repo, "status", "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["goal"] == "Ship the parser"
    assert report["target"] == "dagain/integration"
    assert report["head"] == git(repo, "rev-parse", "dagain/state").strip()
    assert report["total"] == 8
    assert report["counts"] == {"open": 5, "running": 1, "merging": 0, "done": 1, "failed": 1,
                                "needs_human": 0, "cancelled": 0, "skipped": 0}  # fmt: skip
    # Claim order: priority first (parser has 2 but waits for lexer), then kind: verify last.
    assert report["ready"] == ["lexer", "check"]
    assert report["blocked"] == ["after-flaky"]
    (running,) = report["running"]
    assert running["elapsed_s"] > 300 * 86400  # claimed on 2025-01-01: elapsed since then
    del running["elapsed_s"]
    assert running == {"id": "busy", "attempt": 1, "worker": "supervisor@box:42",
                       "since": "2025-01-01T00:00:00+00:00", "iteration": 1}  # fmt: skip
    # parser waits for lexer (open); docs runs after parser (open).
    assert report["waiting"] == [{"id": "docs", "for": ["after parser: open"]},
                                 {"id": "parser", "for": ["dep lexer: open"]}]  # fmt: skip
    assert report["proposals"] == []
    assert report["failed"] == ["flaky"]
    assert report["paused"] is False


def test_status_human(repo: Path) -> None:
    r = run_gitdag(repo, "status")
    assert r.code == 0, r.err
    assert "goal: Ship the parser" in r.out
    assert "8 nodes: open 5 · running 1 · merging 0 · done 1 · failed 1" in r.out
    assert "ready (2): lexer, check" in r.out
    assert "blocked (1): after-flaky" in r.out
    assert "running (1): busy (attempt 1, supervisor@box:42, " in r.out
    assert "waiting (2): docs (after parser: open), parser (dep lexer: open)" in r.out


def test_ready_json_and_plain(repo: Path) -> None:
    r = run_gitdag(repo, "ready", "--json")
    assert r.code == 0 and json.loads(r.out) == ["lexer", "check"]
    assert run_gitdag(repo, "ready").out == "lexer\ncheck\n"


def test_show_json_and_yaml(repo: Path) -> None:
    r = run_gitdag(repo, "show", "lexer", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["id"] == "lexer" and data["title"] == "Write the lexer"
    assert data["description"] == "Tokens: numbers, names.\nKeep it small.\n"
    assert data["status"] == "open" and data["deps"] == [] and data["claim"] is None
    busy = json.loads(run_gitdag(repo, "show", "busy", "--json").out)
    assert busy["claim"]["worker"] == "supervisor@box:42"
    # Without --json: the file exactly as stored on the branch.
    stored = git(repo, "cat-file", "-p", f"dagain/state:{node_path('parser')}")
    assert run_gitdag(repo, "show", "parser").out == stored
    assert codec.load_node(stored).deps == ("lexer",)
    missing = run_gitdag(repo, "show", "nope")
    assert missing.code == 2 and "unknown node 'nope'" in missing.err


def test_log_of_one_node_and_of_all(repo: Path) -> None:
    r = run_gitdag(repo, "log", "--json")
    entries = json.loads(r.out)
    assert len(entries) == int(git(repo, "rev-list", "--count", "dagain/state"))
    assert entries[-1]["verb"] == "init" and entries[-1]["nodes"] == ["plan-000"]
    assert [e["verb"] for e in entries[1:-1]] == ["add"] * 7
    flaky = json.loads(run_gitdag(repo, "log", "flaky", "--json").out)
    assert [e["title"] for e in flaky] == ["add flaky: - -> open"]
    assert flaky[0]["actor"] == "Test User <test@example.com>"
    assert flaky[0]["summary"] == "A step that failed"
    text = run_gitdag(repo, "log", "parser").out.splitlines()
    assert len(text) == 2 and "add parser: - -> open" in text[0]
    assert text[0].endswith("[Test User <test@example.com>]")
    # Newest first, and -n limits.
    two = json.loads(run_gitdag(repo, "log", "-n", "2", "--json").out)
    assert [e["commit"] for e in two] == git(repo, "rev-list", "-n", "2", "dagain/state").split()


def test_graph_formats(repo: Path) -> None:
    mermaid = run_gitdag(repo, "graph", "--format", "mermaid").out
    assert mermaid.startswith("flowchart TD\n")
    assert "  n_lexer --> n_parser\n" in mermaid and "n_plan_h000 --> n_check" in mermaid
    assert "  n_parser -.-> n_docs\n" in mermaid  # `after` edges are dashed
    assert 'n_after_hflaky["after-flaky<br/>Blocked (open)"]:::open' in mermaid
    assert ":::failed" in mermaid and ":::running" in mermaid
    dot = run_gitdag(repo, "graph", "--format", "dot").out
    assert dot.startswith("digraph gitdag {") and dot.rstrip().endswith("}")
    assert '"lexer" -> "parser";' in dot and '"parser" -> "docs" [style=dashed];' in dot
    data = json.loads(run_gitdag(repo, "graph", "--format", "json").out)
    assert {n["id"] for n in data["nodes"]} == {
        "plan-000",
        "lexer",
        "parser",
        "docs",
        "check",
        "flaky",
        "after-flaky",
        "busy",
    }
    assert {"from": "lexer", "to": "parser", "type": "deps"} in data["edges"]
    assert {"from": "parser", "to": "docs", "type": "after"} in data["edges"]
    assert {"from": "plan-000", "to": "check", "type": "deps"} in data["edges"]
    assert len(data["edges"]) == 4
    assert run_gitdag(repo, "graph").out == mermaid  # mermaid is the default
    bad = run_gitdag(repo, "graph", "--format", "svg")
    assert bad.code == 2 and "svg" in bad.err


def test_validate_ok_and_rev(repo: Path) -> None:
    assert run_gitdag(repo, "validate").out == "ok\n"
    first = git(repo, "rev-list", "--max-parents=0", "dagain/state").strip()
    r = run_gitdag(repo, "validate", first)
    assert r.code == 0 and r.out == "ok\n"
    assert run_gitdag(repo, "validate", "dagain/state~3").code == 0


def test_dash_c_runs_elsewhere(repo: Path, tmp_path: Path) -> None:
    r = run_gitdag(tmp_path, "-C", str(repo), "ready", "--json")
    assert r.code == 0 and json.loads(r.out) == ["lexer", "check"]
    outside = run_gitdag(tmp_path, "status")
    assert outside.code == 2 and "not inside a git repository" in outside.err


def test_commands_work_from_a_linked_worktree(repo: Path, tmp_path: Path) -> None:
    wt = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(wt))
    r = run_gitdag(wt, "ready", "--json")
    assert r.code == 0 and json.loads(r.out) == ["lexer", "check"]
    assert run_gitdag(wt, "add", "from-wt", "--title", "t").code == 0
    assert "from-wt" in git(repo, "ls-tree", "-r", "--name-only", "dagain/state")
    assert not (wt / ".dagain").exists()  # local state lives in the main working tree
