"""Workflow schedules into CI triggers: gitdag has no daemon, so a forge's cron starts workers.

Pure: the workers template and the schedules recorded in `graph.yaml` in, the workflow text out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_BLOCK = re.compile(r"^(  schedule:\n)((?:    - cron: .*\n)+)", re.MULTILINE)


def crons(schedules: Mapping[str, tuple[str, ...]] | None) -> list[tuple[str, str]]:
    """Return `(cron, flow)` pairs, each cron once (the first flow that asked for it)."""
    seen: dict[str, str] = {}
    for flow, items in sorted((schedules or {}).items()):
        for cron in items:
            seen.setdefault(cron, flow)
    return list(seen.items())


def github_workers(template: str, schedules: Mapping[str, tuple[str, ...]] | None) -> str:
    """Return the GitHub Actions workers workflow with each flow's cron among its triggers.

    The template's own cron (workers pick up whatever is ready) stays first.

    Raises:
      ValueError: the template has no `schedule:` block to extend.
    """
    match = _BLOCK.search(template)
    if match is None:
        raise ValueError("the workers template has no `on: schedule:` block")
    present = set(re.findall(r'cron: "([^"]*)"', match.group(2)))
    extra = "".join(
        f'    - cron: "{cron}" # flow {flow}\n'
        for cron, flow in crons(schedules)
        if cron not in present
    )
    return template[: match.end()] + extra + template[match.end() :]
