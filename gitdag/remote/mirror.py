"""The clone's own target branch, kept equal to the remote's.

Worktrees start from the local target branch and the merge queue lands merges on it first, so a
worker keeps it at the remote's tip: fast-forwarded after each fetch, rolled back when a merge it
made locally lost the race to the remote. Nothing of anyone's is discarded: the only local-only
commits a worker will drop are integration merges (`gitdag: integrate ...`) of node branches it
knows are on the remote (it pushed or fetched them: `known`), which can be remade from there;
anything else stops the worker with a clear error (a crash between a local merge and its push
thus heals itself on the next start).
A checkout of the target (a CI job whose target is the checked-out `main`) moves with the branch
when it is clean, and stops the worker when it is not.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from gitdag.errors import InputError
from gitdag.workspace.advance import Intent, advance_checkout, settle_target
from gitdag.workspace.checkouts import checkouts_of, dirty_reason
from gitdag.workspace.gitcli import read_ref, run_git

ZERO = "0" * 40
INTEGRATE_SUBJECT = "gitdag: integrate "


def move_target(root: Path, git_dir: Path, target: str, old: str | None, new: str,
                reflog: str, local: Path) -> bool:  # fmt: skip
    """Move the local target from `old` to `new` with compare-and-swap; False if it moved meanwhile.

    Raises:
      InputError: the target is checked out somewhere with changes (its files are not ours).
    """
    ref = "refs/heads/" + target
    if half_moved := settle_target(local, ref):
        raise InputError(f"{half_moved}: gitdag work will not move it until it is repaired")
    checkouts = checkouts_of(root, git_dir, ref)
    if not checkouts:
        proc = run_git(["update-ref", "-m", reflog, ref, new, old or ZERO], root, check=False)
        return proc.returncode == 0
    if len(checkouts) > 1:
        where = ", ".join(str(c.path) for c in checkouts)
        raise InputError(f"{target} is checked out in several places ({where}): gitdag work "
                         "cannot keep it equal to the remote's")  # fmt: skip
    reason = dirty_reason(checkouts[0])
    if reason or old is None:
        raise InputError(f"{target} is checked out and not clean ({reason}): gitdag work "
                         "keeps the local target equal to the remote's and will not touch "
                         "your changes")  # fmt: skip
    intent = Intent(str(checkouts[0].path), ref, old, new, reflog.removeprefix("gitdag: "))
    landing = advance_checkout(checkouts[0], intent, local, reflog, None)
    if landing.outcome == "refused" and read_ref(git_dir, ref) == old:
        raise InputError(f"cannot move the checkout of {target}: {landing.reason}")
    return landing.outcome == "landed"


def mirror(root: Path, git_dir: Path, target: str, tip: str, remote: str,
           known: Collection[str] = (), *, local_dir: Path) -> None:  # fmt: skip
    """Make the local target branch point at `tip`, the remote's (see the module doc).

    Raises:
      InputError: the local target has commits the remote lacks that are not gitdag's own
        integration merges, or its checkout is not clean.
    """
    ref = "refs/heads/" + target
    for _ in range(3):
        local = read_ref(git_dir, ref)
        if local == tip:
            return
        if local is not None and not _is_ancestor(root, local, tip):
            extra = _only_local(root, tip, local, known)
            if extra:
                raise InputError(
                    f"local branch {target} has {len(extra)} commit(s) that {remote} lacks "
                    f"(first {extra[0][:12]}): gitdag work keeps it equal to {remote}/{target} "
                    "and will not discard them; push or move them first"
                )
        reflog = f"gitdag: mirror {remote}/{target}"
        if move_target(root, git_dir, target, local, tip, reflog, local_dir):
            return
    raise InputError(f"local branch {target} keeps moving: is another process merging into it?")


def _is_ancestor(root: Path, older: str, newer: str) -> bool:
    proc = run_git(["merge-base", "--is-ancestor", older, newer], root, check=False)
    return proc.returncode == 0


def _only_local(root: Path, tip: str, local: str, known: Collection[str]) -> list[str]:
    """The local-only commits, less integration merges of branches on the remote (remade there)."""
    # The first-parent line only: the other side of an integration merge is the node's branch.
    out = run_git(["log", "--first-parent", "--format=%H %P%x00%s", f"{tip}..{local}"], root).stdout
    foreign = []
    for line in out.splitlines():
        ids, _, subject = line.partition("\0")
        parts = ids.split()
        # A node's merge has 2 parents; a transaction group's has the tip and every member.
        merged_in = parts[2:]
        remade = (len(parts) >= 3 and subject.startswith(INTEGRATE_SUBJECT)
                  and all(p in known for p in merged_in))  # fmt: skip
        if not remade:
            foreign.append(parts[0] if parts else line)
    return foreign
