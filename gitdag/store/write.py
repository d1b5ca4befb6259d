"""Writing one transition as exactly one commit, without a checkout, with compare-and-swap.

The state branch moves alone (`compare_and_swap`, dulwich), or together with another ref in one
atomic transaction (`joint_compare_and_swap`, git: the merge queue lands code and its record).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import subprocess
import time
from dataclasses import dataclass

from dulwich.file import FileLocked
from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.refs import Ref
from dulwich.repo import BaseRepo

from gitdag import stale_locks
from gitdag.core import codec
from gitdag.core.ids import node_path, shard
from gitdag.core.model import NodeSummary, summarize
from gitdag.core.transitions import Transition, message
from gitdag.crash import fault_point
from gitdag.errors import InputError, StoreError
from gitdag.stale_locks import break_stale
from gitdag.store import trees
from gitdag.store.cache import ParseCache
from gitdag.store.layout import GRAPH_FILE, NODES_DIR, README_FILE
from gitdag.store.snapshot import Layered, Snapshot

_FILE = 0o100644
_DIR = 0o040000


def _tree(repo: BaseRepo, sha: bytes | None) -> Tree:
    # A new Tree the caller may change (dulwich caches the objects it reads: never those).
    return trees.read(repo, sha)


def add_object(repo: BaseRepo, obj: Blob | Tree | Commit) -> None:
    """Write one object, tolerating another writer writing the very same object at that moment.

    Objects are content-addressed and two concurrent transitions can produce identical ones (the
    same README text, the same shard tree). dulwich writes a loose object through
    `<sha>.lock` and raises `FileLocked` when that lock exists: then the other writer is about
    to put the identical bytes in place, so wait for the object to appear. A lock left by a
    writer killed mid-write (untouched for `STALE_OBJECT_LOCK_S`) is removed and the object
    written again.
    """
    store = repo.object_store
    deadline = time.monotonic() + 10.0
    while True:
        try:
            fault_point("store.write_object", str(getattr(store, "path", "objects")))
            store.add_object(obj)
            return
        except FileLocked:
            pass
        if store.contains_loose(obj.id):
            return
        lock = _loose_lock_path(store, obj.id)
        if lock is not None:
            with contextlib.suppress(OSError):
                if time.time() - os.stat(lock).st_mtime > STALE_OBJECT_LOCK_S:
                    os.unlink(lock)
        if time.monotonic() > deadline:
            raise StoreError(f"object {obj.id.decode()[:12]} stayed locked for 10 s")
        time.sleep(0.001)


STALE_OBJECT_LOCK_S = 5.0


def _loose_lock_path(store: object, sha: bytes) -> str | None:
    root = getattr(store, "path", None)
    if not isinstance(root, str):
        return None
    hexsha = sha.decode()
    return os.path.join(root, hexsha[:2], hexsha[2:] + ".lock")


def build_commit(
    repo: BaseRepo,
    base: Snapshot,
    transition: Transition,
    *,
    actor: str,
    author: tuple[str, str],
    now: dt.datetime,
    readme: str | None = None,
    cache: ParseCache | None = None,
    sink: list[Blob | Tree | Commit] | None = None,
) -> tuple[Commit, Snapshot]:
    """Write the objects of one transition and return the (unreferenced) commit and the snapshot.

    Only the trees on the paths of changed files are rewritten, so the cost does not grow with
    the number of nodes (sharded `nodes/<xx>/`).

    Args:
      repo: the repository.
      base: the snapshot the transition was computed on; its head becomes the parent.
      transition: what to write.
      actor: the `Gitdag-Actor` trailer.
      author: (name, email) of the commit's author and committer.
      now: the commit time.
      readme: new content of `README.md`, when it changes.
      cache: where to remember the nodes just written, so reading them back costs nothing.
      sink: collect the new objects here instead of writing them (a push to a remote sends
        them first, and only a push that landed writes them: a lost race writes nothing).
    """
    objects: list[Blob | Tree | Commit] = []
    root = _tree(repo, base.tree.encode() if base.tree else None)
    graph_file, graph_blob = base.graph, base.graph_blob
    if transition.graph is not None:
        graph_blob = _put_file(root, GRAPH_FILE, codec.dump(transition.graph), objects)
        graph_file = transition.graph
    if readme is not None:
        _put_file(root, README_FILE, readme, objects)
    by_shard, put_nodes, put_blobs = _node_blobs(transition, cache, objects)
    if by_shard:
        _rewrite_shards(repo, root, by_shard, objects)
    objects.append(trees.made(root))
    commit = _commit_object(root, base, transition, actor=actor, author=author, now=now)
    objects.append(commit)
    if sink is not None:
        sink.extend(objects)
    else:
        for obj in objects:
            add_object(repo, obj)
    snap = Snapshot(
        head=commit.id.decode(),
        tree=root.id.decode(),
        graph=graph_file,
        # Layered: the new snapshot shares the old one's maps and adds only what changed.
        nodes=Layered.of(base.nodes).changed(put_nodes, transition.remove),
        blobs=Layered.of(base.blobs).changed(put_blobs, transition.remove),
        graph_blob=graph_blob,
        lineage=base.lineage.child([*put_nodes, *transition.remove]),
    )
    return commit, snap


_Shards = dict[str, list[tuple[str, Blob | None]]]  # shard -> (id, its new blob or None: removed)


def _put_file(root: Tree, name: str, text: str, objects: list[Blob | Tree | Commit]) -> str:
    """Write a file of the root tree; return its blob sha (hex)."""
    blob = Blob.from_string(text.encode())
    objects.append(blob)
    root.add(name.encode(), _FILE, blob.id)
    return blob.id.decode()


def _node_blobs(
    transition: Transition, cache: ParseCache | None, objects: list[Blob | Tree | Commit]
) -> tuple[_Shards, dict[str, NodeSummary], dict[str, str]]:
    """Render the nodes the transition puts; return them by shard, with summaries and blobs."""
    by_shard: _Shards = {}
    put_nodes: dict[str, NodeSummary] = {}
    put_blobs: dict[str, str] = {}
    for node in transition.put:
        data = codec.dump(node).encode()
        if len(data) > codec.MAX_FILE_BYTES:
            # A file no reader would accept must never reach the branch (core should have
            # refused the transition; this is the last line of defence).
            raise InputError(
                f"{node_path(node.id)}: the node file would be {len(data)} bytes, over the "
                f"limit of {codec.MAX_FILE_BYTES}; nothing was written"
            )
        blob = Blob.from_string(data)
        objects.append(blob)
        by_shard.setdefault(shard(node.id), []).append((node.id, blob))
        put_nodes[node.id] = summarize(node)
        put_blobs[node.id] = blob.id.decode()
        if cache is not None:
            cache.put(blob.id.decode(), node, canonical=True)  # its text is codec.dump(node)
    for nid in transition.remove:
        by_shard.setdefault(shard(nid), []).append((nid, None))
    return by_shard, put_nodes, put_blobs


def _rewrite_shards(
    repo: BaseRepo, root: Tree, by_shard: _Shards, objects: list[Blob | Tree | Commit]
) -> None:
    """Rewrite the changed shard trees and `nodes/` (only the trees on changed paths)."""
    nodes_key = NODES_DIR.encode()
    nodes_sha = root[nodes_key][1] if nodes_key in root else None
    raw = trees.raw_of(repo, nodes_sha) if nodes_sha is not None else b""
    records = trees.DirRecords.of(raw)  # None: entries of other shapes, rebuilt one by one
    nodes_tree = trees.parse(raw) if records is None else Tree()
    for shard_name, items in by_shard.items():
        key = shard_name.encode()
        if records is not None:
            old = records.get(key)
        else:
            old = nodes_tree[key][1] if key in nodes_tree else None
        shard_tree = _tree(repo, old)
        for nid, maybe_blob in items:
            name = f"{nid}.yaml".encode()
            if maybe_blob is not None:
                shard_tree.add(name, _FILE, maybe_blob.id)
            elif name in shard_tree:
                del shard_tree[name]
        new = shard_tree.id if len(shard_tree) else None  # an empty shard is no tree at all
        if new is not None:
            objects.append(trees.made(shard_tree))
        if records is not None:
            records.set(key, new)
        elif new is not None:
            nodes_tree.add(key, _DIR, new)
        elif key in nodes_tree:
            del nodes_tree[key]
    if records is not None:
        nodes_tree = records.tree()
    objects.append(trees.made(nodes_tree))
    root.add(nodes_key, _DIR, nodes_tree.id)


def _commit_object(
    root: Tree,
    base: Snapshot,
    transition: Transition,
    *,
    actor: str,
    author: tuple[str, str],
    now: dt.datetime,
) -> Commit:
    commit = Commit()
    commit.tree = root.id
    commit.parents = [ObjectID(base.head.encode())] if base.head else []
    author_name, email = author
    commit.author = commit.committer = f"{author_name} <{email}>".encode()
    commit.author_time = commit.commit_time = int(now.timestamp())
    commit.author_timezone = commit.commit_timezone = 0
    commit.encoding = b"UTF-8"
    commit.message = message(transition, actor).encode()
    return commit


STALE_LOCK_S = stale_locks.STALE_LOCK_S  # doctor reads it from here


def break_stale_lock(repo: BaseRepo, ref: bytes, stale_s: float = STALE_LOCK_S) -> bool:
    """Remove `<ref>.lock` when no writer touched it for `stale_s`; True when the lock is gone.

    The rule (re-checked before removal, so a live writer's lock stays) is `stale_locks.py`'s.
    """
    refpath = getattr(repo.refs, "refpath", None)
    if refpath is None:
        return False
    return break_stale(os.fsdecode(refpath(Ref(ref))) + ".lock", stale_s)


def compare_and_swap(
    repo: BaseRepo,
    ref: bytes,
    old: str | None,
    new: str,
    reflog: str,
    *,
    committer: bytes | None = None,
) -> bool:
    """Move `ref` from `old` to `new` atomically; False when it no longer points at `old`.

    `committer` (`Name <email>`) names the reflog entry; without it dulwich reads the whole
    git config stack for it on every update (~1 ms, a fifth of a transition).

    A held lock (another writer mid-update) is waited out briefly: dulwich raises at once. A
    stale lock (see `STALE_LOCK_S`) is removed.
    """
    delay = 0.001
    deadline = time.monotonic() + 10.0
    while True:
        try:
            fault_point("store.write_ref", ref.decode(errors="replace"))
            if old is None:
                return bool(
                    repo.refs.add_if_new(
                        Ref(ref),
                        ObjectID(new.encode()),
                        committer=committer,
                        message=reflog.encode(),
                    )
                )
            return bool(
                repo.refs.set_if_equals(
                    Ref(ref),
                    ObjectID(old.encode()),
                    ObjectID(new.encode()),
                    committer=committer,
                    message=reflog.encode(),
                )
            )
        except FileNotFoundError:
            # Our lock file vanished before it could be renamed into place: another writer that
            # does not honour the lock (a runner's `git update-ref`) took it. Nothing moved on
            # our side; the caller reads the ref again, as after any lost race.
            return False
        except FileLocked:
            if break_stale_lock(repo, ref):
                continue
            if time.monotonic() > deadline:
                raise StoreError(
                    f"{ref.decode()} stayed locked for 10 s (a stale {ref.decode()}.lock?)"
                ) from None
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.05)


@dataclass(frozen=True)
class RefMove:
    """One ref moved from `old` to `new` in a joint compare-and-swap.

    Attributes:
      ref: the ref as git names it from `cwd` (`refs/heads/x`, or `HEAD` of a linked worktree,
        which moves its branch and writes that checkout's HEAD reflog too).
      old: the commit it must point at now.
      new: the commit it moves to.
    """

    ref: str
    old: str
    new: str


def joint_compare_and_swap(cwd: str | os.PathLike[str], moves: list[RefMove], reflog: str) -> bool:
    """Move every ref of `moves` at once, or none: one `git update-ref --stdin` transaction.

    dulwich has no multi-ref transaction; git's `start`/`prepare`/`commit` takes every ref's
    lock, checks every old value, and only then writes, so a reader sees all moves or none.
    Returns False when a ref was not at its `old` (or its lock was held); the caller finds out
    which by reading the refs.
    """
    lines = ["start"]
    lines += [f"update {m.ref} {m.new} {m.old}" for m in moves]
    lines += ["prepare", "commit", ""]
    from gitdag.transport.outcomes import git_env  # the transport package: not for readers

    try:
        proc = subprocess.run(
            ["git", "update-ref", "-m", reflog, "--stdin"],
            cwd=cwd,
            env=git_env(),
            input="\n".join(lines),
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise StoreError(f"cannot run git in {os.fspath(cwd)}: {exc}") from None
    return proc.returncode == 0


def ref_at(cwd: str | os.PathLike[str], ref: str) -> str | None:
    """The commit `ref` points at as seen from `cwd` (git resolves `HEAD` there), or None."""
    from gitdag.transport.outcomes import git_env

    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", ref + "^{commit}"],
        cwd=cwd,
        env=git_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() or None if proc.returncode == 0 else None
