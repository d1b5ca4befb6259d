"""Recovery after a supervisor crash: find runner process groups it left behind, stop or await them.

Each launch writes `pid.json` into its run directory and, once the supervisor has collected the
runner, `outcome.json`. A run directory with the first but not the second, whose process group
still has live members, is an orphan: it must be stopped (or waited for) before its node gets a
new attempt, so that no attempt of a node ever runs twice at the same time.

Pid reuse: the recorded start time of the group leader is compared with the live process's. A
pid is never handed out while a process group of that id has members, so a leader that has exited
but left members behind still identifies the group.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from gitdag.core.loaders import load_json
from gitdag.runner import procs
from gitdag.runner.run_files import OUTCOME_FILE, PID_FILE, write_json


@dataclass(frozen=True)
class PidInfo:
    """What `pid.json` says about a launched runner."""

    run_dir: Path
    pid: int
    pgid: int
    start_ticks: int | None
    started_at: str
    node_id: str
    attempt: int
    run_id: str
    supervisor_pid: int
    supervisor_start_ticks: int | None
    start_ticks_max: int | None = None  # None: start_ticks is exact


def read_pid_info(run_dir: Path) -> PidInfo | None:
    """Return the launch record of a run directory, or None when there is none (or it is bad)."""
    try:
        data = load_json((run_dir / PID_FILE).read_bytes())
        return PidInfo(
            run_dir=run_dir,
            pid=int(data["pid"]),
            pgid=int(data["pgid"]),
            start_ticks=_opt_int(data.get("start_ticks")),
            started_at=str(data.get("started_at", "")),
            node_id=str(data["node_id"]),
            attempt=int(data["attempt"]),
            run_id=str(data.get("run_id", "")),
            supervisor_pid=int(data.get("supervisor_pid", 0)),
            supervisor_start_ticks=_opt_int(data.get("supervisor_start_ticks")),
            start_ticks_max=_opt_int(data.get("start_ticks_max")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _opt_int(value: object) -> int | None:
    return int(value) if isinstance(value, int) else None


def is_alive(info: PidInfo) -> bool:
    """Tell whether the runner's process group still has live members."""
    if not procs.has_proc():
        return procs.signal_group(info.pgid, 0)
    leader = procs.proc_stat(info.pid)
    if leader is not None and info.start_ticks is not None:
        high = info.start_ticks_max if info.start_ticks_max is not None else info.start_ticks
        if not info.start_ticks - 1 <= leader.start_ticks <= high + 1:
            return False  # the pid now names another process, so our group emptied long ago
    return bool(procs.group_members(info.pgid))


def is_collected(run_dir: Path) -> bool:
    """Tell whether a supervisor collected this run (or stopped it as an orphan)."""
    return (run_dir / OUTCOME_FILE).exists()


def _is_ours(info: PidInfo) -> bool:
    return info.supervisor_pid == os.getpid() and (
        info.supervisor_start_ticks is None
        or info.supervisor_start_ticks == procs.own_start_ticks()
    )


def find_orphans(runs_dir: Path) -> list[PidInfo]:
    """Return the runners under `runs_dir` that are alive, uncollected, and not launched by us."""
    found: list[PidInfo] = []
    if not runs_dir.is_dir():
        return found
    for pid_file in sorted(runs_dir.glob(f"**/{PID_FILE}")):
        run_dir = pid_file.parent
        if is_collected(run_dir):
            continue
        info = read_pid_info(run_dir)
        if info is None or _is_ours(info):
            continue
        if is_alive(info):
            found.append(info)
    return found


def wait_orphan(info: PidInfo, timeout_s: float) -> bool:
    """Wait for an orphan to end by itself; return True when it has."""
    end = time.monotonic() + timeout_s
    while is_alive(info):
        if time.monotonic() >= end:
            return False
        time.sleep(0.05)
    return True


def stop_orphan(info: PidInfo, grace_s: float, kill_wait_s: float = 5.0) -> bool:
    """Stop an orphan's whole process group: TERM, then KILL after `grace_s`.

    Returns True when no member is left; records the stop in the run directory so later scans
    skip it.
    """
    stopped = True
    if is_alive(info):
        if grace_s > 0:
            procs.signal_group(info.pgid, signal.SIGTERM)
        if grace_s <= 0 or not wait_orphan(info, grace_s):
            if is_alive(info):  # check again: the group id must still be ours before a KILL
                procs.signal_group(info.pgid, signal.SIGKILL)
            stopped = wait_orphan(info, kill_wait_s)
    if stopped:
        write_json(info.run_dir / OUTCOME_FILE, {
            "node_id": info.node_id, "attempt": info.attempt, "run_id": info.run_id,
            "orphan": "stopped", "stopped_by": os.getpid(),
        })  # fmt: skip
    return stopped
