"""The files of a run directory: their names, a runner's output read back, records written whole.

A run directory is `.dagain/local/runs/<node>/<attempt>/`; `gitdag.runner.launch` fills it,
`gitdag.runner.runs` and `gitdag.runner.orphans` read it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

PID_FILE = "pid.json"
OUTCOME_FILE = "outcome.json"
STDOUT_FILE = "stdout"
STDERR_FILE = "stderr"
LOG_FILE = "log"
OUTPUT_FILE = "output.env"  # $GITDAG_OUTPUT: KEY=VALUE lines (core/outputs.py)
LOG_STREAM_CAP = 256 * 1024


class Stream:
    """One output file of a runner: its size, and its last LOG_STREAM_CAP bytes (read once)."""

    def __init__(self, path: Path, size: int, data: bytes) -> None:
        self.path, self.size, self.data = path, size, data

    @property
    def whole(self) -> bool:
        return len(self.data) == self.size

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    @classmethod
    def read(cls, path: Path) -> Stream:
        try:
            size = path.stat().st_size
            if size == 0:
                return cls(path, 0, b"")  # the common case costs one stat, no open
            with open(path, "rb") as handle:
                if size > LOG_STREAM_CAP:
                    handle.seek(size - LOG_STREAM_CAP)
                return cls(path, size, handle.read(LOG_STREAM_CAP))
        except OSError:
            return cls(path, 0, b"")


def write_once(path: Path, data: Mapping[str, object]) -> None:
    # One write() of a fresh file: a reader sees all of it or (after a crash between the open and
    # the write, a window of microseconds) an empty file, which it treats as no record. Cheaper
    # than write-and-rename, and this runs once per attempt.
    raw = (json.dumps(data, indent=1) + "\n").encode("utf-8")
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, raw)
    finally:
        os.close(fd)


def write_json(path: Path, data: Mapping[str, object]) -> None:
    """Write JSON then rename it into place, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
