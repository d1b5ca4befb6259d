"""How often an idle worker fetches the remote: `--poll` while anything happens, then less.

A CI worker with `--idle-exit 300` and a fixed 2 s poll fetches 150 times before it stops, and a
matrix of them multiplies that against the forge. While nothing happens (no node of ours runs or
merges, we claimed nothing, and the last fetch brought no change of the remote's graph), each
fetch doubles the interval to the next one, up to `--poll-max` (15 x `--poll` unless given);
anything happening resets it to `--poll`. A worker whose graph keeps moving (others finish
nodes, someone adds work) therefore keeps fetching every `--poll` seconds; only a quiet remote is
asked less often, and a change after a quiet stretch is seen up to `--poll-max` seconds late.
Pure: the caller measures time.
"""

from __future__ import annotations

POLL_MAX_FACTOR = 15  # `--poll-max` when not given: 15 x `--poll` (30 s with the default 2 s)


class IdlePoll:
    """The interval to the next fetch: `poll_s`, doubling per quiet fetch up to `max_s`.

    Args:
      poll_s: the interval while anything happens (`--poll`).
      max_s: the cap of the interval while idle (`--poll-max`; None: POLL_MAX_FACTOR x
        `poll_s`); never below `poll_s`.
    """

    def __init__(self, poll_s: float, max_s: float | None = None) -> None:
        self.poll_s = poll_s
        self.max_s = max(max_s if max_s is not None else POLL_MAX_FACTOR * poll_s, poll_s)
        self.interval = poll_s

    def fetched(self, changed: bool) -> None:
        """A fetch happened: back off when it brought nothing new, else poll at the base rate."""
        self.interval = self.poll_s if changed else min(self.interval * 2, self.max_s)

    def busy(self) -> None:
        """Something of ours happened (a claim, a running node, a merge): base rate again."""
        self.interval = self.poll_s
