"""The `gitdag` command line: click commands that parse, call one function and print."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from gitdag import __version__
from gitdag.readonly import failure


class _Group(click.Group):
    """Maps gitdag errors to one-line messages and exit codes, in one place (spec §9)."""

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None,
                     **extra: Any) -> click.Context:  # fmt: skip
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            _usage_error(exc)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            _usage_error(exc)
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            # One mapping for click and the fast start of the read-only commands (readonly.py).
            ctx.exit(failure(exc))

    # Command modules load on first use, so `gitdag status` does not pay for importing the
    # supervisor, runners, review and remote code (measured in bench/status.py), nor `gitdag
    # run` for the remote worker's. The graph commands are looked up first, then the module
    # COMMAND_HOMES names; any other name, and --help, load every `*_cmds` module.
    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            _load_commands(self, everything=False, home=COMMAND_HOMES.get(cmd_name))
        if cmd_name not in self.commands:
            _load_commands(self, everything=True)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        _load_commands(self, everything=True)
        return super().list_commands(ctx)


_LOADED: set[str] = set()

# The module that registers each command outside graph_cmds (tests/cli/test_command_homes.py
# holds it true); a command missing here still works, through loading every module.
COMMAND_HOMES = {
    "doctor": "doctor_cmds",
    "apply": "flow_cmds",
    "logs": "logs_cmds",
    "work": "remote_cmds",
    **dict.fromkeys(
        ["apply-proposal", "diff", "hook", "hooks", "propose", "reset", "revert"], "review_cmds"
    ),
    **dict.fromkeys(
        ["answer", "cancel", "demo", "gc", "pause", "resume", "retry", "run"], "run_cmds"
    ),
    "sync": "sync_cmds",
    "ui": "ui_cmds",
}


def _load_commands(group: click.Group, *, everything: bool, home: str | None = None) -> None:
    import importlib
    import pkgutil

    names = ["graph_cmds", *([home] if home else [])]
    if everything:
        found = (m.name for m in pkgutil.iter_modules(__path__) if m.name.endswith("_cmds"))
        names += sorted(n for n in found if n != "graph_cmds")
    for name in names:
        if name not in _LOADED:
            _LOADED.add(name)
            importlib.import_module(f"gitdag.cli.{name}").register(group)


def _usage_error(exc: click.UsageError) -> NoReturn:
    """A bad command line, as one line like every other input error (exit 2), not click's four."""
    where = exc.ctx.command_path if exc.ctx is not None else "gitdag"
    message = " ".join(exc.format_message().split())
    click.echo(f"gitdag: error: {message} (see `{where} -h`)", err=True)
    sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gitdag")
@click.option(
    "-C", "directory", type=click.Path(file_okay=False), default=None,
    help="Run as if started in this directory.",
)  # fmt: skip
@click.pass_context
def cli(ctx: click.Context, directory: str | None) -> None:
    """gitdag: a git-native orchestrator for coding agents.

    The work graph lives on the orphan branch dagain/state, one YAML file per node; every
    transition is one commit. See `gitdag COMMAND --help`.
    """
    import os

    if directory:
        os.chdir(directory)
    ctx.ensure_object(dict)


def main() -> None:
    """Entry point of the `gitdag` console script."""
    cli(prog_name="gitdag")
