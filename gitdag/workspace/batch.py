"""Landing several branches at once: one chain of merges, checked together, one compare-and-swap.

The serial queue merges, checks and lands one branch at a time; with a check that takes minutes,
N ready branches cost N checks. `integrate_batch` merges up to N branches onto the tip *in queue
order* — a chain of ordinary merge commits, one per branch, each the next one's first parent,
exactly the commits the serial queue would make — runs the check once on the chain's last
commit, and moves the target to it with one compare-and-swap. So the target's first-parent line
still shows one merge per node, and its tree is the serial queue's.

When the combined check fails, the batch is searched for the first branch whose merge fails the
check (the serial queue's culprit): prefixes of the chain are checked (`plan_probes`), up to
`parallel` at a time, until a prefix that passes is followed by one that fails. The passing
prefix lands; the culprit is `check_failed` with its own check's output; the branches after it
land too when the chain rebuilt without the culprit passes (checked in the same round when there
is room), else they go back in line, untouched, for the next batch. A branch that conflicts
along the chain is a `conflict`, exactly where the serial queue would have met it. The result
equals the serial queue's when a check's verdict depends only on which changes it sees and a
failing change keeps failing with more changes on top (the usual case; a flaky check can make
any queue disagree with itself).

The chain, its one check round after round, and its one compare-and-swap are `chain.py`'s, the
primitive transaction groups land through too. With `land`, every node the move integrates is
recorded in the same ref transaction as the target's move (the supervisor's `merge`
transitions), so a crash never leaves the code without its records or the records without the
code. Without it (the target moves alone), a branch whose record is missing is found
`already_merged` by the next merge (its own merge commit on the first-parent line,
`merge_queue._first_containing`). Crash point: merge.batch_after_advance (after the move).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from gitdag.workspace.chain import (
    Chain,
    ChainLand,
    Ended,
    Entry,
    Lane,
    Link,
    Move,
    Round,
    build_chain,
    land_chain,
)
from gitdag.workspace.check import CheckOutcome
from gitdag.workspace.merge_queue import MergeResult, dirty

__all__ = ["BatchResult", "Entry", "Probe", "bounds", "integrate_batch", "plan_probes"]

CRASH_AFTER_BATCH_ADVANCE = "merge.batch_after_advance"


@dataclass(frozen=True)
class BatchResult:
    """What came of a batch.

    Attributes:
      results: the entries decided, in queue order: merged (with their own merge commit),
        already_merged, conflict, check_failed, target_checked_out_dirty, abandoned.
      pending: entries left undecided, in order: back in line, the target untouched for them.
      landed: the target's new tip when it moved, else None.
      checks: how many check runs the batch took.
    """

    results: dict[str, MergeResult]
    pending: tuple[str, ...] = ()
    landed: str | None = None
    checks: int = 0


@dataclass(frozen=True)
class Probe:
    """One check to run: prefix `k` of the chain (k merges), or the chain without merge `k`."""

    k: int
    without: bool = False


def plan_probes(n: int, known: dict[Probe, bool], width: int) -> list[Probe]:
    """The next checks of a batch of `n` merges, at most `width` of them (pure).

    Prefix 0 (the tip) counts as passing. First the whole chain, with `width - 1` prefixes
    spread over it in the same round; then, between the last passing prefix `lo` and the first
    failing one `hi`, either every remaining prefix and every rebuilt chain without one of the
    candidates, when they fit in one round, or prefixes spread evenly. Empty: decided.
    """
    if Probe(n) not in known:
        inner = _spread(0, n, width - 1)
        return [Probe(n), *(Probe(k) for k in inner if Probe(k) not in known)]
    if known[Probe(n)]:
        return []
    lo, hi = bounds(n, known)
    if hi == lo + 1 and (hi == n or Probe(hi, True) in known):
        return []
    interior = [Probe(k) for k in range(lo + 1, hi) if Probe(k) not in known]
    survivors = [Probe(q, True) for q in range(lo + 1, hi + 1) if q < n]
    survivors = [p for p in survivors if p not in known]
    if len(interior) + len(survivors) <= width:
        return interior + survivors
    return [Probe(k) for k in _spread(lo, hi, width)]


def bounds(n: int, known: dict[Probe, bool]) -> tuple[int, int]:
    """(the longest passing prefix below the first failing one, that failing prefix)."""
    hi = min((p.k for p, ok in known.items() if not p.without and not ok), default=n)
    lo = max((p.k for p, ok in known.items() if not p.without and ok and p.k < hi), default=0)
    return lo, hi


def _spread(lo: int, hi: int, count: int) -> list[int]:
    """Up to `count` distinct points strictly between lo and hi, evenly spaced."""
    inside = hi - lo - 1
    if count <= 0 or inside <= 0:
        return []
    if count >= inside:
        return list(range(lo + 1, hi))
    return sorted({lo + round((i + 1) * (hi - lo) / (count + 1)) for i in range(count)} - {lo, hi})


def integrate_batch(
    root: Path,
    git_dir: Path,
    local: Path,
    *,
    entries: Sequence[Entry],
    target: str,
    check_cmd: str | None,
    check_timeout_s: float,
    parallel: int = 1,
    cancelled: Callable[[], bool] | None = None,
    land: ChainLand | None = None,
) -> BatchResult:
    """Merge `entries` into `target` in order, check once, land with one compare-and-swap.

    Args:
      root: the main working tree (the git dir of a bare repository).
      git_dir: the common git directory.
      local: `.dagain/local/`.
      entries: the branches, in queue order.
      target: the target branch.
      check_cmd: the check (None: every clean merge lands).
      check_timeout_s: how long one check may run.
      parallel: how many checks may run at once while a failing batch is searched.
      cancelled: polled during checks and before landing; once true, every entry not yet
        decided is `abandoned` and the target is untouched.
      land: moves the target together with the records of the nodes it integrates (the
        merged ones and those found already merged: their results come back `recorded`);
        without it the target moves alone.

    Raises:
      WorkspaceError: a branch or the target is missing, git fails, or the target kept moving.
    """
    lane = Lane(Path(root), Path(git_dir), Path(local), target, check_cmd, check_timeout_s,
                cancelled, land)  # fmt: skip
    rounds: list[_Batch] = []

    def decide(r: Round) -> Move[BatchResult] | Ended[BatchResult]:
        rounds.append(_Batch(lane, max(1, parallel), r.tip, r.heads))
        return rounds[-1].run()

    ended = land_chain(lane, entries, decide, partial_heads=True)
    checks = sum(b.checks for b in rounds)
    if ended.how == "dirty":
        return replace(_held_up(entries, dirty(ended.tip, ended.reason)), checks=checks)
    if ended.how == "abandoned":
        return _abandoned(entries, ended.tip, ended.reason, checks)
    assert ended.value is not None
    outcome = ended.value
    if ended.recorded:
        results = {nid: replace(r, recorded=r.status in ("merged", "already_merged"))
                   for nid, r in outcome.results.items()}  # fmt: skip
        outcome = replace(outcome, results=results)
    left = tuple(e.node_id for e in entries[len(rounds[-1].heads) :])
    return replace(outcome, pending=outcome.pending + left, checks=checks)


def _held_up(entries: Sequence[Entry], result: MergeResult) -> BatchResult:
    """The first entry carries why the queue waits; the others wait behind it, untouched."""
    return BatchResult({entries[0].node_id: result}, tuple(e.node_id for e in entries[1:]))


def _abandoned(entries: Sequence[Entry], tip: str, why: str, checks: int = 0) -> BatchResult:
    results = {e.node_id: MergeResult("abandoned", None, (), why, tip) for e in entries}
    return BatchResult(results, checks=checks)


@dataclass
class _Batch:
    """One round of a batch on one tip: chain, check (searching a failing one), decide."""

    lane: Lane
    parallel: int
    tip: str
    heads: list[tuple[Entry, str]]
    known: dict[Probe, bool] = field(default_factory=dict)
    outcomes: dict[Probe, tuple[CheckOutcome, Path]] = field(default_factory=dict)
    survivors: dict[int, Chain] = field(default_factory=dict)
    checks: int = 0

    def run(self) -> Move[BatchResult] | Ended[BatchResult]:
        """Chain and check: what to land, or how the batch ended without moving the target."""
        lane = self.lane
        chain = build_chain(lane.root, lane.git_dir, self.tip, self.heads)
        if chain.cut is not None:
            self.heads = self.heads[: chain.cut]
        if lane.check_cmd and chain.merged:
            if reason := lane.refusal(self.tip):  # before spending checks on what cannot land
                return Ended("dirty", self.tip, reason=reason)
            while probes := plan_probes(len(chain.merged), self.known, self.parallel):
                self._check(chain, probes)
                if lane.stopped():
                    return Ended("abandoned", self.tip, reason="cancelled")
        landing, results, pending = self._decide(chain)
        if landing == self.tip:
            return Ended("decided", self.tip, BatchResult(results, pending, None, self.checks))
        records = {nid: r.merged for nid, r in results.items()
                   if r.status in ("merged", "already_merged") and r.merged}  # fmt: skip
        ids = [nid for nid, r in results.items() if r.status == "merged"]
        value = BatchResult(results, pending, landing, self.checks)
        return Move(landing, records, "merge " + ", ".join(ids), value, CRASH_AFTER_BATCH_ADVANCE)

    def _decide(self, chain: Chain) -> tuple[str, dict[str, MergeResult], tuple[str, ...]]:
        """(the commit to land, results by node in queue order, the entries left pending)."""
        merged = chain.merged
        n = len(merged)
        if not self.lane.check_cmd or not merged or self.known.get(Probe(n)):
            return chain.top, self._results(chain.links, len(chain.links)), ()
        lo, hi = bounds(n, self.known)
        culprit = merged[hi - 1]
        at = chain.links.index(culprit)
        results = self._results(chain.links, at)
        outcome, log = self.outcomes[Probe(hi)]
        results[culprit.entry.node_id] = MergeResult(
            "check_failed", None, (), outcome.tail, self.tip, log
        )
        survivor = self.survivors.get(hi)
        if survivor is not None and self.known.get(Probe(hi, True)):
            # The chain rebuilt without the culprit passed: everything after it lands too.
            results.update(self._results(survivor.links[at:], len(survivor.links) - at))
            return survivor.top, results, ()
        # The passing prefix lands; what follows the culprit waits for the next batch.
        landing = (merged[lo - 1].commit or self.tip) if lo else self.tip
        return landing, results, tuple(link.entry.node_id for link in chain.links[at + 1 :])

    def _results(self, links: list[Link], upto: int) -> dict[str, MergeResult]:
        out: dict[str, MergeResult] = {}
        for link in links[:upto]:
            if link.result is not None:
                out[link.entry.node_id] = link.result
            else:
                out[link.entry.node_id] = MergeResult("merged", link.commit, (), "", self.tip)
        return out

    def _tree_of(self, chain: Chain, probe: Probe) -> tuple[str, list[str]]:
        """The commit a probe checks, and the nodes merged in it."""
        merged = chain.merged
        if not probe.without:
            upto = merged[: probe.k]
            return (upto[-1].commit or self.tip) if upto else self.tip, [
                link.entry.node_id for link in upto
            ]
        survivor = self.survivors.get(probe.k)
        if survivor is None:
            culprit = merged[probe.k - 1]
            at = chain.links.index(culprit)
            base = merged[probe.k - 2].commit or self.tip if probe.k > 1 else self.tip
            later = {link.entry for link in chain.links[at + 1 :]}
            survivor = build_chain(self.lane.root, self.lane.git_dir, base,
                                   [(e, h) for e, h in self.heads if e in later])  # fmt: skip
            survivor.links = chain.links[:at] + survivor.links
            self.survivors[probe.k] = survivor
        return survivor.top, [link.entry.node_id for link in survivor.merged]

    def _check(self, chain: Chain, probes: list[Probe]) -> None:
        """Run the probes' checks at once; stop the rest when the whole chain passes."""
        done = threading.Event()
        jobs = [(probe, *self._tree_of(chain, probe)) for probe in probes]

        def stop() -> bool:
            return done.is_set() or self.lane.stopped()

        def one(slot: int, probe: Probe, commit: str, nodes: list[str]) -> None:
            last = nodes[-1] if nodes else "tip"
            name = last
            if probe.without:
                name += ".without-" + chain.merged[probe.k - 1].entry.node_id
            env = {"GITDAG_NODE_ID": last, "GITDAG_BATCH": " ".join(nodes)}
            outcome, log = self.lane.check(commit, name, env, slot=slot, stop=stop)
            if outcome.stopped:
                return
            self.outcomes[probe] = (outcome, log)
            self.known[probe] = outcome.ok
            if probe == Probe(len(chain.merged)) and outcome.ok:
                done.set()  # the whole chain passed: the speculative prefixes are moot

        self.checks += len(jobs)
        if len(jobs) == 1:
            one(0, *jobs[0])
            return
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            for future in [pool.submit(one, slot, *job) for slot, job in enumerate(jobs)]:
                future.result()
