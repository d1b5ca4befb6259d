"""Environment failures: what the agent cannot fix, so it never pays for them (docs/supervisor.md).

A failure is on the *environment* side when re-running the agent could not repair it: the user's
checkout of the target is dirty or busy, the target branch is gone, the disk is full or
read-only, a ref update or push was refused, git failed for a reason that is not the node's, a
runner's executable is missing. Such a failure never spends an attempt and never escalates: the
finished work stays on its branch, the node waits (a `merging` node records `hold`), the
supervisor says once what to repair, and re-checks the cause cheaply until it is gone.

`classify_*` turn what a merge or a launch produced into an `EnvHold` (or None: the agent's side);
`Gate` is the bounded, quiet re-check of one cause.
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gitdag.config import RunnerConfig
from gitdag.core.model import HoldKind
from gitdag.errors import DiskError, GitdagError, WorkspaceError
from gitdag.workspace.checkouts import checkouts_of, dirty_reason
from gitdag.workspace.gitcli import read_ref
from gitdag.workspace.merge_queue import MergeResult

if TYPE_CHECKING:
    from gitdag.attempts.progress import Progress

AGAIN = "then gitdag run (a --watch run goes on by itself)"
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
_DISK_TEXTS = ("no space left on device", "disk quota exceeded", "read-only file system")
_REFUSED_TEXTS = ("hook declined", "pre-receive hook", "[remote rejected]", "permission denied")


@dataclass(frozen=True)
class EnvHold:
    """One environment cause: its kind, what is wrong, and the command or step that repairs it."""

    kind: HoldKind
    reason: str
    repair: str

    def line(self, who: str) -> str:
        """The one line `run` prints: who waits, why, and the repair."""
        return f"{who}: held ({self.kind.value}): {self.reason}; repair: {self.repair}"


def disk_trouble(text: str) -> bool:
    """Tell whether an error text is a full, over-quota or read-only disk."""
    low = text.lower()
    return any(t in low for t in _DISK_TEXTS)


def disk_error(exc: OSError, where: Path) -> DiskError | None:
    """The one-line error of a state commit on a full, over-quota or read-only disk, or None.

    Args:
      exc: what the commit raised.
      where: the path to name when the error names none (the objects directory).
    """
    if exc.errno not in _DISK_ERRNOS:
        return None
    path = exc.filename or str(where)
    return DiskError(
        f"{path}: {os.strerror(exc.errno or 0)}; the state was not changed and finished work is "
        "kept on its branches: free disk space (or make the repository writable), then gitdag run"
    )


def _disk(where: str, what: str) -> EnvHold:
    return EnvHold(
        HoldKind.DISK_FULL,
        f"{where}: {what}",
        f"free disk space (or make the repository writable), {AGAIN}",
    )


def classify_error(exc: BaseException, *, target: str, base: str | None) -> EnvHold | None:
    """The environment cause of an exception raised by a merge or a worktree commit, or None.

    Args:
      exc: what `integrate`, a leftover commit or a push raised.
      target: the target branch.
      base: a commit the target had (to name in the repair of a deleted target).
    """
    text = " ".join(str(exc).split())
    if type(exc).__name__ == "LostWork":
        return None
    if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
        return _disk("writing objects", os.strerror(exc.errno or 0))
    if disk_trouble(text):
        return _disk("git", text[-300:])
    if f"target branch {target} does not exist" in text:
        tip = base[:12] if base else "<commit>"
        return EnvHold(
            HoldKind.TARGET_MISSING,
            f"the target branch {target} does not exist",
            f"git branch {target} {tip} (recreate it at a commit of yours), " + AGAIN,
        )
    if "kept moving" in text:
        return EnvHold(
            HoldKind.GIT_ERROR,
            text[-300:],
            "stop whatever keeps moving the target, then gitdag run",
        )
    if any(t in text.lower() for t in _REFUSED_TEXTS):
        return EnvHold(HoldKind.REF_REFUSED, text[-300:], "allow the update (hook, permissions)")
    if isinstance(exc, GitdagError | OSError):
        if "branch dagain/work/" in text and "does not exist" in text:
            return None  # the node's own work is gone: only another attempt can make it again
        return EnvHold(HoldKind.GIT_ERROR, text[-300:], "repair the repository (gitdag doctor)")
    return None


def classify_start_error(exc: BaseException, *, target: str) -> EnvHold | None:
    """The environment cause of a failed start (worktree, packet, process), or None.

    Narrower than `classify_error`: only a full disk, a missing target, or git failing while
    making the worktree hold a start; anything else stays the node's `spawn_error`.
    """
    hold = classify_error(exc, target=target, base=None)
    if hold is None or hold.kind in (HoldKind.DISK_FULL, HoldKind.TARGET_MISSING):
        return hold
    return hold if isinstance(exc, WorkspaceError) else None


def classify_result(result: MergeResult) -> EnvHold | None:
    """The environment cause of a merge outcome (the target's checkout not clean), or None."""
    if result.status != "target_checked_out_dirty":
        return None
    where = re.split(r": | has ", result.output_tail, maxsplit=1)[0]
    return EnvHold(
        HoldKind.TARGET_DIRTY,
        result.output_tail,
        f"commit or stash the changes (git -C {shlex.quote(where)} stash), " + AGAIN,
    )


# --- runners' executables -----------------------------------------------------------------------

_SHELL_WORDS = frozenset({"exec", "command", "nohup", "time"})


def executable_of(cmd: str) -> str | None:
    """The program a runner's shell command starts, or None when it cannot be told statically.

    `env [-i] [-u NAME] [NAME=VALUE ...] prog`, leading `NAME=VALUE` assignments and `exec` are
    looked through; a command starting with shell syntax (a variable, a subshell) is not judged.
    """
    try:
        words = shlex.split(cmd, comments=True)
    except ValueError:
        return None
    i = 0
    while i < len(words):
        word = words[i]
        if word == "env":
            i += 1
            while i < len(words) and words[i].startswith("-"):
                i += 2 if words[i] in ("-u", "--unset", "-C", "--chdir") else 1
            continue
        if "=" in word and not word.startswith("=") and word.split("=", 1)[0].isidentifier():
            i += 1
            continue
        if word in _SHELL_WORDS:
            i += 1
            continue
        break
    if i >= len(words):
        return None
    prog = words[i]
    if any(c in prog for c in "$`(){}<>|;&*?[") or prog.startswith("~"):
        return None
    return prog


def runner_problem(config: RunnerConfig, root: Path) -> str | None:
    """Why a runner's executable does not resolve (on its PATH, or as a path), or None if it does.

    Builtin runners always resolve (they run this Python).
    """
    if config.builtin is not None or config.cmd is None:
        return None
    prog = executable_of(config.cmd)
    if prog is None:
        return None
    if "/" in prog:
        path = Path(prog) if Path(prog).is_absolute() else root / prog
        if not path.is_file():
            return f"{prog} does not exist"
        if not os.access(path, os.X_OK):
            return f"{prog} is not executable"
        return None
    search = config.env.get("PATH", os.environ.get("PATH", os.defpath))
    if shutil.which(prog, path=search) is None:
        return f"`{prog}` is not on PATH"
    return None


def runner_hold(name: str, role: str | None, problem: str, where: str) -> EnvHold:
    """The hold of a runner whose executable is missing."""
    return EnvHold(
        HoldKind.RUNNER_MISSING,
        f"runner {name!r} (role {role or '-'}): {problem}",
        f"install it, or change {where}, {AGAIN}",
    )


# --- re-checking a cause ------------------------------------------------------------------------


@dataclass
class Gate:
    """One environment cause the supervisor waits on: re-checked cheaply, reported once.

    `due()` says when a re-check is worth its cost (a cheap probe every `probe_s`; a retry of
    the failed operation itself at a backoff from 1 s doubling to `max_s`), so a cause that only
    a person can remove costs a few git calls a minute, and nothing is printed again.
    """

    hold: EnvHold
    probe_s: float = 0.5
    max_s: float = 30.0
    tries: int = 0
    next_at: float = field(default_factory=time.monotonic)

    def due(self) -> bool:
        """Tell whether it is time to look again."""
        return time.monotonic() >= self.next_at

    def failed_again(self) -> None:
        """The cause is still there: wait longer before the next look."""
        self.tries += 1
        self.next_at = time.monotonic() + min(self.max_s, self.probe_s * (2 ** min(self.tries, 8)))


def cause_gone(hold: EnvHold, *, root: Path, git_dir: Path, target: str) -> bool | None:
    """A cheap probe of a merge-side cause: True gone, False still there, None cannot tell.

    None means only retrying the operation itself tells (a full disk, a refused update).
    """
    ref = "refs/heads/" + target
    if hold.kind is HoldKind.TARGET_MISSING:
        return read_ref(git_dir, ref) is not None
    if hold.kind is HoldKind.TARGET_DIRTY:
        found = checkouts_of(root, git_dir, ref)
        return len(found) <= 1 and all(dirty_reason(c) is None for c in found)
    return None


class SaidOnce:
    """Says each environment cause once, however many nodes wait on it (`run` and `work`)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self._said: set[tuple[str, str]] = set()

    def say(self, who: str, hold: EnvHold) -> None:
        """Print the hold's line unless the same kind and reason was said already."""
        key = (hold.kind.value, hold.reason)
        if key not in self._said:
            self._said.add(key)
            self.progress.error(hold.line(who))

    def forget(self, hold: EnvHold) -> None:
        """The cause is gone: say it again if it comes back."""
        self._said.discard((hold.kind.value, hold.reason))
