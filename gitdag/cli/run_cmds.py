"""Running and steering: run, answer, pause, resume, cancel, retry."""

from __future__ import annotations

import dataclasses

import click

from gitdag import actions
from gitdag.attempts.progress import Progress
from gitdag.cli._common import committed_data, echo_json, json_option, open_store
from gitdag.cli.complete import complete_node_id
from gitdag.cli.steer_opts import open_graph, remote_of, remote_options
from gitdag.cli.types import FiniteFloat, bounded_int
from gitdag.config import load_settings
from gitdag.store.state import Committed
from gitdag.supervisor import control
from gitdag.supervisor.loop import RunOptions, run


@click.command("run")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Nodes run at the same time (default: config defaults.workers).",
)
@click.option("--once", is_flag=True, help="Finish one node, then stop.")
@click.option("--watch", is_flag=True, help="Keep waiting for new work until interrupted.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@click.option("--no-color", is_flag=True, help="Plain lines, no colour or live view (or NO_COLOR).")
@remote_options
@json_option
def run_cmd(workers: int | None, once: bool, watch: bool, quiet: bool, no_color: bool,
            as_json: bool, remote: str | None, local_only: bool) -> None:  # fmt: skip
    """Run ready nodes until nothing more can run (exit 0 all done, 1 failed/blocked, 4 locked).

    When the graph has a remote (--remote, remote.name, or the upstream of dagain/state) run
    syncs with it, claims through it as one more worker, and syncs again (exit 2 when the sync
    is refused, naming the conflicting nodes).

    With --json the progress lines are not printed (errors still go to stderr) and stdout gets
    one document at the end: the exit code and the final `gitdag status --json`.
    """
    name = remote_of(remote, local_only)
    if name is not None:
        from gitdag.remote.runsync import run_shared

        with open_store() as store:
            settings = load_settings(store.paths.dagain)
        progress = Progress(quiet=quiet or as_json, plain=no_color)
        code = run_shared(name, settings, workers=workers or settings.defaults.workers,
                          once=once, watch=watch, progress=progress)  # fmt: skip
        if as_json:
            with open_store() as store:
                echo_json({"exit_code": code, "status": actions.status(store)})
        raise SystemExit(code)
    with open_store() as store:
        settings = load_settings(store.paths.dagain)
        options = RunOptions(workers=workers or settings.defaults.workers, once=once, watch=watch)
        progress = Progress(quiet=quiet or as_json, plain=no_color)
        code = run(store, settings, options, progress)
        if as_json:
            echo_json({"exit_code": code, "status": actions.status(store)})
    raise SystemExit(code)


@click.command()
@click.argument("node_id", shell_complete=complete_node_id)
@click.argument("text", required=False, default="")
@click.option(
    "--option", "option", type=bounded_int(1), default=None, help="Pick the N-th option (1-based)."
)
@remote_options
@json_option
def answer(node_id: str, text: str, option: int | None, as_json: bool, remote: str | None,
           local_only: bool) -> None:  # fmt: skip
    """Answer NODE_ID's question (TEXT, or --option N)."""
    if not text and option is None:
        raise click.UsageError("give the answer TEXT or --option N")
    with open_graph(remote, local_only) as store:
        committed = control.answer(store, node_id, text, option)
    _done(committed, f"answered {node_id}", as_json)


@click.command()
@remote_options
@json_option
def pause(as_json: bool, remote: str | None, local_only: bool) -> None:
    """Pause the graph: running nodes finish, nothing new starts."""
    with open_graph(remote, local_only) as store:
        committed = control.set_paused(store, True)
    _done(committed, "paused", as_json)


@click.command()
@remote_options
@json_option
def resume(as_json: bool, remote: str | None, local_only: bool) -> None:
    """Resume a paused graph."""
    with open_graph(remote, local_only) as store:
        committed = control.set_paused(store, False)
    _done(committed, "resumed", as_json)


@click.command()
@click.argument("node_id", shell_complete=complete_node_id)
@remote_options
@json_option
def cancel(node_id: str, as_json: bool, remote: str | None, local_only: bool) -> None:
    """Cancel NODE_ID; a supervisor running it stops its runner within 2 s."""
    with open_graph(remote, local_only) as store:
        committed = control.cancel(store, node_id)
    _done(committed, f"cancelled {node_id}", as_json)


@click.command()
@click.argument("node_id", shell_complete=complete_node_id)
@click.option("--force", is_flag=True, help="Also rerun a node that is done.")
@remote_options
@json_option
def retry(node_id: str, force: bool, as_json: bool, remote: str | None,
          local_only: bool) -> None:  # fmt: skip
    """Reopen a failed or cancelled node with a fresh retry budget."""
    with open_graph(remote, local_only) as store:
        committed = control.retry(store, node_id, force)
    _done(committed, f"reopened {node_id}", as_json)


def _done(committed: Committed, what: str, as_json: bool) -> None:
    if as_json:
        echo_json(committed_data(committed))
    else:
        click.echo(f"{what} ({committed.head[:12]})")


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to create the demo repository (default: a new temporary directory).",
)
@click.option("--quiet", "-q", is_flag=True)
def demo(directory: str | None, quiet: bool) -> None:
    """Run gitdag on a throwaway example repository, start to finish (no agent needed)."""
    from pathlib import Path

    from gitdag.demo import run_demo

    raise SystemExit(run_demo(Path(directory) if directory else None, quiet=quiet))


@click.command("gc")
@click.option(
    "--delete-unmerged",
    is_flag=True,
    help="Also delete branches of failed/cancelled nodes (their only copy of that work).",
)
@click.option(
    "--runs-older-than",
    type=FiniteFloat(0, 100 * 365),
    default=None,
    metavar="DAYS",
    help="Also remove run directories (packets, logs) untouched for this many days.",
)
@json_option
def gc_cmd(delete_unmerged: bool, runs_older_than: float | None, as_json: bool) -> None:
    """Remove leftover worktrees, scratch checkouts and merged branches; report disk freed."""
    from gitdag.doctor.housekeeping import collect_garbage

    with open_store() as store:
        report = collect_garbage(
            store,
            delete_unmerged=delete_unmerged,
            runs_older_than_s=None if runs_older_than is None else runs_older_than * 86400,
        )
    if as_json:
        echo_json(dataclasses.asdict(report))
        return
    for label, items in (
        ("removed worktrees", report.removed_worktrees),
        ("removed scratch checkouts", report.removed_scratch),
        ("deleted branches", report.deleted_branches),
        ("archived branches", report.archived_branches),
        ("kept branches (unmerged work)", report.kept_branches),
        ("removed run directories", report.removed_runs),
    ):
        if items:
            click.echo(
                f"{label} ({len(items)}): {', '.join(items[:10])}"
                + (" …" if len(items) > 10 else "")
            )
    click.echo(f"freed {report.bytes_freed / 1024 / 1024:.1f} MiB")


def register(group: click.Group) -> None:
    for command in (run_cmd, answer, pause, resume, cancel, retry, demo, gc_cmd):
        group.add_command(command)
