"""Taking turns on a shared remote: when a writer pushes to the state branch, and when it waits.

Every writer of a remote's state branch pushes to the same ref, and only one push per head can
land; compare-and-swap decides every race, this module only decides when a writer tries.

- After a lost race a writer retries promptly, after a small random jitter: a lost race means
  somebody made progress, and the next try on the new head has a fair chance. (Long
  exponential waits made losers lose for seconds while a winner kept the ref: that was the p95.)
- After a win, a writer that claims again soon sits out its turn: a pause of about one claim
  per rival writer seen lately, randomised, minus the time since it won. A winner knows the
  remote head without fetching (its own push), so without this it would win again and again.
  A lone writer never waits, nor does a worker whose node ran longer than the pause.

Rivals are counted from the state history the writer fetched (distinct actors among the commits
of the last few seconds), and the cost of a claim is the writer's own recent push time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

JITTER_S = 0.02  # after a lost race: spread the retries of the losers a little
MIN_S = 0.02  # a sit-out shorter than this is not worth the fetch that must follow it
MAX_S = 3.0  # never sit out longer than this, however many rivals
TURN = 1.0  # sit-out per rival, in units of our recent push time (measured; see the benchmark)
LOST = 0.0  # the jitter after a lost race, in units of our recent push time, beyond JITTER_S
SUSPECT = 2.0  # a loser needs a fetch and a push (about 2 push times) to land in our sit-out
LOOK_S = 1.0  # a writer that won less than this ago fetches before it claims again (see `look`)


class Contention:
    """One writer's view of the crowd on one remote: rivals seen, cost of a push, last win."""

    def __init__(self, *, rng: random.Random | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.rng = rng or random.Random()
        self.clock = clock
        self.rivals = 0  # other writers that landed commits lately
        self.push_s = 0.1  # a moving average of how long one of our pushes takes
        self.won_at: float | None = None
        self.looked_at: float | None = None  # when rivals were last counted
        self.rank = 0  # rivals whose last landing is older than ours
        # Writers that keep losing are invisible (only landed commits name their actor): until
        # a look shows that nobody landed while we sat out, assume one is there.
        self.suspect = 1.0

    def lost(self) -> float:
        """Our push lost a race: return how long to wait before fetching and trying again."""
        return self.rng.uniform(0, JITTER_S + LOST * self.push_s)

    def won(self, push_s: float | None = None) -> None:
        """Our push landed (it took `push_s` seconds): our turn is used."""
        if push_s is not None:
            self.push_s = 0.7 * self.push_s + 0.3 * push_s
        self.won_at = self.clock()
        self.rank = self.rivals  # we are now the newest: everybody else goes first

    def quiet(self) -> None:
        """A look after our sit-out found the head still ours: we are probably alone."""
        self.suspect /= 2

    def seen(self, actors: list[str], me: str) -> None:
        """Record who landed commits lately: `actors` newest first (their latest commit), and us.

        Our rank is how many of the others landed last before we did: they wait longer than
        us, so they go first (a writer not in the list has waited longest: rank 0).
        """
        others = [a for a in actors if a != me]
        self.rivals = len(others)
        if others:
            self.suspect = 1.0
        self.rank = len(actors) - actors.index(me) - 1 if me in actors else 0
        self.looked_at = self.clock()

    def turn(self) -> float:
        """Return how long to wait for the writers ahead of us (rank) before pushing."""
        if not self.rank:
            return 0.0
        wait = min(MAX_S, self.rank * self.push_s * TURN * self.rng.uniform(0.75, 1.25))
        return wait if wait > MIN_S else 0.0

    def look(self) -> bool:
        """Tell whether to fetch (and count rivals) before a claim that can wait.

        Only a writer that won a moment ago: it knows the head without fetching and would win
        again before any loser has fetched, never seeing them. With rivals about it always
        looks (they moved the head while it sat out); alone, once per LOOK_S.
        """
        now = self.clock()
        if self.won_at is None or now - self.won_at >= LOOK_S:
            return False
        return self.rivals > 0 or self.looked_at is None or now - self.looked_at >= LOOK_S

    def pause(self) -> float:
        """Return how long to sit out before a claim that can wait (0 for a lone writer).

        About one push time per rival, uniform in [0.5, 1.5] of that, less the time since our
        last win; 0 when that is too short to be worth the fetch after it.
        """
        if self.won_at is None:
            return 0.0
        crowd = max(self.rivals, self.suspect * SUSPECT)
        turn = min(MAX_S, crowd * self.push_s * TURN * self.rng.uniform(0.5, 1.5))
        wait = turn - (self.clock() - self.won_at)
        return wait if wait > MIN_S else 0.0
