"""Graph commands: init, add, status, show, ready, log, graph, validate."""

from __future__ import annotations

from typing import Any

import click

from gitdag import actions
from gitdag.cli._common import echo_json, open_store
from gitdag.cli.node_opts import node_fields, node_options
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
def init(goal: str, target: str, max_attempts: int | None, backoff: float | None,
         lease: int | None) -> None:  # fmt: skip
    """Create dagain/state, .dagain/ and the target branch."""
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
    with open_store() as store:
        result = actions.init(store, goal, target, defaults or None)
    click.echo(f"initialised dagain/state at {result.head[:12]}")
    state = "created at HEAD" if result.target_created else "exists, left as it is"
    click.echo(f"target branch {result.target}: {state}")
    if result.files:
        click.echo(f"created {len(result.files)} files under .dagain/ (commit them with your code)")


@click.command()
@click.argument("node_id")
@node_options(title_required=True)
def add(node_id: str, **node: Any) -> None:
    """Add node NODE_ID (one commit)."""
    fields = node_fields(node_id, node)
    with open_store() as store:
        committed = actions.add(store, fields)
    click.echo(f"added {node_id} ({committed.head[:12]})")


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--remote",
    default=None,
    metavar="NAME",
    help="Fetch NAME's dagain/state and show that graph (no local supervisor needed).",
)
def status(as_json: bool, remote: str | None) -> None:
    """Counts per status; ready, blocked, running, and the merge queue."""
    if remote is not None:
        from gitdag.store.remote import fetched

        with fetched(".", remote) as store:
            report = actions.status(store)
    else:
        with open_store() as store:
            report = actions.status(store)
    if as_json:
        echo_json(report)
        return
    click.echo(f"goal: {report['goal'] or '(none)'}")
    paused = "  PAUSED" if report["paused"] else ""
    click.echo(f"target: {report['target']}  state: {str(report['head'])[:12]}{paused}")
    counts = report["counts"]
    click.echo(f"{report['total']} nodes: " + " · ".join(f"{k} {v}" for k, v in counts.items()))
    _list("ready", report["ready"])
    _list("blocked", report["blocked"])
    running = [f"{r['id']} (attempt {r['attempt']}, {r['worker']})" for r in report["running"]]
    _list("running", running)
    _list("merge queue", report["merge_queue"])
    _list("needs human", report["needs_human"])
    _list("failed", report["failed"])


def _list(label: str, items: list[str], limit: int = 20) -> None:
    if not items:
        return
    shown = ", ".join(items[:limit]) + (
        f", … (+{len(items) - limit})" if len(items) > limit else ""
    )
    click.echo(f"{label} ({len(items)}): {shown}")


@click.command()
@click.argument("node_id")
@click.option("--json", "as_json", is_flag=True)
def show(node_id: str, as_json: bool) -> None:
    """Show one node: its file as stored, and why it last failed."""
    from gitdag.core import codec

    with open_store() as store:
        snap = store.snapshot()
        node = store.node(snap, node_id)
    if as_json:
        echo_json(node.model_dump(mode="json"))
        return
    click.echo(codec.dump(node), nl=False)


@click.command()
@click.option("--json", "as_json", is_flag=True)
def ready(as_json: bool) -> None:
    """The nodes that may start now, in claim order."""
    with open_store() as store:
        snap = store.snapshot()
        from gitdag.core import graph

        ids = graph.ready(snap.nodes, store.clock(), paused=snap.graph.control.paused)
    if as_json:
        echo_json(ids)
    else:
        for nid in ids:
            click.echo(nid)


@click.command()
@click.argument("node_id", required=False)
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
def graph_cmd(fmt: str) -> None:
    """The graph as mermaid (GitHub renders it), Graphviz dot, or JSON."""
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
def validate(rev: str | None) -> None:
    """Check the graph at REV (default: the head); for A..B also each commit's legality.

    Exit 0, or 2 with every problem on its own line.
    """
    from gitdag.cli.review_cmds import run_validate

    run_validate(rev)


def register(group: click.Group) -> None:
    for command in (init, add, status, show, ready, log, graph_cmd, validate):
        group.add_command(command)
