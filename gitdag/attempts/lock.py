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

COMMON_LOCK = "dagain-supervisor.lock"


class SupervisorLock:
    """Held for the whole life of `gitdag run`; a second supervisor exits with code 4.

    Two files are locked: `supervisor.lock` in the local directory (what doctor and older
    versions look at) and `dagain-supervisor.lock` in the repository's common git directory, so
    a second supervisor is refused whatever local directory it was given (`GITDAG_LOCAL_DIR`, a
    linked worktree). The common one is taken first.
    """

    def __init__(self, local: Path, git_dir: Path | None = None) -> None:
        local.mkdir(parents=True, exist_ok=True)
        self.path = local / "supervisor.lock"
        self.info = local / "supervisor.json"
        self._lock = FileLock(str(self.path))
        self._common = FileLock(str(git_dir / COMMON_LOCK)) if git_dir is not None else None

    def __enter__(self) -> SupervisorLock:
        try:
            if self._common is not None:
                self._common.acquire(timeout=0)
            try:
                self._lock.acquire(timeout=0)
            except Timeout:
                if self._common is not None:
                    self._common.release()
                raise
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
        if self._common is not None:
            self._common.release()
