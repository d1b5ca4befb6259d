"""Breaking a `<ref>.lock` that a writer killed mid-update left behind (imports nothing of gitdag).

A writer holds `<ref>.lock` for the milliseconds of one write and fsync. One that has not been
touched for `STALE_LOCK_S` was left by a writer killed mid-update (kill -9, a power cut): without
breaking it, the ref could never be written again (found by bench/crash.py). The state store
(`store/write.py`) and gitdag's in-process ref moves (`workspace/objects.py`) both break such
locks, and neither layer may import the other, so the rule lives here, below both.
"""

from __future__ import annotations

import os
import time

STALE_LOCK_S = 5.0


def break_stale(lock: str | os.PathLike[str], stale_s: float = STALE_LOCK_S) -> bool:
    """Remove `lock` when no writer touched it for `stale_s`; True when the lock is gone.

    The lock is re-checked (same inode, same mtime) right before it is removed, so a lock that a
    live writer took meanwhile is left alone.
    """
    try:
        seen = os.stat(lock)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if time.time() - seen.st_mtime < stale_s:
        return False
    try:
        again = os.stat(lock)
        if (again.st_ino, again.st_mtime_ns) == (seen.st_ino, seen.st_mtime_ns):
            os.unlink(lock)
    except OSError:
        pass
    return not os.path.exists(lock)
