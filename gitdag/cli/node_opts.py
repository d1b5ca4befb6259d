"""The options that describe one node: shared by `gitdag add` and `gitdag propose --add`.

One list, so the two commands cannot drift apart in names, defaults or help text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from gitdag.cli._common import split_list
from gitdag.cli.types import bounded_int
from gitdag.core.summary import Kind

F = TypeVar("F", bound=Callable[..., Any])


def node_options(*, title_required: bool) -> Callable[[F], F]:
    """Add the node options (--title … --runner) to a command, in this order.

    The command receives them as keyword arguments; `node_fields` turns them into a node.
    `title_required`: `gitdag add` requires --title; `propose` only needs it with --add.
    """
    options = [
        click.option("--title", required=title_required),
        click.option(
            "--kind", type=click.Choice([k.value for k in Kind]), default="task", show_default=True
        ),
        click.option("--deps", default="", help="Comma-separated ids that must be done first."),
        click.option(
            "--after", default="", help="Comma-separated ids that must be terminal first."
        ),
        click.option("--run", "run_cmd", default=None, help="Shell command (command nodes)."),
        click.option("--description", default=""),
        click.option("--parent", default=None),
        click.option("--priority", type=bounded_int(), default=0),
        click.option(
            "--ownership", default="", help="Comma-separated path globs this node may change."
        ),
        click.option("--labels", default="", help="Comma-separated worker labels this node needs."),
        click.option("--acceptance", multiple=True, help="An acceptance criterion (repeatable)."),
        click.option(
            "--verify", "verify_cmds", multiple=True, help="A command that checks it (repeatable)."
        ),
        click.option(
            "--worktree/--no-worktree", default=False, help="command nodes: run in a worktree."
        ),
        click.option("--role", default=None),
        click.option("--runner", default=None),
    ]

    def decorate(func: F) -> F:
        # click lists a command's options in the order their decorators are written (top first),
        # that is the reverse of the order they are applied in.
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def node_fields(node_id: str, opts: Mapping[str, Any]) -> dict[str, Any]:
    """Node NODE_ID as `actions.add` and `propose_nodes` take it, from `node_options`' values."""
    return {
        "id": node_id, "title": opts["title"], "kind": opts["kind"],
        "deps": split_list(opts["deps"]), "after": split_list(opts["after"]),
        "run": opts["run_cmd"], "description": opts["description"], "parent": opts["parent"],
        "priority": opts["priority"], "ownership": split_list(opts["ownership"]),
        "labels": split_list(opts["labels"]), "acceptance": list(opts["acceptance"]),
        "verify": list(opts["verify_cmds"]), "worktree": opts["worktree"], "role": opts["role"],
        "runner": opts["runner"],
    }  # fmt: skip
