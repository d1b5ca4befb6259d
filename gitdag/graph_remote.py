"""Which remote holds the graph, told cheaply (`gitdag status` asks it on every run).

Only this module is imported by a `status` in a clone without a remote (start time matters:
bench/status.py); the rest of the remote view is `status_remote.py`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
