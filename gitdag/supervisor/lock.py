"""One supervisor per repository: an exclusive lock under `.dagain/local/`."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

from gitdag.core.loaders import load_json
from gitdag.errors import LockedError


class SupervisorLock:
    """Held for the whole life of `gitdag run`; a second supervisor exits with code 4."""

    def __init__(self, local: Path) -> None:
        local.mkdir(parents=True, exist_ok=True)
        self.path = local / "supervisor.lock"
        self.info = local / "supervisor.json"
        self._lock = FileLock(str(self.path))

    def __enter__(self) -> SupervisorLock:
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            holder = ""
            try:
                data = load_json(self.info.read_bytes())
                holder = f" (pid {data.get('pid')} on {data.get('host')})"
            except (OSError, ValueError, AttributeError):
                pass
            raise LockedError(f"another supervisor is running in this repository{holder}") from None
        self.info.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(OSError):
            self.info.unlink()
        self._lock.release()
