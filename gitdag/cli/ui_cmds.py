"""`gitdag ui`: watch and steer the graph in a browser, or export a static copy."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from gitdag.cli._common import echo_json, json_option, open_store
from gitdag.errors import InputError

INSTALL_HINT = "gitdag ui needs Starlette and uvicorn: pip install 'gitdag[ui]'"


@click.command("ui")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port to listen on (default 8737, or a free one if taken; 0: any free one).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; off loopback, reads need the token too.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@click.option(
    "--export",
    "export_dir",
    type=click.Path(file_okay=False),
    default=None,
    metavar="DIR",
    help="Write a static copy that opens from file:// instead of serving.",
)
@click.option(
    "--remote",
    "remote",
    default=None,
    metavar="NAME",
    help="Show and steer the graph on remote NAME (default: the graph's remote, "
    "remote.name in .dagain/config.yaml, else the upstream of dagain/state).",
)
@click.option(
    "--local",
    "local_only",
    is_flag=True,
    help="Show and steer this clone's dagain/state, even when the graph has a remote.",
)
@json_option
def ui_cmd(port: int | None, host: str, open_browser: bool, export_dir: str | None,
           remote: str | None, local_only: bool, as_json: bool) -> None:  # fmt: skip
    """Serve a local web page of the graph: live, steerable, with its whole history.

    Prints the URL with a token made for this start; every request that changes something must
    carry it (the page does). When the graph has a remote, the page shows and steers the
    remote's graph (each action one compare-and-swap push); --local: this clone's copy.
    """
    from gitdag.cli.steer_opts import remote_of

    name = remote_of(remote, local_only)
    if export_dir is not None:  # the graph the page would show (export_source.py)
        from gitdag.ui.export_source import export_shown

        done = export_shown(Path("."), Path(export_dir), name, explicit=remote is not None)
        if done.source["warning"]:
            click.echo(f"gitdag: warning: {done.source['warning']}", err=True)
        if as_json:
            echo_json({"url": None, "export": str(done.index), "graph": done.source})
        else:
            click.echo(done.line())
        return
    try:
        from gitdag.ui import server
    except ImportError:
        raise InputError(INSTALL_HINT) from None

    if name is None:
        with open_store() as store:
            from gitdag.cli.status_remote import ui_note

            note = ui_note(store)
        if note is not None:
            click.echo(f"gitdag ui: {note}", err=True)

    def announce(url: str) -> None:
        if as_json:  # one line, so a script can read it while the server runs
            click.echo(json.dumps({"url": url, "export": None}))
            sys.stdout.flush()
            return
        click.echo(f"gitdag ui: {url}")
        click.echo("(the token in the URL is needed to steer; Ctrl-C stops)")
        sys.stdout.flush()

    chosen = server.DEFAULT_PORT if port is None else port

    def say_graph(line: str) -> None:  # which graph the page shows, before the URL
        click.echo(f"gitdag ui: {line}", err=True)

    server.serve(Path("."), host, chosen, announce=announce, open_browser=open_browser,
                 remote=name, note=say_graph)  # fmt: skip


def register(group: click.Group) -> None:
    group.add_command(ui_cmd)
