"""Validating a range of the state branch: the graph at its head, and each commit's legality.

Each commit is checked against its parent from a tree diff (only the changed node files are
parsed, through the parse cache), with the graph at the parent carried forward as summaries: the
cost grows with the number of commits and what they changed, not with the size of the graph.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from dulwich.graph import find_merge_base
from dulwich.objects import Commit

from gitdag.core.commit_message import step_info
from gitdag.core.graph_checks import check_graph, edges_changed
from gitdag.core.legality import Violation, check_step
from gitdag.core.model import NodeSummary, summarize
from gitdag.errors import InputError, StoreError
from gitdag.store.delta import (
    CommitCache,
    Delta,
    NodeReader,
    TreeDiffer,
    commit_of,
    oid,
    resolve,
    tree_delta,
)
from gitdag.store.layout import GRAPH_FILE, STATE_BRANCH
from gitdag.store.repo import branch_clash
from gitdag.store.snapshot import Problem
from gitdag.store.state import StateStore

ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class RangeProblem:
    """One problem found in a range: the commit (None: the graph at the head) and what is wrong."""

    commit: str | None
    message: str
    node: str | None = None
    field: str | None = None
    title: str = ""

    def __str__(self) -> str:
        where = f"commit {self.commit[:12]}" if self.commit else "graph at head"
        return f"{where}: {self.message}"


@dataclass
class RangeReport:
    """The outcome of validating `base..head`.

    Attributes:
      base: the exclusive start (None: from the root commit).
      head: the inclusive end.
      commits: the commits checked, oldest first.
      problems: every problem, in commit order, then those of the graph at the head.
      repaired: problems of commits that a later commit of the range reverted (or reset past):
        history keeps them, but they no longer make the range invalid.
      repairs: bad commit -> the commit that repaired it.
    """

    base: str | None
    head: str
    commits: list[str] = field(default_factory=list)
    problems: list[RangeProblem] = field(default_factory=list)
    repaired: list[RangeProblem] = field(default_factory=list)
    repairs: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Tell whether the range is valid."""
        return not self.problems

    def first_bad_commit(self) -> str | None:
        """Return the oldest commit with a problem of its own, if any."""
        return next((p.commit for p in self.problems if p.commit is not None), None)


@dataclass(frozen=True)
class Invalid:
    """Why a head may not be built on, and how to repair it.

    Attributes:
      commit: the first commit that breaks a rule (or the head, for a graph problem).
      parent: that commit's parent (None for a root commit).
      problems: what is wrong with it.
      hint: the repair commands.
    """

    commit: str
    parent: str | None
    problems: tuple[RangeProblem, ...]
    hint: str

    def __str__(self) -> str:
        first = self.problems[0] if self.problems else None
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"{first}{more}; {self.hint}"


def parse_range(store: StateStore, spec: str) -> tuple[str | None, str]:
    """Return (base, head) commits of `A..B` (`..B`: from the root; `A..`: up to the head).

    Raises:
      InputError: a side names no commit, or there is no state branch for an open end.
    """
    left, _, right = spec.partition("..")
    if right.startswith("."):
        raise InputError(f"{spec!r}: use A..B (the symmetric A...B means nothing here)")
    head = resolve(store, right) if right else store.head()
    if head is None:
        raise InputError(f"{spec!r}: no {STATE_BRANCH} branch to end the range at")
    base = resolve(store, left) if left and left != ZERO_SHA else None
    return base, head


def commits_between(
    store: StateStore, base: str | None, head: str, commits: CommitCache | None = None
) -> list[str]:
    """Return the first-parent commits after `base` up to `head`, oldest first.

    When `base` is not an ancestor of `head` (the branch was reset), the range starts at their
    merge base, as `git rev-list base..head` would.
    """
    repo = store.repo
    read = commits or CommitCache(repo)
    stop: str | None = base
    if base is not None and base != head:
        bases = find_merge_base(repo, [oid(head), oid(base)])
        stop = bases[0].decode() if bases else None
    found: list[str] = []
    current: str | None = head
    while current is not None and current != stop:
        found.append(current)
        parents = read(current).parents
        current = parents[0].decode() if parents else None
    found.reverse()
    return found


def _context_at_start(
    store: StateStore, head: str, deltas: list[tuple[str, Commit, str | None, Delta]]
) -> dict[str, NodeSummary]:
    """Return the graph at the range's start as summaries: the head's, with the deltas undone.

    The head's snapshot is needed anyway (the graph checks at the head), and usually comes
    from the index cache; undoing the range's deltas on it costs what they changed, where
    loading the start's snapshot could cost a full parse of the graph (a fresh clone).
    """
    context = dict(store.snapshot_of(head, strict=False).nodes)
    for _sha, _obj, _parent, delta in reversed(deltas):
        for nid in delta.ids:
            if nid in delta.before:
                context[nid] = summarize(delta.before[nid])
            else:
                context.pop(nid, None)
        for nid in delta.unreadable_before:
            context.pop(nid, None)
    return context


def iter_steps(
    store: StateStore, commits: list[str], read: CommitCache | None = None
) -> Iterator[tuple[str, str | None, str, list[RangeProblem]]]:
    """Check each commit against its parent; yield (commit, parent, title, problems).

    Args:
      store: the store (its parse cache is used and filled).
      commits: a first-parent chain, oldest first (as `commits_between` returns).
      read: a commit cache shared with the caller's other walks.
    """
    repo = store.repo
    reader = NodeReader(repo, store.cache)
    differ = TreeDiffer(repo)
    read = read or CommitCache(repo)
    if not commits:
        return
    first = read(commits[0])
    parent_sha = first.parents[0].decode() if first.parents else None
    parent_tree = read(parent_sha).tree.decode() if parent_sha else None
    deltas: list[tuple[str, Commit, str | None, Delta]] = []
    for sha in commits:
        obj = read(sha)
        parent = obj.parents[0].decode() if obj.parents else None
        if parent != parent_sha:
            parent_tree = read(parent).tree.decode() if parent else None
        tree = obj.tree.decode()
        delta = tree_delta(reader, parent, sha, parent_tree, tree, differ)
        deltas.append((sha, obj, parent, delta))
        parent_sha, parent_tree = sha, tree
    context = _context_at_start(store, commits[-1], deltas)
    for sha, obj, parent, delta in deltas:
        message = obj.message.decode("utf-8", errors="replace")
        info = step_info(message)
        found: list[RangeProblem] = [
            RangeProblem(sha, str(p), p.node, None, info.title) for p in delta.problems
        ]
        violations: list[Violation] = []
        if len(obj.parents) > 1:
            violations.append(Violation(
                "a merge commit: state changes are single-parent transitions "
                "(apply proposals with `gitdag apply-proposal`)"
            ))  # fmt: skip
        judged = {k: v for k, v in delta.after.items() if k not in delta.unreadable_before}
        violations += check_step(
            delta.before, judged, info, context=context,
            graph_changed=delta.graph_changed, graph_before=delta.graph_before,
            graph_after=delta.graph_after, is_root=parent is None,
        )  # fmt: skip
        for nid in delta.ids:
            if nid in delta.after:
                context[nid] = summarize(delta.after[nid])
            else:
                context.pop(nid, None)
        violations += check_graph(context, edges_changed(delta.before, delta.after), delta.removed)
        found += [RangeProblem(sha, str(v), v.node, v.field, info.title) for v in violations]
        yield sha, parent, info.title, found


def repairs_in(
    store: StateStore, commits: list[str], read: CommitCache | None = None
) -> dict[str, str]:
    """Return bad-commit -> repairing commit for the reverts and resets within `commits`.

    A `revert` repairs the commits its `Gitdag-Reverts` trailers name; a `reset` to a commit
    repairs every commit of the range between that commit and itself. Only messages are read.
    """
    read = read or CommitCache(store.repo)
    position = {sha: i for i, sha in enumerate(commits)}
    found: dict[str, str] = {}
    for i, sha in enumerate(commits):
        obj = read(sha)
        info = step_info(obj.message.decode("utf-8", errors="replace"))
        if info.verb == "revert":
            for target in info.trailers.get("Gitdag-Reverts", []):
                if target in position and position[target] < i:
                    found.setdefault(target, sha)
        elif info.verb == "reset":
            to = (info.trailers.get("Gitdag-Reset-To") or [""])[0]
            start = position[to] + 1 if to in position else 0
            for earlier in commits[start:i]:
                found.setdefault(earlier, sha)
    return found


def validate_range(store: StateStore, base: str | None, head: str) -> RangeReport:
    """Validate `base..head`: each commit's legality, then the graph at `head`.

    A bad commit that a later commit of the range reverted (or reset past) is listed in
    `repaired`, not in `problems`: history keeps it, the range is valid again.

    Args:
      store: the store of the repository holding both commits.
      base: the exclusive start (None: from the root commit).
      head: the inclusive end.
    """
    read = CommitCache(store.repo)
    report = RangeReport(base, head, commits_between(store, base, head, read))
    report.repairs = repairs_in(store, report.commits, read)
    for sha, _parent, _title, found in iter_steps(store, report.commits, read):
        if sha in report.repairs:
            report.repaired += found
        else:
            report.problems += found
    report.problems += [RangeProblem(None, str(p), p.node) for p in graph_problems_at(store, head)]
    return report


def graph_problems_at(store: StateStore, commit: str) -> list[Problem]:
    """Return the graph checks' problems (schema, ids, refs, cycles) of one commit.

    The target is also checked against the repository's branches: one that `foo/bar` cannot
    live beside (a branch `foo`) would make every merge fail.
    """
    snap = store.snapshot_of(commit, strict=False)
    problems = list(snap.problems)
    other = branch_clash(store.repo, snap.graph.target)
    if other is not None and not any(p.path == GRAPH_FILE for p in problems):
        message = f"field target: branch {other!r} exists, git cannot hold both it and the target"
        problems.append(Problem(GRAPH_FILE, message))
    return problems


def first_parent(store: StateStore, commit: str) -> str | None:
    """Return the first parent of a commit, None for a root commit."""
    parents = commit_of(store.repo, commit).parents
    return parents[0].decode() if parents else None


def descends(store: StateStore, head: str, ancestor: str, limit: int = 20_000) -> bool:
    """Tell whether `ancestor` is on `head`'s first-parent line, within `limit` commits.

    A commit the walk cannot read (a missing object) ends it: the answer is then False.
    """
    current: str | None = head
    for _ in range(limit):
        if current is None:
            return False
        if current == ancestor:
            return True
        try:
            current = first_parent(store, current)
        except StoreError:
            return False
    return False


def repair_hint(commit: str, parent: str | None) -> str:
    """Return the commands that repair a bad commit of the state branch."""
    if parent is None:
        return "the root commit is invalid: re-create the branch with `gitdag init`"
    return (
        f"repair with `gitdag revert {commit[:12]}` (undo that commit) or "
        f"`gitdag reset --to {parent[:12]}` (return to the graph before it)"
    )


def first_invalid(store: StateStore, base_commit: str | None, head: str) -> Invalid | None:
    """Return the first reason not to build on `head`, checking the commits since `base_commit`.

    The supervisor calls this when the head moved to commits it did not write; it stops at the
    first bad commit, so a long valid range costs one pass and a bad one less.

    Args:
      store: the store.
      base_commit: the last head known to be good (None: check from the root).
      head: the head to build on.

    Returns:
      None when `head` is safe to build on, else the first bad commit with a repair hint.
    """
    read = CommitCache(store.repo)
    commits = commits_between(store, base_commit, head, read)
    repaired = repairs_in(store, commits, read)
    for sha, parent, _title, found in iter_steps(store, commits, read):
        if found and sha not in repaired:
            return Invalid(sha, parent, tuple(found), repair_hint(sha, parent))
    problems = graph_problems_at(store, head)
    if problems:
        parent = first_parent(store, head)
        at_head = tuple(RangeProblem(None, str(p), p.node) for p in problems)
        return Invalid(head, parent, at_head, repair_hint(head, parent))
    return None
