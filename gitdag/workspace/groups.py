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

The chain, the check and the one compare-and-swap are `chain.py`'s (the primitive the batching
queue lands through too): it shares the merge queue's lock (`locks/merge-<target>.lock`) and
landing, so groups and single nodes integrate one at a time in the caller's order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from gitdag.errors import WorkspaceError
from gitdag.workspace.advance import Land, Landing
from gitdag.workspace.chain import Chain, Ended, Entry, Lane, Move, Round, build_chain, land_chain
from gitdag.workspace.gitcli import run_git
from gitdag.workspace.merge_queue import contains_commit
from gitdag.workspace.objects import write_commit

CRASH_AFTER_GROUP_ADVANCE = "merge.group_after_advance"

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

    def land_all(records: Mapping[str, str], ref: str, old: str, new: str, cwd: Path) -> Landing:
        assert land is not None
        return land(ref, old, new, cwd)

    lane = Lane(Path(root), Path(git_dir), Path(local), target, check_cmd, check_timeout_s,
                cancelled, land_all if land is not None else None)  # fmt: skip
    # Each member merges onto the tree so far; the commits between are for merge-tree only.
    entries = [Entry(m.node_id, m.branch, "step\n") for m in members]
    ended = land_chain(lane, entries, lambda r: _round(lane, group, message, r))
    if ended.how == "dirty":
        return GroupResult("target_checked_out_dirty", None, ended.tip, output_tail=ended.reason)
    if ended.how == "abandoned":
        return GroupResult("abandoned", None, ended.tip, output_tail=ended.reason)
    assert ended.value is not None
    return replace(ended.value, recorded=ended.recorded)


def _round(
    lane: Lane, group: str, message: str, r: Round
) -> Move[GroupResult] | Ended[GroupResult]:
    """The group on one tip: already there, a conflict, a failed check, or the commit to land."""
    tip, heads = r.tip, [head for _, head in r.heads]
    if all(contains_commit(lane.root, tip, head) for head in heads):
        return Ended("decided", tip, GroupResult("already_merged", tip, tip))
    chain = build_chain(lane.root, lane.git_dir, tip, r.heads, whole=True)
    if (hit := chain.conflict) is not None and hit.result is not None:
        index = chain.links.index(hit)
        paths = hit.result.paths
        earlier = [entry.node_id for entry, head in r.heads[:index]
                   if _touches(lane.root, tip, head, paths)]  # fmt: skip
        involved = (*earlier, hit.entry.node_id)
        conflict = GroupResult("conflict", None, tip, involved, paths, collided=hit.result.collided)
        return Ended("decided", tip, conflict)
    if lane.check_cmd and (reason := lane.refusal(tip)):
        return Ended("dirty", tip, reason=reason)
    trees = _trees(chain)
    new = _commit(lane.root, lane.git_dir, trees[-1], tip, heads, message)
    log = None
    if lane.check_cmd:
        env = {"GITDAG_GROUP": group}
        outcome, log = lane.check(new, f"group-{group}", env)
        if outcome.stopped:
            return Ended("abandoned", tip, reason="cancelled")
        if not outcome.ok:
            culprit = _culprit(lane, group, tip, r.heads, trees)
            failed = outcome.tail or "the check failed"
            return Ended("decided", tip,
                         GroupResult("check_failed", None, tip, (culprit,), (), failed,
                                     check_log=log))  # fmt: skip
    records = {entry.node_id: new for entry, _ in r.heads}
    value = GroupResult("merged", new, tip, check_log=log)
    return Move(new, records, f"group {group}", value, CRASH_AFTER_GROUP_ADVANCE)


def _trees(chain: Chain) -> list[str]:
    """The tree after each member (a member already in the target leaves it as it was)."""
    return [link.tree for link in chain.links]


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


def _culprit(
    lane: Lane, group: str, tip: str, heads: Sequence[tuple[Entry, str]], trees: Sequence[str]
) -> str:
    """The member whose merge first makes the check fail (the last, if every prefix passes)."""
    for k in range(1, len(heads)):
        prefix = _commit(lane.root, lane.git_dir, trees[k - 1], tip, [h for _, h in heads[:k]],
                         f"group {group}: first {k}")  # fmt: skip
        outcome, _ = lane.check(prefix, f"group-{group}-{k}", {"GITDAG_GROUP": group})
        if not outcome.ok:
            return heads[k - 1][0].node_id
    return heads[-1][0].node_id
