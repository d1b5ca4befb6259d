"""`validate`, `status` and `run` accept and refuse exactly the same state trees.

Each tree is built with git plumbing (a private index, `update-index --cacheinfo`, `commit-tree`),
the way a hostile or careless hand could: modes gitdag never writes, symlinks, submodule entries,
files outside `nodes/`, wrong shard directories, a file whose name is not its id. All three
commands run as real processes, fresh and after a cached snapshot of the good parent exists, so
both the full and the incremental loads are judged.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gitdag.core.ids import node_path, shard
from tests.conftest import make_repo, run_gitdag

NODE_A = node_path("a")
WRONG_SHARD = "00" if shard("x") != "00" else "01"


def plumb(repo: Path, edits: list[tuple[str, ...]]) -> None:
    """Commit a new dagain/state whose tree is the old one with `edits` applied."""
    env = {**os.environ, "GIT_INDEX_FILE": str(repo.parent / "hostile-index")}

    def git(*args: str, stdin: str | None = None) -> str:
        proc = subprocess.run(["git", *args], cwd=repo, env=env, input=stdin,
                              capture_output=True, text=True, check=True)  # fmt: skip
        return proc.stdout.strip()

    git("read-tree", "dagain/state")
    for edit in edits:
        if edit[0] == "rm":
            listed = git("ls-files", "--", edit[1]).split("\n")
            git("update-index", "--force-remove", "--", *[p for p in listed if p])
        else:
            mode, content, path = edit
            sha = (
                git("rev-parse", "HEAD")
                if mode == "160000"
                else git("hash-object", "-w", "--stdin", stdin=content)
            )
            git("update-index", "--add", "--cacheinfo", f"{mode},{sha},{path}")
    tree = git("write-tree")
    # Trailers of a legal human edit, so `run`'s legality check judges the tree, not the message.
    nodes = sorted({p[2].rsplit("/", 1)[-1].removesuffix(".yaml") for p in edits if len(p) == 3})
    message = (
        "edit graph by hand\n\nGitdag-Transition: edit\nGitdag-Actor: Test User <test@example.com>"
    )
    message += "".join(f"\nGitdag-Node: {n}" for n in nodes if n.islower())
    commit = git("commit-tree", tree, "-p", "dagain/state", "-m", message)
    git("update-ref", "refs/heads/dagain/state", commit)


def node_text(repo: Path, node_id: str = "a") -> str:
    return run_gitdag(repo, "show", node_id).out


HOSTILE: dict[str, list[tuple[str, ...]]] = {
    "executable node file": [("rm", NODE_A), ("100755", "@a", NODE_A)],
    "symlinked node file": [("rm", NODE_A), ("120000", "../../graph.yaml", NODE_A)],
    "submodule in a shard": [("160000", "", f"nodes/{shard('x')}/x.yaml")],
    "submodule at the top": [("160000", "", "vendor")],
    "file outside nodes/": [("100644", "hello\n", "notes.txt")],
    "file in nodes/ itself": [("100644", "@a", "nodes/a.yaml")],
    "non-hex shard directory": [("100644", "@x", "nodes/zz/x.yaml")],
    "wrong shard directory": [
        ("100644", "@x", f"nodes/{'00' if shard('x') != '00' else '01'}/x.yaml")
    ],
    "file name is not its id": [("100644", "@a", node_path("b"))],
    "deeper directory": [("100644", "@a", f"nodes/{shard('a')}/sub/a.yaml")],
    "id git refuses (.lock)": [("100644", "@x.lock", f"nodes/{shard('x.lock')}/x.lock.yaml")],
    "graph.yaml a symlink": [("rm", "graph.yaml"), ("120000", "nodes", "graph.yaml")],
    "graph.yaml a directory": [("rm", "graph.yaml"), ("100644", "x\n", "graph.yaml/x")],
    "README.md a symlink": [("rm", "README.md"), ("120000", "graph.yaml", "README.md")],
    "nodes a file": [("rm", "nodes"), ("100644", "x\n", "nodes")],
    "shard a file": [("rm", NODE_A), ("100644", "x\n", f"nodes/{shard('a')}")],
}
ACCEPTED: dict[str, list[tuple[str, ...]]] = {
    "forge files": [("100644", "on: push\n", ".github/workflows/state.yml")],
    "README edited": [("rm", "README.md"), ("100644", "# by hand\n", "README.md")],
}


def expand(repo: Path, edits: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """`@id` as content means: node a's file, renamed to that id."""
    text = node_text(repo)
    out: list[tuple[str, ...]] = []
    for edit in edits:
        if len(edit) == 3 and edit[1].startswith("@"):
            out.append((edit[0], text.replace("id: a\n", f"id: {edit[1][1:]}\n"), edit[2]))
        else:
            out.append(edit)
    return out


@pytest.fixture
def graph(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "repo")
    assert run_gitdag(repo, "init").code == 0
    assert run_gitdag(repo, "add", "a", "--title", "first").code == 0
    assert run_gitdag(repo, "cancel", "a").code == 0  # so `run` has nothing to start
    return repo


def verdicts(repo: Path) -> dict[str, int]:
    return {
        cmd: run_gitdag(repo, *cmd.split()).code
        for cmd in ("validate", "status", "run --once", "validate dagain/state~1..dagain/state")
    }


# The incremental load (a cached parent) for the cases where full and incremental loads differed.
INCREMENTAL = ("executable node file", "graph.yaml a directory", "submodule in a shard")


@pytest.mark.parametrize(
    ("case", "warm"),
    [(case, False) for case in sorted(HOSTILE)] + [(case, True) for case in INCREMENTAL],
)
def test_hostile_tree_refused_by_all(graph: Path, case: str, warm: bool) -> None:
    if warm:
        assert run_gitdag(graph, "status").code == 0  # a snapshot of the good parent is cached
    plumb(graph, expand(graph, HOSTILE[case]))
    got = verdicts(graph)
    assert set(got.values()) == {2}, (case, got)
    err = run_gitdag(graph, "status").err.strip().splitlines()
    assert len(err) == 1, err


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_accepted_tree_accepted_by_all(graph: Path, case: str) -> None:
    assert run_gitdag(graph, "status").code == 0
    plumb(graph, expand(graph, ACCEPTED[case]))
    got = verdicts(graph)
    assert set(got.values()) == {0}, (case, got)
