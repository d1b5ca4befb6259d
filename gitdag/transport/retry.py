"""Retrying a call to a remote that failed for a moment: capped, jittered backoff, bounded time.

A worker should outlive a network blip (a server restarted, a proxy without a backend for ten
seconds) instead of exiting and leaving its node `running` until the lease runs out. So a call
whose failure is `transient` (outcomes.classify) is tried again after a delay that doubles from
`FIRST_S` up to `CAP_S`, each drawn between half and all of it (so that many workers that lost
the server together do not come back together), for at most `retry_for_s` seconds in all
(`remote.retry_for_s` in `.dagain/config.yaml`). A refusal or any other failure is reported at
once: waiting would not change the answer.

A worker bounds each call tighter (`cap`, remote/link.py) so that its loop keeps turning while
the remote is down, and a signal handler may abort a call in flight (`Interrupted`, raised only
while `calls` says the main thread is inside one).

A call a person waits on (`status`, `gitdag ui`, a steering command: `waited_on`) gives each try
`remote.timeout_s` and no more, and a try cut because the remote was silent that long ends the
call: a remote that accepts and never answers costs one bounded try, while one that answers with
a failure (refused, HTTP 5xx) is still retried within the call's bound.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from gitdag.transport.outcomes import Failure

FIRST_S = 0.1
CAP_S = 5.0
DEFAULT_FOR_S = 60.0  # the default of `remote.retry_for_s`
ANSWER_S = 10.0  # the default of `remote.timeout_s`: see deadline.py for why
_R = TypeVar("_R")


class Interrupted(BaseException):
    """Raised by a signal handler (Ctrl-C, SIGTERM, a deadline) inside a remote call.

    A BaseException, so that no `except Exception` on the way (dulwich, urllib3) swallows it.
    """


class Unreachable(Exception):
    """One try of a call failed; `failure` says whether another try may do better."""

    def __init__(self, detail: str, failure: Failure, *, silent: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.failure = failure
        self.silent = silent  # cut at its bound: the remote accepted and said nothing


@dataclass
class Retry:
    """How long to keep trying a call that fails transiently, and how to wait between tries.

    Attributes:
      retry_for_s: the bound on the time spent retrying one call (0: try once).
      sleep, clock, rng: injectable for tests.
      retried: set when the last `run` tried more than once.
      cap: when set, a tighter bound for each call, asked at its start (a worker: the time it
        can spend before its loop must turn again; 0: try once).
      limit: the bound the last `run` used (for messages).
      floor_s: the least one try waits for a silent remote (`remote.timeout_s`, deadline.py).
      ends: when the call in progress (or the last) runs out of time, on `clock` (`left`).
      calls: main-thread calls in progress (a signal handler may raise `Interrupted` then).
      try_s: when set, the bound of each try on a silent remote, whatever its call has left
        (deadline.try_bound): `waited_on`'s floor, or a worker loop's slice (remote/link.py).
      silence_ends: a try cut by silence ends the call (`waited_on`).
    """

    retry_for_s: float = DEFAULT_FOR_S
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    retried: bool = False
    cap: Callable[[], float] | None = None
    limit: float = DEFAULT_FOR_S
    floor_s: float = ANSWER_S
    ends: float = float("inf")
    calls: int = 0
    try_s: float | None = None
    silence_ends: bool = False

    def waited_on(self) -> None:
        """A person waits on these calls: each try waits `floor_s`, and silence ends the call."""
        self.try_s = self.floor_s
        self.silence_ends = True

    @contextmanager
    def patient(self) -> Iterator[None]:
        """Within: tries wait what their call has left, at least `floor_s` (not `try_s`).

        A worker's result push: a slow but alive server may take a while over a big push.
        """
        before = self.try_s
        self.try_s = None
        try:
            yield
        finally:
            self.try_s = before

    def run(self, call: Callable[[], _R], on_retry: Callable[[Unreachable], None] | None = None,
            ) -> _R:  # fmt: skip
        """Call `call` until it returns, retrying `Unreachable(TRANSIENT)` within the bound.

        Raises:
          Unreachable: the last failure (refused or fatal at once; transient past the bound).
        """
        self.retried = False
        start = self.clock()
        limit = self.retry_for_s
        if self.cap is not None:
            limit = max(0.0, min(limit, self.cap()))
        self.limit = limit
        self.ends = start + limit
        main = threading.current_thread() is threading.main_thread()
        self.calls += main
        try:
            return self._run(call, on_retry, start, limit)
        finally:
            self.calls -= main

    def gave_up(self, exc: Unreachable) -> str:
        """What to add to the last failure's line: how long the call kept trying (if it did)."""
        if exc.silent and self.silence_ends:
            return ""  # its own words say it: no answer within the try's bound
        return f" (gave up after {self.limit:g} s)"

    def left(self) -> float:
        """The time the call in progress may still spend (its tries are bounded by it)."""
        return max(0.0, self.ends - self.clock())

    def _run(self, call: Callable[[], _R], on_retry: Callable[[Unreachable], None] | None,
             start: float, limit: float) -> _R:  # fmt: skip
        step = FIRST_S
        while True:
            try:
                return call()
            except Unreachable as exc:
                if exc.failure is not Failure.TRANSIENT or (exc.silent and self.silence_ends):
                    raise
                wait = self.rng.uniform(step / 2, step)
                if self.clock() - start + wait > limit:
                    raise
                if on_retry is not None:
                    on_retry(exc)
                self.retried = True
                self.sleep(wait)
                step = min(step * 2, CAP_S)
