"""What `gitdag run` shows while it works: a live view on a terminal, plain lines otherwise.

Plain (`--quiet` aside, what scripts, CI logs and tests see): one timestamped line per event,
errors prefixed `gitdag:`. On a terminal, unless `--no-color`, `NO_COLOR` or `--quiet`, the
same event lines in colour scroll above a block redrawn in place: one line per running node
(id, runner, elapsed time, the last line its runner printed) and a summary line. The block is
rebuilt at most every `REDRAW_S`; the supervisor computes its rows only when `live` is true.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from gitdag.core.render import duration
from gitdag.core.transitions import Transition

REDRAW_S = 0.25

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_DIM = "\x1b[2m"
_RED = "\x1b[31m"
_GREEN = "\x1b[32m"
_YELLOW = "\x1b[33m"
_CYAN = "\x1b[36m"


@dataclass(frozen=True)
class Running:
    """One running node as the live view shows it."""

    node_id: str
    runner: str
    started_at: dt.datetime
    run_dir: Path


class Progress:
    """Events as lines; on a terminal also a live view of running nodes; `quiet`: errors only."""

    def __init__(
        self,
        *,
        quiet: bool = False,
        stream: TextIO | None = None,
        live: bool | None = None,
        plain: bool = False,
    ) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        if live is None:
            live = self.stream.isatty() and not plain and not os.environ.get("NO_COLOR")
        self.live = live and not quiet
        self._drawn = 0  # lines of the live block now on screen
        self._next_draw = 0.0

    # --- lines -------------------------------------------------------------------------------

    def event(self, text: str) -> None:
        if self.quiet:
            return
        self._clear()
        stamp = dt.datetime.now().strftime("%H:%M:%S")
        line = f"{_DIM}{stamp}{_RESET} {_colour_event(text)}" if self.live else f"{stamp} {text}"
        self.stream.write(line + "\n")
        self.stream.flush()
        self._next_draw = 0.0  # redraw the block under the new line at once

    def error(self, text: str) -> None:
        self._clear()
        if self.live:
            self.stream.write(f"{_RED}{_BOLD}gitdag:{_RESET} {_RED}{text}{_RESET}\n")
        else:
            self.stream.write(f"gitdag: {text}\n")
        self.stream.flush()
        self._next_draw = 0.0

    def transition(self, t: Transition) -> None:
        """One committed transition as an event line (an error line when it failed the node)."""
        text = f"{t.subject}: {t.from_status or '-'} -> {t.to_status or '-'}"
        if t.verb == "claim":
            text = f"{t.subject}: started (attempt {t.attempt})"
        elif t.summary:
            text += f" — {' '.join(t.summary.split())[:160]}"
        if t.verb in ("fail", "escalate") and t.from_status == "running":
            text += f" (see: gitdag logs {t.subject})"  # what the runner printed
        if t.to_status == "failed":
            self.error(text)
        else:
            self.event(text)

    # --- the live block ---------------------------------------------------------------------

    def status(self, counts: dict[str, int], running: list[Running], merging: int) -> None:
        """Redraw the live block (no-op unless live; throttled to one redraw per REDRAW_S)."""
        if not self.live:
            return
        now = time.monotonic()
        if now < self._next_draw:
            return
        self._next_draw = now + REDRAW_S
        width = max(20, shutil.get_terminal_size((100, 20)).columns - 1)
        lines = [_summary(counts, len(running), merging, width)]
        wall = dt.datetime.now(dt.UTC)
        shown = running[:12]
        id_w = max((len(r.node_id) for r in shown), default=0)
        run_w = max((len(r.runner) for r in shown), default=0)
        for r in shown:
            elapsed = duration((wall - r.started_at).total_seconds())
            last = _last_line(r.run_dir)
            head = f"  {r.node_id:<{id_w}}  {r.runner:<{run_w}}  {elapsed:>6}  "
            room = max(0, width - len(head))
            tail = last if len(last) <= room else last[: max(0, room - 1)] + "…"
            lines.append(f"  {_YELLOW}{r.node_id:<{id_w}}{_RESET}  {_CYAN}{r.runner:<{run_w}}"
                         f"{_RESET}  {elapsed:>6}  {_DIM}{tail}{_RESET}")  # fmt: skip
        if len(running) > len(shown):
            lines.append(f"  {_DIM}… and {len(running) - len(shown)} more{_RESET}")
        self._clear()
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()
        self._drawn = len(lines)

    def _clear(self) -> None:
        if self.live and self._drawn:
            # Up to the block's first line, then erase from there to the end of the screen.
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def close(self) -> None:
        if self.live and self._drawn:
            self._clear()
            self.stream.flush()


def _summary(counts: dict[str, int], running: int, merging: int, width: int) -> str:
    """The block's first line, cut to whole parts that fit `width` (colour codes take no room)."""
    total = sum(counts.values())
    parts = [(f"done {counts.get('done', 0)}/{total}", _GREEN)]
    if running:
        parts.append((f"running {running}", _YELLOW))
    if merging:
        parts.append((f"merge queue {merging}", ""))
    if counts.get("failed"):
        parts.append((f"failed {counts['failed']}", _RED))
    if counts.get("needs_human"):
        parts.append((f"needs_human {counts['needs_human']}", _CYAN))
    line, used = f"{_BOLD}gitdag run{_RESET}", len("gitdag run")
    for text, colour in parts:
        if used + 3 + len(text) > width:
            break
        line += f" · {colour}{text}{_RESET}" if colour else f" · {text}"
        used += 3 + len(text)
    return line


def _colour_event(text: str) -> str:
    if "-> done" in text or text.startswith("all done"):
        return f"{_GREEN}{text}{_RESET}"
    if "-> needs_human" in text:
        return f"{_CYAN}{text}{_RESET}"
    if "running -> open" in text or text.startswith("stopped"):
        return f"{_YELLOW}{text}{_RESET}"
    return text


def _last_line(run_dir: Path) -> str:
    from gitdag.runner.runs import last_line

    return last_line(run_dir)
