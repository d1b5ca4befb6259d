"""Graph commands: init, add, status, show, ready, log, graph, validate."""

from __future__ import annotations

from typing import Any

import click

from gitdag import actions, readonly, readonly_show
from gitdag.cli._common import committed_data, echo_json, json_option, open_store
from gitdag.cli.complete import complete_node_id
from gitdag.cli.flow_opts import flow_fields, flow_options
from gitdag.cli.node_opts import node_fields, node_options
from gitdag.cli.steer_opts import open_graph, remote_options
from gitdag.cli.types import FiniteFloat, bounded_int
from gitdag.core import render
from gitdag.store import history


@click.command()
@click.option("--goal", default="", help="The goal; creates the root plan node plan-000.")
@click.option(
    "--target",
    default="dagain/integration",
    show_default=True,
    help="The branch the merge queue integrates into (created at HEAD).",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 100),
    default=None,
    help="Attempts per node before it fails (graph default; 3).",
)
@click.option(
    "--backoff",
    type=FiniteFloat(0, 86400),
    default=None,
    help="Seconds before the first retry, doubling after each failure (5).",
)
@click.option(
    "--lease",
    type=click.IntRange(5, 86400),
    default=None,
    help="Seconds a claim holds without renewal (600).",
)
@click.option(
    "--max-iterations",
    type=click.IntRange(1, 10000),
    default=None,
    help="Iterations an agent loop may run in one attempt (20).",
)
@click.option(
    "--max-duration",
    type=FiniteFloat(0, 30 * 86400, min_open=True),
    default=None,
    help="Seconds an agent loop may run from iteration 1's start (86400).",
)
@click.option(
    "--runner",
    default=None,
    metavar="NAME",
    help="Every role uses this runner of the config (claude, codex, gemini, aider, scripted, "
    "or one mapped from dagain). Default: the agent CLIs found on PATH, else scripted.",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
def init(goal: str, target: str, max_attempts: int | None, backoff: float | None,
         lease: int | None, max_iterations: int | None, max_duration: float | None,
         runner: str | None, as_json: bool) -> None:  # fmt: skip
    """Create .dagain/, the target branch and dagain/state (all or nothing)."""
    defaults: dict[str, Any] = {}
    retry: dict[str, Any] = {}
    if max_attempts is not None:
        retry["max_attempts"] = max_attempts
    if backoff is not None:
        retry["backoff_s"] = int(backoff) if float(backoff).is_integer() else backoff
    if retry:
        defaults["retry"] = retry
    if lease is not None:
        defaults["lease_s"] = lease
    if max_iterations is not None:
        defaults["max_iterations"] = max_iterations
    if max_duration is not None:
        whole = float(max_duration).is_integer()
        defaults["max_duration_s"] = int(max_duration) if whole else max_duration
    with open_store() as store:
        result = actions.init(store, goal, target, defaults or None, runner=runner)
    if as_json:
        echo_json(result.as_json())
        return
    click.echo(f"initialised dagain/state at {result.head[:12]}")
    state = "created at HEAD" if result.target_created else "exists, left as it is"
    click.echo(f"target branch {result.target}: {state}")
    if result.files:
        click.echo(f"created {len(result.files)} files under .dagain/ (commit them with your code)")
    for line in result.lines:
        click.echo(line)


@click.command()
@click.argument("node_id")
@node_options(title_required=True)
@remote_options
@flow_options
@json_option
def add(node_id: str, as_json: bool, remote: str | None, local_only: bool, **node: Any) -> None:
    """Add node NODE_ID (one commit)."""
    fields = {**node_fields(node_id, node), **flow_fields(node)}
    with open_graph(remote, local_only) as store:
        committed = actions.add(store, fields)
    if as_json:
        echo_json(committed_data(committed))
        return
    click.echo(f"added {node_id} ({committed.head[:12]})")


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--remote",
    default=None,
    metavar="NAME",
    help="Fetch NAME's dagain/state and show that graph (no local supervisor needed). "
    "Default: the graph's remote (remote.name in .dagain/config.yaml, else the upstream of "
    "dagain/state), fetched quickly, else this clone's graph with a warning.",
)
@click.option(
    "--local",
    "local_only",
    is_flag=True,
    help="Show this clone's dagain/state only, even when the graph has a remote (no network).",
)
def status(as_json: bool, remote: str | None, local_only: bool) -> None:
    """Counts per status; ready, blocked, waiting, running nodes, the merge queue, proposals."""
    if remote is not None and local_only:
        from gitdag.errors import InputError

        raise InputError("give --remote NAME or --local, not both")
    source: Any = None
    if remote is not None:
        from gitdag.cli.status_remote import remote_status

        report, source = remote_status(remote, explicit=True)
    else:
        with open_store() as store:
            if not local_only:
                from gitdag.graph_remote import graph_remote

                remote = graph_remote(store)
            if remote is None:
                report = actions.status(store)
        if remote is not None:
            from gitdag.cli.status_remote import remote_status

            report, source = remote_status(remote, explicit=False)
    if as_json:
        from gitdag.graph_remote import LOCAL

        readonly.print_status(
            {**report, "graph": source.as_json() if source is not None else LOCAL}, as_json=True
        )
        return
    if source is not None:
        if source.warning is not None:
            click.echo(f"gitdag: warning: {source.warning}", err=True)
        for line in source.lines:
            click.echo(line)
    readonly.print_status(report, as_json=False)


@click.command()
@click.argument("node_id", shell_complete=complete_node_id)
@click.option("--json", "as_json", is_flag=True)
def show(node_id: str, as_json: bool) -> None:
    """Show one node: its file as stored, then (as YAML comments) its attempts' durations and
    where its runner output is (`gitdag logs NODE_ID`)."""
    readonly_show.show(node_id, as_json=as_json)


@click.command()
@click.option("--json", "as_json", is_flag=True)
def ready(as_json: bool) -> None:
    """The nodes that may start now, in claim order."""
    readonly.ready(as_json=as_json)


@click.command()
@click.argument("node_id", required=False, shell_complete=complete_node_id)
@click.option(
    "-n", "--max-count", type=bounded_int(0), default=None, help="Show at most this many."
)
@click.option("--json", "as_json", is_flag=True)
def log(node_id: str | None, max_count: int | None, as_json: bool) -> None:
    """Transitions from commit trailers, newest first (of one node, or all)."""
    with open_store() as store:
        head = store.head()
        if head is None:
            store.snapshot()  # raises the not-initialised error
            return
        if node_id:
            entries = history.node_log(store.repo, head, node_id, limit=max_count)
        else:
            entries = []
            for entry in history.walk(store.repo, head):
                entries.append(entry)
                if max_count is not None and len(entries) >= max_count:
                    break
    if as_json:
        echo_json([
            {"commit": e.commit, "time": e.time.isoformat(), "title": e.title, "verb": e.verb,
             "nodes": list(e.nodes), "attempt": e.attempt, "actor": e.actor, "summary": e.summary}
            for e in entries
        ])  # fmt: skip
        return
    for e in entries:
        click.echo(f"{e.commit[:10]} {e.time:%Y-%m-%d %H:%M:%S} {e.title}  [{e.actor}]")
        if e.summary:
            click.echo(f"           {e.summary[:160]}")


@click.command("graph")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot", "json"]),
    default="mermaid",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
def graph_cmd(fmt: str, as_json: bool) -> None:
    """The graph as mermaid (GitHub renders it), Graphviz dot, or JSON."""
    if as_json:
        fmt = "json"
    with open_store() as store:
        snap = store.snapshot()
        titles: dict[str, str] = {}
        if len(snap.nodes) <= 2000:
            titles = {nid: n.title for nid, n in store.nodes(snap).items()}
    if fmt == "mermaid":
        click.echo(render.mermaid(snap.nodes, titles), nl=False)
    elif fmt == "dot":
        click.echo(render.dot(snap.nodes, titles), nl=False)
    else:
        echo_json(render.as_data(snap.nodes))


@click.command()
@click.argument("rev", required=False)
@click.option(
    "--from",
    "source",
    type=click.Choice(["gitdag", "dagu"]),
    default=None,
    help="REV is a workflow file in this format (default: a .yaml/.yml file).",
)
@json_option
def validate(rev: str | None, source: str | None, as_json: bool) -> None:
    """Check the graph at REV (default: the head); for A..B also each commit's legality.

    A workflow file (FLOW.yaml) is checked as `gitdag apply --dry-run` would, nothing applied.
    Exit 0, or 2 with every problem on its own line (with --json: in the document on stdout).
    """
    from gitdag.cli.review_cmds import run_validate

    if rev is not None and (source or rev.endswith((".yaml", ".yml"))):
        from gitdag.cli.flow_cmds import check_flow  # workflow files (docs/workflows.md)

        check_flow(rev, source or "gitdag", as_json=as_json)
        return

    run_validate(rev, as_json=as_json)


def register(group: click.Group) -> None:
    for command in (init, add, status, show, ready, log, graph_cmd, validate):
        group.add_command(command)
