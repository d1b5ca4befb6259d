from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from gitdag.workspace.gc import GcReport, disk_usage, gc
from gitdag.workspace.worktrees import admin_dir
from tests.conftest import git

from .helpers import TARGET, merge, rev, setup_repo, start_node, worktrees


@pytest.fixture
def root(tmp_path: Path) -> Path:
    files = {f"src/f{i}.txt": f"{i}\n" * 200 for i in range(50)}
    return setup_repo(tmp_path / "repo", files)


def du(*paths: Path) -> int:
    """`du`'s own count, in bytes, of everything under the paths (each inode once)."""
    out = subprocess.run(["du", "-s", "-c", "-B1", *map(str, paths)], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return int(out.splitlines()[-1].split()[0])


def gc_here(root: Path, live: set[str], integrated: set[str], **kw: bool | float) -> GcReport:
    return gc(root, root / ".git", root / ".dagain/local", live, integrated, **kw)  # type: ignore[arg-type]


def test_gc_removes_what_no_live_node_needs_and_frees_what_it_says(root: Path) -> None:
    for nid in ("live", "merged", "failed"):
        start_node(root, nid, {f"{nid}.txt": nid * 1000})
    assert merge(root, "merged").status == "merged"
    wt = worktrees(root)
    wt.scratch(TARGET, name="slot0")
    local = root / ".dagain/local"
    gone = [local / "worktrees" / n for n in ("merged", "failed", "_scratch-slot0")]
    gone += [admin_dir(p) for p in gone]  # type: ignore[misc]
    expected = du(*gone)
    live_before = rev(root, "dagain/work/live")

    report = gc_here(root, {"live"}, {"merged"})

    assert report.removed_worktrees == ("failed", "merged")
    assert report.removed_scratch == ("slot0",)
    assert report.deleted_branches == ("merged",)
    assert report.kept_branches == ("failed",)
    assert report.bytes_freed == expected > 100_000
    assert not any(p.exists() for p in gone)
    assert (local / "worktrees/live/live.txt").exists()
    refs = git(root, "for-each-ref", "--format=%(refname:short)", "refs/heads/dagain").split()
    assert sorted(refs) == ["dagain/integration", "dagain/work/failed", "dagain/work/live"]
    assert rev(root, "dagain/work/live") == live_before
    listing = git(root, "worktree", "list", "--porcelain")
    assert listing.count("worktree ") == 2 and "prunable" not in listing


def test_gc_archives_and_deletes_unmerged_on_request(root: Path) -> None:
    head = start_node(root, "merged", {"a.txt": "a"})
    start_node(root, "failed", {"b.txt": "b"})
    merge(root, "merged")
    report = gc_here(root, set(), {"merged"}, archive=True, delete_unmerged=True)
    assert report.archived_branches == ("merged",)
    assert report.deleted_branches == ("failed",)
    assert rev(root, "dagain/archive/merged") == head
    assert git(root, "for-each-ref", "refs/heads/dagain/work") == ""


def test_gc_keeps_a_branch_someone_checked_out(root: Path) -> None:
    start_node(root, "n", {"a.txt": "a"})
    merge(root, "n")
    worktrees(root, background_delete=False).remove("n", delete_branch=False)
    git(root, "worktree", "add", "-q", str(root.parent / "mine"), "dagain/work/n")
    report = gc_here(root, set(), {"n"})
    assert report.kept_branches == ("n",)
    assert rev(root, "dagain/work/n")


def test_gc_empties_trash_and_forgets_vanished_checkouts(root: Path) -> None:
    wt = worktrees(root)
    info = wt.create("n", TARGET)
    admin = admin_dir(info.path)
    assert admin is not None
    trash = root / ".dagain/local/trash"
    trash.mkdir(parents=True)
    os.replace(info.path, trash / "n.interrupted")  # a background delete that never ran
    expected = du(trash / "n.interrupted", admin)
    report = gc_here(root, set(), set())
    assert report.bytes_freed == expected
    assert list(trash.iterdir()) == [] and not admin.exists()


def test_gc_removes_old_run_directories_of_nodes_not_live(root: Path) -> None:
    runs = root / ".dagain/local/runs"
    for nid in ("old", "live", "fresh"):
        (runs / nid / "1").mkdir(parents=True)
        (runs / nid / "1" / "log").write_text("x" * 10_000)
    past = time.time() - 3600
    for nid in ("old", "live"):
        for p in [runs / nid, runs / nid / "1", runs / nid / "1" / "log"]:
            os.utime(p, (past, past))
    expected = du(runs / "old")
    report = gc_here(root, {"live"}, set(), runs_older_than_s=600)
    assert report.removed_runs == ("old",)
    assert report.bytes_freed == expected
    assert sorted(p.name for p in runs.iterdir()) == ["fresh", "live"]


def test_disk_usage_matches_du(tmp_path: Path) -> None:
    (tmp_path / "d/e").mkdir(parents=True)
    (tmp_path / "d/a").write_bytes(b"a" * 5000)
    (tmp_path / "d/e/b").write_bytes(b"b" * 100)
    os.link(tmp_path / "d/a", tmp_path / "d/e/hard")
    os.symlink("a", tmp_path / "d/link")
    assert disk_usage(tmp_path / "d") == du(tmp_path / "d")
