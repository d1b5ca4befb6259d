"""`StateStore.transact_along`: a transition and another ref's move land together or not at all."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from gitdag.core import human_verbs, lifecycle
from gitdag.core.transitions import Rejected, Transition
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed, Moved, StateStore
from gitdag.store.write import RefMove
from gitdag.supervisor import control
from tests.conftest import git, make_repo, run_gitdag
from tests.store.helpers import state_head


def _setup(tmp_path: Path) -> tuple[Path, str, str]:
    root = make_repo(tmp_path / "r", {"a.txt": "a\n"})
    assert run_gitdag(root, "init", "--goal", "g").code == 0
    assert run_gitdag(root, "add", "n", "--title", "n").code == 0
    old = git(root, "rev-parse", "main").strip()
    (root / "a.txt").write_text("b\n")
    git(root, "commit", "-qam", "side")
    new = git(root, "rev-parse", "HEAD").strip()
    git(root, "update-ref", "refs/heads/side", new)
    git(root, "reset", "-q", "--hard", old)
    return root, old, new


def _cancel(store: StateStore, calls: list[str]) -> object:
    def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
        calls.append(snap.head or "")
        return human_verbs.cancel(store.node(snap, "n"), by="test", now=now)

    return compute


def test_both_refs_move_in_one_transaction(tmp_path: Path) -> None:
    root, old, new = _setup(tmp_path)
    with StateStore.open(root) as store:
        before = state_head(root)
        calls: list[str] = []
        out = store.transact_along(
            _cancel(store, calls),  # type: ignore[arg-type]
            actor="t",
            move=RefMove("refs/heads/main", old, new),
            cwd=root,
        )
        assert isinstance(out, Committed)
        assert git(root, "rev-parse", "main").strip() == new
        assert state_head(root) == out.head != before
        assert store.snapshot().nodes["n"].status.value == "cancelled"


def test_other_ref_moved_means_neither_moves(tmp_path: Path) -> None:
    root, old, new = _setup(tmp_path)
    with StateStore.open(root) as store:
        before = state_head(root)
        out = store.transact_along(
            _cancel(store, []),  # type: ignore[arg-type]
            actor="t",
            move=RefMove("refs/heads/main", new, old),  # main is not at `new`
            cwd=root,
        )
        assert isinstance(out, Moved) and out.ref == "refs/heads/main"
        assert state_head(root) == before and git(root, "rev-parse", "main").strip() == old


def test_state_moved_between_compute_and_swap_is_recomputed_and_may_refuse(
    tmp_path: Path,
) -> None:
    root, old, new = _setup(tmp_path)
    seen: list[str] = []
    with StateStore.open(root) as store, StateStore.open(root) as other:

        def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            seen.append(snap.head or "")
            node = store.node(snap, "n")
            if len(seen) == 1:  # another shell cancels the node right after we computed
                control.cancel(other, "n")
            if node.status.value == "cancelled":
                return Rejected("n is cancelled")
            return lifecycle.claim(node, worker="w", now=now, lease_s=60)

        out = store.transact_along(
            compute, actor="t", move=RefMove("refs/heads/main", old, new), cwd=root
        )
        assert isinstance(out, Rejected) and len(seen) == 2 and seen[0] != seen[1]
        assert git(root, "rev-parse", "main").strip() == old  # the refusal kept main too
