"""`gitdag show NODE_ID`: the node's file as stored, its attempts' durations, its runner output.

Split from readonly.py (the read-only commands and their start without click), which runs it from
`fast_main` and whose helpers it prints with. `quick_show` is show's quick start: a file gitdag
wrote, at a head a status or ready read without a problem, printed without opening the store
(tests/cli/test_quick_start.py compares it with click).
"""

from __future__ import annotations

import os

from gitdag.core.render import duration
from gitdag.readonly import _echo, _echo_json, open_store

TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime as dt
    from pathlib import Path
    from typing import Any

    from gitdag.store.history import AttemptTime
    from gitdag.store.snapshot import Snapshot
    from gitdag.store.state import StateStore


# --- show ---------------------------------------------------------------------------------------


def show(node_id: str, *, as_json: bool) -> None:
    """`gitdag show NODE_ID`: the node's file, then its attempts' durations and runner output."""
    from gitdag.runner import runs
    from gitdag.store import history

    with open_store() as store:
        snap = store.snapshot()
        text = _stored_text(store, snap, node_id) if not as_json else None
        node = store.node(snap, node_id) if text is None else None
        summary = snap.nodes[node_id]  # store.node raised for an unknown id
        now = store.clock()
        times = []
        if summary.attempts and snap.head is not None:
            times = history.attempt_times(store.repo, snap.head, node_id, since=summary.created_at)
        runs_dir = store.paths.local / "runs"
        local = runs.attempts(runs_dir, node_id)
    timing = _timing(times, now)
    logs = _logs(node_id, runs_dir, local)
    if node is not None:
        from gitdag.core import codec

        if as_json:
            _echo_json({**node.model_dump(mode="json"), "timing": timing, "logs": logs})
            return
        text = codec.dump(node)
    assert text is not None
    _print_show(node_id, text, timing, logs)


def _logs(node_id: str, runs_dir: Path, local: list[int]) -> dict[str, Any]:
    return {
        "command": f"gitdag logs {node_id}",
        "dir": str(runs_dir / node_id) if local else None,
        "attempts": local,
    }


def _print_show(node_id: str, text: str, timing: dict[str, Any], logs: dict[str, Any]) -> None:
    _echo(text, nl=False)
    if timing["attempts"]:
        parts = []
        for a in timing["attempts"]:
            if a["seconds"] is None:
                parts.append(f"{a['attempt']} running {duration(a['elapsed_s'])}")
            else:
                parts.append(f"{a['attempt']} {a['ended_by']} {duration(a['seconds'])}")
        _echo("# attempts: " + ", ".join(parts))
        _echo(f"# total: {duration(timing['total_s'])} over "
                   f"{len(timing['attempts'])} attempt(s)")  # fmt: skip
    if logs["attempts"]:
        _echo(f"# runner output: gitdag logs {node_id} (in {logs['dir']}/<attempt>/)")


def quick_show(node_id: str) -> bool:
    """Print `gitdag show NODE_ID` of a file gitdag wrote without opening the repository.

    The head must be one a status or ready of this version read without a problem (the report
    cache names it), the node's file a canonical one (the parse cache says so) and every object
    on its path loose; otherwise False, having printed nothing, and `show` reads the store.
    """
    found = _quick_node(node_id)
    if found is None:
        return False
    text, timing, logs = found
    _print_show(node_id, text, timing, logs)
    return True


def _quick_node(node_id: str) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    import datetime as dt

    from gitdag.core.ids import shard
    from gitdag.store import gitfiles, reportcache
    from gitdag.store.cache import ParseCache
    from gitdag.store.where import STATE_REF

    try:
        place = gitfiles.state_head(".")
        if place is None:
            return None
        _root, git_dir, local, head = place
        if reportcache.checked_head(local, STATE_REF) != head:
            return None
        objects = gitfiles.ObjectReader(git_dir)
        try:
            path = f"nodes/{shard(node_id)}/{node_id}.yaml"
            blob = gitfiles.path_blob(objects, head, path)
            obj = objects.get(blob) if blob is not None else None
            cache = ParseCache(os.path.join(local, "cache", "nodes.sqlite"))
            try:
                canonical = blob is not None and cache.is_canonical(blob)
                light = cache.light(blob) if blob is not None and canonical else None
            finally:
                cache.close()
            if obj is None or obj[0] != b"blob" or light is None or light[0].id != node_id:
                return None
            text = obj[1].decode()
            summary = light[0]
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)  # the store's clock (utcnow)
            times = []
            if summary.attempts:
                from gitdag.store import history

                times = history.attempt_times(objects, head, node_id, since=summary.created_at)
        finally:
            objects.close()
        attempts: list[int] = []
        runs_dir = None
        if os.path.isdir(os.path.join(local, "runs", node_id)):
            from pathlib import Path

            from gitdag.runner import runs

            runs_dir = Path(local) / "runs"  # as the store's `paths.local / "runs"`
            attempts = runs.attempts(runs_dir, node_id)
    except Exception:
        return None  # the store reads it, and says what is wrong if anything is
    logs = _logs(node_id, runs_dir, attempts) if runs_dir is not None else {
        "command": f"gitdag logs {node_id}", "dir": None, "attempts": attempts}  # fmt: skip
    return text, _timing(times, now), logs


def _stored_text(store: StateStore, snap: Snapshot, node_id: str) -> str | None:
    """The node's file as stored, when gitdag wrote it (so it is what `codec.dump` prints).

    Such a file needs neither parsing nor the models; any other file (hand-made, or written
    where this repository's parse cache did not see it) returns None and is parsed.
    """
    blob = snap.blobs.get(node_id)
    if blob is None or not store.cache.is_canonical(blob):
        return None
    from dulwich.objects import Blob, ObjectID

    obj = store.repo.object_store[ObjectID(blob.encode())]
    if not isinstance(obj, Blob):
        return None
    try:
        return obj.as_raw_string().decode()
    except UnicodeDecodeError:
        return None


def _timing(times: list[AttemptTime], now: dt.datetime) -> dict[str, Any]:
    """Durations per attempt from commit times: a running attempt counts until `now`."""
    rows = []
    total = 0.0
    for t in times:
        elapsed = (now - t.started).total_seconds() if t.ended is None else None
        total += t.seconds if t.seconds is not None else max(0.0, elapsed or 0.0)
        rows.append({"attempt": t.attempt, "started": t.started.isoformat(),
                     "ended": t.ended.isoformat() if t.ended else None, "ended_by": t.verb,
                     "seconds": t.seconds,
                     "elapsed_s": None if elapsed is None else round(elapsed, 1)})  # fmt: skip
    return {"attempts": rows, "total_s": total}
