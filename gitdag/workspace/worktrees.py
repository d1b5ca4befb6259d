"""A git worktree per code-changing node, and the scratch checkouts other nodes run in.

Layout, all under `.dagain/local/` (git-ignored, never committed):

```
worktrees/<id>                 node <id>'s checkout, on branch dagain/work/<id>
worktrees/_scratch-<name>      a detached checkout of the target tip, reset before each use
trash/                         removed checkouts waiting to be deleted
locks/worktrees.lock           serialises `git worktree add` (it fails on .git/config.lock)
locks/scratch-<name>.lock      one user of a scratch checkout at a time
```

The git CLI does the work (architecture notes). The target commit a node started from is kept in
the worktree's git admin directory (`gitdag-base`), so it disappears with the worktree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gitdag.crash import crash_point
from gitdag.errors import WorkspaceError
from gitdag.workspace.checkouts import checkouts_of
from gitdag.workspace.gitcli import (
    NO_HOOKS,
    held,
    read_ref,
    run_git,
    tree_of,
)
from gitdag.workspace.objects import move_ref, write_commit

WORK_PREFIX = "dagain/work/"
ARCHIVE_PREFIX = "dagain/archive/"
SCRATCH_PREFIX = "_scratch-"
BASE_FILE = "gitdag-base"
# Never committed from a worktree: gitdag's own directory, should a runner create one there.
_NEVER_COMMIT = ":(top,exclude).dagain/local"


@dataclass(frozen=True)
class WorkInfo:
    """A node's worktree: where it is, its branch, and the target commit it started from."""

    path: Path
    branch: str
    base: str


@dataclass(frozen=True)
class CommitInfo:
    """The node's branch after the runner.

    `head` is its last commit, `changed` whether it has commits beyond its base, and
    `agent_commits` how many of those the agent made itself (the leftover commit not counted).
    """

    head: str
    changed: bool
    agent_commits: int


def work_branch(node_id: str) -> str:
    return WORK_PREFIX + node_id


def archive_branch(node_id: str) -> str:
    return ARCHIVE_PREFIX + node_id


def admin_dir(worktree: Path) -> Path | None:
    """The git admin directory of a linked worktree (`<git_dir>/worktrees/<name>`), if any."""
    try:
        text = (worktree / ".git").read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("gitdir: "):
        return None
    path = Path(text[len("gitdir: ") :])
    return path if path.is_absolute() else (worktree / path).resolve()


class Worktrees:
    """Create, commit in, and remove the worktrees of one repository.

    Args:
      root: the main working tree (the git dir for a bare repository); git runs here.
      git_dir: the common git directory.
      local: `.dagain/local/`.
      background_delete: delete removed checkouts in a detached `rm -rf` (they are first renamed
        into `local/trash/`, so the node's path is free at once); False deletes before returning.
    """

    def __init__(
        self, root: Path, git_dir: Path, local: Path, *, background_delete: bool = True
    ) -> None:
        self.root = Path(root)
        self.git_dir = Path(git_dir)
        self.local = Path(local)
        self.dir = self.local / "worktrees"
        self.trash = self.local / "trash"
        self.background_delete = background_delete
        self._deleting: list[subprocess.Popen[bytes]] = []

    # ---- node worktrees -------------------------------------------------------------------

    def path_for(self, node_id: str) -> Path:
        return self.dir / node_id

    def create(
        self,
        node_id: str,
        target_branch: str,
        *,
        resume: tuple[str, str] | None = None,
        keep: bool = False,
    ) -> WorkInfo:
        """Check out a fresh `dagain/work/<id>` at the target's tip in `worktrees/<id>`.

        Anything left by an earlier attempt (its worktree, its branch) is discarded: the old
        attempt's work was committed already, or is abandoned.

        Args:
          node_id: the node.
          target_branch: the branch whose tip a fresh worktree starts from.
          resume: (head, base) of work carried from an earlier run of the node (an agent loop's
            iteration, a deferral): the worktree checks out `head`, and `base` stays its base.
          keep: the next iteration of a loop whose last run just ended here: the worktree
            stays as it is (with the files git ignores) if it is still on the node's branch at
            `head`; only otherwise is it made afresh.
        """
        kept = self._kept(node_id, resume) if keep else None
        if kept is not None:
            return kept
        tip = resume[0] if resume is not None else self._tip(target_branch)
        path = self.path_for(node_id)
        branch = work_branch(node_id)
        self._ensure_dirs()
        add = [*NO_HOOKS, "worktree", "add", "-q", "--no-track", "-B", branch, str(path), tip]
        with held(self.local, "worktrees"):
            if path.exists() or path.is_symlink():
                self._discard(path)
            proc = run_git(add, self.root, check=False)
            if proc.returncode != 0:
                # A stale registration (its directory gone) or the branch checked out in another
                # of our worktrees: clear both, then try once more.
                self._clear_branch_checkouts(branch, keep=None)
                if path.exists():
                    self._discard(path)
                run_git(add, self.root)
        base = resume[1] if resume is not None else tip
        self._write_base(path, base)
        return WorkInfo(path=path, branch=branch, base=base)

    def _kept(self, node_id: str, resume: tuple[str, str] | None) -> WorkInfo | None:
        """The node's worktree as the last iteration left it, if it is on its branch at `resume`."""
        path = self.path_for(node_id)
        branch = work_branch(node_id)
        admin = admin_dir(path)
        if admin is None or not admin.is_dir() or _head_of(admin) != "refs/heads/" + branch:
            return None
        head = read_ref(self.git_dir, "refs/heads/" + branch)
        base = resume[1] if resume is not None else self.base_of(node_id)
        if head is None or base is None or (resume is not None and head != resume[0]):
            return None
        self._write_base(path, base)
        return WorkInfo(path=path, branch=branch, base=base)

    def base_of(self, node_id: str) -> str | None:
        """The target commit the node's worktree started from, or None if unknown."""
        admin = admin_dir(self.path_for(node_id))
        try:
            return (admin / BASE_FILE).read_text().strip() if admin else None
        except OSError:
            return None

    def commit_leftovers(
        self, node_id: str, attempt: int, message: str | None = None, *, base: str | None = None
    ) -> CommitInfo:
        """Commit whatever the runner left uncommitted in the node's worktree.

        Commits the agent made itself stay as they are. If the agent moved the worktree off the
        node's branch (a detached HEAD, another branch), the node's branch is moved to what the
        agent checked out, so its commits are not lost.

        Args:
          node_id: the node.
          attempt: its attempt number (named in the commit message).
          message: the commit's subject; a default names the node and attempt.
          base: the commit the work started from (default: the one recorded at `create`).
        """
        path = self.path_for(node_id)
        branch = work_branch(node_id)
        ref = "refs/heads/" + branch
        admin = admin_dir(path)
        if admin is None or not path.is_dir():
            raise WorkspaceError(f"node {node_id} has no worktree at {path}")
        base = base or self.base_of(node_id)
        if base is None:
            raise WorkspaceError(f"the base commit of node {node_id}'s worktree is unknown")
        if _head_of(admin) != ref:
            # Re-attach, keeping the agent's commits and its uncommitted changes.
            run_git([*NO_HOOKS, "checkout", "-q", "-B", branch], path)
        before = read_ref(self.git_dir, ref)
        if before is None:
            raise WorkspaceError(f"branch {branch} vanished from under node {node_id}")
        agent_commits = 0 if before == base else self._count(base, before)

        # Plumbing rather than `git commit`: no user hooks, no signing prompt, no second scan
        # of the whole checkout, and "nothing to commit" is a tree comparison, not an error.
        # The exclude pathspec makes `git add` a third slower, so only when there is something
        # to exclude.
        spec = ["--", ".", _NEVER_COMMIT] if (path / ".dagain" / "local").exists() else []
        run_git(["add", "-A", *spec], path)
        tree = run_git(["write-tree"], path).stdout.strip()
        if tree == tree_of(self.root, self.git_dir, before):
            return CommitInfo(head=before, changed=agent_commits > 0, agent_commits=agent_commits)
        subject = message or f"gitdag: uncommitted work of {node_id} (attempt {attempt})"
        text = f"{subject}\n\nGitdag-Node: {node_id}\nGitdag-Attempt: {attempt}\n"
        head = write_commit(self.root, self.git_dir, tree, [before], text)
        # Compare-and-swap on the value just read, in case the runner left a process behind
        # that still commits; the worktree's HEAD reflog records it too.
        if not move_ref(self.root, self.git_dir, ref, before, head, f"gitdag: {subject}",
                        worktree_admin=admin):  # fmt: skip
            raise WorkspaceError(f"branch {branch} moved while node {node_id}'s work was committed")
        crash_point("workspace.after_leftover_commit")
        return CommitInfo(head=head, changed=True, agent_commits=agent_commits)

    def remove(self, node_id: str, *, delete_branch: bool, archive: bool = False) -> None:
        """Remove the node's worktree; then archive its branch, delete it, or keep it.

        Args:
          node_id: the node.
          delete_branch: delete `dagain/work/<id>` (when not archiving).
          archive: rename the branch to `dagain/archive/<id>` (wins over `delete_branch`).
        """
        path = self.path_for(node_id)
        branch = work_branch(node_id)
        self._ensure_dirs()
        with held(self.local, "worktrees"):
            if path.exists() or path.is_symlink():
                self._discard(path)
            ref = "refs/heads/" + branch
            head = read_ref(self.git_dir, ref)
            if head is None or not (archive or delete_branch):
                return
            if checkouts_of(self.root, self.git_dir, ref):
                return  # someone checked it out by hand: deleting it would orphan their HEAD
            if archive:
                run_git(["branch", "-M", branch, archive_branch(node_id)], self.root)
            else:
                # Compare-and-swap on the value just read; deletes the branch's reflog too.
                move_ref(self.root, self.git_dir, ref, head, None, f"gitdag: remove {node_id}")

    def work_branches(self) -> list[str]:
        """The node ids that have a `dagain/work/<id>` branch (one `git for-each-ref`)."""
        out = run_git(["for-each-ref", "--format=%(refname)", "refs/heads/" + WORK_PREFIX],
                      self.root).stdout  # fmt: skip
        return [line.removeprefix("refs/heads/" + WORK_PREFIX) for line in out.splitlines()]

    # ---- scratch checkouts ----------------------------------------------------------------

    def scratch_path(self, name: str) -> Path:
        return self.dir / (SCRATCH_PREFIX + name)

    def scratch(self, target_branch: str, name: str = "scratch") -> Path:
        """Reset the scratch checkout `name` to the target's tip (detached, cleaned) and return it.

        One runner at a time may use a given name: use one name per concurrent runner, or
        `using_scratch` to hold the name's lock for as long as the checkout is in use.
        """
        tip = self._tip(target_branch)
        with held(self.local, "scratch-" + name):
            return self._reset_scratch(name, tip)

    @contextmanager
    def using_scratch(self, commit_or_branch: str, name: str = "scratch") -> Iterator[Path]:
        """Hold scratch `name`, reset to a branch's tip or to a commit, for the block's duration."""
        commit = read_ref(self.git_dir, "refs/heads/" + commit_or_branch) or commit_or_branch
        with held(self.local, "scratch-" + name):
            yield self._reset_scratch(name, commit)

    def _reset_scratch(self, name: str, commit: str) -> Path:
        path = self.scratch_path(name)
        if (path / ".git").is_file():
            checkout = [*NO_HOOKS, "checkout", "-q", "--detach", "-f", commit]
            if run_git(checkout, path, check=False).returncode == 0:
                run_git(["clean", "-q", "-ffdx"], path)
                return path
        self._ensure_dirs()
        with held(self.local, "worktrees"):
            if path.exists() or path.is_symlink():
                self._discard(path)
            run_git([*NO_HOOKS, "worktree", "add", "-q", "--detach", str(path), commit], self.root)
        return path

    # ---- housekeeping ---------------------------------------------------------------------

    def empty_trash(self) -> int:
        """Delete (in the background) every removed checkout still in `trash/`; return how many.

        A process killed between moving a checkout into `trash/` and starting its `rm -rf`
        leaves it there; a second `rm -rf` of an entry already being deleted does no harm.
        """
        if not self.trash.is_dir():
            return 0
        entries = list(self.trash.iterdir())
        for entry in entries:
            self._delete(entry, self.background_delete)
        return len(entries)

    def wait_deleted(self, timeout: float | None = None) -> None:
        """Wait until the background deletions this object started have finished."""
        for proc in self._deleting:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return
        self._deleting.clear()

    def discard_unlocked(self, path: Path) -> None:
        """Unregister and delete a checkout; the caller holds the `worktrees` lock."""
        self._discard(path, background=False)

    # ---- internals ------------------------------------------------------------------------

    def _tip(self, target_branch: str) -> str:
        tip = read_ref(self.git_dir, "refs/heads/" + target_branch)
        if tip is None:
            raise WorkspaceError(f"target branch {target_branch} does not exist")
        return tip

    def _ensure_dirs(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        guard = self.local / ".gitignore"
        if not guard.exists():
            # Belt and braces beside .dagain/.gitignore: the user's `git status` never lists
            # our checkouts, even in a repository whose .dagain/.gitignore was not committed.
            guard.write_text("*\n")

    def _write_base(self, path: Path, base: str) -> None:
        admin = admin_dir(path)
        if admin is None:
            raise WorkspaceError(f"{path} is not a git worktree after `git worktree add`")
        (admin / BASE_FILE).write_text(base + "\n")

    def _count(self, base: str, head: str) -> int:
        out = run_git(["rev-list", "--count", f"{base}..{head}"], self.root).stdout
        return int(out.strip() or 0)

    def _discard(self, path: Path, *, background: bool | None = None) -> None:
        """Unregister the checkout at `path` and delete it (caller holds the worktrees lock).

        The directory is renamed into `trash/` first, so the path is free at once and a crash
        never leaves a half-deleted checkout that git still lists. Dropping the admin directory
        is what `git worktree prune` does for one entry; prune itself would also drop the entries
        of the user's own worktrees that happen to be unmounted.
        """
        admin = admin_dir(path)
        self.trash.mkdir(parents=True, exist_ok=True)
        moved = self.trash / f"{path.name}.{uuid.uuid4().hex[:12]}"
        os.replace(path, moved)
        if admin is not None and admin.parent.resolve() == (self.git_dir / "worktrees").resolve():
            shutil.rmtree(admin, ignore_errors=True)
        self._delete(moved, self.background_delete if background is None else background)

    def _delete(self, path: Path, background: bool) -> None:
        rm = shutil.which("rm")
        if background and rm:
            # Out of process: no GIL contention with the supervisor, and it finishes even if
            # this process exits. Whatever a crash leaves in trash/, gc deletes.
            self._deleting = [p for p in self._deleting if p.poll() is None]
            self._deleting.append(
                subprocess.Popen(
                    [rm, "-rf", "--", str(path)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        else:
            shutil.rmtree(path, ignore_errors=True)

    def _clear_branch_checkouts(self, branch: str, keep: Path | None) -> None:
        """Drop registrations of `branch` whose directory is gone or lies in our worktrees/."""
        ref = "refs/heads/" + branch
        admins = self.git_dir / "worktrees"
        if not admins.is_dir():
            return
        for admin in admins.iterdir():
            if _head_of(admin) != ref:
                continue
            where = checkout_of(admin)
            if where is not None and where == keep:
                continue
            if where is None or not where.exists():
                shutil.rmtree(admin, ignore_errors=True)
            elif where.parent == self.dir:
                self._discard(where)
            else:
                raise WorkspaceError(
                    f"branch {branch} is checked out in {where}, outside gitdag's worktrees: "
                    "switch that checkout to another branch"
                )


def _head_of(admin: Path) -> str | None:
    try:
        text = (admin / "HEAD").read_text().strip()
    except OSError:
        return None
    return text[5:] if text.startswith("ref: ") else None


def checkout_of(admin: Path) -> Path | None:
    """The working tree an admin directory belongs to (its `gitdir` file names `<wt>/.git`)."""
    try:
        text = (admin / "gitdir").read_text().strip()
    except OSError:
        return None
    return Path(text).parent if text else None
