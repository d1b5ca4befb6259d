"""`gitdag run` on a graph that has a remote: sync, then claim through the remote.

A clone whose graph has a remote (`remote.name` in `.dagain/config.yaml`, or the upstream of
`dagain/state`) shares one graph with every CI worker of that remote. Running nodes from the
local `dagain/state` would run again what a worker already ran (the local branch is only as new
as its last fetch), and its claims could never be pushed. So `run` there:

1. syncs (`remote/sync.py`): behind, the local branch is fast-forwarded; ahead or diverged, the
   local transitions are pushed or replayed; a conflict stops here (exit 2, nodes named);
2. runs this clone as one more worker of the remote (`remote/worker.py`, as `gitdag work
   --remote NAME` does): every claim is a compare-and-swap push confirmed before its runner
   starts, every result is judged against the remote's head, merges land on the remote's
   target. A node another machine claimed is never started here, and the reverse;
3. syncs again, so the local `dagain/state` ends equal to the remote's.

`--watch` starts the worker again after the remote's graph changes, until interrupted.

Ctrl-C or SIGTERM stops it within seconds wherever it is: the worker handles its own (it gives
its nodes back, remote/link.py), and then the last sync is skipped (the remote may be what did
not answer: `gitdag sync` later); between two workers (a sync, the watch) either signal ends the
command with 130 at once.
"""

from __future__ import annotations

import signal
import time
from types import FrameType

from gitdag.attempts.lock import SupervisorLock
from gitdag.attempts.progress import Progress
from gitdag.config import Settings
from gitdag.remote.steer import open_remote
from gitdag.remote.sync import Synced, sync
from gitdag.remote.worker import WorkOptions, run_worker
from gitdag.store.remote import RemoteState

WATCH_POLL_S = 2.0
WATCH_POLL_MAX_S = 30.0


def describe(synced: Synced) -> str:
    """One line saying what a sync did."""
    where, head = synced.remote, synced.head[:12]
    if synced.action == "up to date":
        return f"dagain/state is up to date with {where} ({head})"
    if synced.action == "created":
        return f"dagain/state created from {where} ({head})"
    if synced.action == "fast-forwarded":
        return f"dagain/state fast-forwarded to {where}'s graph ({head})"
    if synced.action == "discarded":
        return (f"dagain/state set to {where}'s graph ({head}); {synced.skipped} local "
                "transition(s) dropped (still in git's reflog of dagain/state)")  # fmt: skip
    line = f"pushed {synced.pushed} local transition(s) to {where} ({head})"
    if synced.action == "replayed":
        line = f"replayed {synced.pushed} local transition(s) on {where}'s graph ({head})"
        if synced.skipped:
            line += f"; {synced.skipped} were there already"
    if synced.refs:
        line += "; with " + ", ".join(r.removeprefix("refs/heads/") for r in synced.refs)
    if not synced.followed:
        line += "; the local dagain/state moved meanwhile: sync again"
    return line


def sync_locked(state: RemoteState, *, discard_local: bool = False) -> Synced:
    """Sync while holding this clone's supervisor lock (no local writer runs meanwhile).

    Raises:
      LockedError: a supervisor or worker runs in this clone (exit 4).
    """
    paths = state.store.paths
    with SupervisorLock(paths.ensure_local(), paths.git_dir):
        return sync(state, discard_local=discard_local)


def run_shared(remote: str, settings: Settings, *, workers: int, once: bool, watch: bool,
               progress: Progress) -> int:  # fmt: skip
    """`gitdag run` with a remote: sync, work through the remote, sync; return the exit code."""
    state = open_remote(".", remote, fetch=False)
    old_term = signal.signal(signal.SIGTERM, _as_interrupt)
    try:
        progress.event(describe(sync_locked(state)))
        options = WorkOptions(workers=workers, max_nodes=1 if once else None)
        while True:
            code = run_worker(state, settings, options, progress)
            if code == 130:
                progress.event(f"interrupted: dagain/state not synced with {remote} (gitdag sync)")
                return code
            last = sync_locked(state)
            if last.action != "up to date":
                progress.event(describe(last))
            if not watch or once or code not in (0, 1):
                return code
            progress.event(f"watching {remote}'s graph for new work (Ctrl-C to stop)")
            _wait_for_change(state, last.head)
            progress.event(describe(sync_locked(state)))
    except KeyboardInterrupt:  # --watch, between two workers (a worker handles its own)
        return 130
    finally:
        signal.signal(signal.SIGTERM, old_term)
        state.close()


def _as_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM outside the worker stops `run` as Ctrl-C does (exit 130, not killed)."""
    raise KeyboardInterrupt


def _wait_for_change(state: RemoteState, head: str) -> None:
    """Look at the remote's graph, less often while it stays quiet, until it moves."""
    wait = WATCH_POLL_S
    while state.remote_ref("refs/heads/dagain/state") == head:
        time.sleep(wait)
        wait = min(wait * 2, WATCH_POLL_MAX_S)
