"""Where a branch is checked out, and whether that checkout is clean (`advance.py` moves it).

Spec §2: gitdag never touches anyone's checkout, except that when the target branch is checked
out somewhere and that checkout is clean, advancing the target updates it too, so it never shows
the merge reversed as staged changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitdag.workspace.gitcli import head_ref, run_git

# An operation in progress in a checkout: its index and files are not ours to move.
_IN_PROGRESS = (
    "MERGE_HEAD",
    "CHERRY_PICK_HEAD",
    "REVERT_HEAD",
    "rebase-merge",
    "rebase-apply",
    "BISECT_LOG",
)


@dataclass(frozen=True)
class Checkout:
    """A working tree whose HEAD is (or is being rebased onto) the branch."""

    path: Path
    admin: Path
    busy: str | None  # the operation in progress there, if any


def checkouts_of(root: Path, git_dir: Path, ref: str) -> list[Checkout]:
    """Every working tree of the repository that has `ref` checked out.

    Reads the HEAD files directly (what `git worktree list --porcelain` reports): this runs on
    every merge. A registration whose directory is gone has nothing to update and is skipped.
    """
    found: list[Checkout] = []
    candidates: list[tuple[Path, Path]] = []
    if root.resolve() != git_dir.resolve():
        candidates.append((root, git_dir))
    admins = git_dir / "worktrees"
    if admins.is_dir():
        for admin in sorted(admins.iterdir()):
            candidates.append((admin, admin))  # the checkout's path is read only if it matches
    for path, admin in candidates:
        head = head_ref(admin)
        # A rebase detaches HEAD: only a detached checkout can be rebasing onto `ref`.
        if head != ref and (head is not None or _rebasing(admin) != ref):
            continue
        if path == admin:
            try:
                path = Path((admin / "gitdir").read_text().strip()).parent
            except OSError:
                continue
        if not path.is_dir():
            continue
        busy = next((m for m in _IN_PROGRESS if (admin / m).exists()), None)
        found.append(Checkout(path=path, admin=admin, busy=busy))
    return found


def _rebasing(admin: Path) -> str | None:
    for d in ("rebase-merge", "rebase-apply"):
        try:
            return (admin / d / "head-name").read_text().strip()
        except OSError:
            continue
    return None


def dirty_reason(checkout: Checkout) -> str | None:
    """Why the checkout is not clean, or None when it is.

    Not clean: staged or unstaged changes to tracked files, or an operation in progress.
    Untracked files are allowed: one in the way makes the update refuse later, changing nothing.
    """
    if checkout.busy:
        return f"{checkout.path}: a git operation is in progress ({checkout.busy})"
    proc = run_git(
        ["status", "--porcelain", "-z", "--untracked-files=no"], checkout.path, check=False
    )
    if proc.returncode != 0:
        return f"{checkout.path}: git status failed: {proc.stderr.strip()}"
    if proc.stdout.strip("\0"):
        changed = [p[3:] for p in proc.stdout.split("\0") if len(p) > 3][:5]
        return f"{checkout.path} has uncommitted changes ({', '.join(changed)})"
    return None
