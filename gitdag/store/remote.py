"""A remote's `dagain/state`: fetched into private tracking refs, written by CAS pushes.

Many machines share one graph through a git remote; compare-and-swap on the remote's refs is the
only lock (spec §8). Reading: `fetch` copies the remote's state branch (and the target branch)
into refs of our own, `refs/gitdag/remotes/<remote>/state` and `.../target`, so nothing the user
owns moves, and a `StateStore` opened on the tracking ref reads snapshots from it as usual.
Writing: `push_transition` computes a transition on the snapshot of the remote head we know,
builds its commit (`build_commit`) and pushes it with a lease on `refs/heads/dagain/state`
(through `gitdag.transport`: `dulwich.client` in-process, or the git CLI). The server
checks the expected value under its ref lock, so exactly one of several racing pushes lands; the
others are told `stale info` (or `cannot lock ref`), which is a value here: fetch, recompute on
the new head, try again (bounded, jittered). A claim must be known to have landed: its commit
carries a unique nonce, so git's own report that the push moved the ref from the expected head to
our commit is the proof; only when that report is ambiguous (a dropped connection retried, "up to
date") is it read back with a fetch. After a landed push our tracking ref is our commit, so the
next write pushes on it directly after a cheap look, and fetches only when the head moved
(contention.py and turns.py decide when a writer takes its turn).

Other refs can ride along in the same atomic push (a node's work branch with its result, the
target branch with the merge transition), each with its own lease, so code and graph never
disagree on the remote. A refusal for any other reason (a hook, a read-only remote, no
permission) raises `RefRefused` naming the ref it was about (`_refusal`: the node whose branch
was refused fails, a refused state branch stops the worker); a remote unreachable past
`remote.retry_for_s` raises `RemoteError` (exit 2); nothing local is lost.
"""

from __future__ import annotations

import random
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from dulwich.objects import Commit, ObjectID, ShaFile

from gitdag.core.contention import Contention
from gitdag.errors import (
    InputError,
    NotInitialisedError,
    RemoteError,
)
from gitdag.store import repo as repos
from gitdag.store.caspush import CasPushes
from gitdag.store.layout import STATE_BRANCH, STATE_REF
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import StateStore
from gitdag.store.writer_queue import QUEUE_REFS as QUEUE_REFS
from gitdag.store.writer_queue import Landings
from gitdag.transport import CliTransport, Transport, choose
from gitdag.transport.deadline import path_answers
from gitdag.transport.outcomes import MissingRef, PushOutcome, RefPush
from gitdag.transport.retry import ANSWER_S, Retry

TRACKING_PREFIX = "refs/gitdag/remotes/"
GIT_TIMEOUT_S = 120.0
STALE_LOCK_S = 5.0
COMMIT_CACHE = 512
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def tracking_ref(remote: str, what: str) -> str:
    """Return the private ref that mirrors `what` (`state`, `target`) of a remote."""
    return f"{TRACKING_PREFIX}{remote}/{what}"


class RemoteState(CasPushes):
    """One remote's state branch, mirrored into a tracking ref and written by CAS pushes.

    Not thread-safe (like the StateStore it wraps): one per thread.

    Args:
      store: a StateStore opened on `tracking_ref(remote, "state")` (see `open`).
      remote: the name of a configured git remote.
      timeout_s: how long one git network command may take before the remote counts as
        unreachable.
      retry: how long and how a call that failed for a moment is tried again (transport/).
    """

    def __init__(self, store: StateStore, remote: str, *, timeout_s: float = GIT_TIMEOUT_S,
                 retry: Retry | None = None) -> None:  # fmt: skip
        self.store = store
        self.remote = remote
        self.timeout_s = timeout_s
        self.state_ref = tracking_ref(remote, "state")
        self.target_ref = tracking_ref(remote, "target")
        self.root = store.paths.root
        self.target: str | None = None  # the target branch's name, once the graph is known
        self._author: tuple[str, str] | None = None
        self._transport: Transport | None = None  # chosen on first use (`transport`)
        self.retry = retry or Retry()
        self.contention = Contention(rng=random.Random())
        self._fetch_s = 0.0  # how long our last fetch took (part of a write's cycle)
        self._queue_entry: str | None = None  # our queue entry's ref on the remote, if any
        self._commits: dict[str, Commit] = {}  # parsed commits by sha (`_commit`)
        self._seen: dict[str, str] = {}  # the remote's refs at our last look (`_poll_refs`)
        self._hands_up: list[tuple[str, str]] = []  # others' fresh hands at that look
        self._hand_at: str | None = None  # where our raised hand points (its lease)
        self.served_last = 0  # hands our last landed claim served (remote/combined.py)
        self.landings = Landings()  # how often others land, seen while our hand was up

    @classmethod
    def open(cls, start: str | Path, remote: str, **kwargs: object) -> RemoteState:
        """Open the remote `remote` of the repository containing `start`.

        Raises:
          InputError: not a git repository, or no remote of that name.
        """
        if not _NAME.match(remote):
            raise InputError(f"--remote {remote!r}: not a remote name")
        repo, paths = repos.open_repo(start)
        try:
            url = repo.get_config().get((b"remote", remote.encode()), b"url")
        except KeyError:
            url = None
        if not url:
            repo.close()
            raise InputError(
                f"no git remote named {remote!r} here (add it: git remote add {remote} URL)"
            )
        try:  # a local path on a hung mount must not hang us (transport/deadline.py)
            same = path_answers(
                lambda: _same_repository(url.decode(errors="replace"), paths.root, paths.git_dir),
                ANSWER_S, f"remote {remote}",
            )  # fmt: skip
        except BaseException:
            repo.close()
            raise
        if same:
            repo.close()
            raise InputError(
                f"--remote {remote}: its URL is this repository itself; a worker takes nodes "
                "from another clone's graph (run `gitdag run` here instead)"
            )
        store = StateStore(repo, paths, ref=tracking_ref(remote, "state").encode())
        return cls(store, remote, **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        """Close connections, persist caches and release the repository."""
        if self._transport is not None:
            self._transport.close()
        self.store.close()

    def __enter__(self) -> RemoteState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- git ----------------------------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        """How this remote is reached (chosen on first use: in-process where possible)."""
        if self._transport is None:
            self._transport = choose(self.store.repo, self.root, self.remote, self.timeout_s,
                                     self.clear_stale_locks, self.retry)  # fmt: skip
        return self._transport

    def retry_for(self, seconds: float, answer_s: float | None = None) -> None:
        """Retry calls that fail for a moment for up to `seconds` (`remote.retry_for_s`).

        `answer_s`: the least one try waits for a silent remote (`remote.timeout_s`).
        """
        self.retry.retry_for_s = seconds
        if answer_s is not None:
            self.retry.floor_s = answer_s

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a local git command in the repository (failure: RemoteError)."""
        return CliTransport(self.root, self.remote, self.timeout_s, self.clear_stale_locks,
                            self.retry).git(*args, check=check)  # fmt: skip

    def local_ref(self, ref: str) -> str | None:
        """Return the commit a local ref points at, or None."""
        try:
            return self.store.repo.refs[ref.encode()].decode()  # type: ignore[index]
        except KeyError:
            return None

    # --- reading ------------------------------------------------------------------------------

    def fetch(self, *, extra: Sequence[tuple[str, str]] = (),
              known: Mapping[str, str] | None = None) -> str:  # fmt: skip
        """Fetch the remote's state branch (and its target branch) into the tracking refs.

        Args:
          extra: more (remote ref, local ref) pairs to fetch in the same round trip, forced.
          known: where the remote's refs were a moment ago (a look just made): not asked again.

        Returns:
          The remote state head.

        Raises:
          RemoteError: unreachable, or git failed.
          NotInitialisedError: the remote has no `dagain/state`.
        """
        specs = [(STATE_REF.decode(), self.state_ref)]
        if self.target is not None:
            specs.append((f"refs/heads/{self.target}", self.target_ref))
        specs += list(extra)
        self._fetch(specs, known)
        head = self.local_ref(self.state_ref)
        if head is None:  # pragma: no cover - the transport said it fetched it
            raise RemoteError(f"remote {self.remote}: fetched no {STATE_BRANCH}")
        if self.target is None:
            # The target branch is named in the graph itself: known after the first fetch.
            self.target = self.store.snapshot_of(head).graph.target
            self._fetch([(f"refs/heads/{self.target}", self.target_ref)])
        return head

    def _fetch(self, specs: list[tuple[str, str]],
               known: Mapping[str, str] | None = None) -> None:  # fmt: skip
        haves = [h for h in (self.local_ref(self.state_ref), self.local_ref(self.target_ref)) if h]
        try:
            self.transport.fetch(specs, haves, known)
        except MissingRef as missing:
            if missing.ref == STATE_REF.decode():
                raise NotInitialisedError(
                    f"remote {self.remote} has no {STATE_BRANCH} branch: run `gitdag init` and "
                    f"push it (git push {self.remote} {STATE_BRANCH})"
                ) from None
            if self.target is not None and missing.ref == f"refs/heads/{self.target}":
                raise RemoteError(
                    f"remote {self.remote} has no target branch {self.target}: push it "
                    f"(git push {self.remote} {self.target})"
                ) from None
            raise RemoteError(
                f"remote {self.remote}: git fetch failed: couldn't find remote ref {missing.ref}"
            ) from None

    def clear_stale_locks(self, older_than_s: float = 0.0) -> int:
        """Remove `.lock` files of this remote's tracking refs older than `older_than_s`.

        Only gitdag writes these refs, so a lock nobody has touched for seconds was left by a
        killed process; with the clone's worker lock held (`gitdag work`), any lock is stale.
        Returns how many were removed.
        """
        folder = self.store.paths.git_dir / TRACKING_PREFIX / self.remote
        removed = 0
        now = time.time()
        for lock in folder.glob("*.lock") if folder.is_dir() else ():
            try:
                if now - lock.stat().st_mtime >= older_than_s:
                    lock.unlink()
                    removed += 1
            except OSError:
                continue
        return removed

    def head(self) -> str | None:
        """Return the remote state head as last fetched or pushed (None before the first fetch)."""
        return self.local_ref(self.state_ref)

    def target_tip(self) -> str | None:
        """Return the remote target's tip as last fetched or pushed."""
        return self.local_ref(self.target_ref)

    def snapshot(self) -> Snapshot:
        """Return the graph at the remote head as last fetched or pushed."""
        head = self.head()
        if head is None:
            head = self.fetch()
        return self.store.snapshot_of(head)

    def remote_ref(self, ref: str) -> str | None:
        """Ask the remote where one ref points now (`git ls-remote`), without fetching."""
        return self.transport.ref(ref)

    # --- writing ------------------------------------------------------------------------------

    def push(self, updates: Sequence[RefPush], *, atomic: bool = True,
             objects: Sequence[ShaFile] = ()) -> PushOutcome:  # fmt: skip
        """Push several refs in one round trip, each with its lease; all or none when `atomic`.

        Args:
          updates: the refs, their new commits and leases.
          atomic: all or none.
          objects: everything the remote lacks for `updates`, not written to our repository
            yet (only a transport that `sends_unwritten`; else they must be on disk).

        Raises:
          RemoteError: the remote cannot be reached, or git reports no ref at all.
        """
        if self.retry.silence_ends:  # a person waits: one bounded try (transport/retry.py)
            return self.transport.push(updates, atomic=atomic, objects=objects)
        # In a worker's loop a look waits its slice, but a push keeps the floor: a push cut
        # after its commands went is uncertain and costs a read-back, and a claim lost that way
        # under load lapses into a second attempt of its node.
        with self.retry.patient():
            return self.transport.push(updates, atomic=atomic, objects=objects)

    def _identity(self) -> tuple[str, str]:
        if self._author is None:
            self._author = repos.identity(self.store.repo)
        return self._author

    def _commit(self, sha: str) -> Commit:
        """Read a commit; state commits are read again and again while taking turns: cached."""
        found = self._commits.get(sha)
        if found is not None:
            return found
        obj = self.store.repo.object_store[ObjectID(sha.encode())]
        if not isinstance(obj, Commit):
            raise RemoteError(f"remote {self.remote}: {sha[:12]} is not a commit")
        if len(self._commits) >= COMMIT_CACHE:
            self._commits.clear()
        self._commits[sha] = obj
        return obj

    def _contains(self, head: str, sha: str, walk: int = 64) -> bool:
        """Tell whether `sha` is `head` or one of its ancestors (state history is linear)."""
        current: str | None = head
        for _ in range(walk):
            if current == sha:
                return True
            if current is None:
                return False
            parents = self._commit(current).parents
            current = parents[0].decode() if parents else None
        proc = self.git("merge-base", "--is-ancestor", sha, head, check=False)
        return proc.returncode == 0


@contextmanager
def fetched(
    start: str | Path, remote: str, retry_for_s: Callable[[Path], float] | None = None
) -> Iterator[StateStore]:
    """Yield a StateStore on a remote's state branch, freshly fetched (`status --remote`).

    `retry_for_s`: given the clone's `.dagain/`, how long to retry transient failures.
    """
    state = RemoteState.open(start, remote)
    try:
        if retry_for_s is not None:
            state.retry_for(retry_for_s(state.store.paths.dagain))
        state.fetch()
        yield state.store
    finally:
        state.close()


def _same_repository(url: str, root: Path, git_dir: Path) -> bool:
    # A local path or file:// URL that names this repository (its work tree or its git dir).
    # Network URLs cannot be compared; they are left to the transport.
    if "://" in url and not url.startswith("file://"):
        return False
    if "://" not in url and ":" in url.split("/", 1)[0]:
        return False  # scp-like host:path
    path = Path(url.removeprefix("file://")).expanduser()
    if not path.is_absolute():
        path = root / path
    try:
        resolved = path.resolve()
    except OSError:
        return False
    candidates = {resolved, (resolved / ".git").resolve() if (resolved / ".git").exists() else None}
    return root.resolve() in candidates or git_dir.resolve() in candidates
