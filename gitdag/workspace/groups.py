"""Integrating a transaction group: every member's branch lands in one target commit, or none.

`integrate_group` merges the members' branches, in the order given (their dependency order),
onto the target's tip without a checkout (`git merge-tree --write-tree`, one member at a time
onto the tree so far), records the result as ONE commit whose parents are the tip and every
member's head (an octopus made with `git commit-tree`), runs the check once on that commit, and
advances the target by one compare-and-swap (or through the caller's `land`, which records the
members' `merge` together with it). A conflict names the members whose changes conflict (the
member that could not merge, and the earlier members that touched the same paths); a failing
check is attributed by checking the tip plus the first k members, k = 1, 2, ... (only on
failure), and names the member whose merge first fails. The target is never touched on either.

Shares the merge queue's lock (`locks/merge-<target>.lock`) and its landing (`merge_queue`), so
groups and single nodes integrate one at a time in the caller's order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gitdag.errors import WorkspaceError
from gitdag.workspace.advance import Land, settle_target
from gitdag.workspace.check import run_check
from gitdag.workspace.conflicts import collisions
from gitdag.workspace.gitcli import held, read_ref, run_git
from gitdag.workspace.merge_queue import (
    MAX_ROUNDS,
    MergeResult,
    contains_commit,
    publish,
    refusal_of,
)
from gitdag.workspace.objects import write_commit
from gitdag.workspace.worktrees import Worktrees

GroupStatus = Literal[
    "merged", "already_merged", "conflict", "check_failed", "target_checked_out_dirty", "abandoned"
]


@dataclass(frozen=True)
class Member:
    """One member of a group: its node and its branch."""

    node_id: str
    branch: str


@dataclass(frozen=True)
class GroupResult:
    """What integrating a group came to (the statuses of `merge_queue.MergeResult`).

    Attributes:
      status: merged | already_merged | conflict | check_failed | target_checked_out_dirty |
        abandoned.
      merged: the target commit that holds every member (merged, already_merged).
      involved: the members whose changes made it fail (conflict, check_failed).
      paths: the conflicting paths (conflict).
      output_tail: the failing check's last output, or why the target was not touched.
      target_before: the tip the group was merged onto.
      collided: the target changes a conflict collided with (described).
      check_log: the check's log, when one ran.
      recorded: `land` recorded the members' merge with the advance.
    """

    status: GroupStatus
    merged: str | None
    target_before: str
    involved: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    output_tail: str = ""
    collided: tuple[str, ...] = ()
    check_log: Path | None = None
    recorded: bool = False


@dataclass(frozen=True)
class _Conflict:
    member: str
    paths: tuple[str, ...]
    involved: tuple[str, ...]
    collided: tuple[str, ...]


def integrate_group(
    root: Path,
    git_dir: Path,
    local: Path,
    *,
    group: str,
    members: Sequence[Member],
    target: str,
    check_cmd: str | None,
    check_timeout_s: float,
    message: str,
    land: Land | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> GroupResult:
    """Merge every member's branch into `target` in one commit, check it once, land it once.

    Args:
      root: the main working tree.
      git_dir: the common git directory.
      local: `.dagain/local/`.
      group: the group's name (names the check's log).
      members: the members to merge, in dependency order.
      target: the target branch.
      check_cmd: the check command (exit 0 = pass), or None.
      check_timeout_s: how long one check may run.
      message: the group commit's message.
      land: publishes the commit with the caller's record (see `merge_queue.integrate`).
      cancelled: polled while checking and before landing: once true, nothing lands.

    Raises:
      WorkspaceError: a branch or the target is missing, or git fails.
    """
    if not members:
        raise WorkspaceError(f"group {group} has no member to merge")
    root, git_dir, local = Path(root), Path(git_dir), Path(local)
    target_ref = "refs/heads/" + target
    with held(local, "merge-" + target):
        for _ in range(MAX_ROUNDS):
            tip = _read(git_dir, target_ref, "target branch")
            heads = [_read(git_dir, "refs/heads/" + m.branch, "branch") for m in members]
            if half_moved := settle_target(local, target_ref):
                return GroupResult("target_checked_out_dirty", None, tip, output_tail=half_moved)
            if cancelled is not None and cancelled():
                return GroupResult("abandoned", None, tip, output_tail="cancelled")
            if all(contains_commit(root, tip, head) for head in heads):
                return GroupResult("already_merged", tip, tip)
            merged = _merge_all(root, git_dir, tip, members, heads)
            if isinstance(merged, _Conflict):
                return GroupResult(
                    "conflict", None, tip, merged.involved, merged.paths, collided=merged.collided
                )
            if check_cmd and (refused := refusal_of(root, git_dir, target_ref, tip)):
                return _as_group(refused)
            new = _commit(root, git_dir, merged[-1], tip, heads, message)
            log = None
            if check_cmd:
                log = local / "merge-checks" / f"group-{group}.log"
                failed = _check(
                    root,
                    git_dir,
                    local,
                    check_cmd,
                    check_timeout_s,
                    log,
                    new,
                    target,
                    group,
                    cancelled,
                )
                if failed == "stopped":
                    return GroupResult("abandoned", None, tip, output_tail="cancelled")
                if failed is not None:
                    culprit = _culprit(
                        root,
                        git_dir,
                        local,
                        check_cmd,
                        check_timeout_s,
                        tip,
                        members,
                        heads,
                        merged,
                        target,
                        group,
                        cancelled,
                    )
                    return GroupResult(
                        "check_failed", None, tip, (culprit,), (), failed, check_log=log
                    )
            if refused := refusal_of(root, git_dir, target_ref, tip):
                return _as_group(refused)
            if cancelled is not None and cancelled():
                return GroupResult("abandoned", None, tip, output_tail="cancelled", check_log=log)
            landing = publish(root, git_dir, local, target_ref, tip, new, f"group {group}", land)
            if landing.outcome == "refused":
                return GroupResult(
                    "target_checked_out_dirty", None, tip, output_tail=landing.reason
                )
            if landing.outcome == "landed":
                return GroupResult("merged", new, tip, check_log=log, recorded=land is not None)
            if landing.outcome == "abandoned":
                return GroupResult("abandoned", None, tip, output_tail=landing.reason)
            time.sleep(0.01)  # the target moved meanwhile: merge the group again on its tip
    raise WorkspaceError(f"{target} kept moving: gave up after {MAX_ROUNDS} group merges")


def _read(git_dir: Path, ref: str, what: str) -> str:
    sha = read_ref(git_dir, ref)
    if sha is None:
        raise WorkspaceError(f"{what} {ref.removeprefix('refs/heads/')} does not exist")
    return sha


def _merge_all(
    root: Path, git_dir: Path, tip: str, members: Sequence[Member], heads: Sequence[str]
) -> list[str] | _Conflict:
    """Merge each member onto the result so far: the tree after each member, or the conflict."""
    trees: list[str] = []
    current = tip
    for index, (member, head) in enumerate(zip(members, heads, strict=True)):
        proc = run_git(
            ["merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", current, head],
            root,
            check=False,
        )
        if proc.returncode not in (0, 1):
            raise WorkspaceError(f"cannot merge {member.branch}: {proc.stderr.strip()}")
        fields = proc.stdout.split("\0")
        if proc.returncode == 1:
            paths = tuple(dict.fromkeys(p for p in fields[1:] if p))
            earlier = [
                m.node_id
                for m, h in zip(members[:index], heads[:index], strict=True)
                if _touches(root, tip, h, paths)
            ]
            hit = tuple(c.describe() for c in collisions(root, tip, head, paths))
            return _Conflict(member.node_id, paths, (*earlier, member.node_id), hit)
        trees.append(fields[0].strip())
        # The next member merges onto this tree: a commit of it, made for merge-tree only.
        current = write_commit(root, git_dir, trees[-1], [current, head], "step\n")
    return trees


def _touches(root: Path, tip: str, head: str, paths: Sequence[str]) -> bool:
    """Tell whether a member's own changes (since its merge base with the target) touch paths."""
    base = run_git(["merge-base", tip, head], root, check=False).stdout.strip()
    if not base:
        return True
    changed = run_git(["diff", "--name-only", base, head, "--", *paths], root).stdout
    return bool(changed.strip())


def _commit(
    root: Path, git_dir: Path, tree: str, tip: str, heads: Sequence[str], message: str
) -> str:
    parents = [tip, *dict.fromkeys(heads)]
    return write_commit(
        root, git_dir, tree, parents, message if message.endswith("\n") else message + "\n"
    )


def _check(
    root: Path,
    git_dir: Path,
    local: Path,
    cmd: str,
    timeout_s: float,
    log: Path,
    commit: str,
    target: str,
    group: str,
    cancelled: Callable[[], bool] | None,
) -> str | None:
    """Run the check on `commit`: None when it passes, "stopped", or the failing output's tail."""
    env = {"GITDAG_GROUP": group, "GITDAG_TARGET": target, "GITDAG_MERGE_COMMIT": commit}
    wt = Worktrees(root, git_dir, local)
    with wt.using_scratch(commit, name="merge-" + target.replace("/", "-")) as scratch:
        env["GITDAG_WORKTREE"] = str(scratch)
        outcome = run_check(cmd, scratch, log, timeout_s, env, stop=cancelled)
    if outcome.stopped:
        return "stopped"
    return None if outcome.ok else (outcome.tail or "the check failed")


def _culprit(
    root: Path,
    git_dir: Path,
    local: Path,
    cmd: str,
    timeout_s: float,
    tip: str,
    members: Sequence[Member],
    heads: Sequence[str],
    trees: Sequence[str],
    target: str,
    group: str,
    cancelled: Callable[[], bool] | None,
) -> str:
    """The member whose merge first makes the check fail (the last, if every prefix passes)."""
    for k in range(1, len(members)):
        prefix = _commit(root, git_dir, trees[k - 1], tip, heads[:k], f"group {group}: first {k}")
        log = local / "merge-checks" / f"group-{group}-{k}.log"
        failed = _check(root, git_dir, local, cmd, timeout_s, log, prefix, target, group, cancelled)
        if failed is not None:
            return members[k - 1].node_id
    return members[-1].node_id


def _as_group(result: MergeResult) -> GroupResult:
    return GroupResult(result.status, None, result.target_before, output_tail=result.output_tail)
