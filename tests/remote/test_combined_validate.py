"""A claim commit that claims for raised hands is legal; one claiming a node twice is not.

`gitdag validate` on real commits made through the store (core/combining.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import partial
from pathlib import Path

from gitdag import actions
from gitdag.core import combining, lifecycle
from gitdag.core.combining import HandRequest
from gitdag.core.transitions import Rejected, Transition
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed, StateStore
from tests.conftest import git, make_repo, run_gitdag

HANDS = [HandRequest("worker@b:2.tok", "nonceb", 30), HandRequest("worker@c:3.tok", "noncec", 30)]


def seeded(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "repo")
    with StateStore.open(root, use_disk_cache=False) as store:
        actions.init(store, "", "dagain/integration")
        for nid in ("a", "b", "c", "d"):
            actions.add(store, {"id": nid, "title": nid, "kind": "command", "run": "true"})
    return root


def combined_claim(snap: Snapshot, now: dt.datetime, store: StateStore) -> Transition | Rejected:
    own = lifecycle.claim(store.node(snap, "a"), worker="worker@a:1.tok", now=now, lease_s=600,
                          nonce="noncea")  # fmt: skip
    assert isinstance(own, Transition)
    combined, served = combining.combine(own, HANDS, snap.nodes, partial(store.node, snap),
                                         now=now, paused=False, max_lease_s=600)  # fmt: skip
    assert [s.worker for s in served] == [h.worker for h in HANDS]
    return combined


def test_validate_accepts_a_combined_claim(tmp_path: Path) -> None:
    root = seeded(tmp_path)
    start = git(root, "rev-parse", "dagain/state").strip()
    with StateStore.open(root, use_disk_cache=False) as store:
        done = store.transact(lambda s, now: combined_claim(s, now, store), actor="worker@a:1.tok")
        assert isinstance(done, Committed)
        nodes = store.nodes(done.snapshot)
    # Three nodes claimed in one commit: ours with the full lease, the hands' with the short one.
    claimed = {nid: n.claim for nid, n in nodes.items() if n.claim is not None}
    assert sorted(c.worker for c in claimed.values()) == sorted(
        ["worker@a:1.tok", "worker@b:2.tok", "worker@c:3.tok"]
    )
    for claim in claimed.values():
        span = (claim.lease_until - claim.since).total_seconds()
        assert span == (600 if claim.worker == "worker@a:1.tok" else 30)
    body = git(root, "log", "-1", "--format=%B", "dagain/state")
    assert body.count("Gitdag-Claim-For: ") == 2  # one trailer per claim made for a hand
    assert "Gitdag-Claim-For: b worker@b:2.tok nonceb" in body
    res = run_gitdag(root, "validate", f"{start}..dagain/state")
    assert res.code == 0, res.out + res.err


def test_validate_names_a_node_claimed_twice_in_one_commit(tmp_path: Path) -> None:
    root = seeded(tmp_path)
    start = git(root, "rev-parse", "dagain/state").strip()

    def forged(snap: Snapshot, now: dt.datetime, store: StateStore) -> Transition | Rejected:
        made = combined_claim(snap, now, store)
        assert isinstance(made, Transition)
        # The same node b claimed for two hands: one claim record, two trailers.
        twice = (*made.trailers, (combining.CLAIM_FOR, "b worker@c:3.tok noncec"))
        return dataclasses.replace(made, trailers=twice)

    with StateStore.open(root, use_disk_cache=False) as store:
        assert isinstance(store.transact(lambda s, now: forged(s, now, store), actor="x"),
                          Committed)  # fmt: skip
    res = run_gitdag(root, "validate", f"{start}..dagain/state")
    assert res.code != 0
    assert "node b: field claim: claimed 2 times in one commit" in res.out + res.err


def test_validate_names_a_claim_for_another_without_its_trailer(tmp_path: Path) -> None:
    root = seeded(tmp_path)
    start = git(root, "rev-parse", "dagain/state").strip()

    def forged(snap: Snapshot, now: dt.datetime, store: StateStore) -> Transition | Rejected:
        made = combined_claim(snap, now, store)
        assert isinstance(made, Transition)
        kept = tuple(t for t in made.trailers if not t[1].startswith("c "))
        return dataclasses.replace(made, trailers=kept)

    with StateStore.open(root, use_disk_cache=False) as store:
        assert isinstance(store.transact(lambda s, now: forged(s, now, store), actor="x"),
                          Committed)  # fmt: skip
    res = run_gitdag(root, "validate", f"{start}..dagain/state")
    assert res.code != 0
    assert "node c: field claim: claimed in a claim of a without a Gitdag-Claim-For trailer" in (
        res.out + res.err
    )


def test_a_request_survives_its_ref_name() -> None:
    request = HandRequest("worker@ci-runner-7:4242.ab12cd34", "0123abcd", 25, ("gpu", "linux"))
    encoded = request.encode()
    assert encoded is not None and encoded == encoded.lower()
    ok = git(Path.cwd(), "check-ref-format", f"refs/heads/dagain/hands/abc/{encoded}")
    assert ok == ""
    assert HandRequest.decode(encoded) == request
    assert HandRequest.decode("0123456789abcdef") is None  # an older hand: no request
    assert HandRequest("w" * 300, "n", 1).encode() is None  # too long for a ref name
