"""`gitdag add`'s workflow options (docs/workflows.md): conditions, outputs, handlers, policies."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from gitdag.cli._common import split_list
from gitdag.cli.types import FiniteFloat
from gitdag.core.summary import ErrorKind

F = TypeVar("F", bound=Callable[..., Any])


def flow_options(func: F) -> F:
    """Add --when, --exports, --on-failure, --on-success, --timeout, --continue-on, --retry-*,
    and the agent-loop bounds --max-iterations and --max-duration."""
    options = [
        click.option("--when", default=None, help="Condition over upstream statuses/outputs."),
        click.option("--exports", default="", help="Comma-separated output keys it must set."),
        click.option("--on-failure", default="", help="Comma-separated handler node ids."),
        click.option("--on-success", default="", help="Comma-separated handler node ids."),
        click.option("--timeout", "timeout_s", type=float, default=None, help="Seconds."),
        click.option("--continue-on", type=click.Choice(["failure"]), default=None),
        click.option("--skipped-deps", type=click.Choice(["satisfy", "skip"]), default=None),
        click.option("--retry-max", type=int, default=None, help="Attempts in all."),
        click.option("--retry-backoff", type=float, default=None, help="First backoff, seconds."),
        click.option(
            "--retry-kinds",
            default="",
            help="Comma-separated failure kinds to retry: " + ", ".join(k.value for k in ErrorKind),
        ),
        click.option("--max-iterations", type=click.IntRange(1, 10000), default=None,
                     help="Agent loop: iterations in one attempt (graph default: 20)."),
        click.option("--max-duration", "max_duration_s", type=FiniteFloat(0, 30 * 86400,
                     min_open=True), default=None, help="Agent loop: seconds from iteration 1's "
                     "start, then the run is stopped (graph default: 86400)."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def flow_fields(opts: Mapping[str, Any]) -> dict[str, Any]:
    """The node fields the workflow options set (only those given)."""
    fields: dict[str, Any] = {"when": opts["when"], "timeout_s": opts["timeout_s"],
                              "skipped_deps": opts["skipped_deps"],
                              "max_iterations": opts["max_iterations"],
                              "max_duration_s": opts["max_duration_s"]}  # fmt: skip
    for name in ("exports", "on_failure", "on_success"):
        if opts[name]:
            fields[name] = split_list(opts[name])
    if opts["continue_on"]:
        fields["continue_on"] = [opts["continue_on"]]
    retry: dict[str, Any] = {}
    if opts["retry_max"] is not None:
        retry["max_attempts"] = opts["retry_max"]
    if opts["retry_backoff"] is not None:
        retry["backoff_s"] = opts["retry_backoff"]
    if opts["retry_kinds"]:
        retry["kinds"] = split_list(opts["retry_kinds"])
    if retry:
        fields["retry"] = retry
    return {k: v for k, v in fields.items() if v is not None}
