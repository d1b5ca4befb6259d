"""Process facts from the kernel: start times and the members of a process group.

A start time tells a live process from a reused pid. Linux reads `/proc`; elsewhere the answers
are coarser (a signal 0 to the group).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import NamedTuple

PROC = Path("/proc")


class ProcStat(NamedTuple):
    state: str
    pgrp: int
    start_ticks: int


def proc_stat(pid: int) -> ProcStat | None:
    """Return a process's state, group and start time (clock ticks after boot), or None."""
    try:
        raw = (PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    # The command name sits in parentheses and may itself hold spaces or parentheses.
    rest = raw[raw.rfind(b")") + 2 :].split()
    try:
        return ProcStat(rest[0].decode(), int(rest[2]), int(rest[19]))
    except (IndexError, ValueError):
        return None


def start_ticks(pid: int) -> int | None:
    """Return when a process started (clock ticks after boot), or None when unknown."""
    stat = proc_stat(pid)
    return stat.start_ticks if stat else None


_OWN: dict[int, int | None] = {}
_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def boot_ticks() -> float | None:
    """Return the time since boot in clock ticks, the unit of `/proc/<pid>/stat` start times.

    Reading a just-started child's own start time costs half a millisecond (the kernel is still
    setting it up); bracketing its start between two clock readings costs microseconds.
    """
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    if clock is None or not has_proc():
        return None
    return time.clock_gettime(clock) * _HZ


def tick_window(before: float | None, after: float | None) -> tuple[int | None, int | None]:
    """Return the whole ticks a process started between two `boot_ticks()` readings covers."""
    if before is None or after is None:
        return None, None
    return math.floor(before), math.ceil(after)


def own_start_ticks() -> int | None:
    """Return this process's start time (cached: it never changes, and a fork gets a new pid)."""
    pid = os.getpid()
    if pid not in _OWN:
        _OWN[pid] = start_ticks(pid)
    return _OWN[pid]


def has_proc() -> bool:
    """Tell whether this system exposes `/proc/<pid>/stat`."""
    return (PROC / str(os.getpid()) / "stat").exists()


def group_members(pgid: int) -> list[int]:
    """Return the pids of the live (non-zombie) processes in a process group."""
    if not has_proc():
        return [pgid] if signal_group(pgid, 0) else []
    members = []
    for entry in os.listdir(PROC):
        if not entry.isdigit():
            continue
        stat = proc_stat(int(entry))
        if stat is not None and stat.pgrp == pgid and stat.state not in ("Z", "X"):
            members.append(int(entry))
    return members


def signal_group(pgid: int, sig: int) -> bool:
    """Send a signal to a whole process group (0: only check); False when the group is gone."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True
