"""The merge queue's git work: integrate one node branch into the target branch.

`integrate` merges without a checkout (`git merge-tree --write-tree`), writes the merge
commit in-process (`objects.py`), optionally runs the check command on exactly that commit in a
scratch checkout, and advances the target with compare-and-swap (in-process, as `git update-ref
<ref> <new> <old>` would), or through the caller's `land`, which moves it in one ref transaction
with the caller's record of the merge (the supervisor: the node's `merge` transition), so a
node cancelled meanwhile never reaches the target. A checked-out target is moved by
`advance.py`, crash-safely. If the target moved meanwhile, the merge is redone on the new tip
(a bounded number of times). One integration per target runs at a time across processes
(`locks/merge-<target>.lock`), so the queue order the caller chooses is the order commits land.

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
from gitdag.workspace import commit_graph
from gitdag.workspace.advance import (
    Intent,
    Land,
    Landing,
    advance_checkout,
    settle_target,
)
from gitdag.workspace.check import check_merge
from gitdag.workspace.checkouts import checkouts_of, dirty_reason
from gitdag.workspace.conflicts import collisions
from gitdag.workspace.gitcli import held, read_ref, run_git, tree_of
from gitdag.workspace.objects import move_ref, write_commit

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
    job = _Job(Path(root), Path(git_dir), Path(local), branch, target, check_cmd,
               check_timeout_s, node_id, message, land, cancelled)  # fmt: skip
    with held(job.local, "merge-" + target):
        for _ in range(MAX_ROUNDS):
            result = _round(job)
            if result is not None:
                return result
            time.sleep(0.01)  # someone else moved the target: merge again on its new tip
    raise WorkspaceError(f"{target} kept moving: gave up after {MAX_ROUNDS} merge attempts")


@dataclass(frozen=True)
class _Job:
    root: Path
    git_dir: Path
    local: Path
    branch: str
    target: str
    check_cmd: str | None
    check_timeout_s: float
    node_id: str
    message: str
    land: Land | None
    cancelled: Callable[[], bool] | None

    @property
    def target_ref(self) -> str:
        return "refs/heads/" + self.target

    def stopped(self) -> bool:
        return self.cancelled is not None and self.cancelled()


def _round(job: _Job) -> MergeResult | None:
    """One merge on the current tip: its result, or None when the target moved meanwhile."""
    root, git_dir = job.root, job.git_dir
    tip = must_read(git_dir, job.target_ref, "target branch")
    head = must_read(git_dir, "refs/heads/" + job.branch, "branch")
    if half_moved := settle_target(job.local, job.target_ref):
        return dirty(tip, half_moved)
    if job.stopped():
        return MergeResult("abandoned", None, (), "cancelled", tip)
    step = merge_onto(root, git_dir, tip, head, job.message, what=f"{job.branch} into {job.target}")
    if step.result is not None:
        return step.result
    assert step.commit is not None
    # Refuse early, before spending a check on a merge that could not land.
    if job.check_cmd and (refusal := refusal_of(root, git_dir, job.target_ref, tip)):
        return refusal
    log: Path | None = None
    if job.check_cmd:
        env = {"GITDAG_NODE_ID": job.node_id}
        outcome, log = check_merge(root, git_dir, job.local, job.target, step.commit,
                                   job.check_cmd, job.check_timeout_s, job.node_id, env,
                                   stop=job.cancelled)  # fmt: skip
        if outcome.stopped:
            return MergeResult("abandoned", None, (), "cancelled", tip, log)
        if not outcome.ok:
            return MergeResult("check_failed", None, (), outcome.tail, tip, log)
    # Again: the check may have run for minutes, and people check branches out.
    if refusal := refusal_of(root, git_dir, job.target_ref, tip):
        return refusal
    if job.stopped():
        return MergeResult("abandoned", None, (), "cancelled", tip, log)
    landing = publish(root, git_dir, job.local, job.target_ref, tip, step.commit,
                      f"merge {job.node_id}", job.land)  # fmt: skip
    if landing.outcome == "refused":
        return dirty(tip, landing.reason)
    if landing.outcome == "landed":
        crash_point(CRASH_AFTER_ADVANCE)
        return MergeResult("merged", step.commit, (), "", tip, log, recorded=job.land is not None)
    if landing.outcome == "abandoned":
        return MergeResult("abandoned", None, (), landing.reason, tip, log)
    return None


@dataclass(frozen=True)
class Step:
    """One branch merged onto a tip without a checkout: the merge commit, or why there is none.

    `result` is set (conflict, already_merged) when there is nothing to check or land.
    """

    commit: str | None
    tree: str
    result: MergeResult | None = None


def merge_onto(
    root: Path, git_dir: Path, tip: str, head: str, message: str, *, what: str,
    seen_from: str | None = None,
) -> Step:  # fmt: skip
    """Merge `head` onto `tip` (`git merge-tree`), writing the merge commit in-process.

    The commit's first parent is `tip`, so the target's first-parent line is the queue order.
    A conflict's collisions are the target's changes since `seen_from` (default: `tip`).

    Raises:
      WorkspaceError: git could not merge (unrelated histories, a missing object).
    """
    proc = run_git(
        ["merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", tip, head],
        root,
        check=False,
    )
    if proc.returncode not in (0, 1):
        raise WorkspaceError(f"cannot merge {what}: {proc.stderr.strip()}")
    fields = proc.stdout.split("\0")
    tree = fields[0].strip()
    if proc.returncode == 1:
        paths = tuple(dict.fromkeys(p for p in fields[1:] if p))
        hit = tuple(c.describe() for c in collisions(root, seen_from or tip, head, paths))
        return Step(None, tree, MergeResult("conflict", None, paths, "", tip, collided=hit))
    # A branch already in the target merges to the target's own tree; only then is the
    # (rarer, slower) ancestry question worth asking.
    if tree == tree_of(root, git_dir, tip) and contains_commit(root, tip, head):
        merged = _first_containing(root, tip, head)
        return Step(None, tree, MergeResult("already_merged", merged, (), "", tip))
    text = message if message.endswith("\n") else message + "\n"
    return Step(write_commit(root, git_dir, tree, [tip, head], text), tree)


def conflict_summary(result: MergeResult) -> str:
    """The one paragraph a conflict is recorded with: the paths and what they collided with."""
    text = "merge conflict in " + ", ".join(result.paths[:20])
    if result.collided:
        text += " with the change of " + ", ".join(result.collided)
    return text


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
    """Move the target from `tip` to `new` (its checkout too, if any): landed, moved, ...

    `what` names the move in reflogs and the checkout's record (`merge <id>`). Every so many
    landings the commit-graph is brought up to date (`commit_graph.py`), still under the lock.
    """
    landing = _publish(root, git_dir, local, target_ref, tip, new, what, land)
    if landing.outcome == "landed":
        commit_graph.landed(root, git_dir)
    return landing


def _publish(
    root: Path,
    git_dir: Path,
    local: Path,
    target_ref: str,
    tip: str,
    new: str,
    what: str,
    land: Land | None,
) -> Landing:
    checkouts = checkouts_of(root, git_dir, target_ref)
    if checkouts:
        if read_ref(git_dir, target_ref) != tip:
            return Landing("moved")  # moved under us: never move their files on a stale tip
        intent = Intent(
            str(checkouts[0].path), target_ref, tip, new, what.replace("merge", "merging", 1)
        )
        landing = advance_checkout(checkouts[0], intent, local, f"gitdag: {what}", land)
        if landing.outcome == "refused" and read_ref(git_dir, target_ref) != tip:
            return Landing("moved")
        return landing
    if land is not None:
        return land(target_ref, tip, new, root)
    moved = move_ref(root, git_dir, target_ref, tip, new, f"gitdag: {what}")
    return Landing("landed" if moved else "moved")


def contains(root: Path, target: str, commit: str) -> bool:
    """Tell whether `commit` is already part of the target branch's history."""
    return contains_commit(Path(root), "refs/heads/" + target, commit)


def contains_commit(root: Path, tip: str, commit: str) -> bool:
    """Tell whether `commit` is an ancestor of (or equal to) `tip`."""
    proc = run_git(["merge-base", "--is-ancestor", commit, tip], root, check=False)
    if proc.returncode in (0, 1):
        return proc.returncode == 0
    raise WorkspaceError(f"cannot compare {commit} with {tip}: {proc.stderr.strip()}")


def refusal_of(root: Path, git_dir: Path, target_ref: str, tip: str) -> MergeResult | None:
    """The `target_checked_out_dirty` result if the target's checkout may not be moved."""
    checkouts = checkouts_of(root, git_dir, target_ref)
    if len(checkouts) > 1:
        where = ", ".join(str(c.path) for c in checkouts)
        return dirty(tip, f"{target_ref[len('refs/heads/') :]} is checked out in {where}")
    if checkouts and (reason := dirty_reason(checkouts[0])):
        return dirty(tip, reason)
    return None


def dirty(tip: str, reason: str) -> MergeResult:
    return MergeResult("target_checked_out_dirty", None, (), reason, tip)


def must_read(git_dir: Path, ref: str, what: str) -> str:
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
