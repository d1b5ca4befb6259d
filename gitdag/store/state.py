"""The state store: one repository's `dagain/state` branch, read as snapshots, written by CAS."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from dulwich.objects import ObjectID
from dulwich.refs import Ref

from gitdag.core.summary import NodeDetail, NodeSummary
from gitdag.crash import crash_point
from gitdag.errors import InputError, NotInitialisedError, StaleSnapshotError
from gitdag.store import repo as repos
from gitdag.store.cache import IndexCache, ParseCache
from gitdag.store.layout import STATE_BRANCH, STATE_REF, RepoPaths
from gitdag.store.read import load_snapshot, placeholder_graph
from gitdag.store.snapshot import Layered, Snapshot

if TYPE_CHECKING:
    from dulwich.repo import Repo

    from gitdag.core.model import Node
    from gitdag.core.transitions import Rejected, Transition
    from gitdag.store.readme import Memo
    from gitdag.store.write import RefMove

# The writing half (the codec, the models, commits, the README) is imported where it is used:
# `gitdag status`, `ready` and `show` read through this store without loading it (issue 18
# part 5; tests/cli/test_fast_start.py).

Compute = Callable[[Snapshot, dt.datetime], "Transition | Rejected | None"]
MAX_TRIES = 64
INDEX_SLACK = 64  # nodes changed since the saved index before it is worth rewriting
# A long-lived writer (the supervisor) hands the nodes it wrote to the parse cache's file at
# most this often: a `gitdag status` beside it then reads their light rows instead of parsing
# the files with the models (~0.2 s of imports; issue 18 part 5). One sqlite transaction.
FLUSH_EVERY_S = 1.0


def utcnow() -> dt.datetime:
    """Return the current UTC time, whole seconds (timestamps in node files stay short)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Committed:
    """A transition that is now the head of the state branch."""

    transition: Transition
    head: str
    snapshot: Snapshot
    tries: int


@dataclass(frozen=True)
class Moved:
    """The other ref of a joint transaction was not where the caller said: nothing was written."""

    ref: str


def empty_snapshot() -> Snapshot:
    """The snapshot of a branch that does not exist yet (what `init` builds on)."""
    return Snapshot(head=None, tree=None, graph=placeholder_graph(), nodes={}, blobs={})


class StateStore:
    """Reads and writes one repository's state branch. Not thread-safe; one per thread."""

    def __init__(
        self,
        repo: Repo,
        paths: RepoPaths,
        *,
        ref: bytes = STATE_REF,
        clock: Callable[[], dt.datetime] = utcnow,
        use_disk_cache: bool = True,
        readme: bool = True,
    ) -> None:
        self.repo = repo
        # README.md on the state branch (spec §3), updated incrementally by each transition;
        # the memo holds the data of the last README this store wrote, with its commit.
        self.write_readme = readme
        self._readme_memo: Memo | None = None
        self._readme_next: Memo | None = None
        self.paths = paths
        self.ref = ref
        self.clock = clock
        cache_dir = paths.local / "cache"
        self.cache = ParseCache(cache_dir / "nodes.sqlite" if use_disk_cache else None)
        suffix = ref.decode().replace("/", "_")
        self.index = IndexCache(cache_dir / f"index-{suffix}.pickle" if use_disk_cache else None)
        self._snap: Snapshot | None = None
        self._saved_head: str | None = None
        self._saved_nodes: Mapping[str, NodeSummary] | None = None
        self._identity: tuple[str, str] | None = None
        # Called as (the head this store last read or wrote, the head now) when the branch moved
        # under it, before anything is built on the new head; raising refuses to build on it
        # (the supervisor's guard against writers that bypass it: supervisor/guard.py).
        self.on_moved: Callable[[str | None, str], None] | None = None
        self.known_head: str | None = None
        self._flushed_at = time.monotonic()

    @classmethod
    def open(cls, start: str | Path = ".", **kwargs: object) -> StateStore:
        """Open the store of the repository containing `start`."""
        repo, paths = repos.open_repo(start)
        return cls(repo, paths, **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        """Persist caches and release the repository."""
        self.save_index()
        self.cache.close()
        self.repo.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading ----------------------------------------------------------------------------

    def head(self) -> str | None:
        """Return the state branch's head commit (hex), or None before `init`."""
        try:
            return self.repo.refs[Ref(self.ref)].decode()
        except KeyError:
            return None

    def snapshot(self, *, strict: bool = True) -> Snapshot:
        """Return the graph at the current head, reading only what changed since the last read.

        Args:
          strict: raise on the first problem of the tree (default); otherwise return the
            snapshot with its `problems` listed.

        Raises:
          NotInitialisedError: no state branch.
          InputError: with `strict`, a tree that fails validation (names the file and field).
        """
        head = self.head()
        if head is None:
            raise NotInitialisedError(f"no {STATE_BRANCH} branch here: run `gitdag init` first")
        if self.on_moved is not None and head != self.known_head:
            self.on_moved(self.known_head, head)
        self.known_head = head
        return self.snapshot_of(head, strict=strict)

    def snapshot_of(self, commit: str, *, strict: bool = True) -> Snapshot:
        """Return the graph at any commit of the state branch (see `snapshot`)."""
        current = self._snap
        if current is not None and current.head == commit:
            snap = current
        else:
            base = current
            if base is None:
                base = self.index.load()
                if base is not None:
                    # What is on disk already: `save_index` need not write it again.
                    self._saved_head = base.head
                    self._saved_nodes = base.nodes
            snap = load_snapshot(self.repo, commit, self.cache, base)
            if not snap.problems:
                self._snap = snap
        if strict and snap.problems:
            first = snap.problems[0]
            more = len(snap.problems) - 1
            extra = f" (and {more} more; see `gitdag validate`)" if more else ""
            raise InputError(f"{STATE_BRANCH}:{first}{extra}")
        return snap

    def resolve(self, rev: str) -> str:
        """Return the commit (hex) a revision names: a sha, a ref, `dagain/state~2`, ...

        Raises:
          InputError: when the revision names no commit.
        """
        from dulwich.objects import Commit
        from dulwich.objectspec import parse_commit

        try:
            commit = parse_commit(self.repo, rev.encode())
        except (KeyError, ValueError):
            commit = None
        if not isinstance(commit, Commit):
            raise InputError(f"revision {rev!r}: no such commit")
        return commit.id.decode()

    def node(self, snap: Snapshot, node_id: str) -> Node:
        """Return the full node `node_id` of a snapshot.

        Raises:
          InputError: the node does not exist.
        """
        blob = snap.blobs.get(node_id)
        if blob is None:
            raise InputError(f"unknown node {node_id!r}")
        cached = self.cache.get(blob)
        if cached is not None:
            return cached
        from gitdag.core import codec

        obj = self.repo.object_store[ObjectID(blob.encode())]
        try:
            node = codec.load_node(obj.as_raw_string())
        except codec.DecodeError as exc:
            raise InputError(f"{STATE_BRANCH}: node {node_id}: {exc}") from None
        self.cache.put(blob, node)
        return node

    def detail(self, snap: Snapshot, node_id: str) -> NodeDetail:
        """Return what `gitdag status` shows of a running or merging node (`NodeDetail`).

        Read from the parse cache's light table when any process parsed the node before: no
        node file is parsed and the models stay unloaded (issue 18 part 5).

        Raises:
          InputError: the node does not exist.
        """
        blob = snap.blobs.get(node_id)
        light = self.cache.light(blob) if blob is not None else None
        if light is not None and light[1] is not None:
            return light[1]
        from gitdag.core.model import detail

        return detail(self.node(snap, node_id))

    def nodes(self, snap: Snapshot, ids: list[str] | None = None) -> dict[str, Node]:
        """Return full nodes for `ids` (default: all) of a snapshot."""
        wanted = ids if ids is not None else list(snap.nodes)
        found = {nid: self.node(snap, nid) for nid in wanted}
        self.cache.flush()
        return found

    def save_index(self) -> None:
        """Persist the current snapshot's index for the next process (cheap to call often)."""
        snap = self._snap
        stale = snap is not None and snap.head != self._saved_head and not snap.problems
        if snap is not None and stale and not self._index_is_close(snap):
            self.index.save(snap)
            self._saved_head, self._saved_nodes = snap.head, snap.nodes
        self.cache.flush()

    def _index_is_close(self, snap: Snapshot) -> bool:
        # Rewriting the index costs ~4 ms per 1k nodes (a 100k graph: 0.4 s); reading a few
        # changed node files through a tree diff costs far less. So a command that moved the
        # head by a handful of nodes (`gitdag add`, one claim) leaves the saved index alone.
        saved = self._saved_nodes
        if saved is None or not isinstance(snap.nodes, Layered):
            return False
        changed = snap.nodes.changes_since(saved)
        return changed is not None and changed <= INDEX_SLACK

    # --- writing ----------------------------------------------------------------------------

    def _author(self) -> tuple[str, str]:
        # Reading three git config files costs ~0.5 ms, a tenth of a whole transition: once.
        if self._identity is None:
            self._identity = repos.identity(self.repo)
        return self._identity

    def _readme(self, snap: Snapshot, transition: Transition) -> str | None:
        if not self.write_readme:
            return None
        from gitdag.store.readme import next_readme

        text, data = next_readme(self.repo, snap, transition, self._readme_memo)
        self._readme_next = ("", data)
        return text

    def readme_for(self, snap: Snapshot, transition: Transition) -> str | None:
        """Return the README.md of the commit applying `transition` on `snap` (None: not kept).

        For writers that build their own commits on this store's branch (a remote's state,
        pushed instead of committed here); `adopt` the commit's snapshot once it landed.
        """
        return self._readme(snap, transition)

    def adopt(self, snap: Snapshot) -> None:
        """Make `snap` the current graph: its commit (built here, landed elsewhere) is the head.

        The caller has moved the ref; reading the snapshot back is then free, and the README
        of the next transition starts from the one just written.
        """
        self._snap = snap
        self._wrote(snap.head)

    def _wrote(self, head: str | None) -> None:
        # The README just committed describes `head`: the next transition starts from it.
        if self._readme_next is not None and head is not None:
            self._readme_memo = (head, self._readme_next[1])

    def init(self, transition: Transition, actor: str) -> Committed:
        """Create the orphan state branch with its first commit; race-free.

        Raises:
          InputError: the branch exists already (also when another process won the race).
        """
        from gitdag.store.write import build_commit, compare_and_swap

        if self.head() is not None:
            raise InputError(f"{STATE_BRANCH} already exists: this repository is initialised")
        now = self.clock()
        empty = empty_snapshot()
        commit, snap = build_commit(
            self.repo,
            empty,
            transition,
            actor=actor,
            author=self._author(),
            now=now,
            cache=self.cache,
            readme=self._readme(empty, transition),
        )
        if not compare_and_swap(self.repo, self.ref, None, commit.id.decode(), "gitdag: init"):
            raise InputError(
                f"{STATE_BRANCH} was created by another process at the same moment; "
                "nothing was written (this repository is initialised)"
            )
        self._snap = snap
        self._wrote(snap.head)
        return Committed(transition, snap.head or "", snap, 1)

    def transact(
        self,
        compute: Compute,
        *,
        actor: str,
        max_tries: int = MAX_TRIES,
        strict: bool = True,
    ) -> Committed | Rejected | None:
        """Compute a transition on the current head and commit it with compare-and-swap.

        If another writer moves the head first, the transition is recomputed on the new head
        (never a textual rebase), up to `max_tries` times with jittered backoff.

        Args:
          compute: (snapshot, now) -> the transition, a Rejected, or None for nothing to do.
          actor: the `Gitdag-Actor` trailer.
          max_tries: the bound on recomputations.
          strict: refuse to build on a head whose tree has problems.

        Returns:
          Committed, or the Rejected / None that compute returned.

        Raises:
          StaleSnapshotError: the head kept moving past the bound.
        """
        outcome = self._transact((compute,), actor, max_tries, strict, None)
        assert not isinstance(outcome, Moved)
        return outcome[-1] if isinstance(outcome, list) else outcome

    def transact_along(
        self,
        compute: Compute,
        *,
        actor: str,
        move: RefMove,
        cwd: Path,
        max_tries: int = MAX_TRIES,
    ) -> Committed | Rejected | Moved | None:
        """Like `transact`, but the commit lands together with `move`, atomically, or not at all.

        The merge queue lands a merge this way: the target branch advances in the same ref
        transaction as the node's `merge` transition, so a cancel committed meanwhile makes the
        transition be recomputed (and refused) before any code reaches the target.

        Args:
          compute: as for `transact`.
          actor: the `Gitdag-Actor` trailer.
          move: the other ref's move (compare-and-swap on its old value).
          cwd: where git runs (the checkout whose `HEAD` `move.ref` may name).
          max_tries: the bound on recomputations.

        Returns:
          Committed (both refs moved), Rejected / None from compute (neither moved), or Moved
          when `move.ref` is no longer at `move.old` (neither moved).

        Raises:
          StaleSnapshotError: the state head kept moving (or a ref stayed locked) past the bound.
        """
        outcome = self._transact((compute,), actor, max_tries, True, (move, cwd))
        return outcome[-1] if isinstance(outcome, list) else outcome

    def transact_chain_along(
        self,
        computes: Sequence[Compute],
        *,
        actor: str,
        move: RefMove,
        cwd: Path,
        max_tries: int = MAX_TRIES,
    ) -> list[Committed] | Rejected | Moved | None:
        """Like `transact_along`, for several transitions: one commit each, all in one move.

        Each compute runs on the snapshot the previous one's commit makes, and the state branch
        moves from its head to the last commit in the same ref transaction as `move` (a batch
        of merges lands with every node's `merge` transition, each its own commit). One compute
        returning Rejected or None refuses them all: neither ref moves.

        Returns:
          The commits in order (both refs moved), the first Rejected / None, or Moved.
        """
        return self._transact(computes, actor, max_tries, True, (move, cwd))

    def _transact(
        self,
        computes: Sequence[Compute],
        actor: str,
        max_tries: int,
        strict: bool,
        along: tuple[RefMove, Path] | None,
    ) -> list[Committed] | Rejected | Moved | None:
        from gitdag.core import flow
        from gitdag.core.transitions import Rejected
        from gitdag.store.write import (
            RefMove,
            break_stale_lock,
            build_commit,
            compare_and_swap,
            joint_compare_and_swap,
            ref_at,
        )

        if not computes:
            return None  # nothing to record: nothing moves
        author = self._author()
        ident = f"{author[0]} <{author[1]}>".encode()
        delay = 0.002
        for attempt in range(1, max_tries + 1):
            snap = self.snapshot(strict=strict)
            now = self.clock()
            made: list[tuple[Transition, Snapshot]] = []
            new_snap = snap
            for compute in computes:
                result = compute(new_snap, now)
                if result is None or isinstance(result, Rejected):
                    return result
                if result.is_empty():
                    return None
                base = new_snap
                index = base.kept_index()  # the nodes waiting on a settled one, without a scan
                waiting = index.waiting_on if index is not None else None
                followed = flow.follow(result, base.nodes, partial(self.node, base), now, waiting)
                _, new_snap = build_commit(
                    self.repo,
                    base,
                    followed,
                    actor=actor,
                    author=author,
                    now=now,
                    cache=self.cache,
                    readme=self._readme(base, followed),
                )
                made.append((followed, new_snap))
            last = made[-1][0]
            reflog = f"gitdag: {last.verb} {last.subject}"
            crash_point("store.before_cas")
            new = new_snap.head or ""
            if along is None:
                swapped = compare_and_swap(
                    self.repo, self.ref, snap.head, new, reflog, committer=ident
                )
            else:
                move, cwd = along
                state = RefMove(self.ref.decode(), snap.head or "", new)
                swapped = joint_compare_and_swap(cwd, [move, state], reflog)
                if not swapped and self.head() == snap.head:
                    if ref_at(cwd, move.ref) != move.old:
                        return Moved(move.ref)
                    break_stale_lock(self.repo, self.ref)  # neither moved: a lock was held
            if swapped:
                crash_point("store.after_cas")
                self._snap = new_snap
                self._wrote(new_snap.head)
                self.known_head = new_snap.head
                if time.monotonic() - self._flushed_at >= FLUSH_EVERY_S:
                    self._flushed_at = time.monotonic()
                    self.cache.flush()
                return [Committed(t, s.head or "", s, attempt) for t, s in made]
            import random  # only a lost race needs it: readers never import it

            time.sleep(delay * random.random())
            delay = min(delay * 2, 0.2)
        raise StaleSnapshotError(
            f"{STATE_BRANCH} moved under {max_tries} attempts in a row; nothing was written"
        )
