"""Scratch checkouts of the target tip for verify, command and plan nodes (never the user's).

One per worker slot. Each is reset before use; the reset is skipped when the target has not
moved and nothing in the checkout changed since the last reset (a walk of mtimes and the
checkout's HEAD), because a reset costs two git processes and a `command` node that runs `true`
should not pay them.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from gitdag.workspace.gitcli import read_ref
from gitdag.workspace.worktrees import Worktrees


@dataclass
class _Slot:
    name: str
    path: Path | None = None
    tip: str | None = None
    fingerprint: tuple[int, int, str] | None = None
    busy: bool = False


def _fingerprint(path: Path, git_dir: Path, name: str) -> tuple[int, int, str]:
    count = 0
    newest = 0
    stack = [str(path)]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    if entry.name == ".git" and current == str(path):
                        continue
                    count += 1
                    st = entry.stat(follow_symlinks=False)
                    newest = max(newest, st.st_mtime_ns)
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except OSError:
            count += 1_000_000  # unreadable: treat as dirty
        with contextlib.suppress(OSError):
            newest = max(newest, os.stat(current).st_mtime_ns)
    head_file = git_dir / "worktrees" / path.name / "HEAD"
    try:
        head = head_file.read_text().strip()
    except OSError:
        head = ""
    return count, newest, head


class ScratchPool:
    """Hands out clean scratch checkouts of the target tip, one per concurrent run."""

    def __init__(self, worktrees: Worktrees) -> None:
        self.worktrees = worktrees
        self.slots: list[_Slot] = []

    def acquire(self, target: str) -> tuple[str, Path]:
        slot = next((s for s in self.slots if not s.busy), None)
        if slot is None:
            slot = _Slot(name=f"slot{len(self.slots)}")
            self.slots.append(slot)
        slot.busy = True
        tip = read_ref(self.worktrees.git_dir, f"refs/heads/{target}")
        clean = (
            slot.path is not None
            and slot.tip == tip
            and slot.fingerprint is not None
            and slot.path.is_dir()
            and _fingerprint(slot.path, self.worktrees.git_dir, slot.name) == slot.fingerprint
        )
        if not clean:
            slot.path = self.worktrees.scratch(target, name=slot.name)
            slot.tip = tip
            slot.fingerprint = _fingerprint(slot.path, self.worktrees.git_dir, slot.name)
        assert slot.path is not None
        return slot.name, slot.path

    def release(self, name: str) -> None:
        for slot in self.slots:
            if slot.name == name:
                slot.busy = False
