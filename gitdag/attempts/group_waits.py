"""Why a worker's transaction group cannot proceed now: said once, retried at a backoff.

A member's branch that cannot be fetched (the remote does not answer), git trouble, a target
checkout with changes, a refused push: the group stays `merging` (nothing is spent, no agent
runs) and is integrated again later. Each cause is said once per group — not on every retry —
and the retries space out from `FIRST_S` doubling to `MAX_S`, so a cause that lasts (an outage,
a hook only a person can change) costs a few tries a minute and one line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gitdag.attempts.progress import Progress

FIRST_S = 2.0
MAX_S = 30.0


@dataclass
class _Wait:
    said: set[str] = field(default_factory=set)
    tries: int = 0
    next_at: float = 0.0


class GroupWaits:
    """The groups of one worker that wait for a cause to go away."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self._waits: dict[str, _Wait] = {}

    def due(self, group: str) -> bool:
        """Tell whether the group may be tried (again) now."""
        wait = self._waits.get(group)
        return wait is None or time.monotonic() >= wait.next_at

    def wait(self, group: str, cause: str, line: str, *, error: bool = True) -> None:
        """The group cannot proceed because of `cause`: say `line` once, try again later."""
        wait = self._waits.setdefault(group, _Wait())
        if cause not in wait.said:
            wait.said.add(cause)
            (self.progress.error if error else self.progress.event)(line)
        wait.next_at = time.monotonic() + min(MAX_S, FIRST_S * 2**wait.tries)
        wait.tries = min(wait.tries + 1, 8)

    def gone(self, group: str, cause: str) -> None:
        """`cause` no longer stops the group (said again should it come back)."""
        wait = self._waits.get(group)
        if wait is not None:
            wait.said.discard(cause)

    def done(self, group: str) -> None:
        """The group landed, was sent back or moved on: forget its waits."""
        self._waits.pop(group, None)
