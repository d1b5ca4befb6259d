"""10^5 levels of nesting in every parsed input: exit 2 (or its own refusal), never a signal.

ruamel's C composer recurses: before the guarded loaders, a 100 KB file of `[` killed every
command with SIGSEGV. Each test here runs a real process, so a signal would show as a negative
return code.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, Result, git, make_repo, run_gitdag
from tests.store.helpers import node_file, state_checkout

DEEP = 100_000
SHAPES = {
    "flow-seq": "[" * DEEP,
    "flow-map": "{" * DEEP,
    "flow-keys": "{a: " * 60_000,  # 240 KB: the most of this shape under the size limit
    "block-seq": "- " * DEEP + "x",
}


def one_line_error(r: Result) -> str:
    assert r.code == 2, (r.code, r.out, r.err[-500:])
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err[-500:]
    return lines[0]


@pytest.fixture
def graph(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "repo")
    assert run_gitdag(repo, "init").code == 0
    assert run_gitdag(repo, "add", "a", "--title", "first").code == 0
    return repo


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_deep_node_file_and_graph_yaml(graph: Path, shape: str) -> None:
    with state_checkout(graph) as wt:
        node_file(wt, "a").write_text(f"schema_version: 1\nid: a\ntitle: {SHAPES[shape]}\n")
    for args in (["status"], ["show", "a"], ["run", "--once"]):
        assert "nesting is deeper than 32 levels" in one_line_error(run_gitdag(graph, *args))
    r = run_gitdag(graph, "validate")
    assert r.code == 2 and "nesting is deeper" in r.out + r.err, (r.code, r.out[-300:], r.err)
    r = run_gitdag(graph, "doctor")
    assert r.code == 1 and "nesting is deeper" in r.out + r.err, (r.code, r.out[-300:], r.err)
    # The way out works on the broken graph: reset to before the edit.
    assert run_gitdag(graph, "reset", "--to", "dagain/state~1").code == 0
    assert run_gitdag(graph, "status").code == 0


def test_deep_graph_yaml(graph: Path) -> None:
    with state_checkout(graph) as wt:
        (wt / "graph.yaml").write_text("schema_version: 1\ngoal: " + SHAPES["flow-seq"] + "\n")
    line = one_line_error(run_gitdag(graph, "status"))
    assert "graph.yaml" in line and "nesting is deeper" in line


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_deep_config_yaml(graph: Path, shape: str) -> None:
    (graph / ".dagain" / "config.yaml").write_text("schema_version: 1\nrunners: " + SHAPES[shape])
    line = one_line_error(run_gitdag(graph, "run", "--once"))
    assert "config.yaml" in line and "nesting is deeper" in line


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_deep_proposal_file(graph: Path, shape: str) -> None:
    path = graph.parent / "nodes.yaml"
    path.write_text(SHAPES[shape])
    line = one_line_error(run_gitdag(graph, "propose", "p", "--from-file", str(path)))
    assert "nodes.yaml" in line and "nesting is deeper" in line
    assert git(graph, "branch", "--list", "dagain/proposals/*").strip() == ""


def _in_process(code: str, text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        input=text, capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("text", ['{"a": ' + "[" * DEEP, "[" * DEEP, '{"a":' + '{"b":' * DEEP])
def test_deep_runner_result(text: str) -> None:
    proc = _in_process(
        "import sys; from gitdag.core.results import parse_result\n"
        "print(parse_result(sys.stdin.read()))",
        text,
    )
    assert proc.returncode == 0, proc.stderr[-500:]
    assert "invalid_result" in proc.stdout and "nesting is deeper" in proc.stdout


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_deep_scripted_runner_script(tmp_path: Path, suffix: str) -> None:
    script = tmp_path / f"script{suffix}"
    script.write_text('{"a": ' + "[" * DEEP)
    proc = subprocess.run(
        [sys.executable, "-m", "gitdag.runner.scripted", "--script", str(script)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "GITDAG_NODE_ID": "a"},
    )  # fmt: skip
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-500:])
    assert "nesting is deeper" in proc.stderr


def test_deep_node_file_can_be_reverted(graph: Path) -> None:
    with state_checkout(graph) as wt:
        node_file(wt, "a").write_text("schema_version: 1\nid: a\ntitle: " + SHAPES["flow-seq"])
    r = run_gitdag(graph, "revert", "dagain/state")
    assert r.code == 0, r.err[-500:]
    assert run_gitdag(graph, "status").code == 0
