from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from gitdag.store.state import StateStore


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
