from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gitdag.errors import WorkspaceError
from gitdag.workspace.merge_queue import contains
from tests.conftest import REPO_ROOT, git

from .helpers import TARGET, merge, rev, run_py, setup_repo, show, start_node, user_view, worktrees

FILES = {f"mod{i}.py": f"# module {i}\nvalue = {i}\n" for i in range(4)}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return setup_repo(tmp_path / "repo", {"README.md": "# p\n", **FILES})


def merges_on_target(root: Path) -> list[str]:
    return git(root, "log", "--first-parent", "--format=%s", TARGET).splitlines()[:-1]


def test_four_branches_integrate_in_order_each_exactly_once(root: Path) -> None:
    before = user_view(root)
    for i in range(4):  # all four start from the same tip, like four parallel workers
        start_node(root, f"t{i}", {f"mod{i}.py": f"# module {i}\nvalue = {i * 10 + 1}\n"})
    tips = [rev(root, TARGET)]
    for i in range(4):
        result = merge(root, f"t{i}")
        assert result.status == "merged" and result.target_before == tips[-1]
        assert result.merged == rev(root, TARGET)
        assert git(root, "rev-parse", f"{result.merged}^1", f"{result.merged}^2").split() == [
            tips[-1], rev(root, f"dagain/work/t{i}")
        ]  # fmt: skip
        tips.append(result.merged)
    assert merges_on_target(root) == [f"gitdag: integrate t{i}" for i in (3, 2, 1, 0)]
    for i in range(4):
        assert show(root, TARGET, f"mod{i}.py") == f"# module {i}\nvalue = {i * 10 + 1}\n"
        log = git(
            root, "log", "--format=%H", "-G", f"value = {i * 10 + 1}$", TARGET, "--", f"mod{i}.py"
        )
        assert len(log.split()) == 1  # the change landed exactly once
    assert user_view(root) == before


def test_same_lines_conflict_then_the_retry_integrates(root: Path) -> None:
    before = user_view(root)
    start_node(root, "first", {"mod0.py": "# module 0\nvalue = 'first'\n"})
    start_node(root, "second", {"mod0.py": "# module 0\nvalue = 'second'\n"})
    assert merge(root, "first").status == "merged"
    tip = rev(root, TARGET)

    conflict = merge(root, "second")
    assert conflict.status == "conflict" and conflict.paths == ("mod0.py",)
    assert conflict.merged is None and conflict.target_before == tip
    assert rev(root, TARGET) == tip
    grep = git(root, "grep", "-l", "-e", "<<<<<<<", "-e", ">>>>>>>", TARGET, check=False)
    assert grep == ""

    # The retry starts from the new tip, so it sees the first change and resolves on top of it.
    wt = worktrees(root)
    info = wt.create("second", TARGET)
    assert (info.path / "mod0.py").read_text() == "# module 0\nvalue = 'first'\n"
    (info.path / "mod0.py").write_text("# module 0\nvalue = 'first and second'\n")
    wt.commit_leftovers("second", 2)
    assert merge(root, "second").status == "merged"
    assert show(root, TARGET, "mod0.py") == "# module 0\nvalue = 'first and second'\n"
    assert user_view(root) == before


def test_runner_that_commits_and_runner_that_does_not_both_integrate(root: Path) -> None:
    committed = start_node(root, "self", {"mod1.py": "committed by the agent\n"}, commit=True)
    assert git(root, "log", "-1", "--format=%s", committed).strip() == "agent work on self"
    start_node(root, "lazy", {"mod2.py": "left uncommitted\n", "new/file.txt": "new\n"})
    assert merge(root, "self").status == "merged"
    assert merge(root, "lazy").status == "merged"
    assert show(root, TARGET, "mod1.py") == "committed by the agent\n"
    assert show(root, TARGET, "mod2.py") == "left uncommitted\n"
    assert show(root, TARGET, "new/file.txt") == "new\n"


def test_failing_check_leaves_the_target_where_it_was(root: Path) -> None:
    start_node(root, "bad", {"mod0.py": "syntax error here(\n"})
    tip = rev(root, TARGET)
    check = "echo checking; python3 -m py_compile mod0.py"
    result = merge(root, "bad", check=check)
    assert result.status == "check_failed" and result.merged is None
    assert rev(root, TARGET) == tip
    assert "checking" in result.output_tail and "SyntaxError" in result.output_tail
    assert result.check_log is not None and "checking" in result.check_log.read_text()


def test_check_runs_on_exactly_the_merged_tree(root: Path) -> None:
    start_node(root, "a", {"mod0.py": "A\n"})
    start_node(root, "b", {"mod1.py": "B\n"})
    assert merge(root, "a").status == "merged"
    # The check sees a's change (already on the target) and b's (on the branch), and the commit.
    check = 'test "$(cat mod0.py mod1.py)" = "$(printf "A\\nB")" && git rev-parse HEAD > ../seen'
    result = merge(root, "b", check=check)
    assert result.status == "merged", result.output_tail
    seen = root / ".dagain/local/worktrees/seen"
    assert seen.read_text().strip() == result.merged == rev(root, TARGET)


def test_check_timeout_is_a_failed_check(root: Path) -> None:
    start_node(root, "slow", {"mod0.py": "x\n"})
    tip = rev(root, TARGET)
    result = merge(root, "slow", check="echo started; sleep 30", timeout=0.5)
    assert result.status == "check_failed" and "timed out" in result.output_tail
    assert rev(root, TARGET) == tip


def test_a_target_moved_during_the_check_is_merged_again_on_the_new_tip(root: Path) -> None:
    start_node(root, "n", {"mod0.py": "from the node\n"})
    # The check plays another writer: the first time it runs, it advances the target itself.
    mover = root.parent / "move.sh"
    mover.write_text(
        textwrap.dedent(f"""\
        set -e
        [ -e {root.parent}/moved ] && exit 0
        touch {root.parent}/moved
        cd {root}
        tree=$(git rev-parse {TARGET}^{{tree}})
        new=$(echo other writer | git commit-tree "$tree" -p {TARGET})
        git update-ref refs/heads/{TARGET} "$new"
        echo "$new" > {root.parent}/other
    """)
    )
    result = merge(root, "n", check=f"sh {mover}")
    other = (root.parent / "other").read_text().strip()
    assert result.status == "merged" and result.target_before == other
    assert rev(root, f"{result.merged}^1") == other
    assert show(root, TARGET, "mod0.py") == "from the node\n"


def test_crash_after_advance_is_recognised_as_already_merged(root: Path) -> None:
    start_node(root, "n", {"mod0.py": "changed\n"})
    tip = rev(root, TARGET)
    code = textwrap.dedent(f"""
        from pathlib import Path
        from tests.workspace.helpers import merge
        merge(Path({str(root)!r}), "n")
        print("not reached")
    """)
    proc = run_py(code, REPO_ROOT, env={"GITDAG_CRASH_AT": "merge.after_advance"})
    assert proc.returncode == 137 and "not reached" not in proc.stdout, proc.stderr
    merged = rev(root, TARGET)
    assert merged != tip and contains(root, TARGET, rev(root, "dagain/work/n"))

    # Other work lands on top before the restart finds the node still `merging`.
    start_node(root, "later", {"mod1.py": "later\n"})
    assert merge(root, "later").status == "merged"
    again = merge(root, "n")
    assert again.status == "already_merged" and again.merged == merged  # not the newer tip
    assert merges_on_target(root) == ["gitdag: integrate later", "gitdag: integrate n"]


def test_fast_forwarded_branch_is_already_merged_at_its_own_head(root: Path) -> None:
    head = start_node(root, "n", {"mod0.py": "changed\n"})
    git(root, "branch", "-f", TARGET, head)  # someone fast-forwarded the target by hand
    start_node(root, "m", {"mod1.py": "m\n"})
    assert merge(root, "m").status == "merged"
    result = merge(root, "n")
    assert result.status == "already_merged" and result.merged == head


def test_contains(root: Path) -> None:
    head = start_node(root, "n", {"mod0.py": "changed\n"})
    assert not contains(root, TARGET, head)
    merge(root, "n")
    assert contains(root, TARGET, head)
    assert contains(root, TARGET, rev(root, "main"))


def test_clean_checkout_of_the_target_moves_with_it(root: Path) -> None:
    git(root, "checkout", "-q", TARGET)
    start_node(root, "n", {"mod0.py": "changed\n", "added.txt": "added\n"})
    result = merge(root, "n")
    assert result.status == "merged"
    assert rev(root, "HEAD") == result.merged == rev(root, TARGET)
    assert (root / "mod0.py").read_text() == "changed\n"
    assert (root / "added.txt").read_text() == "added\n"
    assert git(root, "status", "--porcelain") == ""
    assert git(root, "reflog", "-1", "--format=%gs", "HEAD").strip() == "gitdag: merge n"


def test_clean_linked_worktree_of_the_target_moves_with_it(root: Path) -> None:
    other = root.parent / "other-checkout"
    git(root, "worktree", "add", "-q", str(other), TARGET)
    start_node(root, "n", {"mod0.py": "changed\n"})
    assert merge(root, "n").status == "merged"
    assert (other / "mod0.py").read_text() == "changed\n"
    assert git(other, "status", "--porcelain") == ""


def test_dirty_checkout_of_the_target_is_refused_and_untouched(root: Path) -> None:
    git(root, "checkout", "-q", TARGET)
    (root / "mod1.py").write_text("my unsaved edit\n")
    start_node(root, "n", {"mod0.py": "changed\n"})
    tip = rev(root, TARGET)
    result = merge(root, "n")
    assert result.status == "target_checked_out_dirty" and result.merged is None
    assert "mod1.py" in result.output_tail and str(root) in result.output_tail
    assert rev(root, TARGET) == tip
    assert (root / "mod1.py").read_text() == "my unsaved edit\n"
    assert (root / "mod0.py").read_text() == FILES["mod0.py"]

    git(root, "checkout", "-q", "mod1.py")  # the user cleans up: the next try goes through
    assert merge(root, "n").status == "merged"
    assert (root / "mod0.py").read_text() == "changed\n"


def test_untracked_file_in_the_way_refuses_without_change(root: Path) -> None:
    git(root, "checkout", "-q", TARGET)
    (root / "added.txt").write_text("the user's own\n")
    start_node(root, "n", {"added.txt": "from the node\n"})
    tip = rev(root, TARGET)
    result = merge(root, "n")
    assert result.status == "target_checked_out_dirty" and "added.txt" in result.output_tail
    assert rev(root, TARGET) == tip == rev(root, "HEAD")
    assert (root / "added.txt").read_text() == "the user's own\n"
    assert git(root, "status", "--porcelain") == "?? added.txt\n"


def test_missing_branch_is_an_error(root: Path) -> None:
    with pytest.raises(WorkspaceError, match="does not exist"):
        merge(root, "ghost")


def test_target_checked_out_during_the_check_is_not_moved_under_the_user(root: Path) -> None:
    start_node(root, "n", {"mod0.py": "changed\n"})
    tip = rev(root, TARGET)
    other = root.parent / "checked-out-meanwhile"
    check = f"git -C {root} worktree add -q {other} {TARGET} && echo edit >> {other}/mod1.py"
    result = merge(root, "n", check=check)
    assert result.status == "target_checked_out_dirty" and "mod1.py" in result.output_tail
    assert rev(root, TARGET) == tip == rev(other, "HEAD")
    assert (other / "mod1.py").read_text().endswith("edit\n")
    assert (other / "mod0.py").read_text() == FILES["mod0.py"]
