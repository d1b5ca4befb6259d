"""Crash-injection points for tests: `GITDAG_CRASH_AT=a,b` makes the process die at points a and b.

Tests of recovery need a process to die at an exact place (say, right after the target branch
advanced and before the state transition was recorded) the way kill -9 would: no cleanup, no
`finally`, no flushed buffers. This module imports nothing from gitdag so every layer can use it.
"""

from __future__ import annotations

import os

ENV = "GITDAG_CRASH_AT"
EXIT_CODE = 137  # what a shell reports for a process killed by SIGKILL


def crash_point(name: str) -> None:
    """Exit at once with status 137 if `name` is listed in `$GITDAG_CRASH_AT` (comma-separated)."""
    spec = os.environ.get(ENV)
    if spec and name in (part.strip() for part in spec.split(",")):
        os._exit(EXIT_CODE)
