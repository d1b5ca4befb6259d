"""Stateful property test of the core and the store on a real repository (issue 7).

Random sequences of add, claim, complete, fail, merge, retry, cancel, checkpoint, answer, pause,
revert, reset, and two StateStore instances writing the same branch with compare-and-swap (one
of them computing on a snapshot the other has just made stale). After every step:

- the graph at the head is schema-valid and acyclic (no problems when read from scratch);
- every new commit is a legal transition (`store.ranges.validate_range`, i.e. the legality
  rules of `core/legality.py`), and every status change it makes is allowed by
  `core.states.can_move` for its verb;
- replaying the commits reproduces the head: each new commit's tree read from scratch with a
  fresh parse cache equals the incremental read, and equals the snapshot the writer returned;
- ready ⊆ open (and blocked ⊆ open).

CI runs 25 examples of 50 steps (well under a minute); `HYPOTHESIS_PROFILE=slow` runs 200.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gitdag import actions
from gitdag.core import edits, graph, human_verbs, judging, lifecycle
from gitdag.core.commit_message import step_info
from gitdag.core.model import ErrorKind, Kind, Status, Work
from gitdag.core.results import RunnerResult, parse_result
from gitdag.core.states import can_move
from gitdag.core.transitions import Rejected, Transition
from gitdag.store import ranges
from gitdag.store import revert as reverts
from gitdag.store.cache import ParseCache
from gitdag.store.delta import commit_of
from gitdag.store.read import load_snapshot
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed, StateStore

EXAMPLES = {"slow": 200}.get(os.environ.get("HYPOTHESIS_PROFILE", "ci"), 25)
IDS = [f"n{i}" for i in range(8)]
KINDS = [Kind.TASK, Kind.TASK, Kind.COMMAND, Kind.VERIFY, Kind.PLAN, Kind.CHECKPOINT]
HUMAN = "Prop Tester <prop@example.com>"
SUPERVISOR = "supervisor@prop:1"
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
_TEMPLATE: Path | None = None


def template_repo() -> Path:
    """One initialised repository, copied for each example (a fresh `git init` costs more)."""
    global _TEMPLATE
    if _TEMPLATE is None or not _TEMPLATE.exists():
        root = Path(tempfile.mkdtemp(prefix="gitdag-prop-template-")) / "repo"
        root.mkdir()
        env = {**os.environ, "GIT_AUTHOR_NAME": "P", "GIT_AUTHOR_EMAIL": "p@example.com",
               "GIT_COMMITTER_NAME": "P", "GIT_COMMITTER_EMAIL": "p@example.com"}  # fmt: skip
        for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "i"]):
            subprocess.run(["git", *args], cwd=root, check=True, env=env, capture_output=True)
        with StateStore.open(root, use_disk_cache=False, clock=lambda: T0) as store:
            actions.init(store, "", "dagain/integration", {"retry": {"backoff_s": 5}})
        _TEMPLATE = root
    return _TEMPLATE


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="gitdag-prop-"))
        self.root = self.dir / "repo"
        shutil.copytree(template_repo(), self.root, symlinks=True)
        self.now = T0
        self.a = StateStore.open(self.root, clock=self.clock)
        self.b = StateStore.open(self.root, clock=self.clock, use_disk_cache=False)
        self.checked = self.a.head()
        self.prev: Snapshot = self.a.snapshot()
        self.returned: dict[str, Snapshot] = {}  # commit -> the snapshot its writer returned
        self.commits = 1
        self.b_snap: Snapshot | None = None
        self.stale_rejections = 0

    def clock(self) -> dt.datetime:
        return self.now

    def teardown(self) -> None:
        self.a.close()
        self.b.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- helpers ----------------------------------------------------------------------------------

    def snap(self) -> Snapshot:
        return self.a.snapshot()

    def with_status(self, *statuses: Status) -> list[str]:
        return sorted(nid for nid, n in self.snap().nodes.items() if n.status in statuses)

    def paused(self) -> bool:
        return self.snap().graph.control.paused

    def ready(self) -> list[str]:
        snap = self.snap()
        return graph.ready(snap.nodes, self.now, paused=snap.graph.control.paused)

    def commit(self, op: object, store: StateStore | None = None,
               actor: str = SUPERVISOR) -> Committed | Rejected | None:  # fmt: skip
        """Run `op(snap, now) -> Transition | Rejected` as one CAS transaction."""
        outcome = (store or self.a).transact(op, actor=actor)  # type: ignore[arg-type]
        self.record(outcome)
        return outcome

    def record(self, outcome: Committed | Rejected | None) -> None:
        if isinstance(outcome, Committed):
            self.returned[outcome.head] = outcome.snapshot
        self.now += dt.timedelta(seconds=7)

    def node_op(self, node_id: str, fn: object) -> object:
        def op(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            if node_id not in snap.nodes:
                return Rejected("gone")
            return fn(self.a.node(snap, node_id), snap, now)  # type: ignore[operator]

        return op

    # --- rules: human edits -----------------------------------------------------------------------

    @rule(nid=st.sampled_from(IDS), kind=st.sampled_from(KINDS), data=st.data())
    def add(self, nid: str, kind: Kind, data: st.DataObject) -> None:
        existing = sorted(self.snap().nodes)
        deps = data.draw(st.lists(st.sampled_from(existing), max_size=1)) if existing else []
        fields: dict[str, object] = {"id": nid, "title": nid, "kind": kind.value, "deps": deps}
        if kind is Kind.COMMAND:
            fields["run"] = "true"
        outcome = self.a.transact(lambda s, now: edits.add_transition(s.nodes, fields, now),
                                  actor=HUMAN)  # fmt: skip
        self.record(outcome)
        if nid in existing:
            assert isinstance(outcome, Rejected)

    @precondition(lambda self: self.with_status(Status.FAILED, Status.CANCELLED, Status.DONE))
    @rule(data=st.data(), force=st.booleans())
    def retry(self, data: st.DataObject, force: bool) -> None:
        ids = self.with_status(Status.FAILED, Status.CANCELLED, Status.DONE)
        if ids:
            nid = data.draw(st.sampled_from(ids))
            op = self.node_op(nid, lambda n, s, now: human_verbs.retry(n, force=force, now=now))
            self.commit(op, actor=HUMAN)

    @precondition(lambda self: self.snap().nodes)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        ids = sorted(self.snap().nodes)
        if ids:
            nid = data.draw(st.sampled_from(ids))
            self.commit(self.node_op(nid, lambda n, s, now: human_verbs.cancel(n, by="p", now=now)),
                        actor=HUMAN)  # fmt: skip

    @precondition(lambda self: self.with_status(Status.NEEDS_HUMAN))
    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        ids = self.with_status(Status.NEEDS_HUMAN)
        if ids:
            nid = data.draw(st.sampled_from(ids))
            self.commit(self.node_op(nid, lambda n, s, now: human_verbs.answer(
                n, text="go ahead", by=HUMAN, now=now)), actor=HUMAN)  # fmt: skip

    @precondition(lambda self: not self.paused())
    @rule()
    def pause(self) -> None:
        self.commit(lambda s, now: human_verbs.set_paused(s.graph, True), actor=HUMAN)

    @precondition(lambda self: self.paused())
    @rule()
    def resume(self) -> None:
        self.commit(lambda s, now: human_verbs.set_paused(s.graph, False), actor=HUMAN)

    # --- rules: the supervisor --------------------------------------------------------------------

    @precondition(lambda self: self.ready())
    @rule(data=st.data())
    def claim(self, data: st.DataObject) -> None:
        snap = self.snap()
        ready = self.ready()
        nid = data.draw(st.sampled_from(ready))
        if snap.nodes[nid].kind is Kind.CHECKPOINT:
            op = self.node_op(nid, lambda n, s, now: lifecycle.checkpoint_open(n, now=now))
        else:
            op = self.node_op(nid, lambda n, s, now: lifecycle.claim(n, worker=SUPERVISOR, now=now,
                                                                      lease_s=600))  # fmt: skip
        self.commit(op)

    @precondition(lambda self: self.ready())
    @rule(code=st.booleans())
    def run_one(self, code: bool) -> None:
        """A whole attempt of the first ready node: claim, success, and merge if it has code."""
        nid = self.ready()[0]
        if self.snap().nodes[nid].kind is Kind.CHECKPOINT:
            return
        self.commit(self.node_op(nid, lambda n, s, now: lifecycle.claim(
            n, worker=SUPERVISOR, now=now, lease_s=600)))  # fmt: skip
        result = parse_result(json.dumps({"status": "success", "summary": f"{nid} ran"}))
        assert isinstance(result, RunnerResult)
        work = Work(branch=f"dagain/work/{nid}", base="1" * 40, head="2" * 40) if code else None
        self.commit(self.node_op(nid, lambda n, s, now: judging.judge(
            n, s.nodes, {}, s.graph, result, attempt=n.attempts, now=now,
            work=work if n.changes_code() else None)))  # fmt: skip
        self.commit(self.node_op(nid, lambda n, s, now: lifecycle.merged(
            n, merged_commit="3" * 40, now=now)))  # fmt: skip

    @precondition(lambda self: self.with_status(Status.RUNNING))
    @rule(data=st.data(), code=st.booleans(), ask=st.booleans(), child=st.booleans())
    def complete(self, data: st.DataObject, code: bool, ask: bool, child: bool) -> None:
        ids = self.with_status(Status.RUNNING)
        if not ids:
            return
        nid = data.draw(st.sampled_from(ids))
        body: dict[str, object] = {"status": "success", "summary": f"{nid} did it"}
        if ask:
            body = {"status": "checkpoint", "checkpoint": {"question": "which way?"}}
        elif child:
            body["next"] = {"addNodes": [{"id": f"{nid}-c", "title": "child"}]}
        result = parse_result(json.dumps(body))
        assert isinstance(result, RunnerResult)

        def op(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            if nid not in snap.nodes:
                return Rejected("gone")
            node = self.a.node(snap, nid)
            attempt = node.claim.attempt if node.claim else node.attempts
            work = None
            if code and node.changes_code():
                work = Work(branch=f"dagain/work/{nid}", base="1" * 40, head="2" * 40)
            full = self.a.nodes(snap, [a.id for a in result.next.addNodes if a.id in snap.nodes])
            return judging.judge(node, snap.nodes, full, snap.graph, result, attempt=attempt,
                                   now=now, work=work)  # fmt: skip

        self.commit(op)

    @precondition(lambda self: self.with_status(Status.RUNNING, Status.MERGING))
    @rule(data=st.data(), kind=st.sampled_from([ErrorKind.TASK_FAILURE, ErrorKind.TIMEOUT]))
    def fail(self, data: st.DataObject, kind: ErrorKind) -> None:
        ids = self.with_status(Status.RUNNING, Status.MERGING)
        if ids:
            nid = data.draw(st.sampled_from(ids))
            self.commit(self.node_op(nid, lambda n, s, now: judging.fail_attempt(
                n, s.nodes, s.graph, kind=kind, summary="it broke", attempt=n.attempts, now=now,
                verb="merge" if n.status is Status.MERGING else "fail")))  # fmt: skip

    @precondition(lambda self: self.with_status(Status.MERGING))
    @rule(data=st.data())
    def merge(self, data: st.DataObject) -> None:
        ids = self.with_status(Status.MERGING)
        if ids:
            nid = data.draw(st.sampled_from(ids))
            self.commit(self.node_op(nid, lambda n, s, now: lifecycle.merged(
                n, merged_commit="3" * 40, now=now)))  # fmt: skip

    @precondition(lambda self: self.with_status(Status.RUNNING))
    @rule(data=st.data())
    def lease_expired(self, data: st.DataObject) -> None:
        ids = self.with_status(Status.RUNNING)
        if ids:
            nid = data.draw(st.sampled_from(ids))
            self.commit(self.node_op(nid, lambda n, s, now: lifecycle.recover(
                n, reason="worker gone", now=now)))  # fmt: skip

    # --- rules: revert and reset (store/revert.py) ------------------------------------------------

    @precondition(lambda self: self.commits > 2)
    @rule(data=st.data(), back=st.integers(1, 6), reset=st.booleans(), force=st.booleans())
    def revert_or_reset(self, data: st.DataObject, back: int, reset: bool, force: bool) -> None:
        """`gitdag revert` of a recent commit, or `gitdag reset --to` a recent one."""
        history = ranges.commits_between(self.a, None, self.a.head() or "")
        target = history[max(1, len(history) - back)]
        if reset:
            self.record(reverts.reset(self.a, target, actor=HUMAN))
        else:
            self.record(reverts.revert(self.a, target, actor=HUMAN, force=force))

    # --- rules: concurrent compare-and-swap writers -----------------------------------------------

    @rule(nid=st.sampled_from(IDS))
    def interleaved_writers(self, nid: str) -> None:
        """B computes on a head that A moves before B's CAS: B's first CAS fails, B recomputes.

        A claims node `nid` when it is ready, else adds it (or a fresh node); B adds a node of
        its own that depends on `nid` when `nid` exists on the head B sees.
        """
        calls: list[str | None] = []
        mine = f"b{self.commits}"

        def a_op(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            if nid in graph.ready(snap.nodes, now):
                return lifecycle.claim(self.a.node(snap, nid), worker=SUPERVISOR, now=now,
                                       lease_s=9)  # fmt: skip
            fresh = nid if nid not in snap.nodes else f"a{self.commits}"
            return edits.add_transition(snap.nodes, {"id": fresh, "title": fresh}, now)

        def b_op(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            calls.append(snap.head)
            if len(calls) == 1:  # A writes in between: B's snapshot is now stale
                self.commit(a_op)
            deps = [nid] if nid in snap.nodes else []
            return edits.add_transition(snap.nodes, {"id": mine, "title": "b", "deps": deps}, now)

        before = self.a.head()
        outcome = self.b.transact(b_op, actor=HUMAN)
        self.record(outcome)
        assert calls[0] == before
        if isinstance(outcome, Committed):
            assert outcome.tries == 2 and calls[1] != before  # recomputed on A's new head
            parent = commit_of(self.a.repo, outcome.head).parents[0].decode()
            assert parent == calls[1]  # built on A's commit, nothing of A lost
        elif len(calls) > 1:
            assert calls[1] != before

    @rule()
    def b_reads(self) -> None:
        """B takes a snapshot; A's later commits make it stale."""
        self.b_snap = self.b.snapshot()

    @precondition(lambda self: self.b_snap is not None and self.b_snap.head != self.a.head())
    @rule()
    def stale_cas_is_refused(self) -> None:
        """A raw compare-and-swap from B's stale snapshot writes nothing."""
        from gitdag.store.write import build_commit, compare_and_swap

        old = self.b_snap
        assert old is not None
        head = self.a.head()
        flip = human_verbs.set_paused(old.graph, not old.graph.control.paused)
        assert isinstance(flip, Transition)
        commit, _ = build_commit(self.b.repo, old, flip, actor=HUMAN, author=("p", "p@x"),
                                 now=self.now)  # fmt: skip
        assert not compare_and_swap(self.b.repo, self.b.ref, old.head, commit.id.decode(), "stale")
        assert self.a.head() == head
        self.stale_rejections += 1

    # --- invariants -------------------------------------------------------------------------------

    @invariant()
    def new_commits_are_legal_and_replay_to_the_head(self) -> None:
        head = self.a.head()
        assert head is not None
        if head == self.checked:
            return
        report = ranges.validate_range(self.a, self.checked, head)
        assert report.ok, [str(p) for p in report.problems]
        base = self.prev
        for sha in report.commits:
            fresh = load_snapshot(self.a.repo, sha, ParseCache(None), None)
            assert fresh.problems == (), fresh.problems
            incremental = load_snapshot(self.a.repo, sha, ParseCache(None), base)
            assert dict(incremental.nodes) == dict(fresh.nodes)
            assert dict(incremental.blobs) == dict(fresh.blobs)
            assert incremental.graph == fresh.graph and incremental.tree == fresh.tree
            returned = self.returned.get(sha)
            if returned is not None:  # what the writer believed it wrote is what is on disk
                assert dict(returned.nodes) == dict(fresh.nodes)
                assert dict(returned.blobs) == dict(fresh.blobs) and returned.graph == fresh.graph
            info = step_info(commit_of(self.a.repo, sha).message.decode())
            for nid in set(base.nodes) & set(fresh.nodes):
                before, after = base.nodes[nid].status, fresh.nodes[nid].status
                assert can_move(before, after, info.verb), (sha, nid, before, after, info.verb)
            assert graph.find_cycle(fresh.nodes) is None
            base = fresh
            self.commits += 1
        self.prev = base
        self.checked = head

    @invariant()
    def ready_and_blocked_are_open(self) -> None:
        snap = self.a.snapshot()
        for nid in graph.ready(snap.nodes, self.now, paused=False):
            assert snap.nodes[nid].status is Status.OPEN
        for nid in graph.blocked(snap.nodes):
            assert snap.nodes[nid].status is Status.OPEN
        if snap.graph.control.paused:
            assert graph.ready(snap.nodes, self.now, paused=True) == []

    @invariant()
    def full_nodes_match_their_summaries(self) -> None:
        snap = self.a.snapshot()
        for nid, node in self.a.nodes(snap).items():
            summary = snap.nodes[nid]
            assert (node.status, node.deps, node.after, node.kind) == (
                summary.status, summary.deps, summary.after, summary.kind)  # fmt: skip
            if node.status is Status.RUNNING:
                assert node.claim is not None and node.claim.attempt == node.attempts


StoreMachine.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=50, deadline=None
)
TestStoreMachine = StoreMachine.TestCase
