"""The guard's records under `.dagain/local/`: the verified head, the open incident, the log.

`supervisor/guard.py` checks every head a supervisor builds on and writes these; `gitdag doctor`
reads them (it checks the state branch from the same verified head, and reports an incident that
is still open). They live here, below both, so that doctor needs nothing of the supervisor.

- `verified-head`: the last head a supervisor of this checkout knew to be legal.
- `incident.json`: the offending commit of the last incident, until it is repaired.
- `incidents.log`: one JSON line per incident or rewind, appended, never rewritten.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from gitdag.core.loaders import load_json
from gitdag.errors import StoreError
from gitdag.store.layout import STATE_BRANCH
from gitdag.store.ranges import commits_between, repairs_in
from gitdag.store.state import StateStore

INCIDENTS_LOG = "incidents.log"
OPEN_INCIDENT = "incident.json"
VERIFIED_HEAD = "verified-head"


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


def still_open(store: StateStore, local: Path, head: str) -> Incident | None:
    """Return the recorded incident if its commit is still in `head`'s history, unrepaired."""
    path = local / OPEN_INCIDENT
    try:
        data = load_json(path.read_bytes())
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


def log_rewind(local: Path, known: str, head: str, problem: str, actor: str) -> None:
    """Append a rewind to `incidents.log` (it is no open incident: the new head is built on)."""
    entry = {
        "time": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "supervisor": actor,
        "head": head,
        "moved_back_from": known,
        "problems": [problem],
    }
    with contextlib.suppress(OSError):
        local.mkdir(parents=True, exist_ok=True)
        with (local / INCIDENTS_LOG).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")


def load_verified(local: Path) -> str | None:
    """Return the verified head recorded under `local` (None: none recorded)."""
    try:
        text = (local / VERIFIED_HEAD).read_text().strip()
    except OSError:
        return None
    return text or None


def save_verified(local: Path, head: str) -> None:
    """Record `head` as the verified head under `local` (losing it only costs a longer check)."""
    with contextlib.suppress(OSError):
        (local / VERIFIED_HEAD).write_text(head + "\n")
