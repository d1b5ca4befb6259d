"""Backing off on a shared remote: how long a writer waits before pushing to the state branch.

Every writer of a remote's state branch pushes to the same ref, and only one push per head can
land. Writers that all retry at once mostly fail again, and each failure costs a push and a
fetch (on the loopback benchmark, the CPU the winner needed). So each writer keeps a backoff
window that doubles with every race it loses and halves with every push of its that lands, and
pauses a random time within it before retrying, or before a claim (which can wait; results and
lease renewals go at once). The window is kept across pushes, so the number of writers pushing
at a moment adapts to how many there are, and a lone writer never waits.

What this does not give is fairness between writers that claim without pause: a writer on a
winning streak has the smallest window and the freshest head, and can keep winning (see
docs/many-machines.md and the benchmark). `gitdag work` claims only when a slot is free, so a
worker that wins goes off to run its node and the others get their turn.
Compare-and-swap still decides every race: this only decides how often one is run.
"""

from __future__ import annotations

import random

MIN_S = 0.05  # a pause shorter than this is not worth the fetch that must follow it
MAX_S = 1.0


class Contention:
    """One writer's backoff window on one remote."""

    def __init__(self, *, rng: random.Random | None = None) -> None:
        self.window_s = MIN_S
        self.rng = rng or random.Random()

    def lost(self) -> None:
        """Our push lost a race: widen the window."""
        self.window_s = min(MAX_S, self.window_s * 2)

    def won(self) -> None:
        """Our push landed: narrow the window."""
        self.window_s = max(MIN_S, self.window_s / 2)

    def pause(self) -> float:
        """Return how long to wait before the next push (0 for a lone writer).

        Uniform in the window; 0 when that is too short to be worth the fetch after it.
        """
        wait = self.rng.uniform(0, self.window_s)
        return wait if wait > MIN_S else 0.0
