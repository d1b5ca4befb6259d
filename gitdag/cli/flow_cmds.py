"""`gitdag apply`: a workflow file (or a Dagu DAG) to nodes, in one commit (docs/workflows.md)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from gitdag import flows
from gitdag.cli._common import echo_json, open_store
from gitdag.core import apply as applying
from gitdag.core import flow, schedules
from gitdag.core.diff import diff_graphs, render_text
from gitdag.core.model import GraphFile
from gitdag.core.transitions import Rejected, Transition
from gitdag.errors import GraphError
from gitdag.store import repo as repos
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed


@click.command(name="apply")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Show the change; write nothing.")
@click.option(
    "--from", "source", type=click.Choice(["gitdag", "dagu"]), default="gitdag",
    show_default=True, help="The file's format.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def apply_flow(path: Path, dry_run: bool, source: str, as_json: bool) -> None:
    """Make the graph hold the workflow in PATH: one commit; applying it twice changes nothing."""
    compiled, unmapped = flows.read(path, source)
    with open_store() as store:
        shown: dict[str, object] = {}
        notes: list[str] = []

        def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected | None:
            full = store.nodes(snap)
            planned = applying.plan(compiled, full, now, snap.graph)
            if isinstance(planned, Rejected):
                return planned
            notes[:] = planned.notes
            transition = planned.transition
            if transition is not None:
                shown["old"], shown["t"], shown["graph"] = full, transition, snap.graph
            else:
                shown.clear()
            return None if dry_run else transition

        outcome = store.transact(compute, actor=repos.human_actor(store.repo))
        if isinstance(outcome, Rejected):
            raise GraphError(f"{path}: nothing applied: {outcome}")
        text = ""
        if "t" in shown:
            old = shown["old"]
            transition = shown["t"]
            assert isinstance(transition, Transition) and isinstance(old, dict)
            if isinstance(outcome, Committed):
                transition = outcome.transition  # with the skips it carried
            else:
                snap = store.snapshot()
                transition = flow.follow(transition, snap.nodes, old.__getitem__, store.clock())
            touched = set(transition.node_ids())
            before = {nid: old[nid] for nid in touched if nid in old}
            after_nodes = {n.id: n for n in transition.put}
            old_graph = shown["graph"] if transition.graph is not None else None
            assert old_graph is None or isinstance(old_graph, GraphFile)
            text = render_text(diff_graphs(before, after_nodes, old_graph, transition.graph))
    head = outcome.head if isinstance(outcome, Committed) else None
    if as_json:
        echo_json({"changed": "t" in shown, "dry_run": dry_run, "head": head, "diff": text,
                   "notes": notes, "unmapped": unmapped, "flow": compiled.name,
                   "schedule": list(compiled.schedule)})  # fmt: skip
        return
    for line in unmapped:
        click.echo(f"not mapped: {line}")
    if "t" not in shown:
        click.echo(f"flow {compiled.name}: nothing to change")
    else:
        click.echo(text, nl=False)
        done = f"applied ({head[:12]})" if head else "would apply (dry run, nothing written)"
        click.echo(f"flow {compiled.name}: {done}")
    for line in notes:
        click.echo(f"note: {line}")


def check_flow(path: str, source: str, *, as_json: bool = False) -> None:
    """`gitdag validate FLOW.yaml`: the file compiles and would apply to this graph; no write."""
    compiled, unmapped = flows.read(Path(path), source)
    with open_store() as store:
        snap = store.snapshot()
        planned = applying.plan(compiled, store.nodes(snap), store.clock(), snap.graph)
    if isinstance(planned, Rejected):
        raise GraphError(f"{path}: {planned}")
    if as_json:
        echo_json({"ok": True, "flow": compiled.name, "nodes": len(compiled.nodes),
                   "unmapped": unmapped, "notes": list(planned.notes)})  # fmt: skip
        return
    for line in unmapped:
        click.echo(f"not mapped: {line}")
    click.echo(f"ok: flow {compiled.name}, {len(compiled.nodes)} steps")


WORKERS_PATH = Path(".github") / "workflows" / "gitdag-workers.yml"


def install_schedules(*, as_json: bool) -> dict[str, object] | None:
    """Write the workers workflow with the applied flows' crons (`hooks install --ci`).

    GitHub reads a schedule from the default branch only, so the file goes into this checkout
    (commit it there); GitLab keeps schedules in its settings, so their crons are printed.
    Returns what was done, or None when no applied flow has a schedule.
    """
    from gitdag.template import template_dir

    with open_store() as store:
        table = store.snapshot().graph.schedules
        root = store.paths.root
    pairs = schedules.crons(table)
    if not pairs:
        return None
    template = (template_dir() / "ci" / "github-actions.yml").read_text(encoding="utf-8")
    text = schedules.github_workers(template, table)
    path = root / WORKERS_PATH
    changed = not path.exists() or path.read_text(encoding="utf-8") != text
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if not as_json:
        state = "wrote" if changed else "up to date:"
        click.echo(f"{state} {WORKERS_PATH} with {len(pairs)} flow schedule(s); "
                   "commit it on your default branch (GitHub reads schedules there)")  # fmt: skip
        for cron, flow in pairs:
            click.echo(f"  GitLab: add a pipeline schedule (CI/CD > Schedules) {cron!r} "
                       f"for flow {flow}")  # fmt: skip
    return {"path": str(path), "changed": changed,
            "crons": [{"cron": c, "flow": f} for c, f in pairs]}  # fmt: skip


def register(group: click.Group) -> None:
    group.add_command(apply_flow)
