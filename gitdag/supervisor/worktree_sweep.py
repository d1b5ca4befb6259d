"""Node checkouts that must not outlive a run: registrations left without their directory.

Removing a node's worktree moves its directory into `trash/`, then drops its registration in
`.git/worktrees/` (workspace/worktrees.py `_discard`). A supervisor killed between the two
leaves a registration whose checkout is gone: `git worktree list` shows it (prunable) for as long
as nothing registers that node again, and a node that is done never is. Crash recovery and the
end of a run drop such registrations of gitdag's own node worktrees; the user's worktrees
(anywhere else, perhaps on an unmounted disk) are never touched, which `git worktree prune` would.
"""

from __future__ import annotations

import shutil

from gitdag.workspace.gitcli import held
from gitdag.workspace.worktrees import SCRATCH_PREFIX, Worktrees, checkout_of


def prune_lost_registrations(worktrees: Worktrees) -> list[str]:
    """Drop registrations of node worktrees whose directory is gone; return the node ids.

    Only registrations naming a checkout directly under gitdag's `worktrees/` count; the
    worktrees lock is held, as for every removal, so a checkout being made is never dropped.
    """
    admins = worktrees.git_dir / "worktrees"
    if not admins.is_dir():
        return []
    dropped: list[str] = []
    with held(worktrees.local, "worktrees"):
        for admin in sorted(admins.iterdir()):
            where = checkout_of(admin)
            if where is None or where.name.startswith(SCRATCH_PREFIX):
                continue
            if where.parent.resolve() != worktrees.dir.resolve() or where.exists():
                continue
            shutil.rmtree(admin, ignore_errors=True)
            dropped.append(where.name)
    return dropped
