"""The state branch as git sees it after `gitdag init` and three `gitdag add`s (real CLI)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gitdag.core import codec
from gitdag.core.ids import node_path
from tests.conftest import git, run_gitdag


def _trailers(body: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in body.splitlines():
        if line.startswith("Gitdag-") and ": " in line:
            key, _, value = line.partition(": ")
            out.setdefault(key, []).append(value)
    return out


def test_init_and_three_adds_as_git_sees_them(repo: Path) -> None:
    head_before = git(repo, "rev-parse", "HEAD").strip()
    branch_before = git(repo, "symbolic-ref", "HEAD").strip()
    index_before = git(repo, "ls-files", "--stage")
    assert git(repo, "status", "--porcelain") == ""

    r = run_gitdag(repo, "init", "--goal", "Ship the parser")
    assert r.code == 0, r.err
    for nid, extra in (("lexer", []), ("parser", ["--deps", "lexer"]),
                       ("docs", ["--deps", "lexer,parser", "--kind", "verify"])):  # fmt: skip
        r = run_gitdag(repo, "add", nid, "--title", f"Write the {nid}", *extra)
        assert r.code == 0, r.err
        assert r.out.startswith(f"added {nid} (")

    # 4 commits (init + 3 adds), newest first, each with its trailers.
    raw = git(repo, "log", "--format=%H%x00%P%x00%an <%ae>%x00%B%x1e", "dagain/state")
    commits = [c.strip("\n").split("\x00") for c in raw.split("\x1e") if c.strip()]
    assert len(commits) == 4
    titles = [body.splitlines()[0] for _, _, _, body in commits]
    assert titles == ["add docs: - -> open", "add parser: - -> open", "add lexer: - -> open",
                      "init graph"]  # fmt: skip
    for (_, _, author, body), verb, node in zip(
        commits,
        ["add", "add", "add", "init"],
        ["docs", "parser", "lexer", "plan-000"],
        strict=True,
    ):
        trailers = _trailers(body)
        assert trailers["Gitdag-Transition"] == [verb]
        assert trailers["Gitdag-Node"] == [node]
        assert trailers["Gitdag-Actor"] == ["Test User <test@example.com>"]
        assert author == "Test User <test@example.com>"

    # The node file is on the branch, sharded, and parses back to the node.
    text = git(repo, "cat-file", "-p", f"dagain/state:{node_path('parser')}")
    node = codec.load_node(text)
    assert (node.id, node.title, node.deps, node.status.value) == (
        "parser",
        "Write the parser",
        ("lexer",),
        "open",
    )
    assert node_path("parser") == f"nodes/{node_path('parser').split('/')[1]}/parser.yaml"
    assert git(repo, "cat-file", "-p", "dagain/state:graph.yaml").startswith("schema_version: 1\n")
    files = git(repo, "ls-tree", "-r", "--name-only", "dagain/state").split()
    assert sorted(f for f in files if f.startswith("nodes/")) == sorted(
        node_path(n) for n in ("plan-000", "lexer", "parser", "docs")
    )

    # An orphan: the root has no parent and shares no history with the code branch.
    roots = git(repo, "rev-list", "--max-parents=0", "dagain/state").split()
    assert len(roots) == 1 and commits[-1][0] == roots[0] and commits[-1][1] == ""
    base = git(repo, "merge-base", "main", "dagain/state", check=False)
    assert base == ""
    proc = subprocess.run(["git", "merge-base", "main", "dagain/state"], cwd=repo)
    assert proc.returncode == 1

    # Nothing broken in the object database.
    fsck = subprocess.run(
        ["git", "fsck", "--strict", "--no-dangling"], cwd=repo, capture_output=True, text=True
    )
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert "error" not in fsck.stderr.lower() and "missing" not in fsck.stdout.lower()

    # The user's checkout: HEAD, branch and index untouched; only the new untracked .dagain/.
    assert git(repo, "rev-parse", "HEAD").strip() == head_before
    assert git(repo, "symbolic-ref", "HEAD").strip() == branch_before
    assert git(repo, "ls-files", "--stage") == index_before
    assert git(repo, "status", "--porcelain") == "?? .dagain/\n"
    # .dagain/local/ (caches, locks) is ignored by .dagain/.gitignore, which the user commits.
    assert git(repo, "status", "--porcelain", "--ignored") == "?? .dagain/\n!! .dagain/local/\n"
    assert (repo / ".dagain" / ".gitignore").read_text() == "local/\n"
    ignored = git(repo, "check-ignore", ".dagain/local/cache", check=False).strip()
    assert ignored == ".dagain/local/cache"
    # The target branch starts at HEAD.
    assert git(repo, "rev-parse", "dagain/integration").strip() == head_before


def test_status_before_init_is_a_clear_error(repo: Path) -> None:
    r = run_gitdag(repo, "status")
    assert r.code == 2
    assert r.err.strip() == "gitdag: error: no dagain/state branch here: run `gitdag init` first"


def test_second_init_is_refused_and_changes_nothing(repo: Path) -> None:
    assert run_gitdag(repo, "init").code == 0
    head = git(repo, "rev-parse", "dagain/state").strip()
    r = run_gitdag(repo, "init", "--goal", "again")
    assert r.code == 2
    assert "already exists" in r.err and len(r.err.strip().splitlines()) == 1
    assert git(repo, "rev-parse", "dagain/state").strip() == head


def test_init_without_goal_has_no_root_node(repo: Path) -> None:
    assert run_gitdag(repo, "init", "--target", "integration").code == 0
    files = git(repo, "ls-tree", "-r", "--name-only", "dagain/state").split()
    assert files == ["graph.yaml"] or set(files) <= {"graph.yaml", "README.md"}
    graph = codec.load_graph(git(repo, "cat-file", "-p", "dagain/state:graph.yaml"))
    assert graph.target == "integration" and graph.goal == ""
    assert git(repo, "rev-parse", "integration").strip() == git(repo, "rev-parse", "HEAD").strip()
