"""The ready set, the counts and the ids by status of a graph, kept up to date from its changes.

`graph.ready` and `graph.counts` read every node; a supervisor asking them once per loop
iteration pays the graph's size for each transition (2.4x per node from 200 to 2,000 nodes).
A `GraphIndex` is built once from the whole graph and then updated from the ids each transition
changed: per change it touches the node, its own edges, and the nodes waiting on it only when it
starts or stops satisfying them (becomes done, or leaves done). Its answers equal the full
recomputations (a property test replays random transitions against them).
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Iterator, Mapping

from gitdag.core.graph import claim_key
from gitdag.core.summary import SATISFIED, TERMINAL, Kind, NodeSummary, Status

Key = tuple[int, int, dt.datetime, str]


class GraphIndex:
    """Derived sets of one graph version; mutable, updated in place by `update`.

    Attributes (read-only for callers):
      by_status: status -> the ids in it.
    """

    __slots__ = (
        "_checkpoints",
        "_deferred",
        "_keys",
        "_order",
        "_status",
        "_unsat",
        "_wait_after",
        "_wait_dep",
        "_waiting",
        "by_status",
    )

    def __init__(self) -> None:
        self.by_status: dict[Status, set[str]] = {status: set() for status in Status}
        self._status: dict[str, Status] = {}
        self._waiting: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}  # id -> its edges
        self._wait_dep: dict[str, dict[str, int]] = {}  # ref -> {waiter: occurrences in deps}
        self._wait_after: dict[str, dict[str, int]] = {}  # ref -> {waiter: occurrences in after}
        self._unsat: dict[str, int] = {}  # id -> its edges not satisfied now
        # Candidates: open nodes whose edges are all satisfied (ready unless `not_before`).
        self._keys: dict[str, Key] = {}  # candidate -> its claim key
        self._order: list[Key] = []  # the candidates' keys, sorted (claim order)
        self._deferred: dict[str, dt.datetime] = {}  # candidate -> its not_before
        self._checkpoints: set[str] = set()  # candidates that are checkpoints

    @classmethod
    def build(cls, nodes: Mapping[str, NodeSummary]) -> GraphIndex:
        """Return the index of a whole graph (reads every node once)."""
        index = cls()
        index.update(nodes, nodes.keys())
        return index

    # --- updating ---------------------------------------------------------------------------

    def update(self, nodes: Mapping[str, NodeSummary], changed: Iterable[str]) -> None:
        """Bring the index to the graph `nodes`, where only the ids `changed` differ.

        Args:
          nodes: the graph now.
          changed: every id added, removed or changed since the graph the index describes
            (more is harmless, fewer is wrong).
        """
        touched: set[str] = set()
        for nid in changed:
            self._move(nid, nodes.get(nid), touched)
        for nid in touched:
            self._place(nid, nodes.get(nid))

    def _move(self, nid: str, new: NodeSummary | None, touched: set[str]) -> None:
        old = self._status.get(nid)
        status = new.status if new is not None else None
        if old is not status:
            if old is not None:
                self.by_status[old].discard(nid)
                del self._status[nid]
            if status is not None:
                self.by_status[status].add(nid)
                self._status[nid] = status
            # Waiters change only when this node starts or stops satisfying them.
            self._propagate(self._wait_dep, nid, old in SATISFIED, status in SATISFIED, touched)
            self._propagate(self._wait_after, nid, old in TERMINAL, status in TERMINAL, touched)
        edges = (new.deps, new.after) if new is not None else None
        if self._waiting.get(nid) != edges:
            self._rewire(nid, edges)
        touched.add(nid)

    def _propagate(
        self,
        waiters: dict[str, dict[str, int]],
        nid: str,
        was: bool,
        now: bool,
        touched: set[str],
    ) -> None:
        if was is now:
            return
        step = -1 if now else 1
        unsat = self._unsat
        for waiter, times in waiters.get(nid, {}).items():
            unsat[waiter] += step * times
            touched.add(waiter)

    def _rewire(self, nid: str, edges: tuple[tuple[str, ...], tuple[str, ...]] | None) -> None:
        before = self._waiting.pop(nid, None)
        if before is not None:
            for table, refs in zip((self._wait_dep, self._wait_after), before, strict=True):
                for ref in refs:
                    counts = table[ref]
                    counts[nid] -= 1
                    if not counts[nid]:
                        del counts[nid]
                        if not counts:
                            del table[ref]
        self._unsat.pop(nid, None)
        if edges is None:
            return
        self._waiting[nid] = edges
        status = self._status
        deps, after = edges
        unsat = 0
        for ref in deps:
            self._wait_dep.setdefault(ref, {}).setdefault(nid, 0)
            self._wait_dep[ref][nid] += 1
            if status.get(ref) not in SATISFIED:
                unsat += 1
        for ref in after:
            self._wait_after.setdefault(ref, {}).setdefault(nid, 0)
            self._wait_after[ref][nid] += 1
            if status.get(ref) not in TERMINAL:
                unsat += 1
        self._unsat[nid] = unsat

    def _place(self, nid: str, node: NodeSummary | None) -> None:
        """Put `nid` in or out of the candidates, by its status and unsatisfied edges."""
        key = self._keys.pop(nid, None)
        if key is not None:
            del self._order[bisect.bisect_left(self._order, key)]
            self._deferred.pop(nid, None)
            self._checkpoints.discard(nid)
        if node is None or node.status is not Status.OPEN or self._unsat.get(nid, 0):
            return
        key = claim_key(node)
        self._keys[nid] = key
        bisect.insort(self._order, key)
        if node.not_before is not None:
            self._deferred[nid] = node.not_before
        if node.kind is Kind.CHECKPOINT:
            self._checkpoints.add(nid)

    # --- reading ----------------------------------------------------------------------------

    def iter_ready(self, now: dt.datetime, *, paused: bool = False) -> Iterator[str]:
        """Yield the ready ids in claim order, lazily (the same ids as `graph.ready`)."""
        if paused:
            return
        deferred = self._deferred  # the index must not change while this is being iterated
        for key in self._order:
            nid = key[3]
            if deferred:
                not_before = deferred.get(nid)
                if not_before is not None and not_before > now:
                    continue
            yield nid

    def ready(self, now: dt.datetime, *, paused: bool = False) -> list[str]:
        """Return the ready ids in claim order (equals `graph.ready`)."""
        return list(self.iter_ready(now, paused=paused))

    def ready_checkpoints(self) -> int:
        """How many candidates are checkpoints (they start without a worker slot)."""
        return len(self._checkpoints)

    def next_wakeup(self, now: dt.datetime) -> dt.datetime | None:
        """Return the earliest future `not_before` of an otherwise ready node (`next_wakeup`)."""
        later = [t for t in self._deferred.values() if t > now]
        return min(later) if later else None

    def waiting_on(self, ids: Iterable[str]) -> set[str]:
        """Return the ids (any status) with a dep or an after on one of `ids`.

        Costs the number of such edges, not the graph's size (`flow.follow` asks it on every
        transition that settles a node).
        """
        found: set[str] = set()
        for ref in ids:
            found.update(self._wait_dep.get(ref, ()))
            found.update(self._wait_after.get(ref, ()))
        return found

    def counts(self) -> dict[str, int]:
        """Return the number of nodes in each status (equals `graph.counts`)."""
        return {status.value: len(ids) for status, ids in self.by_status.items()}

    def ids(self, status: Status) -> frozenset[str]:
        """Return the ids in `status` (a copy: the index changes under its callers)."""
        return frozenset(self.by_status[status])
