"""`gitdag ui --export DIR`: the page and its data as static files that open from file://.

The export holds the graph at the head, every transition, what each commit changed in the drawn
graph (so the history slider shows the graph OF any commit offline), every node file of the last
HISTORY_VERSIONS commits (so the node panel and the node-by-node diff, `gitdag diff --json`'s,
work offline for those), the timeline, the merge queue, each node's file and
transitions, and the output of finished runs found in this repository (at most RUN_TAIL bytes
of each file, from its end). Browsers do not let a page from file:// fetch files, so the data is
one script, `data.js`, that sets `window.GITDAG_EXPORT`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from gitdag.core import codec
from gitdag.core.diff import jsonable
from gitdag.core.model import Node
from gitdag.errors import InputError
from gitdag.store.delta import commit_delta
from gitdag.store.state import StateStore
from gitdag.ui import data

STATIC = Path(__file__).resolve().parent / "static"
RUN_TAIL = 64 * 1024
HISTORY_VERSIONS = 200  # the last commits whose node files the export embeds (panel and diff)
MARKER = "<!--GITDAG-EXPORT-->"


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - RUN_TAIL))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _fields(record: BaseModel) -> dict[str, Any]:
    # Each field as JSON-ready data, in the file's order: what core/diff.field_changes compares.
    return {name: jsonable(getattr(record, name)) for name in type(record).model_fields}


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def history_data(
    store: StateStore, entries: list[Any], window: int = HISTORY_VERSIONS
) -> dict[str, Any]:
    """Return the export's history: what each commit changed, oldest first, and the last versions.

    `changes`: for every commit, the drawn record (as `graph_data` gives it) of each node it added
    or changed (None: removed) and `graph.yaml`'s goal, target and paused when it changed, so the
    page rebuilds the graph of any commit. `window`: for the last `window` commits, the tree before
    the first of them (`base`: id -> version key) and each commit's changed keys (`steps`), with
    every node and `graph.yaml` version they name (`versions`, `graphs`: the file and its fields),
    so the page shows a node's file at those commits and diffs any two of them node by node.
    """
    changes: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    versions: dict[str, Any] = {}
    graphs: dict[str, Any] = {}
    alive: dict[str, Node] = {}
    graph_key: str | None = None
    graph_fields: dict[str, Any] | None = None
    base: dict[str, str] | None = None
    base_graph: str | None = None
    start = max(0, len(entries) - window)
    previous: str | None = None

    def version(node: Node) -> str:
        text = codec.dump(node)
        key = _key(text)
        if key not in versions:
            versions[key] = {"file": text, "fields": _fields(node)}
        return key

    for index, entry in enumerate(reversed(entries)):
        if index == start:
            base = {nid: version(node) for nid, node in alive.items()}
            base_graph = graph_key
            if graph_key is not None and graph_fields is not None:
                graphs[graph_key] = graph_fields
        delta = commit_delta(store, previous, entry.commit)
        drawn: dict[str, Any] = {}
        keys: dict[str, str | None] = {}
        for nid in delta.ids:
            after = delta.after.get(nid)
            if after is None:
                alive.pop(nid, None)
                drawn[nid] = None
            else:
                alive[nid] = after
                drawn[nid] = data.node_record(after, after.title)
            if index >= start:
                keys[nid] = version(after) if after is not None else None
        step: dict[str, Any] = {"commit": entry.commit, "set": drawn}
        changed_graph: str | None = None
        if delta.graph_changed and delta.graph_after is not None:
            g = delta.graph_after
            step["graph"] = {"goal": g.goal, "target": g.target, "paused": g.control.paused}
            graph_fields = _fields(g)
            graph_key = _key(json.dumps(graph_fields, sort_keys=True, default=str))
            changed_graph = graph_key
            if index >= start:
                graphs[graph_key] = graph_fields
        changes.append(step)
        if index >= start:
            steps.append({"commit": entry.commit, "set": keys, "graph": changed_graph})
        previous = entry.commit
    return {
        "changes": changes,
        "window": {
            "size": window,
            "base": base or {},
            "base_graph": base_graph,
            "steps": steps,
            "versions": versions,
            "graphs": graphs,
        },
    }


def export_data(store: StateStore, window: int = HISTORY_VERSIONS) -> dict[str, Any]:
    """Return everything the exported page shows (node files of the last `window` commits)."""
    snap = store.snapshot()
    entries = data.log_entries(store)
    history = history_data(store, entries, window)
    versions = history["window"]["versions"]
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
        # The head's file is one of the window's versions (the window ends at the head): the
        # node refers to it rather than holding a second copy of every file.
        text = codec.dump(node)
        key = _key(text)
        versions.setdefault(key, {"file": text, "fields": _fields(node)})
        nodes[nid] = {
            "version": key,
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
        **history,
        "timeline": data.with_run_times(store, data.timeline(entries)),
        "queue": data.merge_queue(store, entries),
        "nodes": nodes,
    }


def check_target(target: Path) -> None:
    """Refuse an export directory that exists and holds files.

    Raises:
      InputError: `target` exists and is not an empty directory.
    """
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputError(f"--export {target}: exists and is not an empty directory")


def export(store: StateStore, target: Path, window: int = HISTORY_VERSIONS,
           source: dict[str, Any] | None = None) -> Path:  # fmt: skip
    """Write the static copy into `target` (new or empty) and return its index.html.

    `source`: which graph this is (the page's `source` object, shown in its bar: export_source.py).

    Raises:
      InputError: `target` exists and holds files.
    """
    check_target(target)
    payload = export_data(store, window)
    if source is not None:
        payload["graph"]["source"] = source
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
