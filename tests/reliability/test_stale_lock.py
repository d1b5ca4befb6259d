"""A writer killed mid-update leaves `refs/heads/dagain/state.lock` behind; gitdag goes on.

Found by bench/crash.py: a SIGKILL that lands while the supervisor writes a transition (the ref
lock is held through an fsync) left the lock, and every later `gitdag run` stopped with exit 3
after waiting 10 s.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from tests.conftest import git, run_gitdag
from tests.timing import within


def lock_path(repo: Path) -> Path:
    return repo / ".git" / "refs" / "heads" / "dagain" / "state.lock"


def test_a_stale_state_lock_is_broken_and_the_transition_lands(repo: Path) -> None:
    assert run_gitdag(repo, "init").code == 0
    head = git(repo, "rev-parse", "dagain/state").strip()
    lock = lock_path(repo)
    lock.write_text("0" * 40 + "\n")  # what a writer killed mid-update leaves
    old = time.time() - 60
    os.utime(lock, (old, old))
    start = time.monotonic()
    res = run_gitdag(repo, "add", "x", "--title", "x")
    assert res.code == 0, res.err
    assert time.monotonic() - start < within(5)
    assert not lock.exists()
    assert git(repo, "rev-parse", "dagain/state~1").strip() == head


def test_a_fresh_lock_of_a_live_writer_is_waited_for_not_broken(repo: Path) -> None:
    from gitdag.store.state import StateStore
    from gitdag.store.write import break_stale_lock

    assert run_gitdag(repo, "init").code == 0
    lock = lock_path(repo)
    lock.write_text("0" * 40 + "\n")
    with StateStore.open(repo) as store:
        assert not break_stale_lock(store.repo, store.ref)  # young: a live writer's
        assert lock.exists()
    release = threading.Timer(1.0, lock.unlink)
    release.start()
    start = time.monotonic()
    res = run_gitdag(repo, "add", "x", "--title", "x")
    release.join()
    assert res.code == 0, res.err
    assert time.monotonic() - start >= 0.9  # waited for the writer to finish
