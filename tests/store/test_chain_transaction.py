"""`StateStore.transact_chain_along`: several transitions, one commit each, one ref transaction."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from gitdag.core import human_verbs
from gitdag.core.transitions import Rejected, Transition
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Compute, Moved, StateStore
from gitdag.store.write import RefMove
from tests.conftest import git, make_repo, run_gitdag
from tests.store.helpers import state_head


def _setup(tmp_path: Path) -> tuple[Path, str, str]:
    root = make_repo(tmp_path / "r", {"a.txt": "a\n"})
    assert run_gitdag(root, "init", "--goal", "g").code == 0
    for nid in ("a", "b"):
        assert run_gitdag(root, "add", nid, "--title", nid).code == 0
    old = git(root, "rev-parse", "main").strip()
    (root / "a.txt").write_text("b\n")
    git(root, "commit", "-qam", "side")
    new = git(root, "rev-parse", "HEAD").strip()
    git(root, "reset", "-q", "--hard", old)
    return root, old, new


def _cancel(store: StateStore, nid: str, seen: list[str] | None = None) -> Compute:
    def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
        if seen is not None:
            seen.append(snap.head or "")
        node = store.node(snap, nid)
        if node.status.value == "cancelled":
            return Rejected(f"{nid} is cancelled already")
        return human_verbs.cancel(node, by="test", now=now)

    return compute


def test_each_transition_is_its_own_commit_and_all_move_with_the_ref(tmp_path: Path) -> None:
    root, old, new = _setup(tmp_path)
    with StateStore.open(root) as store:
        before = state_head(root)
        seen: list[str] = []
        out = store.transact_chain_along(
            [_cancel(store, "a", seen), _cancel(store, "b", seen)],
            actor="t", move=RefMove("refs/heads/main", old, new), cwd=root,
        )  # fmt: skip
        assert isinstance(out, list) and len(out) == 2
        assert seen[0] == before and seen[1] == out[0].head  # b computed on a's commit
        assert git(root, "rev-parse", "main").strip() == new
        assert state_head(root) == out[1].head
        assert git(root, "rev-parse", f"{out[1].head}^").strip() == out[0].head
        assert git(root, "rev-parse", f"{out[0].head}^").strip() == before
        snap = store.snapshot()
        assert {snap.nodes[n].status.value for n in ("a", "b")} == {"cancelled"}
    assert run_gitdag(root, "validate").code == 0


def test_one_refusal_moves_neither_ref(tmp_path: Path) -> None:
    root, old, new = _setup(tmp_path)
    with StateStore.open(root) as store:
        before = state_head(root)
        out = store.transact_chain_along(
            [_cancel(store, "a"), _cancel(store, "a")],  # the second finds a cancelled
            actor="t", move=RefMove("refs/heads/main", old, new), cwd=root,
        )  # fmt: skip
        assert isinstance(out, Rejected)
        assert state_head(root) == before and git(root, "rev-parse", "main").strip() == old


def test_the_other_ref_moved_means_nothing_moves(tmp_path: Path) -> None:
    root, old, new = _setup(tmp_path)
    with StateStore.open(root) as store:
        before = state_head(root)
        out = store.transact_chain_along(
            [_cancel(store, "a"), _cancel(store, "b")],
            actor="t", move=RefMove("refs/heads/main", new, old), cwd=root,
        )  # fmt: skip
        assert isinstance(out, Moved) and out.ref == "refs/heads/main"
        assert state_head(root) == before and git(root, "rev-parse", "main").strip() == old
