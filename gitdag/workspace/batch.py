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

Crash safety is the serial queue's: nothing is visible until the one ref move; after it, a
branch whose record is missing is found `already_merged` by the next merge (its own merge commit
on the first-parent line, `merge_queue._first_containing`). Crash point: merge.batch_after_advance.

The primitive is `land_chain`-shaped on purpose (entries in, per-entry results out, one ref
move): a transaction group of several nodes that must land together can reuse the chain and the
single compare-and-swap without the bisection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from gitdag.crash import crash_point
from gitdag.errors import WorkspaceError
from gitdag.workspace.advance import settle_target
from gitdag.workspace.check import CheckOutcome, check_merge
from gitdag.workspace.gitcli import held
from gitdag.workspace.merge_queue import (
    MAX_ROUNDS,
    MergeResult,
    dirty,
    merge_onto,
    must_read,
    publish,
    refusal_of,
)

CRASH_AFTER_BATCH_ADVANCE = "merge.batch_after_advance"


@dataclass(frozen=True)
class Entry:
    """One branch of a batch: its node, branch and merge commit message."""

    node_id: str
    branch: str
    message: str


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
class Link:
    """An entry merged along a chain: its merge commit, or the result that left it out."""

    entry: Entry
    commit: str | None
    result: MergeResult | None


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


def build_chain(root: Path, git_dir: Path, base: str, heads: Sequence[tuple[Entry, str]]) -> Chain:
    """Merge each (entry, head) onto the chain so far, in order, starting from `base`.

    Trouble merging an entry after the first (git failing on its branch) ends the chain there:
    `cut` is its index, and it and the entries after it wait for a batch they lead, where the
    trouble is theirs (raised), as when the serial queue merges them.
    """
    chain = Chain(base)
    for at, (entry, head) in enumerate(heads):
        try:
            step = merge_onto(root, git_dir, chain.top, head, entry.message,
                              what=f"{entry.branch} into the batch")  # fmt: skip
        except WorkspaceError:
            if at == 0:
                raise
            chain.cut = at
            break
        chain.links.append(Link(entry, step.commit, step.result))
    return chain


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

    Raises:
      WorkspaceError: a branch or the target is missing, git fails, or the target kept moving.
    """
    root, git_dir, local = Path(root), Path(git_dir), Path(local)
    target_ref = "refs/heads/" + target
    with held(local, "merge-" + target):
        for _ in range(MAX_ROUNDS):
            tip = must_read(git_dir, target_ref, "target branch")
            heads = _heads(git_dir, entries)
            if half_moved := settle_target(local, target_ref):
                return _held_up(entries, dirty(tip, half_moved))
            if cancelled is not None and cancelled():
                return _abandoned(entries, tip, "cancelled")
            plan = _Batch(root, git_dir, local, target, check_cmd, check_timeout_s, parallel,
                          cancelled, tip, heads)  # fmt: skip
            outcome = plan.run()
            if outcome is not None:
                left = tuple(e.node_id for e in entries[len(plan.heads) :])
                return replace(outcome, pending=outcome.pending + left)
    raise WorkspaceError(f"{target} kept moving: gave up after {MAX_ROUNDS} merge attempts")


def _heads(git_dir: Path, entries: Sequence[Entry]) -> list[tuple[Entry, str]]:
    """Each entry's branch head, up to the first missing one after the first (it waits)."""
    heads = []
    for at, entry in enumerate(entries):
        try:
            heads.append((entry, must_read(git_dir, "refs/heads/" + entry.branch, "branch")))
        except WorkspaceError:
            if at == 0:
                raise  # the first entry's own trouble, as when it merges alone
            break
    return heads


def _held_up(entries: Sequence[Entry], result: MergeResult) -> BatchResult:
    """The first entry carries why the queue waits; the others wait behind it, untouched."""
    return BatchResult({entries[0].node_id: result}, tuple(e.node_id for e in entries[1:]))


def _abandoned(entries: Sequence[Entry], tip: str, why: str, checks: int = 0) -> BatchResult:
    results = {e.node_id: MergeResult("abandoned", None, (), why, tip) for e in entries}
    return BatchResult(results, checks=checks)


@dataclass
class _Batch:
    root: Path
    git_dir: Path
    local: Path
    target: str
    check_cmd: str | None
    timeout_s: float
    parallel: int
    cancelled: Callable[[], bool] | None
    tip: str
    heads: list[tuple[Entry, str]]
    known: dict[Probe, bool] = field(default_factory=dict)
    outcomes: dict[Probe, tuple[CheckOutcome, Path]] = field(default_factory=dict)
    survivors: dict[int, Chain] = field(default_factory=dict)
    checks: int = 0

    def stopped(self) -> bool:
        return self.cancelled is not None and self.cancelled()

    def run(self) -> BatchResult | None:
        """Chain, check, land: the result, or None when the target moved (merge again)."""
        chain = build_chain(self.root, self.git_dir, self.tip, self.heads)
        if chain.cut is not None:
            self.heads = self.heads[: chain.cut]
        entries = [e for e, _ in self.heads]
        target_ref = "refs/heads/" + self.target
        if self.check_cmd and chain.merged:
            if refusal := refusal_of(self.root, self.git_dir, target_ref, self.tip):
                return _held_up(entries, refusal)
            while probes := plan_probes(len(chain.merged), self.known, max(1, self.parallel)):
                self._check(chain, probes)
                if self.stopped():
                    return _abandoned(entries, self.tip, "cancelled", self.checks)
        landing, results, pending = self._decide(chain)
        if landing == self.tip:
            return BatchResult(results, pending, None, self.checks)
        if refusal := refusal_of(self.root, self.git_dir, target_ref, self.tip):
            return _held_up(entries, refusal)
        if self.stopped():
            return _abandoned(entries, self.tip, "cancelled", self.checks)
        ids = [nid for nid, r in results.items() if r.status == "merged"]
        what = "merge " + ", ".join(ids)
        moved = publish(self.root, self.git_dir, self.local, target_ref, self.tip, landing, what,
                        None)  # fmt: skip
        if moved.outcome == "refused":
            return _held_up(entries, dirty(self.tip, moved.reason))
        if moved.outcome != "landed":
            return None
        crash_point(CRASH_AFTER_BATCH_ADVANCE)
        return BatchResult(results, pending, landing, self.checks)

    def _decide(self, chain: Chain) -> tuple[str, dict[str, MergeResult], tuple[str, ...]]:
        """(the commit to land, results by node in queue order, the entries left pending)."""
        merged = chain.merged
        n = len(merged)
        if not self.check_cmd or not merged or self.known.get(Probe(n)):
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
            survivor = build_chain(self.root, self.git_dir, base,
                                   [(e, h) for e, h in self.heads if e in later])  # fmt: skip
            survivor.links = chain.links[:at] + survivor.links
            self.survivors[probe.k] = survivor
        return survivor.top, [link.entry.node_id for link in survivor.merged]

    def _check(self, chain: Chain, probes: list[Probe]) -> None:
        """Run the probes' checks at once; stop the rest when the whole chain passes."""
        done = threading.Event()
        jobs = [(probe, *self._tree_of(chain, probe)) for probe in probes]

        def stop() -> bool:
            return done.is_set() or self.stopped()

        def one(slot: int, probe: Probe, commit: str, nodes: list[str]) -> None:
            last = nodes[-1] if nodes else "tip"
            name = last
            if probe.without:
                name += ".without-" + chain.merged[probe.k - 1].entry.node_id
            env = {"GITDAG_NODE_ID": last, "GITDAG_BATCH": " ".join(nodes)}
            outcome, log = check_merge(self.root, self.git_dir, self.local, self.target, commit,
                                       self.check_cmd or "", self.timeout_s, name, env,
                                       stop=stop, slot=slot)  # fmt: skip
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
