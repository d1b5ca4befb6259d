"""`gitdag logs ID`: what a node's runner printed, from its run directory, live while it runs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gitdag.cli._common import echo_json, open_store
from gitdag.cli.complete import complete_node_id
from gitdag.core.model import Status
from gitdag.errors import InputError
from gitdag.runner import runs
from gitdag.store.state import StateStore


@click.command()
@click.argument("node_id", shell_complete=complete_node_id)
@click.option("--attempt", type=click.IntRange(1), default=None,
              help="Which attempt (default: the latest that ran here).")  # fmt: skip
@click.option("--follow", "-f", is_flag=True,
              help="Keep printing as the runner writes, until the attempt ends.")  # fmt: skip
@click.option("--stream", type=click.Choice(["stdout", "stderr", "log"]), default=None,
              help="Only this file: the runner's stdout, its stderr, or gitdag's log of the "
                   "run (command, times, verdict). Default: stdout to stdout, stderr to "
                   "stderr.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (not with -f).")
def logs(node_id: str, attempt: int | None, follow: bool, stream: str | None,
         as_json: bool) -> None:  # fmt: skip
    """Print what NODE_ID's runner printed (.dagain/local/runs/NODE_ID/ATTEMPT/)."""
    if as_json and follow:
        raise click.UsageError("--json and --follow do not go together")
    with open_store() as store:
        snap = store.snapshot()
        if node_id not in snap.nodes:
            store.node(snap, node_id)  # raises the one-line unknown-node error
        runs_dir = store.paths.local / "runs"
        found = runs.attempts(runs_dir, node_id)
        if attempt is None:
            if not found:
                raise InputError(
                    f"{node_id} has no run directory here ({runs_dir / node_id}): it has not "
                    "run on this machine (a remote worker keeps its own)"
                )
            attempt = found[-1]
        directory = runs.run_dir(runs_dir, node_id, attempt)
        if not directory.is_dir():
            have = ", ".join(map(str, found)) or "none"
            raise InputError(
                f"{node_id} attempt {attempt} did not run here (attempts here: {have})"
            )
        if as_json:
            echo_json({
                "node": node_id, "attempt": attempt, "attempts": found, "dir": str(directory),
                "stdout": _text(directory, "stdout"), "stderr": _text(directory, "stderr"),
                "log": _text(directory, "log"), "outcome": runs.outcome(directory),
                "running": not runs.runner_gone(directory),
            })  # fmt: skip
            return
        out, err = sys.stdout.buffer, sys.stderr.buffer
        files = (
            [(directory / runs.STREAMS[stream], out)] if stream
            else [(directory / runs.STREAMS["stdout"], out),
                  (directory / runs.STREAMS["stderr"], err)]
        )  # fmt: skip
        if not follow:
            for path, sink in files:
                sink.write(runs.read_bytes(path))
                sink.flush()
            return
        try:
            runs.follow(files, lambda: _ended(store, node_id, attempt, directory))
        except KeyboardInterrupt:
            raise SystemExit(130) from None


def _text(directory: Path, stream: str) -> str:
    return runs.read_bytes(directory / runs.STREAMS[stream]).decode("utf-8", errors="replace")


def _ended(store: StateStore, node_id: str, attempt: int, directory: Path) -> bool:
    """The attempt is over: collected, its process group gone, or the node moved on from it."""
    if runs.runner_gone(directory):
        return True
    snap = store.snapshot()
    summary = snap.nodes.get(node_id)
    if summary is None or summary.status is not Status.RUNNING:
        return True
    node = store.node(snap, node_id)
    return node.claim is None or node.claim.attempt != attempt


def register(group: click.Group) -> None:
    group.add_command(logs)
