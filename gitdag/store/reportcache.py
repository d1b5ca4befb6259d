"""The last `gitdag status` report of the state branch's head, kept for the next status or ready.

A warm `gitdag status` at an unchanged head unpickles the whole index (~2 ms per 1k nodes) and
recomputes every list to print what the previous run printed. This file keeps what the last run
computed, `.dagain/local/cache/report-<ref>.marshal`, and a later run uses it only when
  - the state branch's head is still the commit it was computed from (the caller reads the ref
    on every run: a status never shows a stale graph),
  - the clock has not gone back since, nor reached the first `not_before` of an open node after
    it (the one input of the lists that changes with time: core/graph.py `open_sets`, `ready`),
  - this version of gitdag wrote it, in this format.
What changes without a commit is filled in on every run: the running attempts' elapsed times,
and (by the caller) the supervisor's start holds; proposals are never kept (a repository with a
proposal branch takes the full path). `marshal` reads it back in well under a millisecond and
costs no import.
"""

from __future__ import annotations

import contextlib
import marshal
import os

from gitdag import __version__

TYPE_CHECKING = False  # typing costs the quick start a few ms; mypy reads the block
if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping
    from typing import Any

    from gitdag.core.summary import NodeSummary

FORMAT = 1
_US = 10**6


def _path(local: str | os.PathLike[str], ref: bytes) -> str:
    suffix = ref.decode().replace("/", "_")
    return os.path.join(local, "cache", f"report-{suffix}.marshal")


def epoch_us(moment: dt.datetime) -> int:
    """Microseconds since the epoch of an aware datetime, exactly."""
    import datetime as dt

    return (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def valid_until(nodes: Mapping[str, NodeSummary], now: dt.datetime) -> int | None:
    """The first `not_before` after `now` of an open node (epoch µs): lists change then."""
    later = [n.not_before for n in nodes.values()
             if n.not_before is not None and n.status == "open" and n.not_before > now]  # fmt: skip
    return epoch_us(min(later)) if later else None


def save(
    local: str | os.PathLike[str],
    ref: bytes,
    *,
    head: str,
    now: dt.datetime,
    until_us: int | None,
    ready: list[str],
    report: dict[str, Any] | None,
) -> None:
    """Keep what `status` (report and ready) or `ready` (ready alone) computed at `head`.

    Best effort, replaced atomically; never creates the local directory. A `ready` alone
    leaves a status's report of the same head in place (it holds `ready` too).
    """
    if not os.path.isdir(local):
        return
    if report is None and _kept_head(local, ref) == head:
        return
    since = []
    if report is not None:
        import datetime as dt

        since = [None if r["since"] is None else epoch_us(dt.datetime.fromisoformat(r["since"]))
                 for r in report["running"]]  # fmt: skip
        report = {**report, "start_holds": [], "proposals": []}  # filled in when read
    data = {"format": FORMAT, "version": __version__, "head": head,
            "made_us": epoch_us(now), "until_us": until_us, "ready": ready, "report": report,
            "since_us": since}  # fmt: skip
    path = _path(local, ref)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        blob = marshal.dumps(data)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, path)
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _kept_head(local: str | os.PathLike[str], ref: bytes) -> str | None:
    # The head of the status report kept (None: no file, or one without a report).
    data = _read(local, ref)
    if data is None or data.get("report") is None:
        return None
    head = data.get("head")
    return head if isinstance(head, str) else None


def _read(local: str | os.PathLike[str], ref: bytes) -> dict[str, Any] | None:
    try:
        with open(_path(local, ref), "rb") as fh:
            data = marshal.loads(fh.read())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    return data if data.get("version") == __version__ else None


def checked_head(local: str | os.PathLike[str], ref: bytes) -> str | None:
    """The head whose report (or ready list) is kept: a strict read of it found no problem."""
    data = _read(local, ref)
    head = data.get("head") if data is not None else None
    return head if isinstance(head, str) else None


def load(local: str | os.PathLike[str], ref: bytes, head: str, now_s: int) -> dict[str, Any] | None:
    """Return what was kept for `head` when it still holds at `now_s` (whole epoch seconds).

    The result has `ready` and, when a status wrote it, `report` with the running attempts'
    `elapsed_s` as of `now_s`; None when there is nothing valid to use.
    """
    data = _read(local, ref)
    if data is None or data.get("head") != head:
        return None
    now_us = now_s * _US
    until = data.get("until_us")
    if not data["made_us"] <= now_us or (until is not None and now_us >= until):
        return None
    report = data.get("report")
    if report is not None:
        for row, since in zip(report["running"], data["since_us"], strict=True):
            if since is not None:  # as round((now - since).total_seconds(), 1) computes it
                row["elapsed_s"] = round((now_us - since) / _US, 1)
    return data
