"""`gitdag ui --export DIR`: the page and its data as static files that open from file://.

The export holds the graph at the head, every transition, the status changes of each commit (so
the history slider works offline), the timeline, the merge queue, each node's file and
transitions, and the output of finished runs found in this repository (at most RUN_TAIL bytes
of each file, from its end). Browsers do not let a page from file:// fetch files, so the data is
one script, `data.js`, that sets `window.GITDAG_EXPORT`.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

from gitdag.core import codec
from gitdag.errors import InputError
from gitdag.store.delta import commit_delta
from gitdag.store.state import StateStore
from gitdag.ui import data

STATIC = Path(__file__).resolve().parent / "static"
RUN_TAIL = 64 * 1024
MARKER = "<!--GITDAG-EXPORT-->"


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - RUN_TAIL))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def status_changes(store: StateStore, entries: list[Any]) -> list[dict[str, Any]]:
    """Return, oldest first, each commit with the statuses it set (None: the node was removed)."""
    steps: list[dict[str, Any]] = []
    previous: str | None = None
    for entry in reversed(entries):
        delta = commit_delta(store, previous, entry.commit)
        changed: dict[str, str | None] = {}
        for nid in delta.ids:
            after = delta.after.get(nid)
            before = delta.before.get(nid)
            if after is None:
                changed[nid] = None
            elif before is None or before.status is not after.status:
                changed[nid] = after.status.value
        steps.append({"commit": entry.commit, "set": changed})
        previous = entry.commit
    return steps


def export_data(store: StateStore) -> dict[str, Any]:
    """Return everything the exported page shows."""
    snap = store.snapshot()
    entries = data.log_entries(store)
    nodes: dict[str, Any] = {}
    for nid, node in store.nodes(snap).items():
        runs = data.runs_of(store, nid)
        for run in runs:
            folder = store.paths.local / "runs" / nid / str(run["attempt"])
            run["texts"] = (
                {name: _tail(folder / name) for name in ("stdout", "stderr", "log")}
                if run["finished"] else {}
            )  # fmt: skip
        mine = [e for e in entries if nid in e.nodes]
        nodes[nid] = {
            "file": codec.dump(node),
            "node": node.model_dump(mode="json"),
            "attempts": data.with_run_times(
                store, [b for b in data.timeline(mine) if b["node"] == nid]
            ),
            "runs": runs,
        }
    return {
        "mode": "export",
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "graph": data.graph_data(store, snap, data.Titles()),
        "log": [data.entry_data(e) for e in entries],
        "changes": status_changes(store, entries),
        "timeline": data.with_run_times(store, data.timeline(entries)),
        "queue": data.merge_queue(store, entries),
        "nodes": nodes,
    }


def export(store: StateStore, target: Path) -> Path:
    """Write the static copy into `target` (new or empty) and return its index.html.

    Raises:
      InputError: `target` exists and holds files.
    """
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputError(f"--export {target}: exists and is not an empty directory")
    payload = export_data(store)
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(STATIC, target / "static", ignore=shutil.ignore_patterns("index.html"))
    # `</` inside a JSON string would end the script element early; `<\/` reads the same in JS.
    text = json.dumps(payload, separators=(",", ":"), default=str).replace("</", "<\\/")
    (target / "data.js").write_text(f"window.GITDAG_EXPORT = {text};\n", encoding="utf-8")
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    page = page.replace(MARKER, '<script src="data.js"></script>')
    index = target / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
