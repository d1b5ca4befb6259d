"""`gitdag init`, all or nothing: `.dagain/`, the target branch, then `dagain/state` last.

Everything that can be refused is decided before anything is written: HEAD has a commit, the
state branch does not exist, the template reads, the config it becomes validates (roles chosen
for the agent CLIs on PATH, or `--runner`, or a dagain config mapped). Then the writes happen in
this order, each recorded: the files under `.dagain/` (never overwriting one), the local
directory, the target branch, and last the state branch's first commit, the commit point. An
exception before the commit point undoes every recorded write, so the repository is exactly as it
was. A kill before it leaves files and a target branch but no state branch: a second `init`
reuses them (it overwrites nothing) and completes. Two inits at once take turns on a lock file in
the git directory (`gitdag-init.lock`, left there): the second finds the state branch and stops.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dulwich.objects import Commit, ObjectID
from dulwich.refs import Ref
from filelock import FileLock, Timeout

from gitdag.core import edits
from gitdag.core.refnames import target_problem
from gitdag.core.transitions import Rejected
from gitdag.crash import crash_point
from gitdag.dagain_config import CONFIG_JSON, map_dagain_config, read_dagain_config
from gitdag.errors import InputError
from gitdag.initconfig import SCRIPT_FILE, STARTER_SCRIPT, ConfigChoice, choose_config
from gitdag.store import repo as repos
from gitdag.store.layout import STATE_BRANCH, branch_ref
from gitdag.store.state import Committed, StateStore
from gitdag.template import template_files

INIT_LOCK = "gitdag-init.lock"
LOCK_WAIT_S = 60


@dataclass(frozen=True)
class InitResult:
    """What `gitdag init` did."""

    head: str
    target: str
    target_created: bool
    files: tuple[str, ...]
    config_written: bool = False
    roles: dict[str, list[str]] = field(default_factory=dict)
    runners_found: tuple[str, ...] = ()
    roles_from: str = ""
    lines: tuple[str, ...] = ()  # what init says about the config (and a dagain mapping)

    def as_json(self) -> dict[str, Any]:
        """The `gitdag init --json` object."""
        return {
            "head": self.head,
            "target": self.target,
            "target_created": self.target_created,
            "files": list(self.files),
            "config_written": self.config_written,
            "roles": self.roles,
            "runners_found": list(self.runners_found),
            "roles_from": self.roles_from,
            "notes": list(self.lines),
        }


@dataclass
class _Journal:
    """The writes made so far, to undo them in reverse."""

    files: list[Path] = field(default_factory=list)
    dirs: list[Path] = field(default_factory=list)
    ref: tuple[bytes, bytes] | None = None

    def mkdir(self, path: Path) -> None:
        missing = []
        while not path.exists():
            missing.append(path)
            path = path.parent
        for d in reversed(missing):
            try:
                d.mkdir()
            except FileExistsError:
                continue  # made by someone else meanwhile: not ours to remove
            self.dirs.append(d)

    def write(self, path: Path, data: bytes) -> bool:
        if path.exists():
            return False
        self.mkdir(path.parent)
        try:
            fh = path.open("xb")  # exclusive: never overwrite what someone else just made
        except FileExistsError:
            return False
        with fh:
            self.files.append(path)
            fh.write(data)
        return True

    def undo(self, store: StateStore) -> None:
        if self.ref is not None:
            name, sha = self.ref
            store.repo.refs.remove_if_equals(Ref(name), ObjectID(sha))
        for path in reversed(self.files):
            path.unlink(missing_ok=True)
        for d in reversed(self.dirs):
            shutil.rmtree(d, ignore_errors=True)  # it did not exist: all inside it is ours


def _prepare_files(
    dagain_dir: Path, runner: str | None, which: Callable[[str], str | None]
) -> tuple[dict[str, bytes], list[str], ConfigChoice | None, int | None]:
    """Return (files to create, lines to print, the config chosen, dagain's max attempts)."""
    files = template_files()
    if (dagain_dir / "config.yaml").exists():
        files.pop("config.yaml", None)
        return files, [".dagain/config.yaml exists: kept as it is"], None, None
    dagain_data = read_dagain_config(dagain_dir)
    mapping = map_dagain_config(dagain_data) if dagain_data is not None else None
    template_config = files.get("config.yaml", b"").decode("utf-8", errors="replace")
    choice = choose_config(template_config, runner=runner, which=which, dagain=mapping)
    files["config.yaml"] = choice.text.encode("utf-8")
    if choice.needs_script:
        files.setdefault(SCRIPT_FILE, STARTER_SCRIPT.encode("utf-8"))
    lines = mapping.report(f".dagain/{CONFIG_JSON}") if mapping is not None else []
    return files, lines + choice.lines, choice, mapping.max_attempts if mapping else None


def _init_locked(
    store: StateStore,
    goal: str,
    target: str,
    defaults: dict[str, Any] | None,
    runner: str | None,
    which: Callable[[str], str | None],
    head_commit: Commit,
) -> tuple[Committed, list[str], ConfigChoice | None, list[str], bool]:
    """Do the init under the init lock: (commit, files created, config, lines, target created)."""
    if store.head() is not None:
        raise InputError(f"{STATE_BRANCH} already exists: this repository is initialised")
    files: dict[str, bytes] = {}
    lines: list[str] = []
    choice: ConfigChoice | None = None
    dagain_attempts = None
    if not store.repo.bare:
        files, lines, choice, dagain_attempts = _prepare_files(store.paths.dagain, runner, which)
    if dagain_attempts is not None:
        defaults = dict(defaults or {})
        retry = dict(defaults.get("retry") or {})
        retry.setdefault("max_attempts", dagain_attempts)
        defaults["retry"] = retry
    transition = edits.init_transition(goal, target, store.clock(), defaults)
    if isinstance(transition, Rejected):
        raise InputError(transition.reason)
    journal = _Journal()
    created: list[str] = []
    try:
        for rel, data in files.items():
            path = store.paths.dagain / rel
            if journal.write(path, data):
                created.append(str(path.relative_to(store.paths.root)))
        journal.mkdir(store.paths.local)
        store.paths.ensure_local()
        crash_point("init.after_files")
        ref = branch_ref(target)
        target_created = bool(store.repo.refs.add_if_new(Ref(ref), head_commit.id))
        if target_created:
            journal.ref = (ref, head_commit.id)
        crash_point("init.after_target")
        committed = store.init(transition, repos.human_actor(store.repo))
    except BaseException:
        journal.undo(store)
        raise
    return committed, created, choice, lines, target_created


def init(
    store: StateStore,
    goal: str,
    target: str,
    defaults: dict[str, Any] | None = None,
    *,
    runner: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> InitResult:
    """Create `.dagain/`, the target branch and `dagain/state` (last); all or nothing."""
    _check_target(store, target)
    try:
        head_commit = store.repo[b"HEAD"]
    except KeyError:
        raise InputError(
            "HEAD has no commit yet: commit something first, gitdag starts the target branch there"
        ) from None
    if not isinstance(head_commit, Commit):
        raise InputError("HEAD does not point at a commit")
    # Two inits in one repository take turns (the lock file is in the git directory, not the
    # working tree): the second sees the first one's state branch and writes nothing.
    lock = FileLock(str(store.paths.git_dir / INIT_LOCK))
    try:
        lock.acquire(timeout=LOCK_WAIT_S)
    except Timeout:
        raise InputError(
            f"another `gitdag init` has held {INIT_LOCK} for {LOCK_WAIT_S} s; try again"
        ) from None
    try:
        committed, created, choice, lines, target_created = _init_locked(
            store, goal, target, defaults, runner, which, head_commit
        )
    finally:
        lock.release()
    return InitResult(
        committed.head,
        target,
        target_created,
        tuple(created),
        config_written=choice is not None,
        roles=choice.roles if choice else {},
        runners_found=tuple(choice.found) if choice else (),
        roles_from=choice.source if choice else "",
        lines=tuple(lines),
    )


def _check_target(store: StateStore, target: str) -> None:
    # Before anything is written: the name rules (also the model's) and the file/directory
    # clash with an existing branch, which only the repository can tell (docs/input-rules.md).
    problem = target_problem(target)
    if problem is None:
        other = repos.branch_clash(store.repo, target)
        if other is not None:
            problem = f"branch {other!r} exists, and git cannot hold both {target} and {other}"
    if problem is not None:
        raise InputError(f"--target {target[:80]!r}: {problem}; nothing was written")
