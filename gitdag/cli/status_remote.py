"""`gitdag status` (and `ui`) in a clone whose graph has a remote: show the remote's graph.

The local `dagain/state` of such a clone is a copy, as new as its last sync; the graph everyone
works on is the remote's (docs/many-machines.md). So `status` without `--remote`/`--local`
fetches the remote's `dagain/state` into gitdag's tracking ref (bounded: transient failures are
retried for at most `QUICK_RETRY_S`, and a remote that accepts and stays silent for
`remote.timeout_s` ends the look: `Retry.waited_on`) and shows that graph, with one line saying
how the local copy compares (`behind`, `ahead`) and the command that brings them together.
Nothing local moves: `status` stays read-only. When the remote cannot be reached, it shows the
local graph with one warning line naming the remote and the error. `--local` never looks at
the remote.

This module is imported only when the graph has a remote: a clone without one pays for
`graph_remote.py` only (one read of git's config and of `.dagain/config.yaml`'s text).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitdag.graph_remote import apart, compare, graph_remote

if TYPE_CHECKING:
    from gitdag.store.state import StateStore

QUICK_RETRY_S = 3.0


class Source:
    """Where the graph a command shows comes from (`graph` in `status --json`).

    A plain class, not a dataclass: this module is imported by every `status` (start time).

    Attributes:
      remote: the graph's remote (None: this clone's graph alone).
      fetched: the remote's graph is what is shown.
      behind: transitions the remote has and this clone's `dagain/state` lacks (None: unknown).
      ahead: transitions this clone's `dagain/state` has and the remote lacks.
      warning: why the remote was not reached.
      lines: what to print before the status.
    """

    def __init__(self, remote: str | None = None, fetched: bool = False,
                 warning: str | None = None) -> None:  # fmt: skip
        self.remote = remote
        self.fetched = fetched
        self.behind: int | None = None
        self.ahead: int | None = None
        self.warning = warning
        self.lines: list[str] = []

    def as_json(self) -> dict[str, Any]:
        return {"source": "remote" if self.fetched else "local", "remote": self.remote,
                "behind": self.behind, "ahead": self.ahead, "warning": self.warning}  # fmt: skip


def fetch_quickly(remote: str, quick: bool) -> tuple[Any, Source]:
    """Open and fetch `remote`'s graph; (RemoteState, Source). `quick`: retried 3 s at most.

    Raises:
      GitdagError: the remote cannot be opened or fetched (the caller decides what that means).
    """
    from gitdag.cli.remote_cmds import remote_bounds
    from gitdag.remote.steer import local_head
    from gitdag.store.remote import RemoteState

    state = RemoteState.open(".", remote)
    try:
        bound, answer_s = remote_bounds(state.store.paths.dagain)
        state.retry_for(min(bound, QUICK_RETRY_S) if quick else bound, answer_s)
        # A person waits on this look: a silent remote costs one try of remote.timeout_s.
        state.retry.waited_on()
        head = state.fetch()
        local = local_head(state.store.repo)
        counts = apart(state, local, head)
    except BaseException:
        state.close()
        raise
    source = Source(remote=remote, fetched=True)
    if counts is not None:
        source.ahead, source.behind = counts
    source.lines.append(compare(remote, local, head, counts))
    return state, source


def unreached(remote: str, exc: Exception) -> Source:
    """The remote could not be read: the local graph is shown, with this warning."""
    why = str(exc).removeprefix(f"remote {remote}: ")
    warning = (f"remote {remote} not reached ({why}); showing this clone's dagain/state, which "
               f"may be behind (gitdag status --local skips the remote)")  # fmt: skip
    return Source(remote=remote, warning=warning)


def remote_status(remote: str, *, explicit: bool) -> tuple[dict[str, Any], Source]:
    """`actions.status` of the remote's graph, and where it came from.

    `explicit` (`--remote NAME`): an unreachable remote is an error (exit 2), as always. Else
    (the graph's default remote) it is a warning, and the local graph is shown.
    """
    from gitdag import actions
    from gitdag.cli._common import open_store
    from gitdag.errors import InputError, NotInitialisedError, RemoteError

    try:
        state, source = fetch_quickly(remote, quick=not explicit)
    except (RemoteError, NotInitialisedError, InputError) as exc:
        if explicit:
            raise
        source = unreached(remote, exc)
        with open_store() as store:
            return actions.status(store), source
    try:
        return actions.status(state.store), source
    finally:
        state.close()


def ui_note(store: StateStore) -> str | None:
    """`gitdag ui`'s line at start when the graph has a remote: the page shows this clone's
    copy; how it compares with the remote's graph (fetched quickly), or why that is unknown."""
    from gitdag.errors import InputError, NotInitialisedError, RemoteError

    remote = graph_remote(store)
    if remote is None:
        return None
    page = f"the graph's remote is {remote}; this page shows this clone's dagain/state"
    try:
        state, source = fetch_quickly(remote, quick=True)
        state.close()
    except (RemoteError, NotInitialisedError, InputError) as exc:
        return f"{page} ({unreached(remote, exc).warning})"
    if source.behind is None or source.ahead is None:
        return f"{page}; gitdag sync {remote} first"
    if not source.behind and not source.ahead:
        return f"{page}, up to date with {remote}'s"
    return (f"{page}, {source.behind} transition(s) behind and {source.ahead} ahead of "
            f"{remote}'s: gitdag sync {remote} first")  # fmt: skip
