"""Landing a chain of branches: merged onto the target's tip in order, checked, moved by one CAS.

The one primitive under the batching queue (`batch.py`) and transaction groups (`groups.py`,
which `gitdag run` and `gitdag work` both use). `land_chain` holds the target's merge lock
(`locks/merge-<target>.lock`, shared with the single-node queue), and in each round reads the
tip and the entries' heads, settles a checkout advance a crash cut short, and asks the caller's
`decide` what to do on that tip: the caller merges the chain (`build_chain`: each branch onto
the previous merge, without a checkout), runs its checks (`Lane.check`), and answers with a
`Move` (the commit to land, with the commit that integrated each node) or an `Ended` (nothing
to move: a conflict, a failed check, a refusal). A `Move` is landed once: the checkout rule is
asked again, `cancelled` is polled, and the target moves from the tip by one compare-and-swap —
through the caller's `land`, which records every node's merge in the same ref transaction, or
alone. If the target moved meanwhile the round is redone on the new tip (at most `MAX_ROUNDS`).
Nothing is visible until that one ref move.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Generic, Literal, TypeVar

from gitdag.crash import crash_point
from gitdag.errors import WorkspaceError
from gitdag.workspace.advance import Landing, settle_target
from gitdag.workspace.check import CheckOutcome, check_merge
from gitdag.workspace.gitcli import held
from gitdag.workspace.merge_queue import MAX_ROUNDS, MergeResult, merge_onto, must_read, publish
from gitdag.workspace.merge_queue import refusal_of as _refusal_of

R = TypeVar("R")

# Lands a chain with the caller's records: (records: node id -> the commit that integrated it,
# ref as git names it from cwd, old, new, cwd) -> Landing. The supervisor's commits every
# node's `merge` transition in the same ref transaction as the target's move.
ChainLand = Callable[[Mapping[str, str], str, str, str, Path], Landing]


@dataclass(frozen=True)
class Entry:
    """One branch of a chain: its node, branch and merge commit message."""

    node_id: str
    branch: str
    message: str


@dataclass(frozen=True)
class Link:
    """An entry merged along a chain: its merge commit and tree, or the result that left it out."""

    entry: Entry
    commit: str | None
    result: MergeResult | None
    tree: str = ""


@dataclass
class Chain:
    """Merges of entries in order, each onto the previous one (conflicts and merged ones skip)."""

    base: str
    links: list[Link] = field(default_factory=list)
    cut: int | None = None  # the entry the chain stopped before (see build_chain)

    @property
    def merged(self) -> list[Link]:
        return [link for link in self.links if link.commit is not None]

    @property
    def top(self) -> str:
        merged = self.merged
        return merged[-1].commit or self.base if merged else self.base

    @property
    def conflict(self) -> Link | None:
        """The first entry that conflicted along the chain, if any."""
        return next((k for k in self.links if k.result and k.result.status == "conflict"), None)


def build_chain(
    root: Path,
    git_dir: Path,
    base: str,
    heads: Sequence[tuple[Entry, str]],
    *,
    whole: bool = False,
) -> Chain:
    """Merge each (entry, head) onto the chain so far, in order, starting from `base`.

    A conflicting entry is left out and the chain goes on (the serial queue's order), unless
    `whole` (a group: it stops at the first conflict, whose collisions are described against
    `base`). Trouble merging an entry after the first (git failing on its branch) ends the
    chain there: `cut` is its index, and it and the entries after it wait for a chain they
    lead, where the trouble is theirs (raised); with `whole` any trouble is raised.
    """
    chain = Chain(base)
    for at, (entry, head) in enumerate(heads):
        try:
            step = merge_onto(root, git_dir, chain.top, head, entry.message,
                              what=f"{entry.branch} into the chain",
                              seen_from=base if whole else None)  # fmt: skip
        except WorkspaceError:
            if at == 0 or whole:
                raise
            chain.cut = at
            break
        chain.links.append(Link(entry, step.commit, step.result, step.tree))
        if whole and step.result is not None and step.result.status == "conflict":
            break
    return chain


@dataclass(frozen=True)
class Round:
    """One round of `land_chain`: the target's tip and the entries' heads read for it."""

    tip: str
    heads: list[tuple[Entry, str]]


@dataclass(frozen=True)
class Move(Generic[R]):
    """What a round lands: the target to `commit`, each node's record, the caller's result."""

    commit: str
    records: Mapping[str, str]  # node id -> the commit that integrated it (its merge)
    what: str  # names the move in reflogs: "merge a, b", "group api"
    value: R
    crash_after: str | None = None  # a crash point right after the move (tests)


@dataclass(frozen=True)
class Ended(Generic[R]):
    """How a chain ended.

    Attributes:
      how: decided (nothing moved: the caller's `value` says why) | landed (the target moved;
        `recorded` when `land` recorded the nodes with it) | dirty (the target's checkout may
        not be moved: `reason`) | abandoned (`cancelled`, or `land` declined: `reason`).
      tip: the target's tip the round was computed on.
    """

    how: Literal["decided", "landed", "dirty", "abandoned"]
    tip: str
    value: R | None = None
    reason: str = ""
    recorded: bool = False


@dataclass(frozen=True)
class Lane:
    """The target a chain lands on, how its checks run, and how it lands."""

    root: Path
    git_dir: Path
    local: Path
    target: str
    check_cmd: str | None
    check_timeout_s: float
    cancelled: Callable[[], bool] | None = None
    land: ChainLand | None = None

    @property
    def target_ref(self) -> str:
        return "refs/heads/" + self.target

    def stopped(self) -> bool:
        """Tell whether `cancelled` turned true."""
        return self.cancelled is not None and self.cancelled()

    def refusal(self, tip: str) -> str | None:
        """Why the target's checkout may not be moved from `tip` now, or None."""
        refused = _refusal_of(self.root, self.git_dir, self.target_ref, tip)
        return refused.output_tail if refused is not None else None

    def check(
        self,
        commit: str,
        log_name: str,
        env: dict[str, str],
        *,
        slot: int = 0,
        stop: Callable[[], bool] | None = None,
    ) -> tuple[CheckOutcome, Path]:
        """Run the check on exactly `commit` (scratch checkout `slot`; log `<log_name>.log`)."""
        return check_merge(self.root, self.git_dir, self.local, self.target, commit,
                           self.check_cmd or "", self.check_timeout_s, log_name, env,
                           stop=stop or self.cancelled, slot=slot)  # fmt: skip


Decide = Callable[[Round], "Move[R] | Ended[R]"]


def land_chain(
    lane: Lane, entries: Sequence[Entry], decide: Decide[R], *, partial_heads: bool = False
) -> Ended[R]:
    """Decide and land rounds on the target's tip until one ends (see the module docstring).

    `partial_heads`: an entry after the first whose branch is missing ends the heads read there
    (it and the rest wait); otherwise every branch must exist.

    Raises:
      WorkspaceError: a branch or the target is missing, git fails, or the target kept moving.
    """
    root, git_dir, local = Path(lane.root), Path(lane.git_dir), Path(lane.local)
    with held(local, "merge-" + lane.target):
        for _ in range(MAX_ROUNDS):
            tip = must_read(git_dir, lane.target_ref, "target branch")
            heads = _heads(git_dir, entries, partial_heads)
            if half_moved := settle_target(local, lane.target_ref):
                return Ended("dirty", tip, reason=half_moved)
            if lane.stopped():
                return Ended("abandoned", tip, reason="cancelled")
            step = decide(Round(tip, heads))
            if isinstance(step, Ended):
                return step
            landed = _land(lane, root, tip, step)
            if landed is not None:
                return landed
            time.sleep(0.01)  # someone else moved the target: the round again on its new tip
    raise WorkspaceError(f"{lane.target} kept moving: gave up after {MAX_ROUNDS} merge attempts")


def _land(lane: Lane, root: Path, tip: str, move: Move[R]) -> Ended[R] | None:
    """Land a move once: the ended chain, or None when the target moved (another round)."""
    # Again: a check may have run for minutes, and people check branches out.
    if reason := lane.refusal(tip):
        return Ended("dirty", tip, reason=reason)
    if lane.stopped():
        return Ended("abandoned", tip, reason="cancelled")
    land = partial(lane.land, move.records) if lane.land is not None else None
    landing = publish(root, lane.git_dir, lane.local, lane.target_ref, tip, move.commit,
                      move.what, land)  # fmt: skip
    if landing.outcome == "refused":
        return Ended("dirty", tip, reason=landing.reason)
    if landing.outcome == "abandoned":
        return Ended("abandoned", tip, reason=landing.reason)
    if landing.outcome != "landed":
        return None
    if move.crash_after:
        crash_point(move.crash_after)
    return Ended("landed", tip, move.value, recorded=land is not None)


def _heads(git_dir: Path, entries: Sequence[Entry], partial_heads: bool) -> list[tuple[Entry, str]]:
    """Each entry's branch head (up to the first missing one after the first, if partial)."""
    heads = []
    for at, entry in enumerate(entries):
        try:
            heads.append((entry, must_read(git_dir, "refs/heads/" + entry.branch, "branch")))
        except WorkspaceError:
            if at == 0 or not partial_heads:
                raise  # the first entry's own trouble, as when it merges alone
            break
    return heads
