"""`gitdag ui --export` writes the graph the page shows: the remote's, when the graph has one.

In a clone whose graph has a remote the page shows the remote's `dagain/state`
(remote_source.py), so the export does too: it is fetched as the page's first look is (failures
the remote answers retried for at most `LOOK_RETRY_S`, a remote silent for `remote.timeout_s`
given up on after one try) into gitdag's tracking ref, and exported from there (`RemoteView`:
its history and node files are the fetched commits). The exported page shows the same bar as the
live one (`graph.source`), and the command says which graph it wrote.

`--local`, or no remote: this clone's `dagain/state`, no network. The graph's default remote not
reached: this clone's graph with a warning, as `gitdag status` does; `--remote NAME` not
reached: an error (exit 2), nothing written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitdag.graph_remote import LOCAL, apart, compare
from gitdag.remote.steer import local_head
from gitdag.store.state import StateStore
from gitdag.ui.export import check_target, export
from gitdag.ui.remote_source import LOOK_RETRY_S, UNREACHED, RemoteView, open_waited_on


@dataclass(frozen=True)
class Exported:
    """What `--export` wrote.

    Attributes:
      index: the export's index.html.
      head: the state commit exported.
      source: which graph (the page's `source` object: docs/ui.md).
    """

    index: Path
    head: str
    source: dict[str, Any]

    def line(self) -> str:
        """`exported <whose> dagain/state (<head>) to <index> (open it from file://)`."""
        whose = f"{self.source['remote']}'s" if self.source["source"] == "remote" else (
            "this clone's")  # fmt: skip
        return (f"exported {whose} dagain/state ({self.head[:12]}) to {self.index} "
                "(open it from file://)")  # fmt: skip


def export_shown(root: Path, target: Path, remote: str | None, *, explicit: bool) -> Exported:
    """Export the graph `gitdag ui` would show: `remote`'s (fetched), else this clone's.

    Args:
      root: the repository.
      target: the export's directory (new or empty).
      remote: the graph's remote (None: this clone's graph).
      explicit: `remote` was asked for (`--remote NAME`): not reaching it is an error.

    Raises:
      InputError: `target` is not an empty directory; no such remote (when explicit).
      RemoteError, NotInitialisedError: the remote not reached (when explicit).
    """
    check_target(target)
    if remote is None:
        return _local(root, target, dict(LOCAL))
    try:
        state = open_waited_on(root, remote, LOOK_RETRY_S)
        try:
            head = state.fetch()
            local = local_head(state.store.repo)
            counts = apart(state, local, head)
        finally:
            state.close()
    except UNREACHED as exc:
        if explicit:
            raise
        why = " ".join(str(exc).removeprefix(f"remote {remote}: ").split())
        warning = (f"remote {remote} not reached ({why}); exported this clone's dagain/state, "
                   "which may be behind (--local skips the remote)")  # fmt: skip
        return _local(root, target, {**LOCAL, "remote": remote, "warning": warning})
    source = {"source": "remote", "remote": remote, "head": head, "local": local,
              "ahead": counts[0] if counts else None, "behind": counts[1] if counts else None,
              "line": compare(remote, local, head, counts), "warning": None}  # fmt: skip
    view = RemoteView(root, remote)
    try:
        index = export(view, target, source=source)
    finally:
        view.close()
    return Exported(index, head, source)


def _local(root: Path, target: Path, source: dict[str, Any]) -> Exported:
    store = StateStore.open(root)
    try:
        index = export(store, target, source=source)
        return Exported(index, store.head() or "", source)  # exported: it has a head
    finally:
        store.close()
