"""Proposals as branches: graph edits on `dagain/proposals/<name>`, reviewed, then applied.

`propose` writes commits on the proposal branch without a checkout (build_commit, then
compare-and-swap on that ref), branched from the state head the first time. `apply` merges the
proposal into `dagain/state` semantically (node by node, field by field, from the merge base),
validates the result as an `edit` transition, and commits it as one transition there.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dulwich.graph import find_merge_base
from dulwich.refs import Ref

from gitdag.core.commit_message import StepInfo
from gitdag.core.graph_checks import check_graph, edges_changed
from gitdag.core.legality import check_step
from gitdag.core.merge3 import merge_graphs
from gitdag.core.model import GraphFile, Node, summarize
from gitdag.core.proposed_edits import name_problem, proposal_transition
from gitdag.core.transitions import Rejected, Transition
from gitdag.errors import InputError, NotInitialisedError, StaleSnapshotError
from gitdag.store import repo as repos
from gitdag.store.delta import NodeReader, commit_of, oid, raw_changes
from gitdag.store.layout import GRAPH_FILE, PROPOSAL_BRANCH_PREFIX, STATE_BRANCH, node_id_from_path
from gitdag.store.snapshot import Problem, Snapshot
from gitdag.store.state import Committed, StateStore
from gitdag.store.write import build_commit, compare_and_swap

MAX_TRIES = 32


@dataclass(frozen=True)
class Proposed:
    """A commit written on a proposal branch."""

    name: str
    branch: str
    head: str
    base: str
    transition: Transition


def branch_of(name: str) -> str:
    """Return the branch of a proposal: `dagain/proposals/<name>`."""
    return PROPOSAL_BRANCH_PREFIX + name


def _check_name(name: str) -> None:
    problem = name_problem(name)
    if problem is not None:
        raise InputError(problem)


def _ref_head(store: StateStore, ref: bytes) -> str | None:
    try:
        return store.repo.refs[ref].decode()  # type: ignore[index]
    except KeyError:
        return None


def propose_nodes(
    store: StateStore,
    name: str,
    nodes: Sequence[Any],
    parent: str | None = None,
    *,
    actor: str | None = None,
    summary: str = "",
) -> Proposed | Rejected:
    """Write node additions and edits as one commit on `dagain/proposals/<name>`.

    The first call branches from the state head; later calls with the same name add commits on
    top. The supervisor calls this instead of applying a planner's `addNodes` when the config
    says `review: required`.

    Args:
      store: the repository's store.
      name: the proposal's name (a branch-safe word).
      nodes: node field mappings (an existing id: an edit of the fields given).
      parent: the default parent of added nodes (the proposing plan node).
      actor: the `Gitdag-Actor` (default: the git user).
      summary: the commit body.

    Returns:
      The commit written, or Rejected (nothing written) naming the bad field.

    Raises:
      InputError: a bad name. NotInitialisedError: no state branch.
    """
    _check_name(name)
    if store.head() is None:
        raise NotInitialisedError(f"no {STATE_BRANCH} branch here: run `gitdag init` first")
    ref = ("refs/heads/" + branch_of(name)).encode()
    who = actor or repos.human_actor(store.repo)
    author = repos.identity(store.repo)
    delay = 0.002
    for _ in range(MAX_TRIES):
        old = _ref_head(store, ref)
        base_commit = old or store.head()
        assert base_commit is not None
        snap = store.snapshot_of(base_commit)
        now = store.clock()
        entries = list(nodes)
        wanted = [e.get("id") for e in entries if isinstance(e, dict)]
        current = {nid: store.node(snap, nid) for nid in wanted
                   if isinstance(nid, str) and nid in snap.blobs}  # fmt: skip
        result = proposal_transition(
            snap.nodes, current, entries, name=name, now=now, parent=parent, summary=summary
        )
        if isinstance(result, Rejected):
            return result
        commit, _ = build_commit(
            store.repo, snap, result, actor=who, author=author, now=now, cache=store.cache
        )
        new = commit.id.decode()
        if compare_and_swap(store.repo, ref, old, new, f"gitdag: propose {name}"):
            return Proposed(name, branch_of(name), new, base_commit, result)
        time.sleep(delay * random.random())
        delay = min(delay * 2, 0.2)
    raise StaleSnapshotError(f"{branch_of(name)} kept moving; nothing was written")


def find_proposal(store: StateStore, name: str) -> tuple[str, str]:
    """Return (ref name, commit) of a proposal: the local branch, else a unique remote one.

    Raises:
      InputError: no such proposal, or several remotes have one by that name.
    """
    _check_name(name)
    branch = branch_of(name)
    local = _ref_head(store, ("refs/heads/" + branch).encode())
    if local is not None:
        return branch, local
    suffix = ("/" + branch).encode()
    found = [
        ref for ref in store.repo.refs.allkeys()
        if ref.startswith(b"refs/remotes/") and ref.endswith(suffix)
    ]  # fmt: skip
    if len(found) == 1:
        head = _ref_head(store, found[0])
        assert head is not None
        return found[0].decode(), head
    if found:
        names = ", ".join(sorted(r.decode() for r in found))
        raise InputError(f"proposal {name!r} exists on several remotes ({names}): fetch one as "
                         f"{branch}")  # fmt: skip
    raise InputError(f"no proposal {name!r} (no branch {branch}; fetch it from the remote first)")


@dataclass(frozen=True)
class Pending:
    """A local proposal branch whose changes are not (all) on the state branch yet."""

    name: str
    branch: str
    head: str
    nodes: tuple[str, ...]  # the nodes applying it would add or change
    conflict: str | None  # why applying it would be refused now, else None


def pending(store: StateStore, snap: Snapshot) -> list[Pending]:
    """Return the local `dagain/proposals/*` branches that `apply-proposal` would still change.

    Costs nothing when there are no proposal branches (one listing of the refs under a prefix);
    per proposal it is one merge-base walk and a tree diff of the nodes the proposal touched.
    """
    prefix = ("refs/heads/" + PROPOSAL_BRANCH_PREFIX).encode()
    names = sorted(ref.decode() for ref in store.repo.refs.keys(base=Ref(prefix)))
    found: list[Pending] = []
    for name in names:
        head = _ref_head(store, prefix + name.encode())
        if head is None or name_problem(name) is not None:
            continue
        outcome = merge_transition(store, snap, name, head)
        if outcome is None:
            continue
        if isinstance(outcome, Rejected):
            nodes, conflict = tuple(outcome.nodes), str(outcome)
        else:
            nodes, conflict = tuple(outcome.node_ids()), None
        found.append(Pending(name, branch_of(name), head, nodes, conflict))
    return found


def merge_transition(
    store: StateStore, snap: Snapshot, name: str, proposal: str
) -> Transition | Rejected | None:
    """Return the `edit` transition that applies the proposal's changes to `snap`.

    Rejected names every conflicting node and field, or the rule the result would break.
    """
    assert snap.head is not None and snap.tree is not None
    repo = store.repo
    bases = find_merge_base(repo, [oid(snap.head), oid(proposal)])
    if not bases:
        return Rejected(f"proposal {name} shares no history with {STATE_BRANCH}")
    base = bases[0].decode()
    if base == proposal:
        return None  # everything the proposal holds is in the state already
    reader = NodeReader(repo, store.cache)
    base_nodes: dict[str, Node] = {}
    their_nodes: dict[str, Node] = {}
    ids: list[str] = []
    graph_base: GraphFile | None = None
    graph_theirs: GraphFile | None = None
    base_tree = commit_of(repo, base).tree.decode()
    for change in raw_changes(repo, base_tree, commit_of(repo, proposal).tree.decode()):
        if change.path == GRAPH_FILE:
            graph_base = _load(reader.graph, change.old)
            graph_theirs = _load(reader.graph, change.new)
            if graph_theirs is None:
                return Rejected(f"proposal {name} removes graph.yaml")
            continue
        nid = node_id_from_path(change.path)
        if nid is None:
            continue  # README.md and the like are not part of the graph
        ids.append(nid)
        for sha, into in ((change.old, base_nodes), (change.new, their_nodes)):
            if sha is not None:
                loaded = reader.node(sha, change.path)
                if isinstance(loaded, Problem):
                    return Rejected(f"proposal {name}: {loaded}")
                into[nid] = loaded
    ours = {nid: store.node(snap, nid) for nid in ids if nid in snap.blobs}
    merged = merge_graphs(
        ids, base_nodes, ours, their_nodes, graph_base=graph_base, graph_ours=snap.graph,
        graph_theirs=graph_theirs,
    )  # fmt: skip
    if merged.conflicts:
        return Rejected(
            f"proposal {name} conflicts with {STATE_BRANCH}: "
            + "; ".join(str(c) for c in merged.conflicts),
            nodes=tuple(sorted({c.node for c in merged.conflicts if c.node})),
        )
    if not merged.put and not merged.remove and merged.graph is None:
        return None
    changed = sorted({n.id for n in merged.put} | set(merged.remove))
    added = [n.id for n in merged.put if n.id not in ours]
    edited = [n.id for n in merged.put if n.id in ours]
    parts = [f"adds {', '.join(added)}" if added else "", f"changes {', '.join(edited)}" if edited
             else "", f"removes {', '.join(merged.remove)}" if merged.remove else ""]  # fmt: skip
    transition = Transition(
        verb="edit",
        subject=changed[0] if len(changed) == 1 else "graph",
        summary=f"Apply proposal {name} ({proposal[:12]}): " + "; ".join(p for p in parts if p),
        put=tuple(merged.put),
        remove=tuple(merged.remove),
        graph=merged.graph,
        nodes=tuple(changed),
        trailers=(("Gitdag-Proposal", name), ("Gitdag-Proposal-Head", proposal)),
    )
    problems = _validate(snap, ours, transition)
    if problems:
        return Rejected(f"proposal {name} would break the graph: " + "; ".join(problems))
    return transition


def _load(read: Any, sha: str | None) -> Any:
    if sha is None:
        return None
    loaded = read(sha)
    if isinstance(loaded, Problem):
        raise InputError(f"cannot read the proposal: {loaded}")
    return loaded


def _validate(snap: Snapshot, ours: dict[str, Node], transition: Transition) -> list[str]:
    """Check the merged change as the `edit` commit it will be, before writing it."""
    after = {n.id: n for n in transition.put}
    info = StepInfo(
        title=f"edit {transition.subject}", verbs=("edit",), subject=transition.subject,
        nodes=transition.node_ids(), actor="check", attempt=None, attempt_text=None,
    )  # fmt: skip
    violations = check_step(
        ours, after, info, context=snap.nodes, graph_changed=transition.graph is not None,
        graph_before=snap.graph, graph_after=transition.graph,
    )  # fmt: skip
    summaries = dict(snap.nodes)
    for nid in transition.remove:
        summaries.pop(nid, None)
    summaries.update({n.id: summarize(n) for n in transition.put})
    violations += check_graph(summaries, edges_changed(ours, after), transition.remove)
    return [str(v) for v in violations]


def apply_proposal(store: StateStore, name: str, *, actor: str) -> Committed | Rejected | None:
    """Merge the proposal `name` into the state branch as one `edit` transition.

    Returns:
      Committed; Rejected (nothing written) naming conflicts or broken rules; None when the
      state holds everything the proposal does already.
    """
    _ref, proposal = find_proposal(store, name)

    def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected | None:
        return merge_transition(store, snap, name, proposal)

    return store.transact(compute, actor=actor)
