"""Claims the state branch lost: `dagain/state` moved back below them (spec §7, issue 12.5).

The ref is the truth: a head moved back (by a runner's `git update-ref`, a hand-made
`git branch -f`) is what the supervisor builds on next. But the attempts it dropped were real
starts of real agents, and a runner that rewinds the branch below its own claim every time would
otherwise be started as "attempt 1" forever. So the guard counts the claims each rewind
dropped, per node, in `.dagain/local/lost-claims.json`, and the supervisor adds them to a node's
attempts when it decides whether the node may start again: at most `retry.max_attempts` starts,
then the node fails (and escalates) like any node whose attempts are spent.

An entry holds while the node's `attempt_base` is what it was (a `gitdag retry` starts afresh).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from gitdag.core.commit_message import step_info
from gitdag.store.delta import commit_of
from gitdag.store.ranges import commits_between, descends
from gitdag.store.state import StateStore

LEDGER = "lost-claims.json"


def lost_claims(store: StateStore, known: str, head: str) -> list[str]:
    """The nodes claimed in commits `known` had and `head` lacks (one entry per lost claim)."""
    if known == head or descends(store, head, known, limit=200):
        return []  # the usual move: new commits on top of the known head
    lost = commits_between(store, head, known)  # after their merge base, up to the old head
    found = []
    for sha in lost:
        info = step_info(commit_of(store.repo, sha).message.decode("utf-8", "replace"))
        if info.verb == "claim" and info.subject:
            found.append(info.subject)
    return found


class Ledger:
    """Per node: how many of its claims the state branch lost, under which `attempt_base`."""

    def __init__(self, local: Path) -> None:
        self.path = local / LEDGER
        self.entries: dict[str, dict[str, int]] = {}
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.entries = {
                str(k): {"lost": int(v["lost"]), "base": int(v["base"])} for k, v in data.items()
            }

    def lost(self, node_id: str, attempt_base: int) -> int:
        """Lost claims of the node that still count."""
        entry = self.entries.get(node_id)
        return entry["lost"] if entry and entry["base"] == attempt_base else 0

    def add(self, node_id: str, attempt_base: int) -> int:
        """Count one more lost claim; return the node's total."""
        total = self.lost(node_id, attempt_base) + 1
        self.entries[node_id] = {"lost": total, "base": attempt_base}
        self._save()
        return total

    def _save(self) -> None:
        with contextlib.suppress(OSError):  # losing it only loosens the bound, never a result
            self.path.write_text(json.dumps(self.entries, sort_keys=True) + "\n")
