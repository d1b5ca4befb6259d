"""A remote's `dagain/state`: fetched into private tracking refs, written by CAS pushes.

Many machines share one graph through a git remote; compare-and-swap on the remote's refs is the
only lock (spec §8). Reading: `fetch` copies the remote's state branch (and the target branch)
into refs of our own, `refs/gitdag/remotes/<remote>/state` and `.../target`, so nothing the user
owns moves, and a `StateStore` opened on the tracking ref reads snapshots from it as usual.
Writing: `push_transition` computes a transition on the snapshot of the remote head we know,
builds its commit locally (`build_commit`) and pushes it with
`git push --porcelain --atomic --force-with-lease=refs/heads/dagain/state:<expected>`. The server
checks the expected value under its ref lock, so exactly one of several racing pushes lands; the
others are told `stale info` (or `cannot lock ref`), which is a value here: fetch, recompute on
the new head, try again (bounded, jittered). A claim must be known to have landed: its commit
carries a unique nonce, so git's own report that the push moved the ref from the expected head to
our commit is the proof; only when that report is ambiguous (a dropped connection retried, "up to
date") is it read back with a fetch. After a landed push our tracking ref is our commit, so the
next write pushes on it directly and fetches only after a lost race (contention.py decides when
a writer that keeps winning sits out its turn).

Other refs can ride along in the same atomic push (a node's work branch with its result, the
target branch with the merge transition), each with its own lease, so code and graph never
disagree on the remote. A refusal for any other reason (a hook, a read-only remote, no
permission) or an unreachable remote raises `RemoteError` (exit 2); nothing local is lost.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from dulwich.objects import Commit, ObjectID

from gitdag.core.transitions import Rejected, Transition, parse_trailers
from gitdag.errors import InputError, NotInitialisedError, RemoteError, StaleSnapshotError
from gitdag.store import repo as repos
from gitdag.store.contention import Contention
from gitdag.store.gitpush import (
    LostRef,
    PushOutcome,
    RefPush,
    git_env,
    parse_porcelain,
    transient,
)
from gitdag.store.layout import STATE_BRANCH, STATE_REF
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed, StateStore
from gitdag.store.write import build_commit, compare_and_swap

TRACKING_PREFIX = "refs/gitdag/remotes/"
MAX_TRIES = 12
GIT_TIMEOUT_S = 120.0
NET_RETRIES = 3
STALE_LOCK_S = 5.0
RIVALS_S = 3  # rivals are the other actors of the state commits of the last few seconds
RIVALS_WALK = 32  # ... looking at no more commits than this
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

Compute = Callable[[Snapshot, dt.datetime], "Transition | Rejected | None"]


def tracking_ref(remote: str, what: str) -> str:
    """Return the private ref that mirrors `what` (`state`, `target`) of a remote."""
    return f"{TRACKING_PREFIX}{remote}/{what}"


class RemoteState:
    """One remote's state branch, mirrored into a tracking ref and written by CAS pushes.

    Not thread-safe (like the StateStore it wraps): one per thread.

    Args:
      store: a StateStore opened on `tracking_ref(remote, "state")` (see `open`).
      remote: the name of a configured git remote.
      timeout_s: how long one git network command may take before the remote counts as
        unreachable.
    """

    def __init__(self, store: StateStore, remote: str, *, timeout_s: float = GIT_TIMEOUT_S) -> None:
        self.store = store
        self.remote = remote
        self.timeout_s = timeout_s
        self.state_ref = tracking_ref(remote, "state")
        self.target_ref = tracking_ref(remote, "target")
        self.root = store.paths.root
        self.target: str | None = None  # the target branch's name, once the graph is known
        self._author: tuple[str, str] | None = None
        self._retried = False  # a network command was retried after a dropped connection
        self.contention = Contention()
        self._last_landed: str | None = None  # our last commit known to have landed

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
        store = StateStore(repo, paths, ref=tracking_ref(remote, "state").encode())
        return cls(store, remote, **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        """Persist caches and release the repository."""
        self.store.close()

    def __enter__(self) -> RemoteState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- git ----------------------------------------------------------------------------------

    def git(self, *args: str, check: bool = True,
            network: bool = False) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """Run a git command in the repository; network trouble becomes RemoteError.

        A `network` command whose connection failed is retried a few times (briefly): fetches
        and ls-remote are idempotent, and a push that may have landed is checked by the caller.
        """
        delay = 0.1
        for _ in range(NET_RETRIES):
            proc = self._git_once(args)
            if not (network and proc.returncode != 0 and transient(proc)):
                break
            self._retried = True
            time.sleep(delay)
            delay *= 2
        if check and proc.returncode != 0:
            raise RemoteError(self._describe(args[0], proc))
        return proc

    def _git_once(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        try:
            proc = subprocess.run(
                ["git", *args], cwd=self.root, env=git_env(), capture_output=True,
                encoding="utf-8", errors="surrogateescape", timeout=self.timeout_s,
                stdin=subprocess.DEVNULL, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise RemoteError(
                f"remote {self.remote}: `git {args[0]}` took more than {self.timeout_s:.0f} s; "
                "nothing was changed locally"
            ) from None
        except OSError as exc:
            raise RemoteError(f"cannot run git: {exc}") from None
        return proc

    def _describe(self, what: str, proc: subprocess.CompletedProcess[str]) -> str:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        useful = [ln for ln in lines if ln.startswith(("fatal:", "error:", "remote:"))] or lines
        detail = "; ".join(useful[-3:]) or f"exit {proc.returncode}"
        return f"remote {self.remote}: git {what} failed: {detail}"

    def local_ref(self, ref: str) -> str | None:
        """Return the commit a local ref points at, or None."""
        try:
            return self.store.repo.refs[ref.encode()].decode()  # type: ignore[index]
        except KeyError:
            return None

    # --- reading ------------------------------------------------------------------------------

    def fetch(self, *, extra: Sequence[tuple[str, str]] = ()) -> str:
        """Fetch the remote's state branch (and its target branch) into the tracking refs.

        Args:
          extra: more (remote ref, local ref) pairs to fetch in the same round trip, forced.

        Returns:
          The remote state head.

        Raises:
          RemoteError: unreachable, or git failed.
          NotInitialisedError: the remote has no `dagain/state`.
        """
        specs = [f"+{STATE_REF.decode()}:{self.state_ref}"]
        if self.target is not None:
            specs.append(f"+refs/heads/{self.target}:{self.target_ref}")
        specs += [f"+{src}:{dst}" for src, dst in extra]
        args = ("fetch", "-q", "--no-tags", "--no-write-fetch-head", self.remote, *specs)
        proc = self.git(*args, check=False, network=True)
        # A process killed while it updated one of our tracking refs (kill -9 of a worker)
        # leaves its `.lock` behind for good; git holds such a lock for milliseconds.
        locked = proc.returncode != 0 and "cannot lock ref" in proc.stderr
        if locked and self.clear_stale_locks(STALE_LOCK_S):
            proc = self.git(*args, check=False, network=True)
        if proc.returncode != 0:
            if f"couldn't find remote ref {STATE_REF.decode()}" in proc.stderr:
                raise NotInitialisedError(
                    f"remote {self.remote} has no {STATE_BRANCH} branch: run `gitdag init` and "
                    f"push it (git push {self.remote} {STATE_BRANCH})"
                )
            if self.target is not None and "couldn't find remote ref" in proc.stderr:
                raise RemoteError(
                    f"remote {self.remote} has no target branch {self.target}: push it "
                    f"(git push {self.remote} {self.target})"
                )
            raise RemoteError(self._describe("fetch", proc))
        head = self.local_ref(self.state_ref)
        if head is None:  # pragma: no cover - git said it fetched it
            raise RemoteError(f"remote {self.remote}: fetched no {STATE_BRANCH}")
        if self.target is None:
            # The target branch is named in the graph itself: known after the first fetch.
            self.target = self.store.snapshot_of(head).graph.target
            self.git("fetch", "-q", "--no-tags", "--no-write-fetch-head", self.remote,
                     f"+refs/heads/{self.target}:{self.target_ref}", network=True)  # fmt: skip
        return head

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
        out = self.git("ls-remote", self.remote, ref, network=True).stdout
        for line in out.splitlines():
            sha, _, name = line.partition("\t")
            if name.strip() == ref:
                return sha.strip()
        return None

    # --- writing ------------------------------------------------------------------------------

    def push(self, updates: Sequence[RefPush], *, atomic: bool = True) -> PushOutcome:
        """Push several refs in one round trip, each with its lease; all or none when `atomic`.

        Raises:
          RemoteError: the remote cannot be reached, or git reports no ref at all.
        """
        args = ["push", "--porcelain", "--no-verify"]
        if atomic and len(updates) > 1:
            args.append("--atomic")
        specs = []
        for up in updates:
            if up.expect is None:
                specs.append(f"+{up.src}:{up.dst}")
            else:
                args.append(f"--force-with-lease={up.dst}:{up.expect}")
                specs.append(f"{up.src}:{up.dst}")
        proc = self.git(*args, self.remote, *specs, check=False, network=True)
        statuses = parse_porcelain(proc.stdout)
        if not statuses:
            raise RemoteError(self._describe("push", proc))
        said = tuple(
            line[len("remote:") :].strip() for line in (proc.stderr or "").splitlines()
            if line.startswith("remote:") and line[len("remote:") :].strip()
        )  # fmt: skip
        return PushOutcome(statuses, said)

    def push_transition(
        self,
        compute: Compute,
        *,
        actor: str,
        refs: Sequence[RefPush] | Callable[[Snapshot], Sequence[RefPush]] = (),
        read_back: bool = False,
        max_tries: int = MAX_TRIES,
        polite: bool = False,
    ) -> Committed | Rejected | LostRef | None:
        """Compute a transition on the remote head and push it with compare-and-swap.

        On a lost race the remote is fetched and the transition recomputed on its new head
        (never a textual rebase), up to `max_tries` times, each after a small jitter.

        Args:
          compute: (snapshot, now) -> the transition, a Rejected, or None for nothing to do.
          actor: the `Gitdag-Actor` trailer.
          refs: other refs to push atomically with it (or a function of the snapshot giving
            them); if one of their leases fails, LostRef is returned and nothing was pushed.
          read_back: make sure the remote's state history contains our commit (claims: their
            commit carries a unique nonce): from git's report of the push, else by a fetch.
          max_tries: the bound on recomputations.
          polite: after a recent win with rivals about, sit out a turn and fetch before the
            first push (claims: a push that can wait; results and renewals go at once).

        Returns:
          Committed (now the remote head as far as we know), or what compute returned, or LostRef.

        Raises:
          RemoteError: the remote refused the push for another reason, or is unreachable.
          StaleSnapshotError: the remote head kept moving past the bound.
        """
        author = self._identity()
        pause = self.contention.pause() if polite else 0.0
        if pause:
            # We won a moment ago and others are waiting: let them have their turn, then look
            # at the head afresh (pushing on the head we knew would only lose).
            time.sleep(pause)
        if pause or (polite and self.contention.look()):
            known = self.head()
            if self._fetch_seeing(actor) == known and known == self._last_landed:
                self.contention.quiet()
        for attempt in range(1, max_tries + 1):
            snap = self.snapshot()
            now = self.store.clock()
            result = compute(snap, now)
            if result is None or isinstance(result, Rejected):
                return result
            if result.is_empty():
                return None
            commit, new_snap = build_commit(
                self.store.repo, snap, result, actor=actor, author=author, now=now,
                cache=self.store.cache, readme=self.store._readme(snap, result),
            )  # fmt: skip
            sha = commit.id.decode()
            extra = list(refs(snap) if callable(refs) else refs)
            state = RefPush(sha, STATE_REF.decode(), snap.head or "")
            self._retried = False
            began = time.monotonic()
            outcome = self.push([state, *extra])
            took = time.monotonic() - began
            if outcome.ok:
                self._adopt(snap, new_snap, extra)
                if (
                    not read_back
                    or self._landed(outcome, snap.head or "", sha)
                    or self._confirm(sha)
                ):
                    self.contention.won(took)
                    self._last_landed = sha
                    return Committed(result, sha, new_snap, attempt)
            else:
                refused = outcome.refusals()
                if refused:
                    first = refused[0]
                    why = f" ({'; '.join(outcome.remote_says[-3:])})" if outcome.remote_says else ""
                    raise RemoteError(
                        f"remote {self.remote} refused {first.ref}: {first.summary}{why}; "
                        "nothing was changed locally"
                    )
                lost = [r for r in outcome.stale_refs() if r != STATE_REF.decode()]
                if lost:
                    return LostRef(lost[0])
            # Someone else moved the remote head: they made progress, so retry promptly (a
            # small jitter, contention.py): look at what they did, decide again on that head.
            time.sleep(self.contention.lost())
            head = self._fetch_seeing(actor)
            wait = self.contention.turn() if polite else 0.0
            if wait:
                # Writers that waited longer than us are about: they go first.
                time.sleep(wait)
                head = self._fetch_seeing(actor)
            if self._retried and not outcome.ok and self._contains(head, sha):
                # The connection dropped after the push landed, and the retry found it there.
                self._adopt(snap, new_snap, extra)
                self.contention.won()
                return Committed(result, sha, new_snap, attempt)
            if head == snap.head and not outcome.ok:
                why = next((s.summary for s in outcome.statuses if s.stale), "refused")
                raise RemoteError(
                    f"remote {self.remote} refused {STATE_REF.decode()} although it did not "
                    f"move: {why}; nothing was changed locally"
                )
        raise StaleSnapshotError(
            f"remote {self.remote}: {STATE_BRANCH} moved under {max_tries} attempts in a row; "
            "nothing was written"
        )

    def _identity(self) -> tuple[str, str]:
        if self._author is None:
            self._author = repos.identity(self.store.repo)
        return self._author

    def _adopt(self, old: Snapshot, new: Snapshot, extra: Sequence[RefPush]) -> None:
        """Our push landed: the tracking refs follow, and the new snapshot is the current one."""
        if new.head is None:
            return
        repo = self.store.repo
        compare_and_swap(repo, self.state_ref.encode(), old.head, new.head, "gitdag: pushed")
        for up in extra:
            if self.target is not None and up.dst == f"refs/heads/{self.target}":
                compare_and_swap(repo, self.target_ref.encode(), up.expect or None, up.src,
                                 "gitdag: pushed")  # fmt: skip
        # The store's own cache of the current snapshot (same package): reading it back is free.
        self.store._snap = new

    def _landed(self, outcome: PushOutcome, expected: str, sha: str) -> bool:
        """Tell whether git's report of this push proves that our commit became the state head.

        The server moved the ref under its lock only if it still pointed at `expected`, so a
        report `<expected>..<sha>` for our unique commit means it was the head at that moment.
        Not after a retried connection: the report is then about the retry, not the push.
        """
        if self._retried:
            return False
        ref = STATE_REF.decode()
        return any(s.ref == ref and s.moved(expected, sha) for s in outcome.statuses)

    def _confirm(self, sha: str) -> bool:
        """Read back whether our commit is on the remote's state branch (head or ancestor)."""
        return self._contains(self.fetch(), sha)

    def _fetch_seeing(self, actor: str) -> str:
        """Fetch, and count the rival writers of the history fetched (`Contention.seen`)."""
        head = self.fetch()
        self.contention.seen(self._actors(head), " ".join(actor.split()))
        return head

    def _actors(self, head: str) -> list[str]:
        """Return the actors of the last seconds' state commits, newest (latest commit) first."""
        actors: dict[str, None] = {}
        current: str | None = head
        newest: int | None = None
        for _ in range(RIVALS_WALK):
            if current is None:
                break
            commit = self._commit(current)
            newest = commit.commit_time if newest is None else newest
            if commit.commit_time < newest - RIVALS_S:
                break
            trailers = parse_trailers(commit.message.decode("utf-8", "replace"))
            actors.update(dict.fromkeys(trailers.get("Gitdag-Actor", [])))
            current = commit.parents[0].decode() if commit.parents else None
        return list(actors)

    def _commit(self, sha: str) -> Commit:
        obj = self.store.repo.object_store[ObjectID(sha.encode())]
        if not isinstance(obj, Commit):
            raise RemoteError(f"remote {self.remote}: {sha[:12]} is not a commit")
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
def fetched(start: str | Path, remote: str) -> Iterator[StateStore]:
    """Yield a StateStore on a remote's state branch, freshly fetched (`status --remote`)."""
    state = RemoteState.open(start, remote)
    try:
        state.fetch()
        yield state.store
    finally:
        state.close()
