"""`--remote NAME` / `--local` of the steering commands, and the store they commit through."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from gitdag.cli._common import open_store
from gitdag.store.state import StateStore


def remote_options(func: Any) -> Any:
    """Add `--remote NAME` and `--local` to a command that writes one transition."""
    func = click.option(
        "--local",
        "local_only",
        is_flag=True,
        help="Change only this clone's dagain/state, even when the graph has a remote.",
    )(func)
    return click.option(
        "--remote",
        "remote",
        default=None,
        metavar="NAME",
        help="Steer the graph on remote NAME: one compare-and-swap push of its dagain/state "
        "(default: remote.name in .dagain/config.yaml, else the upstream of dagain/state).",
    )(func)


def remote_of(remote: str | None, local_only: bool) -> str | None:
    """The remote a command steers (None: this clone's graph)."""
    from gitdag.remote.steer import choose_remote

    return choose_remote(".", remote, local_only)


@contextmanager
def open_graph(remote: str | None, local_only: bool) -> Iterator[StateStore]:
    """The store a steering command commits through: this clone's, or the remote's graph."""
    name = remote_of(remote, local_only)
    if name is None:
        with open_store() as store:
            yield store
        return
    from gitdag.remote.steer import steering

    with steering(".", name) as remote_store:
        yield remote_store
