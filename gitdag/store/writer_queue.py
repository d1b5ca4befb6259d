"""The writers' queue on a remote, the I/O half: ref polls, fetches, rivals, queue entries.

`contention.Contention` decides (pure: ranks, naps, patience); this mixin of `RemoteState` does
what those decisions need on the wire: a cheap ref poll of the remote head and the queue entries
(`ls-refs`), a fetch when the head moved, the round of recent writers read from the fetched
history (`Gitdag-Actor` trailers), and adding or removing this writer's queue entry (a ref under
`QUEUE_REFS`; docs/many-machines.md calls it "raising a hand").
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dulwich.objects import Commit, ShaFile

from gitdag.core.combining import HandRequest
from gitdag.core.contention import Contention
from gitdag.core.transitions import parse_trailers
from gitdag.errors import RemoteError
from gitdag.store.layout import STATE_REF
from gitdag.transport import Transport
from gitdag.transport.outcomes import PushOutcome, RefPush

RIVALS_S = 3  # rivals are the other actors of the state commits of the last few seconds
RIVALS_WALK = 32  # ... looking at no more commits than this
MAX_WAIT_S = 3.0  # never wait for a turn longer than this
# Writers that keep losing add a queue entry here (contention.py); a branch, so the push rights a
# worker needs stay "dagain/* branches only".
QUEUE_REFS = "refs/heads/dagain/hands/"
# A queue entry pointing at a state commit older than this (vs the head) was left behind.
QUEUE_ENTRY_STALE_S = 10


@dataclass
class Landings:
    """How often others land on the state branch, as seen while our hand was up.

    Kept across claims: a fresh estimate for each claim made waiters look far too often.
    """

    gap: float = 0.05  # seconds between landings, moving average
    moved_at: float = field(default_factory=time.monotonic)  # when we last saw the head move


class WriterQueue(ABC):
    """The turn-taking half of `RemoteState` (which provides everything declared here)."""

    contention: Contention
    target: str | None
    _queue_entry: str | None
    _hands_up: list[tuple[str, str]]
    _hand_at: str | None  # where our hand points (its lease), when raised by `raise_hand`
    served_last: int  # hands our last landed claim served (remote/combined.py)
    landings: Landings  # how often the head moves, as a waiting hand sees it
    _seen: dict[str, str]
    _fetch_s: float

    @abstractmethod
    def head(self) -> str | None:
        """The remote head as last fetched or pushed (RemoteState)."""

    @abstractmethod
    def fetch(self, *, extra: Sequence[tuple[str, str]] = (),
              known: Mapping[str, str] | None = None) -> str:  # fmt: skip
        """Fetch the remote's state (RemoteState)."""

    @abstractmethod
    def push(self, updates: Sequence[RefPush], *, atomic: bool = True,
             objects: Sequence[ShaFile] = ()) -> PushOutcome:  # fmt: skip
        """Push refs with leases (RemoteState)."""

    @property
    @abstractmethod
    def transport(self) -> Transport:
        """How the remote is reached (RemoteState)."""

    @abstractmethod
    def _commit(self, sha: str) -> Commit:
        """Read a state commit, cached (RemoteState)."""

    def _wait_in_queue(self, actor: str) -> str | None:
        """Wait while writers that landed before us take their turns (contention.py).

        Sleeps `nap`, then looks at the remote head and the queue entries with `ls-refs` (no
        objects). A move of the head while others are still ahead of us counts one of them
        done (`Contention.passed`) without fetching; next in line, a move is fetched (which
        recounts the ranks). Stops at rank 0, when nobody has landed for `idle`, or after
        MAX_WAIT_S, and fetches the head last seen if it was not fetched yet. Returns the head
        last fetched, if it fetched.
        """
        c = self.contention
        fetched = None
        start = last_move = time.monotonic()
        seen = self.head()
        poll_s = 0.0  # how long the last ref poll took
        while c.ahead():
            time.sleep(c.nap(time.monotonic() - last_move, poll_s))
            now = time.monotonic()
            head = self._poll_refs()
            poll_s = time.monotonic() - now
            if head is not None and head != seen:
                seen, last_move = head, now
                if c.ahead() > 1:
                    c.passed()  # each waiter fetching each landing would load the server
                else:
                    fetched = self._fetch_seeing(actor, self._seen)
            elif now - last_move >= c.idle():
                break  # nobody lands: those ahead of us are not claiming now
            if now - start >= MAX_WAIT_S:
                break
        if seen is not None and seen != self.head():
            fetched = self._fetch_seeing(actor, self._seen)
        return fetched

    def _poll_head(self, actor: str) -> str | None:
        """Read the remote head and the queue entries; fetch if the head moved.

        Returns the new head if it moved (and was fetched), else None.
        """
        if self._poll_refs() == self.head():
            return None
        return self._fetch_seeing(actor, self._seen)

    def _poll_refs(self) -> str | None:
        """Read the remote head and count the queue entries ahead of us (ls-refs, no objects)."""
        names = [STATE_REF.decode(), QUEUE_REFS]
        if self.target is not None:
            names.append(f"refs/heads/{self.target}")
        seen = self._seen = self.transport.refs(names)
        head = self.head()
        newest = self._commit(head).commit_time if head is not None else 0
        raised = {
            n: sha for n, sha in seen.items() if n.startswith(QUEUE_REFS) and n != self._queue_entry
        }
        entries = sorted(n for n, sha in raised.items() if self._fresh(sha, newest))
        self._sweep({n: sha for n, sha in raised.items() if n not in entries})
        self._hands_up = [(n, raised[n]) for n in entries]
        if self._queue_entry is not None:
            entries = [e for e in entries if e < self._queue_entry]  # among them: by name
        self.contention.queued = len(entries)
        return seen.get(STATE_REF.decode())

    def hands_up(self) -> list[tuple[RefPush, HandRequest]]:
        """The fresh hands of others raised at our last look, each with the push that lowers it.

        Only hands whose name carries a request (core/combining.py), in the order of their names.
        """
        found = []
        for name, sha in self._hands_up:
            request = HandRequest.decode(name.rsplit("/", 1)[-1])
            if request is not None:
                found.append((RefPush("", name, sha), request))
        return found

    def raise_hand(self, actor: str, request: HandRequest, head: str) -> bool:
        """Raise our hand carrying `request` (a ref pointing at `head`); True if it is up.

        Any hand of ours still up is replaced. A request too long for a ref name is not raised.
        """
        encoded = request.encode()
        if encoded is None:
            return False
        self._dequeue()
        digest = hashlib.sha1(" ".join(actor.split()).encode()).hexdigest()[:16]
        entry = f"{QUEUE_REFS}{digest}/{encoded}"
        outcome = self.push([RefPush(head, entry, "")], atomic=False)
        if outcome.ok:
            self._queue_entry, self._hand_at = entry, head
            self._seen[entry] = head  # up, as far as we know, until a look says otherwise
        return outcome.ok

    def lower_hand(self) -> bool:
        """Lower our hand with a lease on it: True if we lowered it, False if it was gone.

        Gone means a combined claim served it (or it was swept as stale): look at the head.
        """
        entry, at = self._queue_entry, self._hand_at
        if entry is None or at is None:
            return False
        self._queue_entry = self._hand_at = None
        return self.push([RefPush("", entry, at)], atomic=False).ok

    def hand_lease(self) -> RefPush | None:
        """The push that lowers our hand with the write that lands our claim (leased), if up."""
        if self._queue_entry is None:
            return None
        return RefPush("", self._queue_entry, self._hand_at)

    def _sweep(self, stale: Mapping[str, str]) -> None:
        """Delete queue entries left behind by killed workers (each with its lease): best effort."""
        if stale:
            with contextlib.suppress(RemoteError):
                self.push([RefPush("", name, sha) for name, sha in stale.items()], atomic=False)

    def _fresh(self, sha: str, newest: int) -> bool:
        """A queue entry is fresh unless it points at a state commit well older than our head."""
        try:
            stamp: int = self._commit(sha).commit_time
            return stamp >= newest - QUEUE_ENTRY_STALE_S
        except (KeyError, RemoteError):
            return True  # a commit we have not fetched yet: new

    def _enqueue(self, actor: str, head: str) -> bool:
        """Add our queue entry if we keep losing unseen (contention.py); True if we did."""
        if self._queue_entry is not None or not self.contention.should_enqueue():
            return False
        digest = hashlib.sha1(" ".join(actor.split()).encode()).hexdigest()[:16]
        entry = QUEUE_REFS + digest
        outcome = self.push([RefPush(head, entry)], atomic=False)
        if outcome.ok:
            self._queue_entry = entry
        return outcome.ok

    def _dequeue(self) -> None:
        """Remove our queue entry (we are leaving without a landed write): best effort."""
        if self._queue_entry is not None:
            entry, self._queue_entry, self._hand_at = self._queue_entry, None, None
            with contextlib.suppress(RemoteError):
                self.push([RefPush("", entry)], atomic=False)

    def _fetch_seeing(self, actor: str, known: Mapping[str, str] | None = None) -> str:
        """Fetch, and count the rival writers of the history fetched (`Contention.seen`)."""
        began = time.monotonic()
        head = self.fetch(known=known)
        self._fetch_s = time.monotonic() - began
        self.contention.seen(self._actors(head), " ".join(actor.split()))
        return head

    def _actors(self, head: str) -> list[str]:
        """Return the writers taking turns now, newest first (their latest commit).

        The actors of the latest state commits, up to the first that appears twice: one full
        round of turns.

        A writer that stopped writing drops out of that round as soon as another has written
        twice since, so nobody waits for it for long (contention.py).
        """
        actors: dict[str, None] = {}
        current: str | None = head
        newest: int | None = None
        for _ in range(RIVALS_WALK):
            if current is None:
                break
            commit = self._commit(current)
            newest = commit.commit_time if newest is None else newest
            if commit.commit_time < newest - RIVALS_S:
                break
            trailers = parse_trailers(commit.message.decode("utf-8", "replace"))
            names = trailers.get("Gitdag-Actor", [])
            if any(name in actors for name in names):
                break
            actors.update(dict.fromkeys(names))
            current = commit.parents[0].decode() if commit.parents else None
        return list(actors)
