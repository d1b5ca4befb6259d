"""Writing a remote's state branch: one transition per compare-and-swap push (`CasPushes`).

`push_transition` computes a transition on the remote head we know, builds its commit
(`_build`, no ref moves), pushes it with a lease on `refs/heads/dagain/state` together with the
refs that ride along (`_send`), and reads what came of it as values (`_settle`): landed, a lost
race (fetch, recompute on the new head: `_catch_up`), a lease of another ref lost (`LostRef`), or
a refusal (`_refusal`: `RefRefused` naming the ref). An uncertain push (its connection dropped
after the commands went) is looked for in the fetched history (`_after_loss`): a claim's unique
nonce tells whether it landed. Mixed into `RemoteState` (remote.py), which reads the remote.
"""

from __future__ import annotations

import datetime as dt
import time
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from dulwich.objects import Blob, Commit, Tree

from gitdag.core import flow
from gitdag.core.transitions import Rejected, Transition
from gitdag.errors import RefRefused, RemoteError, StaleSnapshotError
from gitdag.store.layout import STATE_BRANCH, STATE_REF
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed, StateStore
from gitdag.store.write import add_object, build_commit, compare_and_swap
from gitdag.store.writer_queue import WriterQueue
from gitdag.transport.outcomes import LostRef, PushOutcome, RefPush

MAX_TRIES = 12

Compute = Callable[[Snapshot, dt.datetime], "Transition | Rejected | None"]


@dataclass(frozen=True)
class _Write:
    """One transition built on a snapshot, ready to push, with the refs that ride along.

    Attributes:
      snap: the remote head it was computed on (the state branch's lease).
      result: the transition.
      new: the graph once it landed (its commit is `sha`).
      extra: other refs of the same atomic push (a node's branch, the target, our queue entry).
      unwritten: its objects, kept in memory until the push landed (else empty).
      attempt: which try of `push_transition` this is.
      began: when this try began (monotonic), for the cycle of taking turns.
    """

    snap: Snapshot
    result: Transition
    new: Snapshot
    sha: str
    extra: tuple[RefPush, ...]
    unwritten: tuple[Blob | Tree | Commit, ...]
    attempt: int
    began: float


class CasPushes(WriterQueue):
    """The writing half of `RemoteState` (which provides everything declared here)."""

    store: StateStore
    remote: str
    state_ref: str
    target_ref: str

    @abstractmethod
    def snapshot(self) -> Snapshot:
        """The graph at the remote head as last fetched or pushed (RemoteState)."""

    @abstractmethod
    def _identity(self) -> tuple[str, str]:
        """The commits' author (RemoteState)."""

    @abstractmethod
    def _contains(self, head: str, sha: str, walk: int = 64) -> bool:
        """Whether `sha` is `head` or one of its ancestors (RemoteState)."""

    def push_transition(
        self,
        compute: Compute,
        *,
        actor: str,
        refs: Sequence[RefPush] | Callable[[Snapshot], Sequence[RefPush]] = (),
        read_back: bool = False,
        max_tries: int = MAX_TRIES,
        polite: bool = False,
    ) -> Committed | Rejected | LostRef | None:
        """Compute a transition on the remote head and push it with compare-and-swap.

        On a lost race the remote is fetched and the transition recomputed on its new head
        (never a textual rebase), up to `max_tries` times, each after a small jitter.

        Args:
          compute: (snapshot, now) -> the transition, a Rejected, or None for nothing to do.
          actor: the `Gitdag-Actor` trailer.
          refs: other refs to push atomically with it (or a function of the snapshot giving
            them); if one of their leases fails, LostRef is returned and nothing was pushed.
          read_back: make sure the remote's state history contains our commit (claims: their
            commit carries a unique nonce): from git's report of the push, else by a fetch.
          max_tries: the bound on recomputations.
          polite: wait for our turn among the writers of this remote before pushing
            (contention.py; claims: a push that can wait; results and renewals go at once).

        Returns:
          Committed (now the remote head as far as we know), or what compute returned, or LostRef.

        Raises:
          RemoteError: the remote refused the push for another reason, or is unreachable.
          StaleSnapshotError: the remote head kept moving past the bound.
        """
        if polite:
            self._poll_head(actor)  # who is queued, and has the head moved?
            self._wait_in_queue(actor)
        for attempt in range(1, max_tries + 1):
            began = time.monotonic()
            snap = self.snapshot()
            now = self.store.clock()
            result = compute(snap, now)
            if result is None or isinstance(result, Rejected) or result.is_empty():
                self._dequeue()
                return result if isinstance(result, Rejected) else None
            # What the transition settles for the workflow (skips, handlers: core/flow.py).
            index = snap.kept_index()
            waiting = index.waiting_on if index is not None else None
            result = flow.follow(result, snap.nodes, partial(self.store.node, snap), now, waiting)
            write = self._build(snap, result, refs, actor=actor, now=now, attempt=attempt,
                                began=began)  # fmt: skip
            outcome = self._send(write)
            settled = self._settle(write, outcome, read_back=read_back)
            if settled is None:
                # Someone else moved the remote head: they made progress, so retry promptly.
                head = self._catch_up(actor, polite=polite, seen=_moved(write, outcome))
                settled = self._after_loss(write, outcome, head)
            if settled is not None:
                return settled
        raise StaleSnapshotError(
            f"remote {self.remote}: {STATE_BRANCH} moved under {max_tries} attempts in a row; "
            "nothing was written"
        )

    def _build(self, snap: Snapshot, result: Transition,
               refs: Sequence[RefPush] | Callable[[Snapshot], Sequence[RefPush]], *, actor: str,
               now: dt.datetime, attempt: int, began: float) -> _Write:  # fmt: skip
        """Build the transition's commit on `snap` (no ref moves) and what rides along with it."""
        extra = list(refs(snap) if callable(refs) else refs)
        # A transition alone goes straight from memory to the remote, and only one that landed
        # is written here: a lost race costs no disk writes, and the race window is shorter by
        # them. Anything else travels with other commits: written first.
        unwritten: list[Blob | Tree | Commit] | None = None
        if self.transport.sends_unwritten and all(not up.src for up in extra):
            unwritten = []
        commit, new = build_commit(
            self.store.repo, snap, result, actor=actor, author=self._identity(), now=now,
            cache=self.store.cache, readme=self.store.readme_for(snap, result), sink=unwritten,
        )  # fmt: skip
        lowered = self.hand_lease()
        if lowered is not None:
            extra.append(lowered)  # removed as our write lands (leased: core/combining.py)
        kept = tuple(unwritten) if unwritten is not None else ()
        return _Write(snap, result, new, commit.id.decode(), tuple(extra), kept, attempt, began)

    def _send(self, write: _Write) -> PushOutcome:
        """Push the state branch with its lease, and the refs riding along, all or none."""
        state = RefPush(write.sha, STATE_REF.decode(), write.snap.head or "")
        outcome = self.push([state, *write.extra], objects=write.unwritten)
        if write.unwritten and (outcome.ok or outcome.uncertain):
            for obj in write.unwritten:  # landed (or may have): ours to keep
                add_object(self.store.repo, obj)
        return outcome

    def _settle(self, write: _Write, outcome: PushOutcome, *,
                read_back: bool) -> Committed | LostRef | None:  # fmt: skip
        """What a push came to: landed (Committed), LostRef, or None for a lost race.

        Raises:
          RefRefused: refused for a reason other than a lost race (`_refusal`).
        """
        if outcome.ok:
            self._adopt(write)
            if not read_back or self._landed(outcome, write) or self._confirm(write.sha):
                return self._won(write, cycle_s=time.monotonic() - write.began + self._fetch_s)
            return None
        if outcome.refusals():
            raise self._refusal(outcome, write.extra)
        lost = [r for r in outcome.stale_refs() if r != STATE_REF.decode()]
        return LostRef(lost[0]) if lost else None

    def _catch_up(self, actor: str, *, polite: bool, seen: Mapping[str, str] | None) -> str:
        """After a lost race: a small jitter, fetch, and (a claim) wait for our turn again.

        `seen`: where the server said the refs were when it refused us (the new head).
        """
        time.sleep(self.contention.lost())
        head = self._fetch_seeing(actor, seen)
        if polite:
            if self._enqueue(actor, head):
                self._poll_refs()  # the queue entries before ours go first
            head = self._wait_in_queue(actor) or head
        return head

    def _after_loss(self, write: _Write, outcome: PushOutcome, head: str) -> Committed | None:
        """Tell a lost race from an uncertain push that landed, and from a senseless refusal.

        Raises:
          RemoteError: the state branch was refused although it did not move.
        """
        if outcome.ok:
            return None  # it said so, but the read back did not find it: try again
        if outcome.uncertain:
            if self._contains(head, write.sha):
                # The connection dropped after the push landed, and the fetch found it there.
                self._adopt(write)
                return self._won(write, cycle_s=None)  # (our queue entry went with that push)
            return None  # it did not land: simply tried again
        if head == write.snap.head:
            why = next((s.summary for s in outcome.statuses if s.stale), "refused")
            raise RemoteError(
                f"remote {self.remote} refused {STATE_REF.decode()} although it did not "
                f"move: {why}; nothing was changed locally"
            )
        return None

    def _won(self, write: _Write, *, cycle_s: float | None) -> Committed:
        """Our write landed: we go last among the queued writers, our queue entry is gone."""
        self.contention.won(cycle_s)
        self._queue_entry = self._hand_at = None
        return Committed(write.result, write.sha, write.new, write.attempt)

    def _refusal(self, outcome: PushOutcome, extra: Sequence[RefPush]) -> RefRefused:
        """The error for a push refused for a reason other than a lost race, naming the ref.

        A hook that refuses a whole push (pre-receive) refuses every ref of it alike; then the
        node branches that rode along are pushed alone (forced, no lease) to tell whose fault it
        was: a branch refused alone is the culprit; else it was the state branch itself, and
        the branches pushed alone are deleted again (each with its lease).
        """
        state = STATE_REF.decode()
        refused = outcome.refusals()
        others = [s for s in refused if s.ref != state]
        if others and len(others) < len(refused):
            branches = {s.ref for s in others}
            alone = [u for u in extra if u.dst in branches and u.src and u.expect is None]
            if alone:
                probe = self.push(alone, atomic=False)
                if probe.refusals():
                    outcome, others = probe, list(probe.refusals())
                else:  # not theirs: taken back, so that no branch lands without its result
                    others = []
                    self.push([RefPush("", u.dst, u.src) for u in alone], atomic=False)
        first = others[0] if others else next(s for s in refused if s.ref == state)
        said = "; ".join(outcome.remote_says[-3:])
        reason = first.summary + (f" ({said})" if said else "")
        return RefRefused(f"remote {self.remote} refused {first.ref}: {reason}; nothing was "
                          "changed locally", first.ref, reason)  # fmt: skip

    def _adopt(self, write: _Write) -> None:
        """Our push landed: the tracking refs follow, and the new snapshot is the current one."""
        if write.new.head is None:
            return
        repo = self.store.repo
        compare_and_swap(repo, self.state_ref.encode(), write.snap.head, write.new.head,
                         "gitdag: pushed")  # fmt: skip
        for up in write.extra:
            if self.target is not None and up.dst == f"refs/heads/{self.target}":
                compare_and_swap(repo, self.target_ref.encode(), up.expect or None, up.src,
                                 "gitdag: pushed")  # fmt: skip
        self.store.adopt(write.new)

    def _landed(self, outcome: PushOutcome, write: _Write) -> bool:
        """Tell whether git's report of this push proves that our commit became the state head.

        The server moved the ref under its lock only if it still pointed at the head we built
        on, so a report `<that head>..<sha>` for our unique commit means it was the head at that
        moment. Not for an uncertain push: the report is then about a retry, not the push.
        """
        if outcome.uncertain:
            return False
        ref, old = STATE_REF.decode(), write.snap.head or ""
        return any(s.ref == ref and s.moved(old, write.sha) for s in outcome.statuses)

    def _confirm(self, sha: str) -> bool:
        """Read back whether our commit is on the remote's state branch (head or ancestor)."""
        return self._contains(self.fetch(), sha)


def _moved(write: _Write, outcome: PushOutcome) -> Mapping[str, str] | None:
    """The refs the server advertised to a push it refused because the head had moved, if so.

    Not when the head it showed was still ours to build on (the race was lost under the
    server's lock, after the advertisement): then only a fetch tells the new head.
    """
    state = STATE_REF.decode()
    seen = outcome.seen
    if outcome.uncertain or state not in seen or seen[state] == (write.snap.head or ""):
        return None
    return seen
