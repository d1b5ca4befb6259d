"""Results a remote refused, kept in the clone until they land (`gitdag work`, issue 12).

A refused push (a server hook, a permission) is the environment's doing, not the agent's: the
finished attempt's result and work record are written to `.dagain/local/pending/<id>.json`
before the push, dropped once it lands, and pushed again by the next worker of the same clone
instead of reopening the node, so the agent is not run a second time for it.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from gitdag.core.model import Work
from gitdag.core.results import RunnerResult


class PendingResults:
    """One file per node whose finished attempt has not landed on the remote yet."""

    def __init__(self, local: Path) -> None:
        self.dir = local / "pending"

    def save(self, node_id: str, attempt: int, result: RunnerResult, work: Work | None) -> None:
        """Keep a result before pushing it (best effort: losing it costs a re-run only)."""
        data = {
            "attempt": attempt,
            "result": result.model_dump(mode="json"),
            "work": work.model_dump(mode="json") if work is not None else None,
        }
        with contextlib.suppress(OSError):
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = self.dir / f"{node_id}.json.tmp"
            tmp.write_text(json.dumps(data), encoding="utf-8")
            tmp.replace(self.dir / f"{node_id}.json")

    def load(self, node_id: str, attempt: int) -> tuple[RunnerResult, Work | None] | None:
        """The kept result of that attempt, or None."""
        try:
            data = json.loads((self.dir / f"{node_id}.json").read_text(encoding="utf-8"))
            if data.get("attempt") != attempt:
                return None
            result = RunnerResult.model_validate(data["result"])
            work = Work.model_validate(data["work"]) if data.get("work") else None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return result, work

    def drop(self, node_id: str) -> None:
        """The result landed (or can never land): forget it."""
        (self.dir / f"{node_id}.json").unlink(missing_ok=True)
