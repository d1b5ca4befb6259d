"""The merge queue's git work: integrate one node branch into the target branch.

`integrate` merges without a checkout (`git merge-tree --write-tree`), builds the merge commit
(`git commit-tree`), optionally runs the check command on exactly that commit in a scratch
checkout, and advances the target with compare-and-swap (`git update-ref <ref> <new> <old>`).
If the target moved meanwhile, the merge is redone on the new tip (a bounded number of times).
One integration per target runs at a time across processes (`locks/merge-<target>.lock`), so the
queue order the caller chooses is the order commits land.

The outcome is a value; only trouble that is not an ordinary outcome (a missing branch, git
failing) raises `WorkspaceError`. Node statuses are the caller's business.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gitdag.crash import crash_point
from gitdag.errors import WorkspaceError
from gitdag.workspace.check import run_check
from gitdag.workspace.checkouts import advance_checkout, checkouts_of, dirty_reason
from gitdag.workspace.gitcli import held, read_ref, run_git, run_git_committing, tree_of
from gitdag.workspace.worktrees import Worktrees

MergeStatus = Literal[
    "merged", "already_merged", "conflict", "check_failed", "target_checked_out_dirty"
]
MAX_ROUNDS = 5
CRASH_AFTER_ADVANCE = "merge.after_advance"


@dataclass(frozen=True)
class MergeResult:
    """What integrating one branch came to.

    Attributes:
      status: merged | already_merged | conflict | check_failed | target_checked_out_dirty.
      merged: the target commit that contains the branch (merged, already_merged), else None.
      paths: the conflicting paths (conflict).
      output_tail: the last ~4 KB of the check's output (check_failed), or the reason the
        checked-out target was not touched (target_checked_out_dirty).
      target_before: the target's tip the merge was computed against.
      check_log: the full log of the check command, when one ran.
    """

    status: MergeStatus
    merged: str | None
    paths: tuple[str, ...]
    output_tail: str
    target_before: str
    check_log: Path | None = None


def integrate(
    root: Path,
    git_dir: Path,
    local: Path,
    *,
    branch: str,
    target: str,
    check_cmd: str | None,
    check_timeout_s: float,
    node_id: str,
    message: str,
) -> MergeResult:
    """Merge `branch` into `target`: check, then advance with compare-and-swap.

    Args:
      root: the main working tree (the git dir of a bare repository).
      git_dir: the common git directory.
      local: `.dagain/local/`.
      branch: the node's branch, e.g. `dagain/work/<id>`.
      target: the target branch.
      check_cmd: a shell command run on the merged tree (exit 0 = pass), or None.
      check_timeout_s: how long the check may run.
      node_id: the node (names the check's log, and is in its environment).
      message: the merge commit's message.

    Raises:
      WorkspaceError: a branch is missing, the histories are unrelated, or git fails.
    """
    root, git_dir, local = Path(root), Path(git_dir), Path(local)
    target_ref, branch_ref = "refs/heads/" + target, "refs/heads/" + branch
    with held(local, "merge-" + target):
        for _ in range(MAX_ROUNDS):
            tip = _must_read(git_dir, target_ref, "target branch")
            head = _must_read(git_dir, branch_ref, "branch")
            proc = run_git(
                ["merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", tip, head],
                root,
                check=False,
            )
            if proc.returncode not in (0, 1):
                raise WorkspaceError(f"cannot merge {branch} into {target}: {proc.stderr.strip()}")
            fields = proc.stdout.split("\0")
            tree = fields[0].strip()
            if proc.returncode == 1:
                paths = tuple(dict.fromkeys(p for p in fields[1:] if p))
                return MergeResult("conflict", None, paths, "", tip)
            # A branch already in the target merges to the target's own tree; only then is the
            # (rarer, slower) ancestry question worth asking.
            if tree == tree_of(root, git_dir, tip) and contains_commit(root, tip, head):
                merged = _first_containing(root, tip, head)
                return MergeResult("already_merged", merged, (), "", tip)

            # Refuse early, before spending a check on a merge that could not land.
            if check_cmd and (refusal := _refusal(root, git_dir, target_ref, tip)):
                return refusal

            new = run_git_committing(
                ["commit-tree", "--no-gpg-sign", tree, "-p", tip, "-p", head, "-F", "-"],
                root,
                input=message if message.endswith("\n") else message + "\n",
            ).stdout.strip()

            log: Path | None = None
            if check_cmd:
                log = local / "merge-checks" / f"{node_id}.log"
                env = {
                    "GITDAG_NODE_ID": node_id,
                    "GITDAG_TARGET": target,
                    "GITDAG_MERGE_COMMIT": new,
                }
                wt = Worktrees(root, git_dir, local)
                with wt.using_scratch(new, name="merge-" + target.replace("/", "-")) as scratch:
                    env["GITDAG_WORKTREE"] = str(scratch)
                    outcome = run_check(check_cmd, scratch, log, check_timeout_s, env)
                if not outcome.ok:
                    return MergeResult("check_failed", None, (), outcome.tail, tip, log)

            reflog = f"gitdag: merge {node_id}"
            # Again: the check may have run for minutes, and people check branches out.
            if refusal := _refusal(root, git_dir, target_ref, tip):
                return refusal
            checkouts = checkouts_of(root, git_dir, target_ref)
            if checkouts and read_ref(git_dir, target_ref) != tip:
                advanced = False  # moved under us: never move their files on a stale tip
            elif checkouts:
                advanced, why = advance_checkout(checkouts[0], tip, new, reflog)
                if not advanced and read_ref(git_dir, target_ref) == tip:
                    return _dirty(tip, f"{checkouts[0].path}: {why}")
            else:
                update = ["update-ref", "-m", reflog, target_ref, new, tip]
                advanced = run_git(update, root, check=False).returncode == 0
            if advanced:
                crash_point(CRASH_AFTER_ADVANCE)
                return MergeResult("merged", new, (), "", tip, log)
            time.sleep(0.01)  # someone else moved the target: merge again on its new tip
    raise WorkspaceError(f"{target} kept moving: gave up after {MAX_ROUNDS} merge attempts")


def contains(root: Path, target: str, commit: str) -> bool:
    """Tell whether `commit` is already part of the target branch's history."""
    return contains_commit(Path(root), "refs/heads/" + target, commit)


def contains_commit(root: Path, tip: str, commit: str) -> bool:
    """Tell whether `commit` is an ancestor of (or equal to) `tip`."""
    proc = run_git(["merge-base", "--is-ancestor", commit, tip], root, check=False)
    if proc.returncode in (0, 1):
        return proc.returncode == 0
    raise WorkspaceError(f"cannot compare {commit} with {tip}: {proc.stderr.strip()}")


def _refusal(root: Path, git_dir: Path, target_ref: str, tip: str) -> MergeResult | None:
    """The `target_checked_out_dirty` result if the target's checkout may not be moved."""
    checkouts = checkouts_of(root, git_dir, target_ref)
    if len(checkouts) > 1:
        where = ", ".join(str(c.path) for c in checkouts)
        return _dirty(tip, f"{target_ref[len('refs/heads/') :]} is checked out in {where}")
    if checkouts and (reason := dirty_reason(checkouts[0])):
        return _dirty(tip, reason)
    return None


def _dirty(tip: str, reason: str) -> MergeResult:
    return MergeResult("target_checked_out_dirty", None, (), reason, tip)


def _must_read(git_dir: Path, ref: str, what: str) -> str:
    sha = read_ref(git_dir, ref)
    if sha is None:
        raise WorkspaceError(f"{what} {ref.removeprefix('refs/heads/')} does not exist")
    return sha


def _first_containing(root: Path, tip: str, head: str) -> str:
    """The first commit on the target's first-parent line whose history contains `head`.

    That is the commit that integrated the branch (the merge gitdag made, or `head` itself if
    someone fast-forwarded the target to it), found when a crash hid the answer.
    """
    if tip == head:
        return head
    descendants = set(
        run_git(["rev-list", "--ancestry-path", f"{head}..{tip}"], root).stdout.split()
    )
    line = run_git(["rev-list", "--first-parent", "--parents", f"{head}..{tip}"], root).stdout
    found = tip
    for row in line.splitlines():
        commit, *parents = row.split()
        if commit not in descendants:
            break
        found = commit
        if parents and parents[0] == head:
            return head
    return found
