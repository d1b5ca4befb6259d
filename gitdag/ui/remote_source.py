"""`gitdag ui` on a graph that has a remote: show the remote's graph, steer it by CAS pushes.

The local `dagain/state` of such a clone is a copy (docs/many-machines.md); the graph CI workers
use is the remote's. So the page reads the remote's `dagain/state` as fetched into gitdag's
tracking ref (`refs/gitdag/remotes/<remote>/state`): fetched at start and then in the
background (every `POLL_S`, doubling up to `POLL_MAX_S` while nothing changes), each fetch
bounded as `gitdag status`'s is. Until a fetch has succeeded the page shows this clone's
`dagain/state` with a warning; a later failure keeps the graph last fetched, with a warning.
A remote that accepts and says nothing costs one try of `remote.timeout_s` (Retry.waited_on).
The commits a fetch brings are in the local object store, so history, diffs and node panels read
them as they read local ones.

Steering goes where the graph is: each action runs the same function as from a local page on a
`SteeringStore` (remote/steer.py, what `gitdag cancel --remote` commits through), so it lands as
one compare-and-swap push, recomputed on a lost race; a refused or unreachable remote is an
error and nothing is written to the local `dagain/state` (not even a fast-forward: the page
reads the tracking ref, which the push moves).

Threads: the remote's connection lives on one thread of its own (fetches and steering, in
turn); the view store on the ui's store thread. `info` is replaced whole, never edited.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from gitdag.config import load_settings
from gitdag.errors import GitdagError, InputError, NotInitialisedError, RemoteError
from gitdag.graph_remote import apart, compare
from gitdag.remote.steer import SteeringStore, local_head
from gitdag.store import repo as repos
from gitdag.store.layout import STATE_BRANCH
from gitdag.store.remote import RemoteState, tracking_ref
from gitdag.store.state import StateStore

T = TypeVar("T")
# A person waits on both (Retry.waited_on): a remote silent for `remote.timeout_s` ends the call.
LOOK_RETRY_S = 3.0  # a failing remote is retried this long per fetch, then the page says so
STEER_RETRY_S = 10.0  # at most (else `remote.retry_for_s`): a person waits on the button
POLL_S = 2.0
POLL_MAX_S = 30.0
UNREACHED = (RemoteError, NotInitialisedError, InputError)


class RemoteView(StateStore):
    """A StateStore on the remote's tracking ref; `dagain/state` in a revision names it."""

    def __init__(self, root: Path, remote: str) -> None:
        repo, paths = repos.open_repo(root)
        super().__init__(repo, paths, ref=tracking_ref(remote, "state").encode())

    def resolve(self, rev: str) -> str:
        """Resolve a revision; `dagain/state` (with `~N`, `^N`) names the graph shown."""
        for prefix in (STATE_BRANCH, "refs/heads/" + STATE_BRANCH):
            rest = rev[len(prefix) :]
            if rev.startswith(prefix) and (not rest or rest[0] in "~^@"):
                return super().resolve(self.ref.decode() + rest)
        return super().resolve(rev)


def open_waited_on(root: Path, remote: str, cap: float) -> RemoteState:
    """Open the remote with its calls bounded for a person waiting (Retry.waited_on).

    Failures it answers are retried `cap` s at most (else `remote.retry_for_s`); a remote silent
    for `remote.timeout_s` ends the call.
    """
    state = RemoteState.open(root, remote)
    try:
        bounds = load_settings(root / ".dagain").remote
        state.retry_for(min(float(bounds.retry_for_s), cap), float(bounds.timeout_s))
    except GitdagError:
        state.retry_for(cap)  # a broken config: the defaults (`gitdag status` says why)
    state.retry.waited_on()
    return state


def _said(info: dict[str, Any]) -> dict[str, Any]:
    # What the page says, less the time of the last fetch (which changes on every look).
    return {**info, "fetched_at": None}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class RemoteSource:
    """Where a `gitdag ui` with a remote reads its graph from, and how it steers it.

    Attributes:
      remote: the graph's remote.
      info: what the page says about the graph it shows (the API's `source` object, docs/ui.md;
        replaced whole, never edited: other threads read it).
      shows_remote: a fetch has succeeded since start: the page shows the remote's graph.
    """

    def __init__(self, root: Path, remote: str) -> None:
        self.root = root
        self.remote = remote
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="gitdag-ui-remote")
        self.shows_remote = False
        self.view: RemoteView | None = None  # the ui's store thread only
        self._state: RemoteState | None = None  # the remote thread only
        self._counted: tuple[str | None, str] | None = None
        self._counts: tuple[int, int] | None = None
        self._wake: asyncio.Event | None = None
        self.info: dict[str, Any] = self._info(None, None, None, None)

    def _info(self, head: str | None, local: str | None, counts: tuple[int, int] | None,
              warning: str | None, fetched_at: str | None = None) -> dict[str, Any]:  # fmt: skip
        line = compare(self.remote, local, head, counts) if head is not None else None
        return {
            "source": "remote" if self.shows_remote else "local",
            "remote": self.remote,
            "head": head,
            "local": local,
            "ahead": counts[0] if counts else None,
            "behind": counts[1] if counts else None,
            "line": line,
            "warning": warning,
            "fetched_at": fetched_at,
        }

    # --- the remote thread ---------------------------------------------------------------------

    def _open(self, cap: float) -> RemoteState:
        return open_waited_on(self.root, self.remote, cap)

    def look(self) -> None:
        """Fetch the remote's graph and update `info` (a failure is a warning in it)."""
        try:
            if self._state is None:
                self._state = self._open(LOOK_RETRY_S)
            head = self._state.fetch()
        except UNREACHED as exc:
            self._drop()
            self.info = {**self.info, "warning": self._warning(exc)}
            return
        local = local_head(self._state.store.repo)
        if self._counted != (local, head):  # counting runs git: only when either moved
            self._counts = apart(self._state, local, head)
            self._counted = (local, head)
        self.shows_remote = True
        self.info = self._info(head, local, self._counts, None, _now())

    def _warning(self, exc: Exception) -> str:
        why = " ".join(str(exc).removeprefix(f"remote {self.remote}: ").split())  # one line
        if self.shows_remote:
            return (f"remote {self.remote} not reached ({why}); showing its graph as fetched at "
                    f"{self.info.get('fetched_at')}")  # fmt: skip
        return (f"remote {self.remote} not reached ({why}); showing this clone's dagain/state, "
                "which may be behind (gitdag ui --local skips the remote)")  # fmt: skip

    def _drop(self) -> None:
        # A connection that failed is opened afresh next time (a restarted server, a new key).
        if self._state is not None:
            self._state.close()
            self._state = None

    def _steer(self, fn: Callable[[StateStore], T]) -> T:
        state = self._open(STEER_RETRY_S)
        try:
            state.fetch()
            result = fn(SteeringStore(state))
        finally:
            state.close()
        self.look()  # the page's line follows the new head at once
        return result

    def close(self) -> None:
        """Close the remote's connection and stop its thread (after the last request)."""
        self.executor.submit(self._drop).result()
        self.executor.shutdown(wait=True)

    # --- the ui's store thread ---------------------------------------------------------------

    def open_view(self) -> None:
        """Open the store on the tracking ref (on the ui's store thread)."""
        self.view = RemoteView(self.root, self.remote)

    def close_view(self) -> None:
        """Close the view store (on the ui's store thread)."""
        if self.view is not None:
            self.view.close()
            self.view = None

    def pick(self, local: StateStore) -> StateStore:
        """The store the page reads: the remote's graph once fetched, else this clone's."""
        if self.shows_remote and self.view is not None:
            return self.view
        return local

    # --- the event loop ----------------------------------------------------------------------

    def start(self) -> str:
        """Fetch once before serving; return the line to print (the comparison, or why not).

        Raises:
          InputError: no git remote of that name here (a typo is not a network failure).
        """
        RemoteState.open(self.root, self.remote).close()
        self.executor.submit(self.look).result()
        return str(self.info["warning"] or self.info["line"])

    async def poll(self, publish: Callable[[dict[str, Any]], None]) -> None:
        """Fetch in the background; publish `info` (as a `source` event) whenever it changes.

        Every `POLL_S` while the remote moves, doubling up to `POLL_MAX_S` while it does not;
        a steering action looks again at once.
        """
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        interval = POLL_S
        said = _said(self.info)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            woken = self._wake.is_set()
            self._wake.clear()
            before = self.info.get("head")
            await loop.run_in_executor(self.executor, self.look)
            if _said(self.info) != said:  # a steering action may have looked meanwhile
                said = _said(self.info)
                publish({"event": "source", **self.info})
            moved = self.info.get("head") != before
            interval = POLL_S if moved or woken else min(interval * 2, POLL_MAX_S)

    async def steer(self, fn: Callable[[StateStore], T]) -> T:
        """Run a steering function on the remote's graph (one CAS push); then look again.

        Raises:
          RemoteError: refused or unreachable (nothing written). InputError, TransitionError:
          as the local command (nothing pushed).
        """
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.executor, self._steer, fn)
        finally:
            if self._wake is not None:
                self._wake.set()
