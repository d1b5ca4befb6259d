"""`gitdag sync [REMOTE]`: this clone's graph and the remote's become one."""

from __future__ import annotations

import dataclasses

import click

from gitdag.cli._common import echo_json, json_option
from gitdag.cli.steer_opts import remote_of
from gitdag.errors import InputError


@click.command("sync")
@click.argument("remote", required=False, metavar="[REMOTE]")
@click.option(
    "--discard-local",
    is_flag=True,
    help="Take the remote's graph as it is: drop the local transitions it lacks (they stay "
    "in the reflog of dagain/state).",
)
@json_option
def sync_cmd(remote: str | None, discard_local: bool, as_json: bool) -> None:
    """Fetch REMOTE's dagain/state; fast-forward when behind, push when ahead, replay the local
    transitions on top when diverged (semantic three-way merge), or refuse naming the
    conflicting nodes (exit 2, nothing pushed). REMOTE defaults to remote.name in
    .dagain/config.yaml, else the upstream of dagain/state."""
    from gitdag.remote.runsync import describe, sync_locked
    from gitdag.remote.steer import open_remote

    name = remote_of(remote, False)
    if name is None:
        raise InputError(
            "no remote to sync with: give one (gitdag sync origin), or set remote.name in "
            ".dagain/config.yaml"
        )
    state = open_remote(".", name, fetch=False, waited_on=True)
    try:
        synced = sync_locked(state, discard_local=discard_local)
    finally:
        state.close()
    if as_json:
        echo_json(dataclasses.asdict(synced))
        return
    click.echo(describe(synced))


def register(group: click.Group) -> None:
    group.add_command(sync_cmd)
