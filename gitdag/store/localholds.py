"""Start-side holds of the running supervisor or worker, for `gitdag status` (issue 12).

A start that waits on the environment (a runner's executable missing, the target branch gone)
changes no node, so the state branch cannot show it. The supervisor (and `gitdag work`) keeps
them in `.dagain/local/holds.json` while it runs, rewritten only when they change; status shows
them only while the process that wrote them still holds the repository's supervisor lock (its
pid in `supervisor.json`), so a killed supervisor's file is never taken for the truth.
"""

from __future__ import annotations

import contextlib
import os

TYPE_CHECKING = False  # typing and pathlib cost a quick `gitdag status` (readonly.py) a few ms
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

FILE = "holds.json"
SHOWN = 20  # node ids kept per hold; `count` says how many wait in all


def write(local: Path, holds: list[dict[str, Any]]) -> None:
    """Replace the file with `holds` (none: remove it). Best effort: it is only a report."""
    import json

    path = local / FILE
    with contextlib.suppress(OSError):
        if not holds:
            path.unlink(missing_ok=True)
            return
        tmp = local / (FILE + ".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "holds": holds}), encoding="utf-8")
        tmp.replace(path)


def read(local: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The holds of the running supervisor or worker, or [] (none, unreadable, or stale).

    Each hold: `kind`, `reason`, `repair`, `since` (ISO 8601), `nodes` (up to SHOWN ready ids
    it keeps from starting; empty when it keeps every start) and `count` (None: every start).
    """
    try:
        with open(os.path.join(local, FILE), encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, ValueError):
        return []  # no supervisor holds anything: most runs, and json stays unloaded
    import json

    try:
        data = json.loads(text)
        with open(os.path.join(local, "supervisor.json"), encoding="utf-8") as fh:
            owner = json.loads(fh.read())
        pid = data["pid"]
        holds = data["holds"]
        if not isinstance(pid, int) or owner.get("pid") != pid or not isinstance(holds, list):
            return []
        os.kill(pid, 0)  # the writer still runs (it removes the file when it stops)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []
    return [h for h in holds if isinstance(h, dict) and {"kind", "reason", "repair"} <= set(h)]
