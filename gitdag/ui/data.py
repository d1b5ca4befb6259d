"""What the UI shows, as JSON-ready data, read through the store's public API.

Every function takes an open `StateStore` and returns plain data; nothing here writes. The graph
at a commit is the store's snapshot of that commit, the history is `gitdag log`'s walk, the diff is
`gitdag diff`'s, the node file is `gitdag show`'s: the UI computes nothing the CLI does not.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gitdag.core import codec
from gitdag.core.ids import id_problem
from gitdag.core.model import Node, NodeSummary, Status
from gitdag.errors import InputError
from gitdag.store import history
from gitdag.store.delta import commit_delta, diff_revisions
from gitdag.store.history import LogEntry
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import StateStore

RUN_FILES = ("stdout", "stderr", "log", "outcome.json", "result.json", "packet.md")
RUN_READ_CAP = 256 * 1024  # bytes of one run file returned per request (the page asks again)
LOG_LIMIT = 20000  # commits of history sent to the page (the slider's range)


class Titles:
    """Node titles by blob sha: a blob never changes, so neither does its node's title."""

    def __init__(self) -> None:
        self._by_blob: dict[str, str] = {}

    def of(self, store: StateStore, snap: Snapshot) -> dict[str, str]:
        """Return id -> title for every node of `snap`, parsing only blobs not seen before."""
        found: dict[str, str] = {}
        missing: list[str] = []
        for nid, blob in snap.blobs.items():
            title = self._by_blob.get(blob)
            if title is None:
                missing.append(nid)
            else:
                found[nid] = title
        if missing:
            for nid, node in store.nodes(snap, missing).items():
                self._by_blob[snap.blobs[nid]] = node.title
                found[nid] = node.title
        return found


def snapshot_at(store: StateStore, rev: str | None) -> Snapshot:
    """Return the graph at `rev` (a sha, a ref, `dagain/state~3`), or at the head."""
    if rev is None or rev in ("", "head"):
        return store.snapshot()
    return store.snapshot_of(store.resolve(rev))


def graph_data(store: StateStore, snap: Snapshot, titles: Titles | None) -> dict[str, Any]:
    """Return the graph of a snapshot: graph.yaml fields, and each node with its edges."""
    named = titles.of(store, snap) if titles is not None else {}
    nodes = [node_record(s, named.get(nid, "")) for nid, s in sorted(snap.nodes.items())]
    return {
        "head": snap.head,
        "goal": snap.graph.goal,
        "target": snap.graph.target,
        "paused": snap.graph.control.paused,
        "nodes": nodes,
    }


def node_record(s: NodeSummary | Node, title: str) -> dict[str, Any]:
    """Return what the page draws of one node (a snapshot's summary or a `Node`)."""
    return {
        "id": s.id,
        "title": title,
        "kind": s.kind.value,
        "status": s.status.value,
        "parent": s.parent,
        "deps": list(s.deps),
        "after": list(s.after),
        "attempts": s.attempts,
        "priority": s.priority,
        "labels": list(s.labels),
    }


def statuses(snap: Snapshot) -> dict[str, Any]:
    """Return the status of every node at a snapshot (what time travel repaints)."""
    return {"head": snap.head, "status": {nid: s.status.value for nid, s in snap.nodes.items()}}


def _drawn(node: Node) -> tuple[Any, ...]:
    # What the page draws of a node besides its colour: a change here means a new layout.
    return (node.deps, node.after, node.parent, node.title, node.kind)


def moved(store: StateStore, old: str | None, new: str) -> dict[str, Any]:
    """Return what changed from `old` to `new` for a page showing `old`.

    Each changed node's status (None: removed), whether the drawing must change beyond colours
    (`shape`), and the paused switch when `graph.yaml` changed.
    """
    if old is None:
        return {"status": {}, "shape": True, "paused": None}
    delta = commit_delta(store, old, new)
    status: dict[str, str | None] = {}
    shape = bool(delta.problems)
    for nid in delta.ids:
        before, after = delta.before.get(nid), delta.after.get(nid)
        status[nid] = after.status.value if after is not None else None
        shape = shape or before is None or after is None or _drawn(before) != _drawn(after)
    paused = delta.graph_after.control.paused if delta.graph_after is not None else None
    return {"status": status, "shape": shape, "paused": paused}


def entry_data(entry: LogEntry) -> dict[str, Any]:
    """Return one transition commit as `gitdag log --json` shows it, plus its trailers."""
    return {
        "commit": entry.commit,
        "time": entry.time.isoformat(),
        "ts": entry.time.timestamp(),
        "title": entry.title,
        "verb": entry.verb,
        "nodes": list(entry.nodes),
        "attempt": entry.attempt,
        "actor": entry.actor,
        "summary": entry.summary,
        "trailers": entry.trailers,
    }


def log_entries(
    store: StateStore, stop: str | None = None, limit: int = LOG_LIMIT
) -> list[LogEntry]:
    """Return the state branch's transitions newest first, back to `stop` (excluded)."""
    head = store.head()
    if head is None:
        store.snapshot()  # raises the not-initialised error
        return []
    found: list[LogEntry] = []
    for entry in history.walk(store.repo, head, stop):
        found.append(entry)
        if len(found) >= limit:
            break
    return found


def _moves(title: str) -> tuple[str, str] | None:
    # A transition's title is `verb subject: from -> to` (core/transitions.title).
    _, _, tail = title.partition(": ")
    old, sep, new = tail.partition(" -> ")
    return (old.strip(), new.strip()) if sep else None


def timeline(entries: Iterable[LogEntry]) -> list[dict[str, Any]]:
    """Return attempts as bars, from each claim to the commit that ended it (oldest first).

    `entries` are newest first, as `gitdag log` lists them.

    A bar is `run` from a claim until the node leaves `running`, then `merge` while it waits in
    and goes through the merge queue; an open bar (still running) has `end` None.
    """
    bars: list[dict[str, Any]] = []
    open_bars: dict[str, dict[str, Any]] = {}
    for entry in reversed(list(entries)):  # oldest first (commit times are whole seconds)
        moves = _moves(entry.title)
        for nid in entry.nodes:
            current = open_bars.get(nid)
            if entry.verb == "claim":
                if current is not None:
                    current["end"] = entry.time.timestamp()
                bar = {
                    "node": nid,
                    "attempt": entry.attempt,
                    "phase": "run",
                    "start": entry.time.timestamp(),
                    "end": None,
                    "worker": entry.actor,
                    "outcome": None,
                    "commit": entry.commit,
                }
                bars.append(bar)
                open_bars[nid] = bar
                continue
            if current is None or entry.verb == "lease":
                continue
            current["end"] = entry.time.timestamp()
            current["outcome"] = f"{entry.verb}" + (f" -> {moves[1]}" if moves else "")
            del open_bars[nid]
            if entry.verb == "complete" and moves is not None and moves[1] == "merging":
                bar = {
                    "node": nid,
                    "attempt": current["attempt"],
                    "phase": "merge",
                    "start": entry.time.timestamp(),
                    "end": None,
                    "worker": None,
                    "outcome": None,
                    "commit": entry.commit,
                }
                bars.append(bar)
                open_bars[nid] = bar
    return bars


def _stamp(value: Any) -> float | None:
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def with_run_times(store: StateStore, bars: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give the run bars of attempts that ran on this machine the runner's own start and end.

    Commit times are whole seconds; `outcome.json` of a run directory has the runner's start and
    end to the microsecond. A bar keeps its commit times when the run is not here, or when the
    run's times do not fall inside the bar (a run directory left from an older history).
    """
    for bar in bars:
        if bar["phase"] != "run" or bar["attempt"] is None or bar["end"] is None:
            continue
        try:
            folder = _run_root(store, bar["node"]) / str(int(bar["attempt"]))
            outcome = json.loads((folder / "outcome.json").read_text(encoding="utf-8"))
        except (InputError, OSError, ValueError):
            continue
        start, end = _stamp(outcome.get("started_at")), _stamp(outcome.get("ended_at"))
        if start is None or end is None:
            continue
        if bar["start"] - 1 <= start <= end <= bar["end"] + 1:
            bar["start"], bar["end"], bar["timed_by"] = start, end, "runner"
    return bars


def merge_queue(store: StateStore, entries: list[LogEntry], recent: int = 20) -> dict[str, Any]:
    """Return what waits in the merge queue (in queue order), recent merges and conflicts."""
    snap = store.snapshot()
    merging = [nid for nid, s in snap.nodes.items() if s.status is Status.MERGING]
    nodes = {nid: store.node(snap, nid) for nid in merging}
    waiting = sorted(merging, key=lambda nid: (nodes[nid].updated_at, nid))

    def branch(nid: str) -> str | None:
        work = nodes[nid].work
        return work.branch if work is not None else None

    merges = [e for e in entries if e.verb == "merge"]
    conflicts = [e for e in merges if "merge_conflict" in e.summary or "check_failed" in e.summary]
    return {
        "target": snap.graph.target,
        "waiting": [
            {
                "id": nid,
                "title": nodes[nid].title,
                "since": nodes[nid].updated_at.isoformat(),
                "branch": branch(nid),
            }
            for nid in waiting
        ],
        "merged": [entry_data(e) for e in merges if " -> done" in e.title][:recent],
        "conflicts": [entry_data(e) for e in conflicts][:recent],
    }


def node_data(
    store: StateStore, snap: Snapshot, node_id: str, entries: list[LogEntry]
) -> dict[str, Any]:
    """Return one node: its file as stored, its transitions, its attempts and its run files."""
    node = store.node(snap, node_id)
    transitions = [entry_data(e) for e in entries if node_id in e.nodes]
    mine = timeline(e for e in entries if node_id in e.nodes)
    attempts = with_run_times(store, [b for b in mine if b["node"] == node_id])
    return {
        "id": node_id,
        "commit": snap.head,
        "file": codec.dump(node),
        "node": node.model_dump(mode="json"),
        "transitions": transitions,
        "attempts": attempts,
        "runs": runs_of(store, node_id),
    }


def _run_root(store: StateStore, node_id: str) -> Path:
    if id_problem(node_id) is not None:
        raise InputError(f"invalid node id {node_id!r}")
    return store.paths.local / "runs" / node_id


def runs_of(store: StateStore, node_id: str) -> list[dict[str, Any]]:
    """Return the attempts that have a run directory here, with their files and outcome."""
    root = _run_root(store, node_id)
    if not root.is_dir():
        return []
    found: list[dict[str, Any]] = []
    for item in sorted(root.iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else -1):
        if not item.name.isdigit() or not item.is_dir():
            continue
        outcome: Any = None
        with contextlib.suppress(OSError, ValueError):  # not finished, or being written
            outcome = json.loads((item / "outcome.json").read_text(encoding="utf-8"))
        files = {
            name: (item / name).stat().st_size for name in RUN_FILES if (item / name).is_file()
        }
        found.append({"attempt": int(item.name), "files": files, "outcome": outcome,
                      "finished": outcome is not None})  # fmt: skip
    return found


def run_file(
    store: StateStore, node_id: str, attempt: int, name: str, offset: int
) -> dict[str, Any]:
    """Return a run file from byte `offset` (at most RUN_READ_CAP bytes), for live tailing.

    Only the files a launch writes (RUN_FILES) of `runs/<id>/<attempt>/` can be read.
    """
    if name not in RUN_FILES:
        raise InputError(f"no run file {name!r} (one of {', '.join(RUN_FILES)})")
    path = _run_root(store, node_id) / str(int(attempt)) / name
    finished = (path.parent / "outcome.json").is_file()
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            start = min(max(0, offset), size)
            handle.seek(start)
            data = handle.read(RUN_READ_CAP)
    except FileNotFoundError:
        return {"text": "", "offset": 0, "size": 0, "finished": finished}
    text = data.decode("utf-8", errors="replace")
    return {"text": text, "offset": start + len(data), "size": size, "finished": finished}


def diff_data(store: StateStore, rev1: str, rev2: str) -> dict[str, Any]:
    """Return the node-by-node diff of two revisions: exactly `gitdag diff --json`."""
    return diff_revisions(store, rev1, rev2).as_data()
