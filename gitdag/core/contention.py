"""Taking turns on a shared remote: when a writer pushes to the state branch, and when it waits.

Every writer of a remote's state branch pushes to the same ref, and only one push per head can
land; compare-and-swap decides every race, this module only decides when a writer tries.

The order: whoever landed longest ago goes next. Every writer sees the same history, so every
writer can tell who is next without talking to the others: `seen` records the actors of the last
few seconds' state commits, newest first, up to the first that appears twice (one round of
turns), and a writer's `rank` is the number of those rivals whose latest commit is older than
its own (they have waited longer: they go first).

- Rank 0 pushes at once. So does a writer that has never landed (nobody can see it waiting):
  compare-and-swap settles its race, and once it has landed it takes turns like the rest.
- A writer that loses without being seen in the round raises its hand (in the code: adds a queue
  entry, `should_enqueue`; `queued` counts the entries ahead of us): a ref of its own under
  `refs/heads/dagain/hands/` (one small push, never contended), lowered in the same atomic push as
  its next landed write. Everybody looks at the raised hands with the head (`ls-refs`), and a
  raised hand goes before every writer in the round (among hands, in the order of their names):
  a writer that lands again and again without fetching can no longer starve one it cannot see.
- Rank above 0 waits: it sleeps about one cycle per writer ahead of it but one, then looks at
  the remote head cheaply (`ls-refs`, no objects): next in line, from half a cycle after the last
  landing it saw, every twentieth of a cycle. A move of the head while others are still ahead
  counts one of them done (`passed`) without a fetch; next in line, it fetches when the head
  moved (which recounts the ranks exactly), and pushes when its rank is 0. So a writer fetches
  about twice per round of turns, not once per landing: with eight writers on one server, the
  waiters' fetches were most of the server's work.
- It stops waiting when nobody has landed for `idle` (the rivals ahead of it stopped claiming:
  their nodes run, or they left), and in any case after MAX_S.
- A winner is the newest, so its rank becomes the number of its rivals: it waits its turn.

Time is counted in `cycle`s: a moving average of how long this writer's own landed writes took,
from the fetch before it to git's report: about what a turn of any writer takes. (Not the
observed time between landings: that includes everybody's waiting, and waiting on it would
feed on itself.)
"""

from __future__ import annotations

from typing import Protocol

JITTER_S = 0.005  # after a lost race: spread the losers' next looks a little
MIN_NAP_S = 0.003  # never look at the remote more often than this
MAX_S = 3.0  # never wait for a turn longer than this, however many rivals
NEXT_NAP = 0.05  # the writer next in line looks every twentieth of a cycle ...
EXPECT = 0.5  # ... from this far into the cycle of the writer ahead of it
IDLE = 2.5  # cycles without anybody landing: the rivals ahead are not claiming now
ENQUEUE_AFTER = 1  # races lost in a row, unseen, before a writer raises its hand


class Uniform(Protocol):
    """Where randomness comes from (`random.Random`): the caller's, so that this stays pure."""

    def uniform(self, a: float, b: float) -> float:
        """A number between `a` and `b`."""
        ...


class Contention:
    """One writer's view of the crowd on one remote: its rivals, its rank, the cycle length.

    Pure policy: the caller passes the randomness (`rng`) and measures time itself.
    """

    def __init__(self, *, rng: Uniform) -> None:
        self.rng = rng
        self.rivals = 0  # other writers that landed commits lately
        self.rank = 0  # rivals whose last landing is older than ours: they go first
        self.cycle = 0.05  # seconds from a fetch to our landed push, moving average
        self.queued = 0  # queue entries (raised hands) that go before us
        self.losses = 0  # races lost since our last landed write

    def lost(self) -> float:
        """Our push lost a race: return how long to wait before fetching and trying again."""
        self.losses += 1
        return self.rng.uniform(0, JITTER_S)

    def passed(self) -> None:
        """The head moved while others are ahead of us: one of them took its turn."""
        if self.rank > 0:
            self.rank -= 1

    def ahead(self) -> int:
        """How many writers go before us: rivals that landed before us, and raised hands."""
        return self.rank + self.queued

    def should_enqueue(self) -> bool:
        """Tell whether to add a queue entry: we keep losing and nobody can see us in the round."""
        return self.losses >= ENQUEUE_AFTER and self.rank == 0

    def won(self, cycle_s: float | None = None) -> None:
        """Our push landed, `cycle_s` after the fetch it was built on: we now go last."""
        if cycle_s is not None and cycle_s > 0:
            self.cycle = 0.7 * self.cycle + 0.3 * min(cycle_s, MAX_S)
        self.rank = self.rivals
        self.losses = 0

    def seen(self, actors: list[str], me: str) -> None:
        """Record who landed commits lately: `actors` newest first (their latest commit), and us.

        Our rank is how many of the others landed last before we did; a writer not in the list
        (never landed lately, as far as anyone can see) has rank 0.
        """
        others = [a for a in actors if a != me]
        self.rivals = len(others)
        self.rank = len(actors) - actors.index(me) - 1 if me in actors else 0

    def nap(self, since_move: float = 0.0, poll_s: float = 0.0) -> float:
        """Return how long to wait before looking at the remote head again (rank > 0).

        Further back: sleep until about one writer is left ahead. Next in line: the writer
        ahead lands about a cycle after the last landing we saw (`since_move` ago), so sleep
        until shortly before that, then look often, but never for less than the last ref poll
        took (`poll_s`): a slow poll means a busy server, which every poll slows further.
        """
        if self.ahead() > 1:
            return max(MIN_NAP_S, (self.ahead() - 1) * self.cycle * self.rng.uniform(0.8, 1.2))
        early = EXPECT * self.cycle - since_move
        return max(MIN_NAP_S, early if early > 0 else max(NEXT_NAP * self.cycle, poll_s))

    def idle(self) -> float:
        """Return how long the head may stay still before we stop waiting for those ahead.

        Longer the further back we are: when a writer ahead has stopped, the one right behind
        it moves first, and the rest see the head move again.
        """
        return (IDLE + self.ahead() - 1) * self.cycle + MIN_NAP_S
