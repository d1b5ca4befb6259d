"""Which remote holds the graph, told cheaply (`gitdag status` asks it on every run).

Only this module is imported by a `status` in a clone without a remote (start time matters:
bench/status.py); the rest of the remote view is `status_remote.py`. `compare` is the line
`status` and `ui` print about the local copy.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gitdag.store.remote import RemoteState
    from gitdag.store.state import StateStore

_REMOTE_KEY = re.compile(r"^remote\s*:", re.MULTILINE)
LOCAL: dict[str, Any] = {"source": "local", "remote": None, "behind": None, "ahead": None,
                         "warning": None}  # fmt: skip


def graph_remote(store: StateStore) -> str | None:
    """The graph's default remote, or None when it has none.

    `remote.name` of `.dagain/config.yaml`, else the upstream of `dagain/state` (checked without
    parsing a config that has no `remote:`).

    Raises:
      ConfigError: a bad config file that has a `remote:` key.
    """
    path = store.paths.dagain / "config.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    if _REMOTE_KEY.search(text):
        from gitdag.config import load_settings

        name = load_settings(store.paths.dagain).remote.name
        if name:
            return name
    try:
        value = store.repo.get_config().get((b"branch", b"dagain/state"), b"remote")
    except KeyError:
        return None
    upstream = value.decode(errors="replace").strip() if isinstance(value, bytes) else ""
    return upstream if upstream and upstream != "." else None


def compare(remote: str, local: str | None, head: str, counts: tuple[int, int] | None) -> str:
    """One line: how this clone's `dagain/state` compares with the remote's graph shown."""
    shown = f"graph: {remote}'s dagain/state ({head[:12]})"
    if local is None:
        return f"{shown}; no local dagain/state here (gitdag sync {remote} makes one)"
    if counts is None:
        return shown
    ahead, behind = counts
    if not ahead and not behind:
        return f"{shown}; this clone's copy is up to date"
    if not ahead:
        return f"{shown}; this clone's copy is {behind} transition(s) behind: gitdag sync {remote}"
    lacks = f"this clone has {ahead} transition(s) {remote} lacks"
    if not behind:
        return f"{shown}; {lacks} (made with --local): gitdag sync {remote} pushes them"
    return (f"{shown}; diverged: {lacks}, and is {behind} behind: gitdag sync {remote} replays "
            "them")  # fmt: skip


def apart(state: RemoteState, local: str | None, head: str) -> tuple[int, int] | None:
    """(ahead, behind): transitions only the local `dagain/state` has, only `head` has.

    None when there is no local branch or git cannot tell.
    """
    if local is None:
        return None
    proc = state.git("rev-list", "--left-right", "--count", f"{local}...{head}", check=False)
    parts = proc.stdout.split()
    if proc.returncode == 0 and len(parts) == 2:
        return (int(parts[0]), int(parts[1]))
    return None
