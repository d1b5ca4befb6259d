"""Many machines: `gitdag work --remote NAME` takes ready nodes from a shared remote."""

from __future__ import annotations

from pathlib import Path

import click

from gitdag.attempts.progress import Progress
from gitdag.cli._common import echo_json, json_option, split_list
from gitdag.cli.types import FiniteFloat, bounded_int
from gitdag.config import load_settings
from gitdag.errors import ConfigError
from gitdag.remote.worker import WorkOptions, run_worker
from gitdag.store.remote import RemoteState


@click.command("work")
@click.option(
    "--remote",
    "remote",
    required=True,
    metavar="NAME",
    help="The git remote whose dagain/state holds the graph (e.g. origin).",
)
@click.option(
    "--max-nodes",
    type=bounded_int(1),
    default=None,
    help="Stop after running this many nodes (and integrating their code).",
)
@click.option(
    "--idle-exit",
    type=FiniteFloat(0, 10**9),
    default=None,
    metavar="SECONDS",
    help="Stop after this long with nothing to do (default: wait while others work).",
)
@click.option(
    "--labels",
    default="",
    help="Comma-separated labels of this worker (a node "
    "with labels only goes to workers that have them all).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Nodes this worker runs at the same time.",
)
@click.option(
    "--poll",
    type=FiniteFloat(0.05, 600),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="How often to fetch the remote while waiting.",
)
@click.option(
    "--poll-max",
    type=FiniteFloat(0.05, 3600),
    default=None,
    metavar="SECONDS",
    help="While idle and the remote's graph does not change, the fetch interval doubles from "
    "--poll up to this  [default: 15 x --poll, 30 s].",
)
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@click.option("--no-color", is_flag=True, help="Plain lines, no colour or live view (or NO_COLOR).")
@json_option
def work(remote: str, max_nodes: int | None, idle_exit: float | None, labels: str, workers: int,
         poll: float, poll_max: float | None, quiet: bool, no_color: bool,
         as_json: bool) -> None:  # fmt: skip
    """Take ready nodes from the remote's graph, run them, push their results (exit 0 done or
    stopped as asked, 1 nothing more can run and some node failed, 2 remote or input error,
    4 another worker or supervisor runs in this clone)."""
    options = WorkOptions(max_nodes=max_nodes, idle_exit_s=idle_exit, workers=workers,
                          labels=tuple(split_list(labels)), poll_s=poll,
                          poll_max_s=poll_max)  # fmt: skip
    with RemoteState.open(".", remote) as state:
        config = state.store.paths.dagain / "config.yaml"
        if not config.is_file():
            # A CI job that checked out dagain/state (or a bare clone) has no runners to run.
            raise ConfigError(f"{config}: missing; check out the branch that has .dagain/ "
                              "(the one `gitdag init` ran on, e.g. main)")  # fmt: skip
        settings = load_settings(state.store.paths.dagain)
        state.retry_for(settings.remote.retry_for_s, settings.remote.timeout_s)
        progress = Progress(quiet=quiet or as_json, plain=no_color)
        code = run_worker(state, settings, options, progress)
        if as_json:
            from gitdag import actions

            echo_json({"exit_code": code, "status": actions.status(state.store)})
    raise SystemExit(code)


def remote_bounds(dagain: Path) -> tuple[float, float]:
    """(`remote.retry_for_s`, `remote.timeout_s`) of the clone's config (or the defaults)."""
    remote = load_settings(dagain).remote
    return float(remote.retry_for_s), float(remote.timeout_s)


def register(group: click.Group) -> None:
    group.add_command(work)
