"""Refuse to build on a state head that fails validation (spec §7, issue 5).

The supervisor trusts its own commits; commits anyone else made since the last verified head (a
person's `gitdag answer`, a CI worker, a hand-made `git commit` or `update-ref`) are checked for
legality before the next transition is built on them. The last verified head is kept under
`.dagain/local/` so a restart does not re-check the whole history.
"""

from __future__ import annotations

import contextlib
from collections import deque
from pathlib import Path

from dulwich.objects import Commit, ObjectID

from gitdag.errors import InputError
from gitdag.store.layout import STATE_BRANCH
from gitdag.store.ranges import first_invalid
from gitdag.store.state import StateStore

WALK_LIMIT = 20_000


class HeadCheck:
    """Remembers the last verified head and the commits this supervisor wrote."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.path: Path = store.paths.local / "verified-head"
        self.own: deque[str] = deque(maxlen=4096)
        self._own_set: set[str] = set()
        self.verified: str | None = self._load()

    def _load(self) -> str | None:
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return text or None

    def _save(self, head: str) -> None:
        with contextlib.suppress(OSError):
            self.path.write_text(head + "\n")

    def wrote(self, head: str) -> None:
        """Record a commit this supervisor made (trusted, never re-checked)."""
        if len(self.own) == self.own.maxlen:
            self._own_set.discard(self.own[0])
        self.own.append(head)
        self._own_set.add(head)

    def foreign_since(self, head: str) -> tuple[bool, bool]:
        """Walk first parents back to the verified head: (any foreign commit?, verified found?)."""
        current: str | None = head
        foreign = False
        for _ in range(WALK_LIMIT):
            if current is None:
                return foreign, self.verified is None
            if current == self.verified:
                return foreign, True
            if current not in self._own_set:
                foreign = True
            obj = self.store.repo.object_store[ObjectID(current.encode())]
            if not isinstance(obj, Commit) or not obj.parents:
                return foreign, self.verified is None
            current = obj.parents[0].decode()
        return True, False

    def verify(self, head: str) -> None:
        """Check the commits since the verified head that this supervisor did not write.

        Raises:
          InputError: a commit breaks the rules; the message names it and says how to repair it.
        """
        if head == self.verified:
            return
        foreign, reachable = self.foreign_since(head)
        if foreign:
            # An unreachable verified head means the branch was reset to another line of history
            # (`git branch -f`): a deliberate reset. The graph it shows must still be valid.
            base = self.verified if reachable else head
            invalid = first_invalid(self.store, base, head)
            if invalid is not None:
                raise InputError(
                    f"{STATE_BRANCH} at {head[:12]} fails validation: {invalid}; "
                    "nothing more is built on it until then"
                )
        self.verified = head
        self._save(head)
