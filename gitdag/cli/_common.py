from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from gitdag.core.transitions import Transition
from gitdag.store.state import Committed, StateStore


@contextmanager
def open_store() -> Iterator[StateStore]:
    store = StateStore.open(".")
    try:
        yield store
    finally:
        store.close()


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def split_list(value: str | None) -> list[str]:
    if not value:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


def json_option(func: Any) -> Any:
    """The `--json` flag every printing command has: one JSON document on stdout."""
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(func)


def transition_data(t: Transition) -> dict[str, Any]:
    """A committed transition as JSON: what `--json` of a command that writes one prints."""
    return {"verb": t.verb, "subject": t.subject, "from": t.from_status, "to": t.to_status,
            "nodes": list(t.node_ids()), "attempt": t.attempt, "summary": t.summary}  # fmt: skip


def committed_data(committed: Committed) -> dict[str, Any]:
    """`{"head": ..., "transition": ...}` of one commit on dagain/state."""
    return {"head": committed.head, "transition": transition_data(committed.transition)}
