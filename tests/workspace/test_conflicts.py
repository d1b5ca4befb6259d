"""workspace/conflicts.py: what a conflict collided with, and its hunks, bounded."""

from __future__ import annotations

from pathlib import Path

from gitdag.workspace.conflicts import collisions, hunks
from tests.conftest import git, make_repo


def _diverge(tmp_path: Path, lines: int = 3) -> tuple[Path, str, str]:
    body = "".join(f"line {i}\n" for i in range(lines * 10))
    root = make_repo(tmp_path / "r", {"f.txt": body, "other.txt": "o\n"})
    git(root, "checkout", "-q", "-b", "node")
    (root / "f.txt").write_text(body.replace("0\n", "0 node\n"))
    git(root, "commit", "-qam", "node's change")
    head = git(root, "rev-parse", "HEAD").strip()
    git(root, "checkout", "-q", "main")
    git(root, "checkout", "-q", "-b", "dagain/work/first")
    (root / "f.txt").write_text(body.replace("0\n", "0 first\n"))
    git(root, "commit", "-qam", "first's change")
    git(root, "checkout", "-q", "main")
    git(
        root,
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "gitdag: integrate first (attempt 2)",
        "dagain/work/first",
    )
    (root / "other.txt").write_text("unrelated\n")
    git(root, "commit", "-qam", "someone's unrelated commit")
    (root / "f.txt").write_text((root / "f.txt").read_text() + "by hand\n")
    git(root, "commit", "-qam", "a person's commit")
    return root, git(root, "rev-parse", "HEAD").strip(), head


def test_collisions_name_the_node_of_a_gitdag_merge_and_anyone_else_by_commit(
    tmp_path: Path,
) -> None:
    root, tip, head = _diverge(tmp_path)
    found = collisions(root, tip, head, ["f.txt"])
    assert [c.node for c in found] == [None, "first"]  # newest first; the unrelated one skipped
    assert found[0].describe().startswith("commit ") and "a person's commit" in found[0].describe()
    assert found[1].describe().startswith("node first (merge ") and found[1].paths == ("f.txt",)


def test_hunks_show_both_sides_with_context_and_are_cut_with_a_note(tmp_path: Path) -> None:
    root, tip, head = _diverge(tmp_path, lines=30)
    full = hunks(root, tip, head)
    assert full.count("<<<<<<< target") == 30 and "0 first" in full and "0 node" in full
    assert full.count(">>>>>>> previous attempt") == 30 and "--- f.txt, line " in full
    small = hunks(root, tip, head, max_bytes=600)
    assert len(small.encode()) <= 600 and small.rstrip().endswith("of conflicting hunks cut …]")
    assert hunks(root, tip, tip) == ""  # no conflict, nothing to show
