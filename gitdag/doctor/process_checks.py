"""Checks of what killed processes leave: stale locks, a dead supervisor's record, orphans."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

from gitdag.attempts.lock import SupervisorLock
from gitdag.core.loaders import load_json
from gitdag.doctor.findings import Finding
from gitdag.errors import GitdagError
from gitdag.runner.orphans import PidInfo, is_alive, is_collected, read_pid_info, stop_orphan
from gitdag.runner.procs import proc_stat
from gitdag.store.state import StateStore
from gitdag.store.write import STALE_LOCK_S, break_stale_lock


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
        with SupervisorLock(store.paths.ensure_local(), store.paths.git_dir):
            if not stop_orphan(info, grace_s=2.0):
                raise OSError(f"process group {info.pgid} survived SIGKILL")
        return f"stopped process group {info.pgid}"

    return fix


def running_supervisor(local: Path) -> str | None:
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
        value = load_json(path.read_bytes()).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def _unlink(path: Path) -> str:
    os.unlink(path)
    return f"removed {path}"
