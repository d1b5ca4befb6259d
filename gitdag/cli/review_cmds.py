"""Review and recovery commands: diff, revert, reset, propose, apply-proposal, hooks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from gitdag.cli._common import (
    committed_data,
    echo_json,
    json_option,
    open_store,
    transition_data,
)
from gitdag.cli.node_opts import node_fields, node_options
from gitdag.cli.steer_opts import open_graph, remote_options
from gitdag.core import codec
from gitdag.core.diff import render_text
from gitdag.core.transitions import Rejected
from gitdag.core.transitions import title as title_line
from gitdag.errors import GraphError, InputError
from gitdag.remote.steer import SteeringStore, fetch_proposal, propose_remote
from gitdag.store import hooks as hookfiles
from gitdag.store import proposal_branches, ranges
from gitdag.store import repo as repos
from gitdag.store import revert as reverts
from gitdag.store.delta import diff_revisions, resolve
from gitdag.store.state import Committed, StateStore


@click.command()
@click.argument("rev1")
@click.argument("rev2")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def diff(rev1: str, rev2: str, as_json: bool) -> None:
    """What changed in the graph from REV1 to REV2, node by node."""
    with open_store() as store:
        result = diff_revisions(store, rev1, rev2)
    if as_json:
        echo_json(result.as_data())
    else:
        click.echo(render_text(result), nl=False)


def run_validate(spec: str | None, *, as_json: bool = False) -> None:
    """`gitdag validate [REV | A..B]`: print `ok`, or every problem and exit 2."""
    with open_store() as store:
        problems, hint, notes = validate_spec(store, spec)
    if as_json:
        echo_json({"ok": not problems, "problems": problems, "hint": hint, "notes": notes})
        if problems:
            raise SystemExit(2)
        return
    for line in notes:
        click.echo(f"note: {line}")
    if problems:
        for line in problems:
            click.echo(line, err=True)
        click.echo(f"{len(problems)} problem(s)" + (f"; {hint}" if hint else ""), err=True)
        raise SystemExit(2)
    click.echo("ok")


def validate_spec(store: StateStore, spec: str | None) -> tuple[list[str], str | None, list[str]]:
    """Return the problems of `validate [REV | A..B]` (one line each), a repair hint, and notes."""
    if spec is not None and ".." in spec:
        base, head = ranges.parse_range(store, spec)
        report = ranges.validate_range(store, base, head)
        lines = [str(p) for p in report.problems]
        bad = report.first_bad_commit()
        hint = None
        if bad is not None:
            hint = ranges.repair_hint(bad, ranges.first_parent(store, bad))
        notes = [
            f"commit {bad[:12]} breaks the rules but was repaired by {fix[:12]}"
            for bad, fix in report.repairs.items()
            if any(p.commit == bad for p in report.repaired)
        ]
        return lines, hint, notes
    commit = resolve(store, spec) if spec else store.head()
    if commit is None:
        return ["dagain/state: branch does not exist (run `gitdag init`)"], None, []
    return [str(p) for p in ranges.graph_problems_at(store, commit)], None, []


def _report(outcome: Committed | Rejected | None, what: str, nothing: str,
            as_json: bool = False) -> None:  # fmt: skip
    if isinstance(outcome, Rejected):
        raise GraphError(f"{what} refused, nothing written: {outcome}")
    if as_json:
        data: dict[str, Any] = {"changed": outcome is not None, "message": None, "head": None,
                                "transition": None, "reverted": [], "stopped": []}  # fmt: skip
        if outcome is None:
            data["message"] = nothing
        else:
            data.update(committed_data(outcome))
            pairs = outcome.transition.trailers
            data["reverted"] = [v for k, v in pairs if k == "Gitdag-Reverts"]
            data["stopped"] = [v for k, v in pairs if k == "Gitdag-Stop"]
        echo_json(data)
        return
    if outcome is None:
        click.echo(nothing)
        return
    transition = outcome.transition
    click.echo(f"{title_line(transition)} ({outcome.head[:12]})")
    for key, value in transition.trailers:
        if key == "Gitdag-Reverts":
            click.echo(f"  reverted {value[:12]}")
        elif key == "Gitdag-Stop":
            click.echo(f"  {value} is no longer running: a running supervisor stops its runner")


@click.command()
@click.argument("commit")
@click.option(
    "--force",
    is_flag=True,
    help="Also revert the later transitions that build on COMMIT (listed in the commit).",
)
@remote_options
@json_option
def revert(commit: str, force: bool, as_json: bool, remote: str | None, local_only: bool) -> None:
    """Undo the transition COMMIT with a new commit on dagain/state."""
    with open_graph(remote, local_only) as store:
        outcome = reverts.revert(store, commit, actor=repos.human_actor(store.repo), force=force)
    _report(outcome, "revert", "nothing to revert: the graph already has that change undone",
            as_json)  # fmt: skip


@click.command()
@click.option("--to", "rev", required=True, help="The revision whose graph to restore.")
@click.option(
    "--rerun-integrated",
    is_flag=True,
    help="Also reopen nodes whose change is already on the target (they run and merge again).",
)
@remote_options
@json_option
def reset(rev: str, rerun_integrated: bool, as_json: bool, remote: str | None,
          local_only: bool) -> None:  # fmt: skip
    """Make the graph equal to its state at REV, as one new commit (history is kept).

    Nodes whose change is already on the target stay done unless --rerun-integrated.
    """
    integrated: list[str] = []
    with open_graph(remote, local_only) as store:
        outcome = reverts.reset(
            store, rev, actor=repos.human_actor(store.repo),
            rerun_integrated=rerun_integrated, integrated=integrated,
        )  # fmt: skip
    if integrated and not isinstance(outcome, Rejected) and not as_json:
        names = ", ".join(integrated)
        if rerun_integrated:
            click.echo(f"reopened although their change is on the target (will run again): {names}")
        else:
            click.echo(
                f"kept done, their change is already on the target: {names} "
                "(--rerun-integrated to run them again)"
            )
    _report(outcome, "reset", f"nothing to reset: the graph already equals {rev}'s", as_json)


def _read_nodes_file(path: str) -> list[Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    try:
        data: Any = codec.load_yaml(text)
    except codec.DecodeError as exc:
        raise InputError(f"{path}: {exc}") from None
    if isinstance(data, list):
        return data  # a bare YAML list of nodes
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a list of nodes (or a mapping with `nodes:`)")
    for key in ("nodes", "addNodes"):
        if isinstance(data.get(key), list):
            return list(data[key])
    raise InputError(f"{path}: expected a list of nodes (or a mapping with `nodes:`)")


@click.command()
@click.argument("name")
@click.option(
    "--from-file",
    "from_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="YAML list of nodes (an existing id: an edit of the fields given).",
)
@click.option("--add", "node_id", default=None, help="Add one node with this id (options below).")
@node_options(title_required=False)
@click.option("-m", "--message", default="", help="The commit's summary paragraph.")
@remote_options
@json_option
def propose(
    name: str, from_file: str | None, node_id: str | None, message: str, as_json: bool,
    remote: str | None, local_only: bool, **node: Any,
) -> None:  # fmt: skip
    """Write graph edits on dagain/proposals/NAME for review (a pull request into dagain/state)."""
    if from_file is not None and node_id is None:
        nodes = _read_nodes_file(from_file)
    elif node_id is not None and from_file is None:
        if not node["title"]:
            raise click.UsageError("--add needs --title")
        nodes = [node_fields(node_id, node)]
    else:
        raise click.UsageError("give exactly one of --from-file FILE or --add ID")
    with open_graph(remote, local_only) as store:
        shared = None
        if isinstance(store, SteeringStore):  # also pushes the proposal branch, one push
            outcome = propose_remote(store, name, nodes, summary=message)
            shared = store.remote.remote
        else:
            outcome = proposal_branches.propose_nodes(store, name, nodes, summary=message)
    if isinstance(outcome, Rejected):
        raise GraphError(f"proposal refused, nothing written: {outcome}")
    if as_json:
        echo_json({"name": outcome.name, "branch": outcome.branch, "head": outcome.head,
                   "base": outcome.base, "transition": transition_data(outcome.transition),
                   "review": f"gitdag diff dagain/state {outcome.branch}",
                   "apply": f"gitdag apply-proposal {name}"})  # fmt: skip
        return
    click.echo(f"{title_line(outcome.transition)} on {outcome.branch} ({outcome.head[:12]})")
    click.echo(f"review: gitdag diff dagain/state {outcome.branch}")
    if shared is not None:
        click.echo(f"pushed to {shared}   apply: gitdag apply-proposal {name} --remote {shared}")
    else:
        click.echo(f"share:  git push <remote> {outcome.branch}   apply: gitdag apply-proposal "
                   f"{name}")  # fmt: skip


@click.command("apply-proposal")
@click.argument("name")
@remote_options
@json_option
def apply_proposal(name: str, as_json: bool, remote: str | None, local_only: bool) -> None:
    """Merge the proposal NAME into dagain/state (semantic three-way merge, one commit)."""
    with open_graph(remote, local_only) as store:
        if isinstance(store, SteeringStore):  # the remote's proposal branch, when it has one
            fetch_proposal(store, name)
        outcome = proposal_branches.apply_proposal(store, name, actor=repos.human_actor(store.repo))
    _report(outcome, "apply-proposal", f"nothing to apply: dagain/state already holds {name}",
            as_json)  # fmt: skip


@click.group()
def hooks() -> None:
    """Git hooks that validate dagain/state before it moves."""


@hooks.command("install")
@click.option("--server", is_flag=True, help="Install the server-side hook (bare repositories).")
@click.option(
    "--hook",
    "names",
    multiple=True,
    type=click.Choice([*hookfiles.CLIENT_HOOKS, *hookfiles.SERVER_HOOKS]),
    help="Install exactly these hooks (repeatable).",
)
@click.option(
    "--ci",
    is_flag=True,
    help="Also put the GitHub Actions workflow on dagain/state (.github/workflows/).",
)
@json_option
def hooks_install(server: bool, names: tuple[str, ...], ci: bool, as_json: bool) -> None:
    """Install the pre-push hook (or with --server, pre-receive) without clobbering others."""
    from gitdag.store.repo import open_repo
    from gitdag.template import template_dir

    data: dict[str, Any] = {"ci": None, "hooks": [], "schedules": None}
    if ci:
        text = (template_dir() / "ci" / "validate-state.yml").read_text(encoding="utf-8")
        with open_store() as store:
            head = hookfiles.install_ci(store, text, repos.human_actor(store.repo))
        where = "dagain/state:.github/workflows/validate-state.yml"
        data["ci"] = {"path": where, "head": head}
        if not as_json:
            click.echo(f"wrote {where} ({head[:12]}); push dagain/state" if head
                       else f"{where} is up to date")  # fmt: skip
        from gitdag.cli.flow_cmds import install_schedules  # workflow schedules (issue 16)

        data["schedules"] = install_schedules(as_json=as_json)

    wanted = names or (("pre-receive",) if server else hookfiles.CLIENT_HOOKS)
    repo, paths = open_repo(".")
    try:
        done = hookfiles.install(repo, paths, wanted)
    finally:
        repo.close()
    if as_json:
        data["hooks"] = [
            {"name": item.name, "path": str(item.path), "action": item.action,
             "active": item.action != "alongside",
             "chain_hint": hookfiles.chain_hint(item) if item.action == "alongside" else None}
            for item in done
        ]  # fmt: skip
        echo_json(data)
        return
    for item in done:
        if item.action == "alongside":
            click.echo(
                f"{item.path.parent / item.name} exists and is not gitdag's: left as it is.\n"
                f"Installed {item.path}; it is NOT active until your hook calls it, e.g.:\n"
                f"{hookfiles.chain_hint(item)}"
            )
        else:
            click.echo(f"{item.action} {item.path}")


@click.command("hook", hidden=True, context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def hook(name: str, args: tuple[str, ...]) -> None:
    """Entry point of the hook shims: `gitdag hook pre-push|pre-receive|update ARGS`."""
    code, lines = hookfiles.run_hook(name, list(args), sys.stdin)
    for line in lines:
        click.echo(line, err=True)
    raise SystemExit(code)


def register(group: click.Group) -> None:
    for command in (diff, revert, reset, propose, apply_proposal, hooks, hook):
        group.add_command(command)
