"""`gitdag sync [REMOTE]`: this clone's `dagain/state` and the remote's become one graph.

After a fetch of the remote's `dagain/state`, exactly one of:

- **equal**: nothing to do;
- **behind** (the local head is an ancestor of the remote's): the local branch is fast-forwarded;
- **ahead** (the remote head is an ancestor of the local one, or the remote has no graph yet):
  the local commits are pushed, with a lease on the remote head;
- **diverged**: each local commit since the merge base is replayed on top of the remote head
  (`core.replay`: the same transition, its change merged field by field with the semantic
  three-way merge of the proposals, checked against the legality rules), and the chain is
  pushed with a lease on the remote head. A conflict or a broken rule refuses the sync (exit 2,
  naming the nodes): nothing is pushed, nothing local changes. Never pushed over, never a
  conflict marker.

A lost race (the remote moved while we computed) starts again from the fetch. Every replayed
commit names its local original (`Gitdag-Replayed`), so a sync interrupted after its push (the
local branch could not follow) replays nothing twice. Code integrated here travels with the
graph: when the local commits pushed include merges, the target branch is pushed in the same
atomic push (a fast-forward, with its own lease), with the branches of the nodes left merging.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from dulwich.graph import find_merge_base
from dulwich.objects import Commit

from gitdag.core.commit_message import step_info
from gitdag.core.model import Status
from gitdag.core.replay import REPLAYED, LocalStep, replay
from gitdag.core.transitions import Rejected
from gitdag.errors import GraphError, NotInitialisedError, RefRefused, StaleSnapshotError
from gitdag.remote.steer import follow, is_ancestor, local_head
from gitdag.store.delta import NodeReader, TreeDiffer, commit_of, oid, tree_delta
from gitdag.store.history import walk
from gitdag.store.layout import STATE_BRANCH, STATE_REF
from gitdag.store.readme import Memo, next_readme
from gitdag.store.remote import RemoteState, tracking_ref
from gitdag.store.snapshot import Snapshot
from gitdag.store.write import build_commit, compare_and_swap
from gitdag.transport.outcomes import PushOutcome, RefPush

MAX_TRIES = 8


@dataclass(frozen=True)
class Synced:
    """What a sync did.

    Attributes:
      remote: the remote's name.
      action: `up to date`, `created` (no local branch before), `fast-forwarded`, `pushed`
        (ahead, or the remote had no graph), `replayed` (diverged), or `discarded` (the
        local transitions the remote lacked were dropped, as asked).
      head: the head both share now.
      pushed: local transitions that landed on the remote (pushed or replayed).
      skipped: local transitions whose change the remote had already (nothing to replay), or
        that were discarded.
      refs: other refs pushed with the graph (the target, node branches).
      followed: whether the local branch now points at `head` (False: it moved meanwhile).
    """

    remote: str
    action: str
    head: str
    pushed: int = 0
    skipped: int = 0
    refs: tuple[str, ...] = ()
    followed: bool = True


def sync(state: RemoteState, *, discard_local: bool = False,
         max_tries: int = MAX_TRIES) -> Synced:  # fmt: skip
    """Make this clone's `dagain/state` and the remote's one graph (see the module docstring).

    `discard_local`: take the remote's graph as it is; the local transitions it lacks are
    dropped from the branch (the reflog keeps them).

    Raises:
      GraphError: diverged and a local transition conflicts with the remote's graph (names
        the nodes); or merges made here cannot travel (the remote's target moved on).
      NotInitialisedError: neither side has a graph.
      RemoteError: unreachable or refused. StaleSnapshotError: the remote kept moving.
    """
    repo = state.store.repo
    for _ in range(max_tries):
        remote = _fetch(state)
        local = local_head(repo)
        if local is None:
            if remote is None:
                raise NotInitialisedError(
                    f"no {STATE_BRANCH} here nor on remote {state.remote}: run `gitdag init`"
                )
            return _done(state, "created", None, remote)
        if remote is not None and is_ancestor(state, local, remote):
            if local == remote:
                return _done(state, "up to date", local, remote)
            return _done(state, "fast-forwarded", local, remote)
        if discard_local:
            if remote is None:
                raise NotInitialisedError(f"remote {state.remote} has no {STATE_BRANCH}: "
                                          "nothing to take instead of this clone's")  # fmt: skip
            dropped = [e.commit for e in walk(repo, local, stop=_base(state, local, remote))]
            return _done(state, "discarded", local, remote, skipped=len(dropped))
        if remote is None or is_ancestor(state, remote, local):
            commits = [e.commit for e in walk(repo, local, stop=remote)]
            head, pushed, skipped, action = local, len(commits), 0, "pushed"
            merged = _merged_nodes(state, local, remote)
        else:
            head, pushed, skipped, merged = _replay_chain(state, local, remote)
            action = "replayed"
            if head == remote:  # everything local is on the remote already
                return _done(state, "fast-forwarded", local, remote, skipped=skipped)
        snap = state.store.snapshot_of(head)
        extra = _riders(state, snap, merged, publish=remote is None)
        outcome = state.push([RefPush(head, STATE_REF.decode(), remote or ""), *extra])
        if outcome.ok:
            _adopt(state, remote, head, extra, snap.graph.target)
            return _done(state, action, local, head, pushed=pushed, skipped=skipped,
                         refs=tuple(r.dst for r in extra))  # fmt: skip
        if outcome.refusals():
            raise _refused(state, outcome)
        time.sleep(0.05)  # a lost race (or a dropped connection): look again
    raise StaleSnapshotError(
        f"remote {state.remote}: {STATE_BRANCH} moved under {max_tries} syncs in a row; "
        "nothing was written"
    )


def _fetch(state: RemoteState) -> str | None:
    try:
        return state.fetch()
    except NotInitialisedError:
        return None


def _done(state: RemoteState, action: str, local: str | None, head: str, *, pushed: int = 0,
          skipped: int = 0, refs: tuple[str, ...] = ()) -> Synced:  # fmt: skip
    followed = follow(state, local, head)
    return Synced(state.remote, action, head, pushed, skipped, refs, followed)


def _replay_chain(state: RemoteState, local: str, remote: str) -> tuple[str, int, int, set[str]]:
    """Replay the local commits since the merge base on the remote head.

    Returns (the new head, commits written, commits skipped, nodes merged by them).
    """
    store, repo = state.store, state.store.repo
    base = _base(state, local, remote)
    if base is None:
        raise GraphError(
            f"sync refused, nothing pushed: {STATE_BRANCH} here and on remote {state.remote} "
            "share no history (two separate `gitdag init`s); take the remote's with `gitdag "
            f"sync {state.remote} --discard-local`"
        )
    done = {v for e in walk(repo, remote, stop=base) for v in e.trailers.get(REPLAYED, [])}
    entries = [e for e in walk(repo, local, stop=base)]
    entries.reverse()
    reader, differ = NodeReader(repo, store.cache), TreeDiffer(repo)
    snap: Snapshot = store.snapshot_of(remote)
    memo: Memo | None = None
    written = skipped = 0
    merged: set[str] = set()
    for entry in entries:
        if entry.commit in done:
            skipped += 1
            continue
        obj = commit_of(repo, entry.commit)
        parent = entry.parents[0] if entry.parents else None
        parent_tree = commit_of(repo, parent).tree.decode() if parent else None
        delta = tree_delta(reader, parent, entry.commit, parent_tree, obj.tree.decode(), differ)
        if delta.problems:
            raise GraphError(f"{STATE_BRANCH} here: commit {entry.commit[:12]}: "
                             f"{delta.problems[0]}; nothing was pushed")  # fmt: skip
        info = step_info(obj.message.decode("utf-8", errors="replace"))
        step = LocalStep(
            entry.commit, info, entry.summary, delta.before, delta.after, delta.ids,
            graph_before=delta.graph_before if delta.graph_changed else None,
            graph_after=delta.graph_after if delta.graph_changed else None,
        )  # fmt: skip
        current = {nid: store.node(snap, nid) for nid in delta.ids if nid in snap.blobs}
        outcome = replay(step, current, snap.graph, snap.nodes)
        if outcome is None:
            skipped += 1
            continue
        if isinstance(outcome, Rejected):
            nodes = ", ".join(outcome.nodes) or "graph.yaml"
            raise GraphError(f"sync refused, nothing pushed: conflicting node(s) {nodes}: "
                             f"{outcome}; to take the remote's graph instead: gitdag sync "
                             f"{state.remote} --discard-local (then redo what still matters "
                             "with --remote)")  # fmt: skip
        text, data = next_readme(repo, snap, outcome, memo)
        commit, new = build_commit(
            repo, snap, outcome, actor=info.actor or "gitdag sync", author=_author(obj),
            now=store.clock(), cache=store.cache, readme=text,
        )  # fmt: skip
        memo = (commit.id.decode(), data)
        if info.verb == "merge":
            merged.update(n.id for n in outcome.put)
        snap = new
        written += 1
    return snap.head or remote, written, skipped, merged


def _base(state: RemoteState, local: str, remote: str) -> str | None:
    bases = find_merge_base(state.store.repo, [oid(local), oid(remote)])
    return bases[0].decode() if bases else None


def _author(commit: Commit) -> tuple[str, str]:
    raw = commit.author.decode("utf-8", errors="replace")
    name, _, rest = raw.partition(" <")
    return name.strip() or "gitdag", rest.rstrip(">").strip() or "gitdag@localhost"


def _merged_nodes(state: RemoteState, local: str, remote: str | None) -> set[str]:
    """The nodes that the local commits the remote lacks merged into the target here."""
    found: set[str] = set()
    for entry in walk(state.store.repo, local, stop=remote):
        if entry.verb == "merge":
            found.update(entry.nodes)
    return found


def _riders(state: RemoteState, snap: Snapshot, merged: set[str],
            publish: bool) -> list[RefPush]:  # fmt: skip
    """Refs that must land with the graph, each with its lease.

    The target, when merges were made here (or the graph is published: `publish`), and the
    branches of nodes left merging whose work is only here.

    Raises:
      GraphError: merges made here whose target the remote moved elsewhere (named).
    """
    repo = state.store.repo
    target = snap.graph.target
    found: list[RefPush] = []
    ours = _ref(repo, f"refs/heads/{target}")
    theirs = state.remote_ref(f"refs/heads/{target}") if merged or publish else None
    if ours is not None and ours != theirs and (merged or publish):
        if theirs is not None and not is_ancestor(state, theirs, ours):
            names = ", ".join(sorted(merged))
            raise GraphError(
                f"sync refused, nothing pushed: {names} were merged into {target} here, and "
                f"remote {state.remote}'s {target} has moved on: bring the two together (git "
                f"pull {state.remote} {target}; git push {state.remote} {target}), then sync again"
            )
        found.append(RefPush(ours, f"refs/heads/{target}", theirs or ""))
    for nid, summary in snap.nodes.items():
        if summary.status is not Status.MERGING:
            continue
        work = state.store.node(snap, nid).work
        if work is None or work.head is None:
            continue
        branch = f"refs/heads/{work.branch}"
        if _ref(repo, branch) == work.head and state.remote_ref(branch) != work.head:
            found.append(RefPush(work.head, branch, None))
    return found


def _ref(repo: object, ref: str) -> str | None:
    try:
        return repo.refs[ref.encode()].decode()  # type: ignore[attr-defined, no-any-return]
    except KeyError:
        return None


def _adopt(state: RemoteState, old: str | None, head: str, extra: list[RefPush],
           target: str) -> None:  # fmt: skip
    """The push landed: the tracking refs follow."""
    repo = state.store.repo
    compare_and_swap(repo, state.state_ref.encode(), old, head, "gitdag: synced")
    for up in extra:
        if up.dst == f"refs/heads/{target}":
            tracked = tracking_ref(state.remote, "target")
            compare_and_swap(repo, tracked.encode(), _ref(repo, tracked), up.src, "gitdag: synced")


def _refused(state: RemoteState, outcome: PushOutcome) -> RefRefused:
    first = outcome.refusals()[0]
    said = "; ".join(outcome.remote_says[-3:])
    reason = first.summary + (f" ({said})" if said else "")
    return RefRefused(f"remote {state.remote} refused {first.ref}: {reason}; nothing was "
                      "changed locally", first.ref, reason)  # fmt: skip
