"""A claim that combines: push our claim with claims for every raised hand, or raise ours and wait.

The I/O half of `core/combining.py`. One call of `claim_combined` ends with a node claimed for
us, by our own push or by someone else's:

1. Look (`ls-refs`: the head and the raised hands; a fetch when the head moved).
2. Push at once when we landed the last state commit (we are the one combining now) or nobody
   else is claiming; else raise our hand (a ref whose name carries our request, pointing at the
   head: one small push that never contends).
3. With our hand up, wait for the head to move, looking every fraction of the time between
   landings. When it moved, fetch and look for our nonce in the new commits' `Gitdag-Claim-For`
   trailers: found means claimed (no push of ours). Nobody lands for our patience (a few push
   times, longer the later our hand's name sorts, so that one of us goes first) and we push our
   own claim, serving every other fresh hand, our hand lowered in the same atomic push.
4. Our push claims our node and one node for each fresh hand it saw, lowering those hands with
   a lease each: a hand lowered meanwhile (its worker gave up) makes the push fail as a whole
   (`LostRef`) and we compute again. A lost race raises our hand (if not up) and waits.

Exactly once is still decided by the one compare-and-swap of the state branch. A hand whose
worker died is served at most once, with the hand's short lease; stale hands (10 s behind the
head) are never served (`writer_queue._poll_refs` sweeps them).
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Collection
from functools import partial

from gitdag.core import combining, lifecycle
from gitdag.core.combining import HandRequest
from gitdag.core.model import Status
from gitdag.core.transitions import Rejected, Transition, parse_trailers
from gitdag.errors import StaleSnapshotError
from gitdag.remote.claims import candidates, pick
from gitdag.store.layout import STATE_REF
from gitdag.store.remote import RemoteState
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed
from gitdag.transport.outcomes import LostRef, RefPush

PATIENCE = 3.0  # cycles a raised hand waits for a landing before its worker pushes itself
MAX_PATIENCE_S = 3.0  # ... at most this (plus the stagger by hand order)
UNSERVED_MOVES = 3  # head moves that did not serve us before we push ourselves anyway
MIN_NAP_S = 0.005  # never look more often than this
EXPECT = 0.8  # the next landing is expected this far into the time between landings ...
LOOK = 0.25  # ... and looked for every quarter of it from then on
GATHER = 2  # looks a combining worker makes for hands still coming (one push time apart)
WALK = 256  # commits looked through for our nonce (back to the head our hand saw)
# A claim gives the worker's loop back after this long, whatever it waits on (its hand is
# lowered; the next turn claims again): the loop also lands merges and renews leases. Once,
# under load, a worker's claim went on for minutes with its hand up while its finished merge
# waited (the cause was not found); this bounds that to one turn.
CLAIM_TURN_S = 30.0


def claim_combined(remote: RemoteState, *, worker: str, labels: Collection[str], lease_s: int,
                   spread: int, in_flight: Collection[str], actor: str, max_tries: int,
                   rng: random.Random | None, hand_lease_s: int,
                   ) -> Committed | Rejected | LostRef | None:  # fmt: skip
    """Claim one ready node for `worker`, combining with the other claimers (module doc).

    Returns Committed (its transition's subject is the node) once the remote holds the claim,
    or None when nothing is ready for this worker.

    Raises:
      StaleSnapshotError: `max_tries` races lost without being served.
      RemoteError: the remote refused or could not be reached.
    """
    chooser = rng or random.Random()
    store = remote.store
    request = HandRequest(" ".join(worker.split()), uuid.uuid4().hex[:16],
                          max(1, min(hand_lease_s, lease_s)), tuple(sorted(labels)))  # fmt: skip
    lowered: list[RefPush] = []  # the hands our next push serves (set by `compute`)

    def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected | None:
        lowered.clear()
        _, runs = candidates(snap, now, labels=labels, slots=1, spread=spread,
                             in_flight=in_flight)  # fmt: skip
        if not runs:
            return None
        own = lifecycle.claim(store.node(snap, pick(runs, spread, chooser)), worker=worker,
                              now=now, lease_s=lease_s, nonce=uuid.uuid4().hex)  # fmt: skip
        hands = remote.hands_up()
        if isinstance(own, Rejected) or not hands:
            return own
        combined, served = combining.combine(
            own, [r for _, r in hands], snap.nodes, partial(store.node, snap), now=now,
            paused=snap.graph.control.paused, max_lease_s=lease_s,
        )  # fmt: skip
        nonces = {s.nonce for s in served}
        lowered.extend(push for push, r in hands if r.nonce in nonces)
        return combined

    wait = _Wait(remote, actor, request)
    remote._poll_refs()  # the head and who has a hand up (fetched only when we push or look)
    lost = 0
    turn_ends = wait.ends = time.monotonic() + CLAIM_TURN_S
    try:
        while True:
            if time.monotonic() > turn_ends:
                return wait.settle()  # served meanwhile, or None: claim again next turn
            if wait.up:
                got = wait.served()
                if got is not None:
                    return got
            if not _ready_for(remote, labels, spread, in_flight):
                if wait.behind():
                    continue  # what we know is old: look again at what we fetched
                return wait.settle()
            if (wait.up or (_crowded(remote, actor) and wait.raise_hand())) and wait.until_moved():
                continue  # our hand went down: were we served?
            if not wait.up:
                wait.gather()
            if wait.behind() and wait.up:  # we push on the newest head we saw ...
                got = wait.served()  # ... which may have served us (a fetch lists the refs anew)
                if got is not None:
                    return got
            try:
                outcome = remote.push_transition(
                    compute, actor=actor, read_back=True, refs=lambda _: list(lowered), max_tries=1
                )
            except StaleSnapshotError:
                lost += 1  # (the loser fetched the new head already)
                if lost >= max_tries:
                    got = wait.settle()
                    if got is not None:
                        return got
                    raise
                remote._poll_refs()  # the hands raised meanwhile
                if not wait.up:
                    wait.raise_hand()
                continue
            if isinstance(outcome, LostRef):
                remote._poll_head(actor)  # a hand went down meanwhile (ours: were we served?)
                continue
            if outcome is None and wait.since is not None:
                return wait.served()  # nothing ready: because the last of it was claimed for us?
            if outcome is not None and not isinstance(outcome, Rejected):
                wait.landed(len(lowered))
            return outcome
    finally:
        wait.leave()


class _Wait:
    """Our raised hand and the waiting on it."""

    def __init__(self, remote: RemoteState, actor: str, request: HandRequest) -> None:
        self.remote, self.actor, self.request = remote, actor, request
        self.up = False
        self.since: str | None = None  # the head when our hand went up: commits after it count
        self.raise_s = 0.05  # how long raising our hand took: about one push
        self.ends = float("inf")  # the claim's turn ends then (CLAIM_TURN_S): stop waiting

    def raise_hand(self) -> bool:
        """Raise our hand on the head we know; True if it is up."""
        head = self.remote.head()
        if head is None:
            return False
        began = time.monotonic()
        self.up = self.remote.raise_hand(self.actor, self.request, head)
        self.raise_s = max(0.01, time.monotonic() - began)
        if self.up and self.since is None:
            self.since = head  # our nonce stays: a claim for an earlier hand of ours counts too
        return self.up

    def until_moved(self) -> bool:
        """Wait until our hand goes down (True, the head fetched), or it is our turn (False).

        Our hand goes down only with the claim that serves it (or when swept as stale), so a
        head that moves while our hand stays up did not serve us: no fetch, we wait on. Our
        turn comes when nobody lands for our patience, or after a few landings that did not
        serve us. Looks (`ls-refs`) from half the observed time between landings after the
        last one, then every sixth of it, and each waiter no more often than a look takes
        times the hands up: every look starts processes on the server (over ssh on both ends),
        and seven waiters looking fast slow the one combining.
        """
        remote = self.remote
        cycle = max(remote.contention.cycle, self.raise_s)
        order = sorted([remote._queue_entry or "", *(p.dst for p, _ in remote.hands_up())])
        place = order.index(remote._queue_entry or "")
        patience = min(MAX_PATIENCE_S, PATIENCE * cycle) + place * cycle
        waiting = len(order)
        start = time.monotonic()
        last = remote._seen.get(STATE_REF.decode())
        look_s = 0.0
        moves = 0
        seen_gap = remote.landings
        while (now := time.monotonic()) - start < patience and now < self.ends:
            early = EXPECT * seen_gap.gap - (now - seen_gap.moved_at)
            # The waiters together look about once per look's own time: `waiting` of us
            # looking every look_s each would keep the server busy starting our processes.
            nap = max(MIN_NAP_S, look_s * waiting, early if early > 0 else LOOK * seen_gap.gap)
            time.sleep(min(nap, max(MIN_NAP_S, patience - (now - start))))
            began = time.monotonic()
            seen = remote._poll_refs()
            look_s = time.monotonic() - began
            if remote._queue_entry not in remote._seen:  # lowered by a combined claim, or swept
                self.behind()
                return True
            if seen is not None and seen != last:
                last, moves, start = seen, moves + 1, began  # someone combines: wait on
                since = min(MAX_PATIENCE_S, began - seen_gap.moved_at)
                seen_gap.gap = 0.7 * seen_gap.gap + 0.3 * since
                seen_gap.moved_at = began
                if moves >= UNSERVED_MOVES:
                    return False
        return False

    def behind(self) -> bool:
        """Fetch if the head we saw at our last look is not the one we have; True if fetched."""
        seen = self.remote._seen.get(STATE_REF.decode())
        if seen is None or seen == self.remote.head():
            return False
        self.remote._fetch_seeing(self.actor, self.remote._seen)
        return True

    def served(self) -> Committed | None:
        """Our claim, if a combined claim among the commits since our hand went up made it."""
        remote, nonce = self.remote, self.request.nonce
        if remote._queue_entry not in remote._seen:
            self.behind()  # our hand went down with a commit we may not have yet
        head = remote.head()
        current, found = head, None
        for _ in range(WALK):
            if current is None or current == self.since:
                break
            commit = remote._commit(current)
            found = combining.mine(parse_trailers(commit.message.decode("utf-8", "replace")), nonce)
            if found is not None:
                break
            current = commit.parents[0].decode() if commit.parents else None
        if found is None or head is None:
            if self.up and remote._queue_entry not in remote._seen:
                self.up = False  # gone without serving us (swept): raise again if need be
                remote._queue_entry = remote._hand_at = None
            return None
        self.up = False
        remote._queue_entry = remote._hand_at = None  # the combined claim lowered it
        snap = remote.snapshot()
        node = remote.store.node(snap, found.node_id)
        claim = node.claim
        if node.status is not Status.RUNNING or claim is None or claim.worker != found.worker:
            return None  # already given back or reclaimed: claim again
        transition = Transition(
            verb="claim", subject=node.id, from_status="open", to_status="running",
            summary=f"attempt {claim.attempt} by {claim.worker} (claimed for our raised hand)",
            put=(node,), attempt=claim.attempt,
        )  # fmt: skip
        return Committed(transition, head, snap, 1)

    def landed(self, served: int) -> None:
        """Our own push landed, serving `served` hands (our hand, if up, went down with it)."""
        self.up = False
        self.remote.served_last = served

    def gather(self) -> None:
        """We combine: wait a little for the hands our last combined claim served to come back.

        A worker served by our last claim raises its next hand about one push after it saw
        that claim; pushing before it shows would leave it for the round after. So while fewer
        hands are up than we served last time, look again one push time later (at most
        GATHER times, and never when nobody was served: a lone worker never waits).
        """
        remote = self.remote
        for _ in range(GATHER):
            if len(remote.hands_up()) >= remote.served_last:
                return
            time.sleep(max(MIN_NAP_S, self.raise_s, remote.contention.cycle))
            remote._poll_refs()

    def settle(self) -> Committed | None:
        """We stop waiting: lower our hand; if it was gone, a claim may have served it meanwhile.

        Returns that claim, if one did (else it would lapse after its first lease, unrun).
        """
        if self.remote._queue_entry is None or self.remote.lower_hand():
            self.up = False
            return None
        self.remote._poll_refs()  # gone: served (or swept) since we last looked
        self.behind()
        got = self.served()
        self.up = False
        return got

    def leave(self) -> None:
        """Lower our hand if it is still up (we claim no more now)."""
        if self.remote._queue_entry is not None:
            self.remote.lower_hand()
        self.up = False


def _crowded(remote: RemoteState, actor: str) -> bool:
    """Tell whether to raise a hand rather than push: others claim now, and we did not land last."""
    head, seen = remote.head(), remote._seen.get(STATE_REF.decode())
    if head is not None and seen in (None, head):
        trailers = parse_trailers(remote._commit(head).message.decode("utf-8", "replace"))
        if " ".join(actor.split()) in trailers.get("Gitdag-Actor", []):
            return False  # we landed last: we combine the raised hands
    return bool(remote.hands_up()) or remote.contention.rivals > 0


def _ready_for(remote: RemoteState, labels: Collection[str], spread: int,
               in_flight: Collection[str]) -> bool:  # fmt: skip
    snap = remote.snapshot()
    _, runs = candidates(snap, remote.store.clock(), labels=labels, slots=1, spread=spread,
                         in_flight=in_flight)  # fmt: skip
    return bool(runs)
