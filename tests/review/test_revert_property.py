"""Property: on random histories, a revert either is refused (nothing written) or restores exactly
the reverted commit's nodes and leaves a branch whose whole history validates."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gitdag.core.transitions import Rejected
from gitdag.store import ranges
from gitdag.store import revert as reverts
from gitdag.store.delta import commit_of
from gitdag.store.state import Committed, StateStore
from tests.conftest import make_repo
from tests.review import helpers as h

IDS = ["a", "b", "c", "d"]
STEP = st.tuples(st.sampled_from(["add", "claim", "complete", "fail"]), st.sampled_from(IDS))


def build(repo: Path, steps: list[tuple[str, str]]) -> list[str]:
    """Apply the steps that are possible, in order; return the commits written (oldest first)."""
    heads = [h.init(repo, "")]
    status: dict[str, str] = {}
    for verb, nid in steps:
        if verb == "add" and nid not in status:
            deps = [d for d in sorted(status) if d < nid][:1]
            heads.append(h.add(repo, nid, deps=deps))
            status[nid] = "open"
        elif verb == "claim" and status.get(nid) == "open":
            node = h.node(repo, nid)
            if all(status.get(d) == "done" for d in node.deps):
                heads.append(h.claim(repo, nid))
                status[nid] = "running"
        elif verb == "complete" and status.get(nid) == "running":
            heads.append(h.complete(repo, nid))
            status[nid] = "done"
        elif verb == "fail" and status.get(nid) == "running":
            heads.append(h.fail(repo, nid))
            status[nid] = h.node(repo, nid).status.value
    return heads


def files_at(store: StateStore, commit: str) -> dict[str, str]:
    snap = store.snapshot_of(commit, strict=False)
    return dict(snap.blobs)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(STEP, min_size=3, max_size=10), pick=st.integers(0, 100), force=st.booleans())
def test_revert_is_exact_or_refused_and_history_stays_valid(
    steps: list[tuple[str, str]], pick: int, force: bool
) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="gitdag-revert-prop-"))
    try:
        repo = make_repo(tmp / "repo")
        heads = build(repo, steps)
        if len(heads) < 2:
            return
        target = heads[1 + pick % (len(heads) - 1)]
        with StateStore.open(repo) as store:
            before = store.head()
            assert before is not None
            parent = commit_of(store.repo, target).parents[0].decode()
            old_files, target_files = files_at(store, parent), files_at(store, target)
            head_files = files_at(store, before)
            outcome = reverts.revert(store, target, actor="prop", force=force)
            event(f"outcome {type(outcome).__name__}, force={force}")
            if isinstance(outcome, Rejected) or outcome is None:
                assert store.head() == before  # nothing written
                return
            assert isinstance(outcome, Committed)
            after_files = files_at(store, outcome.head)
            touched = {n for n in set(old_files) | set(target_files)
                       if old_files.get(n) != target_files.get(n)}  # fmt: skip
            for nid in touched:
                assert after_files.get(nid) == old_files.get(nid), nid
            if not force:
                untouched = set(head_files) | set(after_files)
                for nid in untouched - touched:
                    assert after_files.get(nid) == head_files.get(nid), nid
            report = ranges.validate_range(store, None, outcome.head)
            assert report.ok, [str(p) for p in report.problems]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
