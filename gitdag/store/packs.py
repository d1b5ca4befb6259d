"""Packs on the wire: the objects a push must send, and a fetched pack into the object store.

Sending: a state transition is one commit on the remote head, so the objects the remote lacks are
that commit and the trees and blobs its tree does not share with its parent's; finding them by
walking only the changed subtrees takes well under a millisecond and no process. Anything else (a
node's work branch, a merge of the target) goes through `git pack-objects --revs`, which knows
how to subtract all of the remote's history.

Receiving: a small pack (one or two transitions) is exploded into loose objects, like git's own
`fetch.unpackLimit`; a bigger one (a worker catching up after its rivals' turns, a first fetch of
a large graph) is kept as a pack with its index, and when packs pile up the small ones are
merged (`git repack --geometric=2`, which leaves big packs alone).
"""

from __future__ import annotations

import io
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path

from dulwich.errors import ChecksumMismatch
from dulwich.objects import S_ISGITLINK, Commit, ObjectID, ShaFile, Tree
from dulwich.pack import PackData, PackInflater, write_pack_objects
from dulwich.repo import BaseRepo

from gitdag.errors import StoreError
from gitdag.store.gitpush import git_env
from gitdag.store.write import add_object

# Fewer objects than this are stored loose (git's fetch.unpackLimit is 100; ours is lower: a
# worker waiting for its turn catches up on several transitions at once, and writing one pack is
# much cheaper than writing dozens of loose objects).
UNPACK_LIMIT = 16
MAX_PACKS = 32  # more packs than this and small ones are merged (`git repack --geometric`)


def pack_for(repo: BaseRepo, root: Path, commits: Sequence[str],
             remote_has: Sequence[str]) -> bytes:  # fmt: skip
    """Return a pack with what the remote lacks of `commits`, given the commits it has.

    Args:
      repo: our repository.
      root: its top directory (for `git pack-objects`).
      commits: the commits being pushed.
      remote_has: the commits the remote's refs point at.
    """
    has = set(remote_has)
    objects: dict[bytes, ShaFile] = {}
    for sha in commits:
        found = _one_step(repo, sha, has)
        if found is None:
            return _pack_objects(root, commits, [h for h in remote_has if _exists(repo, h)])
        objects.update(found)
    out = io.BytesIO()
    write_pack_objects(out, list(objects.values()), repo.object_store.object_format)
    return out.getvalue()


def pack_of(repo: BaseRepo, objects: Sequence[ShaFile]) -> bytes:
    """Return a pack of exactly `objects` (a transition's new objects, not yet on disk)."""
    out = io.BytesIO()
    write_pack_objects(out, list(objects), repo.object_store.object_format)
    return out.getvalue()


def _one_step(repo: BaseRepo, sha: str, has: set[str]) -> dict[bytes, ShaFile] | None:
    """The objects of commit `sha` its parents lack, if all its parents are on the remote."""
    if sha in has:
        return {}
    commit = repo.object_store[ObjectID(sha.encode())]
    if not isinstance(commit, Commit) or not commit.parents:
        return None
    if any(p.decode() not in has for p in commit.parents):
        return None
    found: dict[bytes, ShaFile] = {commit.id: commit}
    olds = [_commit_tree(repo, p) for p in commit.parents]
    _new_in_tree(repo, commit.tree, olds, found)
    return found


def _commit_tree(repo: BaseRepo, sha: bytes) -> bytes:
    commit = repo.object_store[ObjectID(sha)]
    assert isinstance(commit, Commit)
    tree: bytes = commit.tree
    return tree


def _new_in_tree(repo: BaseRepo, tree_id: bytes, olds: Sequence[bytes],
                 found: dict[bytes, ShaFile]) -> None:  # fmt: skip
    """Add `tree_id` and whatever under it none of the `olds` trees has (same paths only)."""
    if tree_id in olds or tree_id in found:
        return
    store = repo.object_store
    tree = store[ObjectID(tree_id)]
    assert isinstance(tree, Tree)
    found[tree.id] = tree
    old_trees = []
    for old in olds:
        obj = store[ObjectID(old)]
        if isinstance(obj, Tree):
            old_trees.append(obj)
    for entry in tree.iteritems():
        name, mode, sha = entry.path, entry.mode, entry.sha
        if stat.S_ISDIR(mode):
            before = [t[name][1] for t in old_trees if name in t and stat.S_ISDIR(t[name][0])]
            _new_in_tree(repo, sha, before, found)
        elif not S_ISGITLINK(mode):  # a submodule's commit is not ours to send
            if sha in found or any(name in t and t[name][1] == sha for t in old_trees):
                continue
            found[sha] = store[ObjectID(sha)]


def _exists(repo: BaseRepo, sha: str) -> bool:
    return ObjectID(sha.encode()) in repo.object_store


def _pack_objects(root: Path, commits: Sequence[str], remote_has: Sequence[str]) -> bytes:
    """`git pack-objects --revs`: the commits and everything they reach, less the remote's."""
    revs = "".join(f"{c}\n" for c in commits) + "".join(f"^{h}\n" for h in remote_has)
    proc = subprocess.run(
        ["git", "pack-objects", "--stdout", "--revs", "--thin", "--delta-base-offset", "-q"],
        cwd=root, input=revs.encode(), capture_output=True, env=git_env(), check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise StoreError(f"git pack-objects failed: {detail[-1] if detail else proc.returncode}")
    data: bytes = proc.stdout
    return data


def _merge_small_packs(repo: BaseRepo, root: Path) -> None:
    """Merge small packs once there are many (each lookup looks at every pack): best effort."""
    folder = Path(repo.object_store.path) / "pack"  # type: ignore[attr-defined]
    try:
        count = sum(1 for p in folder.iterdir() if p.suffix == ".pack")
    except OSError:
        return
    if count <= MAX_PACKS:
        return
    subprocess.run(["git", "repack", "-d", "-q", "--geometric=2"], cwd=root, env=git_env(),
                   capture_output=True, check=False)  # fmt: skip
    repo.object_store._update_pack_cache()  # type: ignore[attr-defined]


def store_pack(repo: BaseRepo, data: bytes, root: Path | None = None) -> int:
    """Add the objects of a fetched pack to our object store; return how many there were.

    Raises:
      StoreError: the pack is damaged (its checksum does not match).
    """
    if not data:
        return 0
    store = repo.object_store
    pack = PackData.from_file(io.BytesIO(data), store.object_format, len(data))
    try:
        pack.check()
        count = len(pack)
        if count >= UNPACK_LIMIT and hasattr(store, "add_pack"):
            f, commit, abort = store.add_pack()
            try:
                f.write(data)
            except BaseException:
                abort()
                raise
            commit()
            if root is not None:
                _merge_small_packs(repo, root)
            return count
        for obj in PackInflater.for_pack_data(pack, store.get_raw):
            add_object(repo, obj)  # type: ignore[arg-type]
        return count
    except (ChecksumMismatch, ValueError, KeyError, AssertionError) as exc:
        raise StoreError(f"a fetched pack is damaged: {exc}") from None
    finally:
        pack.close()
