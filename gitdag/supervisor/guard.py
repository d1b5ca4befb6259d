"""The one legality check of `dagain/state` commits this supervisor did not write (spec §7).

Runners propose; only the supervisor writes the graph. But people write too (`gitdag answer`,
`gitdag cancel`, a hand-made `git commit`), so do remote workers, and a runner is a process with
the user's rights: nothing stops it from running `git update-ref refs/heads/dagain/state <sha>`
in its worktree. Before anything is built on a head, every commit since the last head known to be
good that this supervisor did not write is checked, exactly once, here:

- **At start** (the first head a supervisor reads): the commits since the *verified head* — the
  last head a supervisor of this checkout knew to be legal, kept in `.dagain/local/verified-head`
  so a restart does not re-check the whole history — must be legal
  (`store.ranges.first_invalid`: schema, ids, cycles, the legality of each transition). When the
  verified head is no longer in the head's history (the branch was reset with `git branch -f`:
  a deliberate reset) only the graph at the head is checked. A failure exits 2 with the repair
  (`gitdag revert <commit>` / `gitdag reset --to <parent>`); it is no incident: no runner ran.
- **While it runs** (the branch moved under the store: it knows the last head it read or wrote,
  so its own commits are never re-checked): the new commits must be legal and not signed as a
  supervisor of this host (`Gitdag-Actor: supervisor@<this host>:<pid>`): no other local
  supervisor can write while we hold the lock, so such a commit is forged, even a legal one.
  Otherwise the supervisor records an incident (stderr and `.dagain/local/incidents.log`), keeps
  the offending commit in `incident.json` so a restart refuses too until the commit is repaired,
  and exits with code 2.

Every head that passed (and every head the supervisor wrote itself) becomes the verified head.
"""

from __future__ import annotations

import socket

from gitdag.core.commit_message import step_info
from gitdag.errors import IncidentError, InputError, StoreError
from gitdag.store.delta import commit_of
from gitdag.store.incidents import (
    Incident,
    load_verified,
    log_rewind,
    record,
    save_verified,
    still_open,
)
from gitdag.store.layout import STATE_BRANCH
from gitdag.store.ranges import (
    commits_between,
    descends,
    first_invalid,
    first_parent,
    repair_hint,
    repairs_in,
)
from gitdag.store.state import StateStore
from gitdag.supervisor.rewinds import lost_claims

SUPERVISOR_PREFIX = "supervisor@"
WALK_LIMIT = 20_000  # first parents walked back to the verified head before calling it unreachable


def _host_supervisor(actor: str | None, host: str) -> bool:
    if actor is None or not actor.startswith(SUPERVISOR_PREFIX):
        return False
    return actor[len(SUPERVISOR_PREFIX) :].rpartition(":")[0] == host


def check_new_commits(
    store: StateStore,
    known_head: str | None,
    new_head: str,
    own_actor: str,
    *,
    host: str | None = None,
) -> Incident | None:
    """Check the commits after `known_head` up to `new_head`, none of which this supervisor wrote.

    Args:
      store: the store.
      known_head: the last head this supervisor read or wrote (None: check from the root).
      new_head: the head now.
      own_actor: this supervisor's `Gitdag-Actor` (named in the message of a forged commit).
      host: this machine's name (default: `socket.gethostname()`).

    Returns:
      None when the new commits are safe to build on, else the first offending commit.
    """
    host = host if host is not None else (socket.gethostname() or "localhost")
    commits = commits_between(store, known_head, new_head)
    repaired = repairs_in(store, commits)
    for sha in commits:
        if sha in repaired:
            continue
        actor = step_info(commit_of(store.repo, sha).message.decode("utf-8", "replace")).actor
        if _host_supervisor(actor, host):
            who = "this supervisor" if actor == own_actor else f"supervisor {actor}"
            parent = first_parent(store, sha)
            problem = (
                f"signed by {who} but not written by it (no other supervisor may write while "
                "this one holds the lock): a runner or a script moved the branch"
            )
            return Incident(new_head, sha, parent, (problem,), repair_hint(sha, parent))
    invalid = first_invalid(store, known_head, new_head)
    if invalid is None:
        return None
    problems = tuple(p.message for p in invalid.problems) or ("invalid",)
    return Incident(new_head, invalid.commit, invalid.parent, problems, invalid.hint)


class Guard:
    """Checks every head a supervisor is about to build on, from the moment it is made."""

    def __init__(self, store: StateStore, actor: str) -> None:
        self.store = store
        self.actor = actor
        self.local = store.paths.local
        self.verified: str | None = load_verified(self.local)
        self._passed: tuple[str | None, str] | None = None
        # Rewinds seen (the old head, the new one, the nodes whose claims they dropped), for the
        # supervisor to count (`rewinds.Ledger`) before it claims anything on the new head.
        self.rewinds: list[tuple[str, str, list[str]]] = []
        # A head the store read before the guard existed was never checked: forget it, so the
        # first read goes through `on_moved(None, head)` and the check from the verified head.
        store.known_head = None
        store.on_moved = self.on_moved

    def check(self, head: str) -> None:
        """Check `head` (the supervisor's `_snapshot`), then remember it as the verified head.

        A head equal to the store's known head needs no check: the guard passed it, or this
        supervisor wrote it.

        Raises:
          IncidentError: the branch moved under the supervisor to a head it must not build on.
          InputError: at start, a commit since the verified head breaks the rules.
        """
        if head != self.store.known_head:
            self.on_moved(self.store.known_head, head)
            # Seen: the snapshot that follows must not report the same move again (a rewind
            # to a head seen before is a new move, and its dropped claims count again).
            self.store.known_head = head
        self._verified(head)

    def on_moved(self, known: str | None, head: str) -> None:
        """The store's hook: called before anything is built on a head that moved under it."""
        if known is not None:
            self._rewound(known, head)  # before the short cut: every rewind counts
        if self._passed == (known, head):
            return
        incident = still_open(self.store, self.local, head)
        if incident is not None:
            raise IncidentError(incident.message())
        if known is None:
            # The first read: a crashed supervisor of this host wrote some of these commits, so
            # they are not judged by actor, only by legality since the verified head.
            self._check_since_verified(head)
        else:
            incident = check_new_commits(self.store, known, head, self.actor)
            if incident is not None:
                record(self.local, incident, self.actor)
                raise IncidentError(incident.message())
        self._passed = (known, head)
        self._verified(head)

    def settle(self) -> None:
        """Record the store's known head as verified: the guard passed it, or we wrote it.

        Called when the supervisor stops, so its last commits (made after its last `check`)
        are not checked again by the next supervisor.
        """
        if self.store.known_head is not None:
            self._verified(self.store.known_head)

    def _check_since_verified(self, head: str) -> None:
        if head == self.verified:
            return
        base = self.verified
        if base is not None and not descends(self.store, head, base):
            self._rewound(base, head)
            base = head  # a deliberate reset: the graph it shows must still be valid
        invalid = first_invalid(self.store, base, head)
        if invalid is not None:
            raise InputError(
                f"{STATE_BRANCH} at {head[:12]} fails validation: {invalid}; "
                "nothing more is built on it until then"
            )

    def _rewound(self, known: str, head: str) -> None:
        """A head that dropped claims is a foreign action: log it, and let the supervisor count."""
        try:
            lost = lost_claims(self.store, known, head)
        except StoreError:
            return  # the old head's objects are gone: nothing to count
        if not lost:
            return
        nodes = ", ".join(dict.fromkeys(lost))
        problem = (
            f"{STATE_BRANCH} moved back from {known[:12]} to {head[:12]}, below the claim of "
            f"{nodes} (a foreign action: a runner or a person reset the branch); its starts "
            "still count against the retry budget"
        )
        log_rewind(self.local, known, head, problem, self.actor)
        self.rewinds.append((known, head, lost))

    def _verified(self, head: str) -> None:
        if head == self.verified:
            return
        self.verified = head
        save_verified(self.local, head)
