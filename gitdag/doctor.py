"""`gitdag doctor`: what a crash, a kill -9 or a hand edit can leave behind, and how to repair it.

Each check returns findings: one line saying what is wrong, the command that repairs it, and,
when the repair is safe to make without a person's judgement, a function that makes it
(`gitdag doctor --fix`). Safe means: nothing anyone still needs is lost and no live process is
disturbed; repairs that touch worktrees, runners or the merge queue hold the supervisor lock, so
they never run under a live `gitdag run`. What needs judgement (an invalid state branch, a done
node whose code is not on the target) is reported with its repair command only.

Checks: the configuration loads; the state branch is valid (legality of the commits since the
last verified head, the graph at the head) and has no open incident; no stale locks (the
supervisor's, `refs/heads/<branch>.lock` of the state and target branches); no orphaned runners
(alive, their supervisor dead); no leftover node worktrees or half-deleted checkouts; the target
branch agrees with the `done` and `merging` records; the loose object count (suggests `git gc`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from gitdag.config import load_settings
from gitdag.core import lifecycle
from gitdag.core.model import Status
from gitdag.core.transitions import Rejected, Transition
from gitdag.errors import GitdagError, LockedError
from gitdag.runner.orphans import PidInfo, is_alive, is_collected, read_pid_info, stop_orphan
from gitdag.runner.procs import proc_stat
from gitdag.store import ranges
from gitdag.store import repo as repos
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import StateStore
from gitdag.store.write import STALE_LOCK_S, break_stale_lock
from gitdag.supervisor.guard import still_open
from gitdag.supervisor.lock import SupervisorLock
from gitdag.workspace import merge_queue
from gitdag.workspace.gitcli import run_git
from gitdag.workspace.worktrees import SCRATCH_PREFIX

LOOSE_OBJECTS_LIMIT = 5000  # git's own `gc.auto` threshold is 6700
VERIFIED_HEAD = "verified-head"  # written by supervisor/headcheck.py
TRASH_STALE_S = 60.0  # a background `rm -rf` of a checkout takes well under this


@dataclass
class Finding:
    """One problem: what is wrong, the command that repairs it, and the safe repair if any.

    Attributes:
      check: which check found it (config, state, incident, lock, orphan, worktree, target,
        objects).
      problem: one line.
      repair: the command a person runs to repair it.
      fix: makes the repair (`--fix`); returns what it did. None when it needs judgement.
      fixed: what `--fix` did, once it ran.
    """

    check: str
    problem: str
    repair: str
    fix: Callable[[], str] | None = field(default=None, repr=False)
    fixed: str | None = None

    def as_data(self) -> dict[str, object]:
        """The finding as JSON-ready data."""
        return {"check": self.check, "problem": self.problem, "repair": self.repair,
                "fixable": self.fix is not None, "fixed": self.fixed}  # fmt: skip


@dataclass
class Report:
    """Every finding, and whether a supervisor was running while the doctor looked."""

    findings: list[Finding]
    supervisor: str | None  # "pid N on HOST" when one holds the lock

    @property
    def remaining(self) -> list[Finding]:
        """The findings no repair took care of."""
        return [f for f in self.findings if f.fixed is None]


def examine(store: StateStore) -> Report:
    """Run every check (read-only)."""
    local = store.paths.local
    supervisor = _running_supervisor(local)
    findings: list[Finding] = []
    findings += check_config(store)
    snap: Snapshot | None = None
    state = check_state(store)
    findings += state
    if not any(f.check == "state" for f in state):
        snap = store.snapshot(strict=False)
    findings += check_locks(store, supervisor)
    findings += check_orphans(store)
    if snap is not None:
        findings += check_worktrees(store, snap, supervisor)
        findings += check_target(store, snap)
    findings += check_objects(store)
    return Report(findings, supervisor)


def repair(report: Report) -> Report:
    """Make every safe repair of a report; each records what it did (or why it could not)."""
    for finding in report.findings:
        if finding.fix is None:
            continue
        try:
            finding.fixed = finding.fix()
        except LockedError:
            finding.fix = None  # a supervisor started meanwhile: its recovery takes over
        except (GitdagError, OSError) as exc:
            finding.problem += f" (repair failed: {exc})"
            finding.fix = None
    return report


# --- the checks ----------------------------------------------------------------------------------


def check_config(store: StateStore) -> list[Finding]:
    """`.dagain/config.yaml` loads."""
    try:
        load_settings(store.paths.dagain)
    except GitdagError as exc:
        return [Finding("config", str(exc), f"edit {store.paths.dagain / 'config.yaml'}")]
    return []


def check_state(store: StateStore) -> list[Finding]:
    """The state branch exists, every commit since the last verified head is legal, no incident."""
    head = store.head()
    if head is None:
        return [Finding("state", "no dagain/state branch", "gitdag init")]
    found: list[Finding] = []
    base = _verified_base(store, head)
    invalid = ranges.first_invalid(store, base, head)
    if invalid is not None:
        first = invalid.problems[0] if invalid.problems else "invalid"
        found.append(Finding("state", f"dagain/state: {first}", invalid.hint.removeprefix(
            "repair with ")))  # fmt: skip
    incident = still_open(store, store.paths.local, head)
    if incident is not None:
        found.append(Finding(
            "incident",
            f"open incident: commit {incident.commit[:12]} was written by something that bypassed "
            f"the supervisor ({incident.problems[0]})",
            incident.hint.removeprefix("repair with "),
        ))  # fmt: skip
    return found


def _verified_base(store: StateStore, head: str) -> str | None:
    """The last head a supervisor verified, when it is in head's history; else None (all of it)."""
    try:
        verified = (store.paths.local / VERIFIED_HEAD).read_text().strip()
    except OSError:
        return None
    if not verified or verified == head:
        return verified or None
    try:
        commits = ranges.commits_between(store, verified, head)
    except GitdagError:
        return None
    first = commits[0] if commits else None
    if first is None or ranges.first_parent(store, first) != verified:
        return None  # not an ancestor (a reset): check everything
    return verified


def check_locks(store: StateStore, supervisor: str | None) -> list[Finding]:
    """Stale ref locks of the state and target branches, and a dead supervisor's lock record."""
    found: list[Finding] = []
    refs: list[bytes] = [store.ref]
    try:
        target = store.snapshot(strict=False).graph.target
        refs.append(b"refs/heads/" + target.encode())
    except GitdagError:
        pass
    for ref in refs:
        lock = store.paths.git_dir / (ref.decode() + ".lock")
        try:
            age = time.time() - lock.stat().st_mtime
        except OSError:
            continue
        name = ref.decode()
        if age < STALE_LOCK_S:
            continue  # a writer is updating the ref right now
        found.append(Finding(
            "lock",
            f"stale lock {lock} ({age:.0f} s old): a writer was killed while updating {name}",
            f"rm {lock}",
            _fix_ref_lock(store, ref, lock),
        ))  # fmt: skip
    info = store.paths.local / "supervisor.json"
    if supervisor is None and info.exists():
        pid = _json_pid(info)
        found.append(Finding(
            "lock",
            f"supervisor.json names pid {pid}, which no longer holds the supervisor lock "
            "(it was killed)",
            f"rm {info}",
            lambda: _unlink(info),
        ))  # fmt: skip
    return found


def _fix_ref_lock(store: StateStore, ref: bytes, lock: Path) -> Callable[[], str]:
    def fix() -> str:
        if break_stale_lock(store.repo, ref):
            return f"removed {lock}"
        raise OSError(f"{lock} is in use again")

    return fix


def check_orphans(store: StateStore) -> list[Finding]:
    """Runner process groups still alive whose supervisor is dead."""
    runs = store.paths.local / "runs"
    found: list[Finding] = []
    if not runs.is_dir():
        return found
    for pid_file in sorted(runs.glob("*/*/pid.json")):
        info = read_pid_info(pid_file.parent)
        if info is None or is_collected(info.run_dir) or _supervisor_alive(info):
            continue
        if not is_alive(info):
            continue
        found.append(Finding(
            "orphan",
            f"runner of {info.node_id} attempt {info.attempt} (process group {info.pgid}) is "
            f"still running, but its supervisor (pid {info.supervisor_pid}) is gone",
            f"kill -TERM -{info.pgid}   (or `gitdag run`, which stops it before it reclaims "
            f"{info.node_id})",
            _fix_orphan(store, info),
        ))  # fmt: skip
    return found


def _supervisor_alive(info: PidInfo) -> bool:
    stat = proc_stat(info.supervisor_pid) if info.supervisor_pid else None
    if stat is None or stat.state in ("Z", "X"):
        return False
    return info.supervisor_start_ticks is None or stat.start_ticks == info.supervisor_start_ticks


def _fix_orphan(store: StateStore, info: PidInfo) -> Callable[[], str]:
    def fix() -> str:
        with SupervisorLock(store.paths.ensure_local()):
            if not stop_orphan(info, grace_s=2.0):
                raise OSError(f"process group {info.pgid} survived SIGKILL")
        return f"stopped process group {info.pgid}"

    return fix


def check_worktrees(store: StateStore, snap: Snapshot, supervisor: str | None) -> list[Finding]:
    """Node worktrees of nodes that are neither running nor merging; half-deleted checkouts."""
    local = store.paths.local
    found: list[Finding] = []
    wt_dir = local / "worktrees"
    live = {Status.RUNNING, Status.MERGING}
    left = []
    if wt_dir.is_dir():
        for entry in sorted(wt_dir.iterdir()):
            if entry.name.startswith(SCRATCH_PREFIX):
                continue
            node = snap.nodes.get(entry.name)
            if node is None or node.status not in live:
                left.append(entry.name)
    trash = local / "trash"
    leftovers = _stale_entries(trash) if trash.is_dir() else []
    if left:
        found.append(Finding(
            "worktree",
            f"{len(left)} leftover worktree(s) of nodes not running or merging: "
            + ", ".join(left[:10]) + ("…" if len(left) > 10 else ""),
            "gitdag gc",
            None if supervisor else (lambda: _gc(store)),
        ))  # fmt: skip
    if leftovers:
        found.append(Finding(
            "worktree",
            f"{len(leftovers)} removed checkout(s) still waiting in {trash} (a deletion was cut "
            "short)",
            "gitdag gc",
            None if supervisor or left else (lambda: _gc(store)),
        ))  # fmt: skip
    return found


def _stale_entries(trash: Path, age_s: float = TRASH_STALE_S) -> list[str]:
    """Checkouts moved into `trash/` longer ago than `age_s` (younger ones are being deleted)."""
    found = []
    now = time.time()
    for entry in trash.iterdir():
        try:
            moved = entry.lstat().st_ctime  # a rename sets the ctime: when it entered trash/
        except OSError:
            continue
        if now - moved > age_s:
            found.append(entry.name)
    return sorted(found)


def _gc(store: StateStore) -> str:
    from gitdag.supervisor.housekeeping import collect_garbage

    report = collect_garbage(store)
    return (f"removed {len(report.removed_worktrees)} worktree(s), freed "
            f"{report.bytes_freed // 1024} KiB")  # fmt: skip


def check_target(store: StateStore, snap: Snapshot) -> list[Finding]:
    """Done nodes' `work.merged` is on the target; no merging node is integrated already."""
    target = snap.graph.target
    root = store.paths.root
    tip = run_git(["rev-parse", "-q", "--verify", f"refs/heads/{target}"], root, check=False)
    if tip.returncode != 0:
        repair_cmd = f"git branch {target} <commit>   (the code the graph builds on)"
        return [Finding("target", f"the target branch {target} does not exist", repair_cmd)]
    found: list[Finding] = []
    wanted = [nid for nid, n in snap.nodes.items() if n.status in (Status.DONE, Status.MERGING)]
    for nid, node in sorted(store.nodes(snap, wanted).items()):
        work = node.work
        if work is None:
            continue
        if node.status is Status.DONE and work.merged:
            if not _on_target(root, target, work.merged):
                found.append(Finding(
                    "target",
                    f"{nid} is done, but its integration {work.merged[:12]} is not on {target} "
                    "(was the target reset?)",
                    f"gitdag retry --force {nid}   (or move {target} back to a commit that "
                    f"contains {work.merged[:12]})",
                ))  # fmt: skip
        elif node.status is Status.MERGING and work.head and _on_target(root, target, work.head):
            found.append(Finding(
                "target",
                f"{nid} is merging, but its work {work.head[:12]} is on {target} already (a "
                "crash between the merge and its record)",
                "gitdag run   (the merge queue records it without merging again)",
                _fix_merged(store, nid),
            ))  # fmt: skip
    return found


def _on_target(root: Path, target: str, commit: str) -> bool:
    try:
        return merge_queue.contains(root, target, commit)
    except GitdagError:
        return False


def _fix_merged(store: StateStore, node_id: str) -> Callable[[], str]:
    def fix() -> str:
        paths = store.paths
        with SupervisorLock(paths.ensure_local()):
            snap = store.snapshot()
            node = store.node(snap, node_id)
            if node.status is not Status.MERGING or node.work is None:
                return f"{node_id} is {node.status.value} now: nothing to do"
            # The merge queue's own path: it finds the commit that integrated the branch.
            result = merge_queue.integrate(
                paths.root, paths.git_dir, paths.local, branch=node.work.branch,
                target=snap.graph.target, check_cmd=None, check_timeout_s=60.0, node_id=node_id,
                message=f"gitdag: integrate {node_id}\n",
            )  # fmt: skip
            if result.status != "already_merged" or result.merged is None:
                raise OSError(f"{node_id}: the merge queue says {result.status}; run `gitdag run`")
            merged = result.merged

            def compute(s: Snapshot, now: dt.datetime) -> Transition | Rejected:
                return lifecycle.merged(store.node(s, node_id), merged_commit=merged, now=now)

            store.transact(compute, actor=repos.human_actor(store.repo))
        return f"recorded {node_id} as done (integrated by {merged[:12]})"

    return fix


def check_objects(store: StateStore) -> list[Finding]:
    """Many loose objects (each transition leaves about five): suggest `git gc`."""
    proc = run_git(["count-objects", "-v"], store.paths.root, check=False)
    counts = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    loose = int(counts.get("count", "0") or 0)
    if loose <= LOOSE_OBJECTS_LIMIT:
        return []
    return [Finding(
        "objects",
        f"{loose} loose objects (each transition leaves about five): reads get slower",
        "git gc",
        lambda: _git_gc(store),
    )]  # fmt: skip


def _git_gc(store: StateStore) -> str:
    # Not while a supervisor writes: packing refs under a concurrent writer is what the
    # architecture notes warn about.
    with SupervisorLock(store.paths.ensure_local()):
        run_git(["gc", "--quiet"], store.paths.root)
    return "ran git gc"


# --- helpers -------------------------------------------------------------------------------------


def _running_supervisor(local: Path) -> str | None:
    """Who holds the supervisor lock, without taking it for longer than a probe."""
    path = local / "supervisor.lock"
    if not path.exists():
        return None
    probe = FileLock(str(path))
    try:
        probe.acquire(timeout=0)
    except Timeout:
        pid = _json_pid(local / "supervisor.json")
        return f"pid {pid}" if pid is not None else "a supervisor"
    probe.release()
    return None


def _json_pid(path: Path) -> int | None:
    try:
        value = json.loads(path.read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def _unlink(path: Path) -> str:
    os.unlink(path)
    return f"removed {path}"
