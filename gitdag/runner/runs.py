"""Reading run directories: which attempts of a node ran here, their output, and following it live.

A run directory is `.dagain/local/runs/<node>/<attempt>/` (see `gitdag.runner.run_files`): `stdout`
and `stderr` as the runner wrote them, `log` (gitdag's header, then both streams and the verdict
once the attempt ended), `pid.json` while and after it runs, `outcome.json` once it was collected.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from gitdag.runner.orphans import is_alive, read_pid_info
from gitdag.runner.run_files import LOG_FILE, OUTCOME_FILE, STDERR_FILE, STDOUT_FILE

STREAMS = {"stdout": STDOUT_FILE, "stderr": STDERR_FILE, "log": LOG_FILE}


def attempts(runs_dir: Path, node_id: str) -> list[int]:
    """Return the attempt numbers that have a run directory for `node_id`, oldest first."""
    try:
        names = os.listdir(runs_dir / node_id)
    except OSError:
        return []
    return sorted(int(name) for name in names if name.isdigit())


def run_dir(runs_dir: Path, node_id: str, attempt: int) -> Path:
    """Return the run directory of one attempt (it may not exist)."""
    return runs_dir / node_id / str(attempt)


def outcome(directory: Path) -> dict[str, object] | None:
    """Return `outcome.json` of a run directory, or None until the attempt is collected."""
    try:
        data = json.loads((directory / OUTCOME_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def runner_gone(directory: Path) -> bool:
    """Tell whether the attempt's process group has ended, as far as this machine can see.

    Ended: `outcome.json` is written, or `pid.json` names no live process group.
    """
    if (directory / OUTCOME_FILE).exists():
        return True
    info = read_pid_info(directory)
    return info is not None and not is_alive(info)


def read_bytes(path: Path) -> bytes:
    """Return a file's bytes, or nothing when it does not exist (yet)."""
    try:
        return path.read_bytes()
    except OSError:
        return b""


@dataclass
class _Tail:
    path: Path
    sink: IO[bytes]
    offset: int = 0

    def pump(self) -> bool:
        """Copy what was appended since the last call; tell whether anything was."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            return False
        if not data:
            return False
        self.offset += len(data)
        self.sink.write(data)
        self.sink.flush()
        return True


def follow(
    files: Sequence[tuple[Path, IO[bytes]]],
    ended: Callable[[], bool],
    *,
    poll_s: float = 0.1,
    check_every_s: float = 1.0,
) -> None:
    """Copy each file to its sink as it grows, until `ended()` says the attempt is over.

    `ended` is asked at most every `check_every_s` (it may read the state branch); after it says
    yes, whatever the files still hold is copied once more, so no last line is lost.
    """
    tails = [_Tail(path, sink) for path, sink in files]
    next_check = 0.0
    while True:
        moved = any([tail.pump() for tail in tails])
        now = time.monotonic()
        if now >= next_check:
            next_check = now + check_every_s
            if ended():
                for tail in tails:
                    tail.pump()
                return
        if not moved:
            time.sleep(poll_s)


def last_line(directory: Path, limit: int = 4096) -> str:
    """Return the last non-empty line the runner printed.

    From whichever of stdout and stderr it wrote to last; only the end of the file is read.
    """
    newest: list[tuple[float, Path]] = []
    for name in (STDOUT_FILE, STDERR_FILE):
        path = directory / name
        try:
            info = path.stat()
        except OSError:
            continue
        if info.st_size:
            newest.append((info.st_mtime, path))
    for _, path in sorted(newest, reverse=True):
        try:
            with open(path, "rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - limit))
                data = handle.read()
        except OSError:
            continue
        for line in reversed(data.decode("utf-8", errors="replace").splitlines()):
            if line.strip():
                return " ".join(line.split())
    return ""
