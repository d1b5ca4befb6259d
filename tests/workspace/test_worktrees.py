from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gitdag.crash import crash_point
from gitdag.errors import WorkspaceError
from gitdag.workspace.gitcli import read_ref, run_git
from tests.conftest import git

from .helpers import TARGET, rev, setup_repo, user_view, worktrees


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return setup_repo(tmp_path / "repo", {"README.md": "# p\n", "src/app.py": "x = 1\n"})


def test_create_checks_out_the_target_tip_on_the_node_branch(root: Path) -> None:
    before = user_view(root)
    git(root, "commit", "-q", "--allow-empty", "-m", "later on main")  # main moves; target doesn't
    before = user_view(root)
    info = worktrees(root).create("a", TARGET)
    assert info.path == root / ".dagain/local/worktrees/a"
    assert info.branch == "dagain/work/a"
    assert info.base == rev(root, TARGET) != rev(root, "main")
    assert rev(info.path, "HEAD") == info.base
    assert git(info.path, "symbolic-ref", "HEAD").strip() == "refs/heads/dagain/work/a"
    assert (info.path / "src/app.py").read_text() == "x = 1\n"
    # --no-track: no upstream configured for the node's branch.
    assert git(root, "config", "--get", "branch.dagain/work/a.merge", check=False) == ""
    assert user_view(root) == before


def test_leftovers_are_committed_with_node_and_attempt(root: Path) -> None:
    wt = worktrees(root)
    info = wt.create("a", TARGET)
    (info.path / "src/app.py").write_text("x = 2\n")
    (info.path / "new.txt").write_text("new\n")
    result = wt.commit_leftovers("a", 3)
    assert result.changed and result.agent_commits == 0
    assert result.head == rev(root, "dagain/work/a")
    assert rev(root, result.head + "^") == info.base
    msg = git(root, "log", "-1", "--format=%B", result.head)
    assert "Gitdag-Node: a" in msg and "Gitdag-Attempt: 3" in msg
    assert git(root, "show", f"{result.head}:new.txt") == "new\n"
    assert git(info.path, "status", "--porcelain") == ""


def test_agent_commits_are_kept_and_counted(root: Path) -> None:
    wt = worktrees(root)
    info = wt.create("a", TARGET)
    for i in range(2):
        (info.path / f"f{i}.txt").write_text(f"{i}\n")
        git(info.path, "add", "-A")
        git(info.path, "commit", "-q", "-m", f"agent {i}")
    agent_head = rev(info.path, "HEAD")
    result = wt.commit_leftovers("a", 1)
    assert result == type(result)(head=agent_head, changed=True, agent_commits=2)

    (info.path / "f2.txt").write_text("2\n")  # and then some left uncommitted
    result = wt.commit_leftovers("a", 1)
    assert result.agent_commits == 2 and result.changed
    assert rev(root, result.head + "^") == agent_head


def test_no_change_means_not_changed(root: Path) -> None:
    wt = worktrees(root)
    info = wt.create("a", TARGET)
    result = wt.commit_leftovers("a", 1)
    assert result.head == info.base and not result.changed and result.agent_commits == 0


def test_commits_on_a_detached_head_are_not_lost(root: Path) -> None:
    wt = worktrees(root)
    info = wt.create("a", TARGET)
    git(info.path, "checkout", "-q", "--detach")
    (info.path / "d.txt").write_text("detached\n")
    git(info.path, "add", "-A")
    git(info.path, "commit", "-q", "-m", "on a detached head")
    (info.path / "e.txt").write_text("left over\n")
    result = wt.commit_leftovers("a", 1)
    assert result.agent_commits == 1 and result.changed
    assert git(root, "show", "dagain/work/a:d.txt") == "detached\n"
    assert git(root, "show", "dagain/work/a:e.txt") == "left over\n"


def test_gitdag_local_files_are_never_committed(root: Path) -> None:
    wt = worktrees(root)
    info = wt.create("a", TARGET)
    (info.path / ".dagain/local").mkdir(parents=True)
    (info.path / ".dagain/local/result.json").write_text("{}")
    (info.path / "real.txt").write_text("work\n")
    head = wt.commit_leftovers("a", 1).head
    files = git(root, "ls-tree", "-r", "--name-only", head).split()
    assert "real.txt" in files and not any(f.startswith(".dagain/local") for f in files)
    # And the main checkout never lists gitdag's local directory.
    assert ".dagain" not in git(root, "status", "--porcelain", "--untracked-files=all")


def test_commit_without_any_identity_falls_back_to_gitdag(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("EMAIL", "")
    git(root, "config", "user.useConfigOnly", "true")  # never guess from the host name
    wt = worktrees(root)
    info = wt.create("a", TARGET)
    (info.path / "x.txt").write_text("x\n")
    head = wt.commit_leftovers("a", 1).head
    assert git(root, "log", "-1", "--format=%an", head).strip() == "gitdag"


def test_user_identity_wins_over_the_fallback(root: Path) -> None:
    wt = worktrees(root)
    info = wt.create("a", TARGET)
    (info.path / "x.txt").write_text("x\n")
    head = wt.commit_leftovers("a", 1).head
    assert (
        git(root, "log", "-1", "--format=%an <%ae>", head).strip() == "Test User <test@example.com>"
    )


def test_retry_starts_fresh_from_the_new_tip(root: Path) -> None:
    wt = worktrees(root)
    first = wt.create("a", TARGET)
    (first.path / "attempt1.txt").write_text("old\n")
    wt.commit_leftovers("a", 1)
    (first.path / "junk.txt").write_text("abandoned\n")  # never committed
    git(root, "commit", "-q", "--allow-empty", "-m", "target moves")
    git(root, "branch", "-f", TARGET, "main")

    second = wt.create("a", TARGET)
    assert second.path == first.path and second.base == rev(root, TARGET) != first.base
    assert rev(root, "dagain/work/a") == second.base
    assert not (second.path / "attempt1.txt").exists() and not (second.path / "junk.txt").exists()
    assert git(second.path, "status", "--porcelain") == ""
    assert git(root, "worktree", "list", "--porcelain").count("worktree ") == 2


def test_create_recovers_from_a_deleted_worktree_directory(root: Path) -> None:
    import shutil

    wt = worktrees(root)
    info = wt.create("a", TARGET)
    shutil.rmtree(info.path)  # git still lists it: a stale registration
    again = wt.create("a", TARGET)
    assert (again.path / "README.md").exists()
    listing = git(root, "worktree", "list", "--porcelain")
    assert listing.count("dagain/work/a") == 1 and "prunable" not in listing


def test_remove_deletes_archives_or_keeps_the_branch(root: Path) -> None:
    wt = worktrees(root, background_delete=False)
    for nid in ("a", "b", "c"):
        info = wt.create(nid, TARGET)
        (info.path / f"{nid}.txt").write_text(nid)
        wt.commit_leftovers(nid, 1)
    heads = {n: rev(root, f"dagain/work/{n}") for n in "abc"}
    wt.remove("a", delete_branch=True)
    wt.remove("b", delete_branch=True, archive=True)
    wt.remove("c", delete_branch=False)
    refs = git(root, "for-each-ref", "--format=%(refname)").split()
    assert "refs/heads/dagain/work/a" not in refs
    assert "refs/heads/dagain/work/b" not in refs and rev(root, "dagain/archive/b") == heads["b"]
    assert rev(root, "dagain/work/c") == heads["c"]
    assert not any((root / ".dagain/local/worktrees" / n).exists() for n in "abc")
    assert git(root, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert list((root / ".dagain/local/trash").iterdir()) == []


def test_background_delete_finishes(root: Path) -> None:
    wt = worktrees(root)
    wt.create("a", TARGET)
    wt.remove("a", delete_branch=True)
    assert not (root / ".dagain/local/worktrees/a").exists()  # the path is free at once
    wt.wait_deleted(timeout=30)
    assert list((root / ".dagain/local/trash").iterdir()) == []


def test_scratch_is_reset_to_the_tip_before_each_use(root: Path) -> None:
    (root / ".gitignore").write_text("build/\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "ignore build")
    git(root, "branch", "-f", TARGET, "main")
    before = user_view(root)
    wt = worktrees(root)
    path = wt.scratch(TARGET)
    assert path == root / ".dagain/local/worktrees/_scratch-scratch"
    assert rev(path, "HEAD") == rev(root, TARGET)
    assert git(path, "symbolic-ref", "-q", "HEAD", check=False) == ""  # detached
    (path / "src/app.py").write_text("broken\n")
    (path / "untracked.txt").write_text("u")
    (path / "build").mkdir()
    (path / "build/out.o").write_text("o")
    git(root, "commit", "-q", "--allow-empty", "-m", "tip moves")
    git(root, "branch", "-f", TARGET, "main")
    before = user_view(root)

    again = wt.scratch(TARGET)
    assert again == path and rev(path, "HEAD") == rev(root, TARGET)
    assert (path / "src/app.py").read_text() == "x = 1\n"
    assert not (path / "untracked.txt").exists() and not (path / "build").exists()
    assert git(path, "status", "--porcelain", "--ignored") == ""
    assert user_view(root) == before


def test_concurrent_create_from_several_processes(root: Path) -> None:
    # Unserialised, concurrent `git worktree add` calls trip over each other's lock files.
    n = 6
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from gitdag.workspace.worktrees import Worktrees
        root = Path({str(root)!r})
        go = float(sys.argv[2])
        while time.time() < go:
            pass
        wt = Worktrees(root, root / ".git", root / ".dagain/local")
        info = wt.create(sys.argv[1], {TARGET!r})
        print(info.path)
    """)
    go = time.time() + 1.0
    # Six different nodes, and three processes racing to (re)create the same one.
    names = [f"n{i}" for i in range(n)] + ["same"] * 3
    procs = [
        subprocess.Popen([sys.executable, "-c", script, name, str(go)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in names
    ]  # fmt: skip
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(names), [e for _, e in outs]
    listing = git(root, "worktree", "list", "--porcelain")
    for i in range(n):
        assert f"branch refs/heads/dagain/work/n{i}" in listing
        assert (root / f".dagain/local/worktrees/n{i}/README.md").exists()
    assert listing.count("branch refs/heads/dagain/work/same") == 1 and "prunable" not in listing
    assert git(root / ".dagain/local/worktrees/same", "status", "--porcelain") == ""


def test_a_branch_checked_out_by_the_user_is_never_taken_over(root: Path) -> None:
    git(root, "branch", "dagain/work/a", TARGET)
    git(root, "worktree", "add", "-q", str(root.parent / "mine"), "dagain/work/a")
    with pytest.raises(WorkspaceError, match="outside gitdag's worktrees"):
        worktrees(root).create("a", TARGET)
    assert (root.parent / "mine/README.md").exists()


def test_missing_target_is_an_error(root: Path) -> None:
    with pytest.raises(WorkspaceError, match="does not exist"):
        worktrees(root).create("a", "no/such/branch")


def test_git_location_variables_from_a_hook_are_ignored(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "index"))
    assert run_git(["rev-parse", "--git-dir"], root).stdout.strip() == ".git"


def test_read_ref_reads_loose_and_packed_refs(root: Path) -> None:
    head = rev(root, "main")
    git(root, "pack-refs", "--all")
    assert read_ref(root / ".git", "refs/heads/main") == head
    assert read_ref(root / ".git", "refs/heads/nope") is None
    git(root, "commit", "-q", "--allow-empty", "-m", "loose again")
    assert read_ref(root / ".git", "refs/heads/main") == rev(root, "main") != head


def test_crash_point_exits_137_only_when_named(tmp_path: Path) -> None:
    crash_point("never.listed")  # no env: nothing happens
    code = "from gitdag.crash import crash_point; crash_point('b'); print('alive')"
    env_run = [sys.executable, "-c", code]
    alive = subprocess.run(env_run, capture_output=True, text=True, env={"GITDAG_CRASH_AT": "a,c"})
    dead = subprocess.run(env_run, capture_output=True, text=True, env={"GITDAG_CRASH_AT": "a, b"})
    assert alive.returncode == 0 and alive.stdout == "alive\n"
    assert dead.returncode == 137 and dead.stdout == ""


def test_remove_keeps_a_branch_checked_out_by_hand(root: Path) -> None:
    wt = worktrees(root, background_delete=False)
    info = wt.create("a", TARGET)
    (info.path / "a.txt").write_text("a")
    head = wt.commit_leftovers("a", 1).head
    wt.remove("a", delete_branch=False)
    git(root, "worktree", "add", "-q", str(root.parent / "mine"), "dagain/work/a")
    wt.remove("a", delete_branch=True)
    assert rev(root, "dagain/work/a") == head == rev(root.parent / "mine", "HEAD")
