"""Bad input never changes dagain/state: a one-line error naming the file or field, exit 2.

Broken node files are committed onto dagain/state by hand (a `git worktree` of the branch, an
edit, a commit), the way a person would break it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gitdag.core.codec import MAX_FILE_BYTES
from gitdag.core.ids import node_path
from tests.conftest import GIT_ENV, Result, make_repo, run_gitdag
from tests.store.helpers import node_file, state_checkout, state_head


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per module (the sealed-env fixture is per test, so seal this one by hand)."""
    home = tmp_path_factory.mktemp("template-home")
    env = {**GIT_ENV, "HOME": str(home), "GIT_CONFIG_GLOBAL": str(home / ".gitconfig")}
    repo = tmp_path_factory.mktemp("template") / "repo"
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        make_repo(repo)
        assert run_gitdag(repo, "init").code == 0
        assert run_gitdag(repo, "add", "a", "--title", "first").code == 0
        assert run_gitdag(repo, "add", "b", "--title", "second", "--deps", "a").code == 0
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return repo


@pytest.fixture
def graph(template: Path, tmp_path: Path) -> Path:
    """A repository with dagain/state holding `a`, and `b` depending on it (a fresh copy)."""
    repo = tmp_path / "repo"
    shutil.copytree(template, repo, symlinks=True)
    return repo


def one_line_error(r: Result) -> str:
    assert r.code == 2, (r.code, r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert lines[0].startswith("gitdag: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["../x"], "id: invalid id: must not contain '..'"),
        (["A B"], "id: invalid id: 'A B' must match"),
        (["x" * 70], "id: invalid id: is 70 characters long (at most 64)"),
        (["a"], "id: node 'a' already exists"),
        (["c", "--deps", "ghost"], "c.deps: unknown node 'ghost'"),
        (["c", "--after", "b,nope"], "c.after: unknown node 'nope'"),
        (["c", "--parent", "nobody"], "c.parent: unknown node 'nobody'"),
        (["c", "--deps", "Bad Id"], "deps.0: Value error, invalid id"),
        (["c", "--description", "x" * 70_000], "field description: String should have at most"),
        # Every field within its limit, the file together over it: refused before writing.
        (["c", *(arg for flag in ("--description", "--acceptance", "--verify")
                 for arg in (flag, "€" * 40_000))], "the node file would be"),
    ],
)  # fmt: skip
def test_add_refuses_bad_input_and_changes_nothing(
    graph: Path, args: list[str], expected: str
) -> None:
    head = state_head(graph)
    line = one_line_error(run_gitdag(graph, "add", *args, "--title", "t"))
    assert expected in line
    assert state_head(graph) == head


BROKEN = {
    "conflict": (
        "schema_version: 1\nid: a\n<<<<<<< HEAD\ntitle: ours\n=======\ntitle: theirs\n"
        ">>>>>>> other\n",
        "contains a merge-conflict marker at line 3",
    ),
    "wrong-type": (None, "field priority: Input should be a valid integer"),
    "unknown-key": (None, "field colour: unknown key"),
    "not-yaml": ("schema_version: 1\nid: a\ntitle: [unclosed\n", "malformed YAML"),
    "oversized": (None, f"over the limit of {MAX_FILE_BYTES}"),
    "alias": ("schema_version: 1\nid: a\ntitle: &t x\ndescription: *t\n", "aliases"),
    "wrong-id": (None, "field id: 'zzz' does not match the file name"),
    "bad-version": (None, "field schema_version: unsupported value 2"),
}


def _break(text: str, kind: str) -> str:
    if kind == "wrong-type":
        return text.replace("priority: 0", "priority: high")
    if kind == "unknown-key":
        return text + "colour: blue\n"
    if kind == "oversized":
        return text.replace('description: ""', 'description: "' + "x" * MAX_FILE_BYTES + '"')
    if kind == "wrong-id":
        return text.replace("id: a\n", "id: zzz\n")
    if kind == "bad-version":
        return text.replace("schema_version: 1", "schema_version: 2")
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_node_file_is_named_and_nothing_is_written(graph: Path, kind: str) -> None:
    content, expected = BROKEN[kind]
    with state_checkout(graph, f"break a: {kind}") as wt:
        path = node_file(wt, "a")
        path.write_text(content if content is not None else _break(path.read_text(), kind))
    head = state_head(graph)

    line = one_line_error(run_gitdag(graph, "status"))
    assert f"dagain/state:{node_path('a')}: " in line
    assert expected in line

    add = one_line_error(run_gitdag(graph, "add", "c", "--title", "t"))
    assert node_path("a") in add
    assert state_head(graph) == head

    v = run_gitdag(graph, "validate")
    assert v.code == 2
    assert f"{node_path('a')}: " in v.err and expected in v.err


def test_validate_lists_every_problem(graph: Path) -> None:
    with state_checkout(graph, "break many things") as wt:
        a = node_file(wt, "a")
        a.write_text(a.read_text().replace("priority: 0", "priority: high"))
        b = node_file(wt, "b")
        b.write_text(b.read_text().replace("  - a\n", "  - ghost\n"))
        node_file(wt, "c").write_text("<<<<<<< HEAD\n")
        cyc1 = node_file(wt, "x")
        cyc1.write_text(b.read_text().replace("id: b", "id: x").replace("  - ghost\n", "  - y\n"))
        cyc2 = node_file(wt, "y")
        cyc2.write_text(b.read_text().replace("id: b", "id: y").replace("  - ghost\n", "  - x\n"))
        (wt / "nodes" / "00").mkdir(exist_ok=True)
        (wt / "nodes" / "00" / "misplaced.yaml").write_text("x: 1\n")
        (wt / "nodes" / "00" / "Bad Name.yaml").write_text("x: 1\n")
        (wt / "stray.txt").write_text("?\n")
    head = state_head(graph)
    v = run_gitdag(graph, "validate")
    assert v.code == 2
    lines = v.err.strip().splitlines()
    problems, summary = lines[:-1], lines[-1]
    assert summary == f"{len(problems)} problem(s)"
    text = "\n".join(problems)
    assert f"{node_path('a')}: field priority" in text
    assert f"{node_path('b')}: field deps: unknown node 'ghost'" in text
    assert f"{node_path('c')}: contains a merge-conflict marker at line 1" in text
    assert "field deps: cycle " in text and ("x -> y -> x" in text or "y -> x -> y" in text)
    assert "nodes/00/misplaced.yaml: node 'misplaced' belongs at" in text
    assert "nodes/00/Bad Name.yaml: invalid id" in text
    assert "stray.txt: unexpected entry" in text
    assert len(problems) == 7
    assert state_head(graph) == head


def test_validate_rev_checks_an_older_commit(graph: Path) -> None:
    good = state_head(graph)
    with state_checkout(graph, "introduce a cycle") as wt:
        a = node_file(wt, "a")
        a.write_text(a.read_text().replace("deps: []", "deps:\n  - b"))
    bad = state_head(graph)
    assert run_gitdag(graph, "validate", good).out == "ok\n"
    assert run_gitdag(graph, "validate", "dagain/state~1").code == 0
    r = run_gitdag(graph, "validate", bad)
    assert r.code == 2 and "cycle a -> b -> a" in r.err.replace("b -> a -> b", "a -> b -> a")
    assert run_gitdag(graph, "validate").code == 2
    nope = run_gitdag(graph, "validate", "no-such-rev")
    assert nope.code == 2 and "revision 'no-such-rev': no such commit" in nope.err
    # Fixing it by hand is honoured at once: the next read sees the repaired tree.
    with state_checkout(graph, "fix the cycle") as wt:
        a = node_file(wt, "a")
        a.write_text(a.read_text().replace("deps:\n  - b", "deps: []"))
    assert run_gitdag(graph, "validate").out == "ok\n"
    assert run_gitdag(graph, "add", "c", "--title", "t", "--deps", "b").code == 0
