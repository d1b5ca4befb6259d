"""The state branch's history, read from commit trailers (newest first)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from dulwich.objects import Commit, ObjectID

from gitdag.core.transitions import parse_trailers

if TYPE_CHECKING:
    from dulwich.object_store import BaseObjectStore


class Objects(Protocol):
    """What the walks read: a repository's objects.

    A dulwich `Repo`, or only its object store for `gitdag show`'s quick start, which opens no
    repository.
    """

    @property
    def object_store(self) -> BaseObjectStore: ...  # noqa: D102


@dataclass(frozen=True)
class LogEntry:
    """One transition commit as `gitdag log` shows it."""

    commit: str
    parents: tuple[str, ...]
    time: dt.datetime
    title: str
    summary: str
    verb: str | None
    nodes: tuple[str, ...]
    attempt: int | None
    actor: str | None
    trailers: dict[str, list[str]]


def _first(trailers: dict[str, list[str]], key: str) -> str | None:
    values = trailers.get(key)
    return values[0] if values else None


def entry_of(commit: Commit) -> LogEntry:
    """Return the log entry of one commit."""
    text = commit.message.decode("utf-8", errors="replace")
    lines = text.splitlines()
    title = lines[0] if lines else ""
    body: list[str] = []
    for line in lines[2:]:
        if line.startswith("Gitdag-"):
            break
        body.append(line)
    trailers = parse_trailers(text)
    attempt_text = _first(trailers, "Gitdag-Attempt")
    return LogEntry(
        commit=commit.id.decode(),
        parents=tuple(p.decode() for p in commit.parents),
        time=dt.datetime.fromtimestamp(commit.commit_time, dt.UTC),
        title=title,
        summary=" ".join(body).strip(),
        verb=_first(trailers, "Gitdag-Transition"),
        nodes=tuple(trailers.get("Gitdag-Node", [])),
        attempt=int(attempt_text) if attempt_text and attempt_text.isdigit() else None,
        actor=_first(trailers, "Gitdag-Actor"),
        trailers=trailers,
    )


def walk(repo: Objects, head: str, stop: str | None = None) -> Iterator[LogEntry]:
    """Yield entries from `head` back along first parents, newest first, until `stop` (excluded).

    Args:
      repo: the repository.
      head: the newest commit (hex).
      stop: an ancestor at which to stop, or None for the whole history.
    """
    current: str | None = head
    while current is not None and current != stop:
        obj = repo.object_store[ObjectID(current.encode())]
        if not isinstance(obj, Commit):
            return
        entry = entry_of(obj)
        yield entry
        current = entry.parents[0] if entry.parents else None


def node_log(repo: Objects, head: str, node_id: str, limit: int | None = None) -> list[LogEntry]:
    """Return the transitions that name `node_id` in a `Gitdag-Node` trailer, newest first."""
    found: list[LogEntry] = []
    for entry in walk(repo, head):
        if node_id in entry.nodes:
            found.append(entry)
            if limit is not None and len(found) >= limit:
                break
    return found


@dataclass(frozen=True)
class AttemptTime:
    """When one attempt of a node ran, from the commit times of its claim and what ended it."""

    attempt: int
    started: dt.datetime
    ended: dt.datetime | None  # None: still running (no later commit of this attempt)
    verb: str | None  # the transition that ended it: complete, fail, escalate, checkpoint, ...

    @property
    def seconds(self) -> float | None:
        """The attempt's length (whole seconds: commit times have that resolution)."""
        return None if self.ended is None else (self.ended - self.started).total_seconds()


def attempt_times(
    repo: Objects, head: str, node_id: str, since: dt.datetime | None = None
) -> list[AttemptTime]:
    """Return the attempts of `node_id` with their start and end times, oldest first.

    An attempt starts at its `claim` commit and ends at the next commit of the same attempt that
    names the node (its result, failure, checkpoint or a lease/cancel/recover). The walk stops
    at commits older than `since` (the node's `created_at`), so its cost is the history since
    the node was created, not the whole branch.
    """
    floor = None if since is None else int(since.timestamp())
    entries: list[LogEntry] = []
    for entry in walk(repo, head):
        if floor is not None and entry.time.timestamp() < floor:
            break
        if node_id in entry.nodes:
            entries.append(entry)
    found: dict[int, AttemptTime] = {}
    for entry in reversed(entries):
        if entry.attempt is None:
            continue
        if entry.verb == "claim":
            found[entry.attempt] = AttemptTime(entry.attempt, entry.time, None, None)
            continue
        known = found.get(entry.attempt)
        if known is not None and known.ended is None:
            found[entry.attempt] = AttemptTime(known.attempt, known.started, entry.time,
                                               entry.verb)  # fmt: skip
    return [found[n] for n in sorted(found)]
