"""gitdag's own commits and ref moves, written in-process once git has computed the tree.

`git write-tree` and `git merge-tree --write-tree` compute trees (the index, rename detection:
git's job). What follows — a commit object naming that tree, and a compare-and-swap of one ref —
is a few hundred bytes, so it is written here rather than by two more git processes per step
(issue 18: 13 processes per task node). The behaviour stays git's:

- the identity is git's own, asked once (`git var -l`: environment, then config with its
  includes) and kept until a config file changes; an identity git could not use for a commit
  (no name, an auto-detected `(none)` email) becomes `gitdag <gitdag@host>`, as before;
- gitdag's commits are never signed and run no hooks (documented); a ref move runs no hook
  either, except that a repository with a `reference-transaction` hook, or the reftable
  backend, has its refs moved by `git update-ref` as before;
- a ref moves by compare-and-swap under git's `<ref>.lock` (dulwich takes it the way git does),
  a held lock waited out briefly and a stale one (a writer killed mid-update) broken, as the
  state store does; the reflog gets the line git would write.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from dulwich.file import FileLocked
from dulwich.objects import Commit, ObjectID
from dulwich.reflog import format_reflog_line
from dulwich.refs import DiskRefsContainer, Ref

from gitdag.crash import fault_point
from gitdag.errors import WorkspaceError
from gitdag.stale_locks import break_stale
from gitdag.workspace.gitcli import fallback_identity, run_git

_LOCK_WAIT_S = 10.0


@dataclass(frozen=True)
class Ident:
    """Who a commit is by: name, email, and a fixed time when the environment sets one."""

    name: str
    email: str
    fixed: tuple[int, int] | None  # (seconds, offset in minutes) from GIT_*_DATE, else None

    def line(self) -> bytes:
        return f"{self.name} <{self.email}>".encode()

    def stamp(self) -> tuple[int, int]:
        if self.fixed is not None:
            return self.fixed
        now = time.time()
        return int(now), (time.localtime(now).tm_gmtoff or 0) // 60


@dataclass(frozen=True)
class Facts:
    """What one `git var -l` says about the repository that matters for writing here."""

    author: Ident
    committer: Ident
    hooks: Path
    log_refs: bool  # core.logAllRefUpdates: reflogs for branches


_facts: dict[tuple[object, ...], Facts] = {}
_facts_lock = threading.Lock()


def facts(root: Path, git_dir: Path) -> Facts:
    """What git says of `root` (identity, hooks, reflogs), asked once, kept until config changes."""
    key = _facts_key(git_dir)
    with _facts_lock:
        known = _facts.get(key)
    if known is not None:
        return known
    proc = run_git(["var", "-l"], root, check=False)
    values: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            values[name.lower() if "." in name else name] = value
    hooks = Path(values.get("core.hookspath") or git_dir / "hooks")
    found = Facts(
        author=_ident(values.get("GIT_AUTHOR_IDENT", ""), "GIT_AUTHOR_DATE"),
        committer=_ident(values.get("GIT_COMMITTER_IDENT", ""), "GIT_COMMITTER_DATE"),
        hooks=hooks if hooks.is_absolute() else Path(root) / hooks,
        log_refs=values.get("core.logallrefupdates", "").lower() in ("true", "always", "1", "yes")
        or (values.get("core.bare", "false") == "false" and "core.logallrefupdates" not in values),
    )
    with _facts_lock:
        _facts[key] = found
    return found


def _facts_key(git_dir: Path) -> tuple[object, ...]:
    home = Path(os.environ.get("HOME", "/"))
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    files = [git_dir / "config", xdg / "git" / "config", home / ".gitconfig"]
    if os.environ.get("GIT_CONFIG_GLOBAL"):
        files.append(Path(os.environ["GIT_CONFIG_GLOBAL"]))
    stamps: list[tuple[int, int, int] | None] = []
    for f in files:
        try:
            st = f.stat()
            stamps.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            stamps.append(None)
    env = tuple(os.environ.get(k) for k in _IDENT_ENV)
    return (str(git_dir), tuple(stamps), env)


_IDENT_ENV = (
    "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE", "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_DATE", "EMAIL", "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_NOSYSTEM", "HOME", "XDG_CONFIG_HOME",
)  # fmt: skip


def _ident(text: str, date_var: str) -> Ident:
    """Parse `Name <email> <seconds> <+hhmm>`; one git would refuse to commit with -> gitdag's."""
    name, _, rest = text.partition(" <")
    email, _, when = rest.partition("> ")
    fixed = None
    if os.environ.get(date_var):
        secs, _, zone = when.strip().partition(" ")
        try:
            sign = -1 if zone.startswith("-") else 1
            fixed = (int(secs), sign * (int(zone[1:3]) * 60 + int(zone[3:5])))
        except ValueError:
            fixed = None
    if not name.strip() or not email.strip() or "(none)" in email:
        fb_name, fb_email = fallback_identity()
        name = name.strip() if os.environ.get(date_var.replace("DATE", "NAME")) else fb_name
        email = email if os.environ.get(date_var.replace("DATE", "EMAIL")) else fb_email
    return Ident(name.strip(), email.strip(), fixed)


def write_commit(root: Path, git_dir: Path, tree: str, parents: list[str], message: str) -> str:
    """Write an unsigned commit of `tree` with `parents` and git's identity; return its id."""
    info = facts(root, git_dir)
    commit = Commit()
    commit.tree = ObjectID(tree.encode())
    commit.parents = [ObjectID(p.encode()) for p in parents]
    commit.author = info.author.line()
    commit.committer = info.committer.line()
    commit.author_time, commit.author_timezone = _seconds(info.author.stamp())
    commit.commit_time, commit.commit_timezone = _seconds(info.committer.stamp())
    commit.message = message.encode()
    fault_point("git.commit", "commit-tree")
    sha = commit.id.decode()
    path = git_dir / "objects" / sha[:2] / sha[2:]
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        tmp = path.parent / f"tmp_obj_{uuid.uuid4().hex}"
        with open(tmp, "wb") as fh:
            fh.write(commit.as_legacy_object())
        os.chmod(tmp, 0o444)
        os.replace(tmp, path)
    return sha


def _seconds(stamp: tuple[int, int]) -> tuple[int, int]:
    return stamp[0], stamp[1] * 60


def move_ref(
    root: Path,
    git_dir: Path,
    ref: str,
    old: str,
    new: str | None,
    reflog: str,
    *,
    worktree_admin: Path | None = None,
) -> bool:
    """Compare-and-swap `ref` from `old` to `new` (None deletes it); False when it moved.

    `worktree_admin`: the linked worktree whose HEAD names `ref`; its HEAD reflog is written
    too, as `git update-ref HEAD` run there would.
    """
    info = facts(root, git_dir)
    if (git_dir / "reftable").is_dir() or _has_hook(info.hooks, "reference-transaction"):
        if new is None:
            args = ["update-ref", "-m", reflog, "-d", ref, old]
        else:
            args = ["update-ref", "-m", reflog, ref, new, old]
        return run_git(args, root, check=False).returncode == 0
    refs = DiskRefsContainer(str(git_dir))
    name, old_id = Ref(ref.encode()), ObjectID(old.encode())
    delay, deadline = 0.001, time.monotonic() + _LOCK_WAIT_S
    while True:
        try:
            fault_point("store.write_ref", ref)
            if new is None:
                done = bool(refs.remove_if_equals(name, old_id))
            else:
                done = bool(refs.set_if_equals(name, old_id, ObjectID(new.encode())))
            break
        except FileNotFoundError:
            return False  # a writer ignoring the lock took it: read again, as after a lost race
        except FileLocked:
            if break_stale(git_dir / (ref + ".lock")):
                continue
            if time.monotonic() > deadline:
                raise WorkspaceError(f"{ref} stayed locked for {_LOCK_WAIT_S:g} s") from None
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.05)
    if done and new is not None and info.log_refs:
        line = format_reflog_line(old.encode(), new.encode(), info.committer.line(),
                                  *_seconds(info.committer.stamp()), reflog.encode())  # fmt: skip
        _append_log(git_dir / "logs" / ref, line, create=ref.startswith("refs/heads/"))
        if worktree_admin is not None:
            _append_log(worktree_admin / "logs" / "HEAD", line, create=False)
    elif done and new is None:
        (git_dir / "logs" / ref).unlink(missing_ok=True)
    return done


def _has_hook(hooks: Path, name: str) -> bool:
    return os.access(hooks / name, os.X_OK)


def _append_log(path: Path, line: bytes, *, create: bool) -> None:
    if not create and not path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as fh:
        fh.write(line + b"\n")
