"""Shell completion of node ids (click's `_GITDAG_COMPLETE` protocol; see docs/cli.md)."""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem


def complete_node_id(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Return the node ids that start with `incomplete`, read from the state snapshot.

    The snapshot comes from the on-disk index when the head has not moved (what `status` pays,
    tens of milliseconds at 10k nodes). Completion must never fail the shell: outside a gitdag
    repository, or on any error, it offers nothing.
    """
    try:
        from gitdag.store.state import StateStore

        directory = ctx.find_root().params.get("directory") or "."
        store = StateStore.open(directory)
        try:
            ids = [nid for nid in store.snapshot().nodes if nid.startswith(incomplete)]
        finally:
            store.close()
    except Exception:
        return []
    return [CompletionItem(nid) for nid in sorted(ids)]
