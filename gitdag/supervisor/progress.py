"""What `gitdag run` shows while it works: a live line on a terminal, plain lines otherwise."""

from __future__ import annotations

import datetime as dt
import shutil
import sys
from typing import TextIO


class Progress:
    """Events as lines; on a terminal also a live status line; `quiet` shows errors only."""

    def __init__(
        self, *, quiet: bool = False, stream: TextIO | None = None, live: bool | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live = (self.stream.isatty() if live is None else live) and not quiet
        self._line = ""

    def _clear(self) -> None:
        if self.live and self._line:
            self.stream.write("\r\x1b[2K")
            self._line = ""

    def event(self, text: str) -> None:
        if self.quiet:
            return
        self._clear()
        stamp = dt.datetime.now().strftime("%H:%M:%S")
        self.stream.write(f"{stamp} {text}\n")
        self.stream.flush()

    def error(self, text: str) -> None:
        self._clear()
        self.stream.write(f"gitdag: {text}\n")
        self.stream.flush()

    def status(self, counts: dict[str, int], running: list[str], merging: int) -> None:
        if not self.live:
            return
        width = shutil.get_terminal_size((100, 20)).columns
        parts = [f"done {counts.get('done', 0)}/{sum(counts.values())}"]
        if running:
            parts.append("running " + ", ".join(running[:4]) + ("…" if len(running) > 4 else ""))
        if merging:
            parts.append(f"merge queue {merging}")
        for key in ("failed", "needs_human"):
            if counts.get(key):
                parts.append(f"{key} {counts[key]}")
        line = " · ".join(parts)[: max(10, width - 1)]
        self.stream.write("\r\x1b[2K" + line)
        self.stream.flush()
        self._line = line

    def close(self) -> None:
        if self.live and self._line:
            self.stream.write("\n")
            self.stream.flush()
            self._line = ""
