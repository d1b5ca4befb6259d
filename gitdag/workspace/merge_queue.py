"""The merge queue's git work: integrate one node branch into the target branch.

`integrate` merges without a checkout (`git merge-tree --write-tree`), builds the merge commit
(`git commit-tree`), optionally runs the check command on exactly that commit in a scratch
checkout, and advances the target with compare-and-swap (`git update-ref <ref> <new> <old>`),
or through the caller's `land`, which moves it in one ref transaction with the caller's record
of the merge (the supervisor: the node's `merge` transition), so a node cancelled meanwhile
never reaches the target. A checked-out target is moved by `advance.py`, crash-safely.
If the target moved meanwhile, the merge is redone on the new tip (a bounded number of times).
One integration per target runs at a time across processes (`locks/merge-<target>.lock`), so the
queue order the caller chooses is the order commits land.

The outcome is a value; only trouble that is not an ordinary outcome (a missing branch, git
failing) raises `WorkspaceError`. Node statuses are the caller's business.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gitdag.crash import crash_point
from gitdag.errors import WorkspaceError
from gitdag.workspace.advance import (
    Intent,
    Land,
    Landing,
    advance_checkout,
    settle_target,
)
from gitdag.workspace.check import run_check
from gitdag.workspace.checkouts import checkouts_of, dirty_reason
from gitdag.workspace.conflicts import collisions
from gitdag.workspace.gitcli import held, read_ref, run_git, run_git_committing, tree_of
from gitdag.workspace.worktrees import Worktrees

MergeStatus = Literal[
    "merged", "already_merged", "conflict", "check_failed", "target_checked_out_dirty", "abandoned"
]
MAX_ROUNDS = 5
CRASH_AFTER_ADVANCE = "merge.after_advance"


@dataclass(frozen=True)
class MergeResult:
    """What integrating one branch came to.

    Attributes:
      status: merged | already_merged | conflict | check_failed | target_checked_out_dirty |
        abandoned (`land` declined or `cancelled` turned true: the target was not touched).
      merged: the target commit that contains the branch (merged, already_merged), else None.
      paths: the conflicting paths (conflict).
      output_tail: the last ~4 KB of the check's output (check_failed), or the reason the
        checked-out target was not touched (target_checked_out_dirty), or why the merge was
        abandoned.
      target_before: the target's tip the merge was computed against.
      check_log: the full log of the check command, when one ran.
      recorded: `land` committed the caller's record of the merge with the advance (merged).
      collided: the target's changes a conflict collided with, described (`node <id> (merge
        <sha>)`, or a commit someone else made), newest first (conflict).
    """

    status: MergeStatus
    merged: str | None
    paths: tuple[str, ...]
    output_tail: str
    target_before: str
    check_log: Path | None = None
    recorded: bool = False
    collided: tuple[str, ...] = ()


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
    land: Land | None = None,
    cancelled: Callable[[], bool] | None = None,
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
      land: publishes the merge: called as (ref, tip, merge, cwd) once the merge passed its
        check, it moves the ref (jointly with the caller's record of the merge) and says how
        that went; without it, the target moves by compare-and-swap alone.
      cancelled: polled while the check runs and before landing; once true, the check is
        stopped and the result is `abandoned` with the target untouched.

    Raises:
      WorkspaceError: a branch is missing, the histories are unrelated, or git fails.
    """
    root, git_dir, local = Path(root), Path(git_dir), Path(local)
    target_ref, branch_ref = "refs/heads/" + target, "refs/heads/" + branch
    with held(local, "merge-" + target):
        for _ in range(MAX_ROUNDS):
            tip = _must_read(git_dir, target_ref, "target branch")
            head = _must_read(git_dir, branch_ref, "branch")
            if half_moved := settle_target(local, target_ref):
                return _dirty(tip, half_moved)
            if cancelled is not None and cancelled():
                return MergeResult("abandoned", None, (), "cancelled", tip)
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
                hit = tuple(c.describe() for c in collisions(root, tip, head, paths))
                return MergeResult("conflict", None, paths, "", tip, collided=hit)
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
                    outcome = run_check(
                        check_cmd, scratch, log, check_timeout_s, env, stop=cancelled
                    )
                if outcome.stopped:
                    return MergeResult("abandoned", None, (), "cancelled", tip, log)
                if not outcome.ok:
                    return MergeResult("check_failed", None, (), outcome.tail, tip, log)

            # Again: the check may have run for minutes, and people check branches out.
            if refusal := _refusal(root, git_dir, target_ref, tip):
                return refusal
            if cancelled is not None and cancelled():
                return MergeResult("abandoned", None, (), "cancelled", tip, log)
            landing = _publish(root, git_dir, local, target_ref, tip, new, node_id, land)
            if landing.outcome == "refused":
                return _dirty(tip, landing.reason)
            if landing.outcome == "landed":
                crash_point(CRASH_AFTER_ADVANCE)
                return MergeResult("merged", new, (), "", tip, log, recorded=land is not None)
            if landing.outcome == "abandoned":
                return MergeResult("abandoned", None, (), landing.reason, tip, log)
            time.sleep(0.01)  # someone else moved the target: merge again on its new tip
    raise WorkspaceError(f"{target} kept moving: gave up after {MAX_ROUNDS} merge attempts")


def conflict_summary(result: MergeResult) -> str:
    """The one paragraph a conflict is recorded with: the paths and what they collided with."""
    text = "merge conflict in " + ", ".join(result.paths[:20])
    if result.collided:
        text += " with the change of " + ", ".join(result.collided)
    return text


def _publish(
    root: Path,
    git_dir: Path,
    local: Path,
    target_ref: str,
    tip: str,
    new: str,
    node_id: str,
    land: Land | None,
) -> Landing:
    """Move the target from `tip` to `new` (its checkout too, if any): landed, moved, ..."""
    checkouts = checkouts_of(root, git_dir, target_ref)
    if checkouts:
        if read_ref(git_dir, target_ref) != tip:
            return Landing("moved")  # moved under us: never move their files on a stale tip
        intent = Intent(str(checkouts[0].path), target_ref, tip, new, "merging " + node_id)
        landing = advance_checkout(checkouts[0], intent, local, f"gitdag: merge {node_id}", land)
        if landing.outcome == "refused" and read_ref(git_dir, target_ref) != tip:
            return Landing("moved")
        return landing
    if land is not None:
        return land(target_ref, tip, new, root)
    update = ["update-ref", "-m", f"gitdag: merge {node_id}", target_ref, new, tip]
    return Landing("landed" if run_git(update, root, check=False).returncode == 0 else "moved")


def publish(
    root: Path,
    git_dir: Path,
    local: Path,
    target_ref: str,
    tip: str,
    new: str,
    what: str,
    land: Land | None,
) -> Landing:
    """Move the target from `tip` to `new` as a merge does (for `workspace.groups`)."""
    return _publish(root, git_dir, local, target_ref, tip, new, what, land)


def refusal(root: Path, git_dir: Path, target_ref: str, tip: str) -> MergeResult | None:
    """The `target_checked_out_dirty` result if the target's checkout may not be moved."""
    return _refusal(root, git_dir, target_ref, tip)


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
