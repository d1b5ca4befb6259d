"""A runner may not bypass the supervisor: commits on `dagain/state` it did not write are checked.

Runners propose; only the supervisor writes the graph. But a runner is a process with the user's
rights, and nothing stops it from running `git update-ref refs/heads/dagain/state <sha>` in its
worktree. While a supervisor holds the lock, every commit that appears on the branch and is not
its own (the store tells: it knows the last head it read or wrote) must be:

- legal (`store.ranges.first_invalid`: schema, ids, cycles, the legality of each transition), and
- not signed as a supervisor of this host (`Gitdag-Actor: supervisor@<this host>:<pid>`): no
  other local supervisor can write while we hold the lock, so such a commit is forged, even a
  legal one. Commits of people (`gitdag answer`, `gitdag cancel`, ...) and of remote workers are
  fine when legal.

Otherwise the supervisor refuses to build on the head: it records an incident (stderr and
`.dagain/local/incidents.log`), keeps the offending commit in `incident.json` so a restart refuses
too until the commit is repaired (`gitdag revert` / `gitdag reset --to`), and exits with code 2.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
from dataclasses import dataclass
from pathlib import Path

from gitdag.core.legality import step_info
from gitdag.errors import IncidentError, StoreError
from gitdag.store.delta import commit_of
from gitdag.store.layout import STATE_BRANCH
from gitdag.store.ranges import (
    commits_between,
    first_invalid,
    first_parent,
    repair_hint,
    repairs_in,
)
from gitdag.store.state import StateStore

SUPERVISOR_PREFIX = "supervisor@"
INCIDENTS_LOG = "incidents.log"
OPEN_INCIDENT = "incident.json"


@dataclass(frozen=True)
class Incident:
    """A head the supervisor refuses to build on.

    Attributes:
      head: the head of the branch when it was found.
      commit: the first offending commit.
      parent: its first parent (None for a root commit).
      problems: what is wrong with it, one line each.
      hint: the repair commands.
    """

    head: str
    commit: str
    parent: str | None
    problems: tuple[str, ...]
    hint: str

    def message(self) -> str:
        """One line: what happened, the first problem, and how to repair it."""
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return (
            f"{STATE_BRANCH} was moved by something other than this supervisor: commit "
            f"{self.commit[:12]}: {self.problems[0]}{more}; refusing to build on it "
            f"(incident recorded in .dagain/local/{INCIDENTS_LOG}); {self.hint}"
        )


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


def still_open(store: StateStore, local: Path, head: str) -> Incident | None:
    """Return the recorded incident if its commit is still in `head`'s history, unrepaired."""
    path = local / OPEN_INCIDENT
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        incident = Incident(
            str(data["head"]),
            str(data["commit"]),
            data.get("parent"),
            tuple(str(p) for p in data["problems"]),
            str(data["hint"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        commits = commits_between(store, incident.parent, head)
    except StoreError:
        commits = []
    if incident.commit in commits and incident.commit not in repairs_in(store, commits):
        return incident
    path.unlink(missing_ok=True)  # repaired (reverted, reset past, or the branch moved away)
    return None


def record(local: Path, incident: Incident, actor: str, now: dt.datetime | None = None) -> Path:
    """Append the incident to `incidents.log`, keep it open in `incident.json`; return the log."""
    local.mkdir(parents=True, exist_ok=True)
    when = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0).isoformat()
    entry = {
        "time": when,
        "supervisor": actor,
        "head": incident.head,
        "commit": incident.commit,
        "parent": incident.parent,
        "problems": list(incident.problems),
        "hint": incident.hint,
    }
    log = local / INCIDENTS_LOG
    with log.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
    (local / OPEN_INCIDENT).write_text(json.dumps(entry) + "\n", encoding="utf-8")
    return log


class Guard:
    """Watches one store for heads this supervisor did not write, from the moment it is made."""

    def __init__(self, store: StateStore, actor: str) -> None:
        self.store = store
        self.actor = actor
        self.local = store.paths.local
        self._passed: tuple[str | None, str] | None = None
        store.on_moved = self.on_moved

    def check(self, head: str) -> None:
        """Check `head` against the last head the store knew (the supervisor's `_snapshot`).

        Raises:
          IncidentError: the head must not be built on.
        """
        if head != self.store.known_head:
            self.on_moved(self.store.known_head, head)

    def on_moved(self, known: str | None, head: str) -> None:
        """The store's hook: called before anything is built on a head that moved under it."""
        if self._passed == (known, head):
            return
        incident = still_open(self.store, self.local, head)
        if incident is not None:
            raise IncidentError(incident.message())
        if known is not None:
            # Before the first read (known is None) the commits are not ours to judge by actor:
            # a crashed supervisor of this host wrote some of them; the head check verifies them.
            incident = check_new_commits(self.store, known, head, self.actor)
            if incident is not None:
                record(self.local, incident, self.actor)
                raise IncidentError(incident.message())
        self._passed = (known, head)
