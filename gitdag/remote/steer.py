"""Steering a remote's graph: a human command's one transition lands as one CAS push.

`gitdag add|answer|cancel|retry|pause|resume|apply-proposal|revert|reset --remote NAME` run the
same code as without `--remote`: every one of them commits through `StateStore.transact`, and
`SteeringStore` is a StateStore on the remote's tracking ref whose `transact` is
`RemoteState.push_transition` (compute on the remote head just fetched, push with a lease on
`refs/heads/dagain/state`, recompute on a lost race). So validation, one-line errors and the
commit are the local command's, and the remote gets exactly one commit (or none: a Rejected
compute pushes nothing). Afterwards the local `dagain/state` and git's remote-tracking ref
`refs/remotes/NAME/dagain/state` follow the remote head.

The remote a command steers: `--remote NAME`, else `remote.name` of `.dagain/config.yaml`, else
the upstream of `dagain/state` (`branch.dagain/state.remote`); `--local` ignores both
(docs/many-machines.md, "One graph across laptop and CI").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from dulwich.refs import Ref
from dulwich.repo import Repo

from gitdag.config import load_settings
from gitdag.core.transitions import Rejected
from gitdag.errors import InputError, NotInitialisedError
from gitdag.store import repo as repos
from gitdag.store.layout import STATE_BRANCH, STATE_REF, RepoPaths
from gitdag.store.remote import RemoteState
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import MAX_TRIES, Committed, Compute, StateStore
from gitdag.store.write import compare_and_swap
from gitdag.transport.outcomes import LostRef

if TYPE_CHECKING:
    from gitdag.store.proposal_branches import Proposed


class SteeringStore(StateStore):
    """A StateStore on a remote's tracking ref whose commits are compare-and-swap pushes.

    Reads (`head`, `snapshot`, `node`, `resolve`) see the remote head as last fetched;
    `transact` computes on it and pushes (`RemoteState.push_transition`). Not thread-safe.
    """

    def __init__(self, state: RemoteState) -> None:
        base = state.store
        super().__init__(base.repo, base.paths, ref=base.ref)
        self.remote = state
        state.store = self  # the RemoteState reads and adopts through this store from now on
        self.landed: list[str] = []  # the commits this store pushed, oldest first
        self._lenient = False

    def transact(self, compute: Compute, *, actor: str, max_tries: int = MAX_TRIES,
                 strict: bool = True) -> Committed | Rejected | None:  # fmt: skip
        """Compute a transition on the remote head and push it with compare-and-swap.

        On a lost race the remote is fetched and the transition computed again on its new head;
        Rejected or None push nothing. `strict=False` (revert, reset: the repair tools) builds on
        a head whose tree has problems, as the local command does.

        Raises:
          RemoteError: refused or unreachable. StaleSnapshotError: the head kept moving.
        """
        self._lenient = not strict
        try:
            outcome = self.remote.push_transition(compute, actor=actor, max_tries=max_tries)
        finally:
            self._lenient = False
        assert not isinstance(outcome, LostRef)  # no other ref rides along
        if isinstance(outcome, Committed):
            self.landed.append(outcome.head)
        return outcome

    def snapshot_of(self, commit: str, *, strict: bool = True) -> Snapshot:
        """See StateStore.snapshot_of; lenient while a non-strict transact computes."""
        return super().snapshot_of(commit, strict=strict and not self._lenient)

    def resolve(self, rev: str) -> str:
        """Resolve a revision; `dagain/state` (with `~N`, `^N`) names the remote's graph here."""
        for prefix in (STATE_BRANCH, "refs/heads/" + STATE_BRANCH):
            rest = rev[len(prefix) :]
            if rev.startswith(prefix) and (not rest or rest[0] in "~^@"):
                return super().resolve(self.remote.state_ref + rest)
        return super().resolve(rev)


def default_remote(repo: Repo, paths: RepoPaths) -> str | None:
    """Return the remote that holds this clone's graph, or None (a graph of this clone alone).

    `remote.name` of `.dagain/config.yaml`, else the upstream of `dagain/state`.

    Raises:
      ConfigError: a bad config file.
    """
    name = load_settings(paths.dagain).remote.name
    if name:
        return name
    try:
        value = repo.get_config().get((b"branch", STATE_BRANCH.encode()), b"remote")
    except KeyError:
        return None
    upstream = value.decode(errors="replace").strip() if isinstance(value, bytes) else ""
    return upstream if upstream and upstream != "." else None


def choose_remote(start: str | Path, remote: str | None, local_only: bool) -> str | None:
    """The remote a command works on: `--remote`, else the default; None with `--local`.

    Raises:
      InputError: both `--remote` and `--local`.
    """
    if remote is not None and local_only:
        raise InputError("give --remote NAME or --local, not both")
    if local_only:
        return None
    if remote is not None:
        return remote
    try:
        repo, paths = repos.open_repo(start)
    except InputError:
        return None  # not a repository: the command itself says so
    try:
        return default_remote(repo, paths)
    finally:
        repo.close()


def local_head(repo: Repo) -> str | None:
    """Return the local `dagain/state` head, or None."""
    try:
        return repo.refs[Ref(STATE_REF)].decode()
    except KeyError:
        return None


def is_ancestor(state: RemoteState, ancestor: str, head: str) -> bool:
    """Tell whether `ancestor` is `head` or one of its ancestors (both in this repository)."""
    if ancestor == head:
        return True
    proc = state.git("merge-base", "--is-ancestor", ancestor, head, check=False)
    return proc.returncode == 0


def follow(state: RemoteState, old_local: str | None, head: str) -> bool:
    """Move the local `dagain/state` from `old_local` to the remote head `head`.

    Git's remote-tracking ref `refs/remotes/<remote>/dagain/state` moves with it.

    Returns False when the local branch moved meanwhile (left as it is: `gitdag sync` later).
    """
    repo = state.store.repo
    who = f"gitdag: follow {state.remote}"
    tracking = f"refs/remotes/{state.remote}/{STATE_BRANCH}".encode()
    repo.refs.set_if_equals(Ref(tracking), None, head.encode(), message=who.encode())  # type: ignore[arg-type]
    if old_local == head:
        return True
    return compare_and_swap(repo, STATE_REF, old_local, head, who)


def open_remote(start: str | Path, remote: str, *, fetch: bool = True,
                waited_on: bool = False) -> RemoteState:  # fmt: skip
    """Open `remote` with the clone's `remote.retry_for_s`, fetched (the state head known).

    `fetch=False`: not fetched yet (`sync` looks for itself: a remote without a graph is fine).
    `waited_on`: a person waits (steering, `sync`): a remote silent for `remote.timeout_s`
    ends the call (`Retry.waited_on`); failures it answers are retried as usual.

    Raises:
      InputError: no such remote. RemoteError: unreachable. NotInitialisedError: it has no
      graph (with the command that publishes this clone's, when there is one).
    """
    state = RemoteState.open(start, remote)
    try:
        bounds = load_settings(state.store.paths.dagain).remote
        state.retry_for(float(bounds.retry_for_s), float(bounds.timeout_s))
        if waited_on:
            state.retry.waited_on()
        if fetch:
            state.fetch()
    except NotInitialisedError as exc:
        local = local_head(state.store.repo)
        state.close()
        if local is not None:
            raise NotInitialisedError(
                f"remote {remote} has no {STATE_BRANCH} branch yet: publish this clone's graph "
                f"with `gitdag sync {remote}` (nothing was pushed)"
            ) from None
        raise exc from None
    except BaseException:
        state.close()
        raise
    return state


@contextmanager
def steering(start: str | Path, remote: str) -> Iterator[SteeringStore]:
    """Yield a SteeringStore on `remote`'s freshly fetched graph.

    On success the local `dagain/state` follows the remote head.

    Refused (exit 2, nothing pushed) when the local `dagain/state` has transitions the remote
    lacks: they would be left behind; `gitdag sync` first.
    """
    state = open_remote(start, remote, waited_on=True)
    try:
        store = SteeringStore(state)
        local = local_head(store.repo)
        head = state.head()
        assert head is not None
        if local is not None and not is_ancestor(state, local, head):
            raise InputError(
                f"{STATE_BRANCH} here has transitions that remote {remote} lacks: run "
                f"`gitdag sync {remote}` first (or --local to change only this clone); "
                "nothing was pushed"
            )
        yield store
        new = state.head()
        if new is not None:
            follow(state, local, new)
    finally:
        state.close()


# --- proposals: branches beside the graph, shared through the same remote ------------------


def _ref(repo: Repo, ref: str) -> str | None:
    try:
        return repo.refs[Ref(ref.encode())].decode()
    except KeyError:
        return None


def _set_ref(repo: Repo, ref: str, old: str | None, new: str | None, why: str) -> bool:
    if new is None:
        if old is None:
            return True
        return bool(repo.refs.remove_if_equals(Ref(ref.encode()), old.encode(),  # type: ignore[arg-type]
                                               message=why.encode()))  # fmt: skip
    return compare_and_swap(repo, ref.encode(), old, new, why)


def fetch_proposal(store: SteeringStore, name: str) -> str | None:
    """Bring the remote's `dagain/proposals/<name>` here, if it has one; return its commit.

    It lands in `refs/remotes/<remote>/dagain/proposals/<name>` (where `git fetch` puts it), and
    the local branch of that name is fast-forwarded to it when it is behind (a local branch
    with commits the remote lacks is kept: it is what `apply-proposal` and `propose` use).
    """
    from gitdag.store.proposal_branches import branch_of

    state, repo = store.remote, store.repo
    branch = branch_of(name)
    theirs = state.remote_ref("refs/heads/" + branch)
    if theirs is None:
        return None
    tracking = f"refs/remotes/{state.remote}/{branch}"
    state.fetch(extra=[("refs/heads/" + branch, tracking)])
    ours = _ref(repo, "refs/heads/" + branch)
    if ours is not None and ours != theirs and is_ancestor(state, ours, theirs):
        _set_ref(repo, "refs/heads/" + branch, ours, theirs, f"gitdag: follow {state.remote}")
    return theirs


def propose_remote(store: SteeringStore, name: str, nodes: list[object], summary: str = "",
                   actor: str | None = None) -> Proposed | Rejected:  # fmt: skip
    """`propose --remote`: commit the proposal and push its branch with a lease, one push.

    The commit goes on the remote's proposal branch when it has one, else on its graph.

    A lost race (someone pushed the same proposal meanwhile) takes the local branch back and
    proposes again on top of theirs.

    Raises:
      InputError: the local proposal branch has commits the remote's lacks (push or rename it).
      RemoteError: refused or unreachable. StaleSnapshotError: it kept moving.
    """
    from gitdag.errors import RefRefused, StaleSnapshotError
    from gitdag.store.proposal_branches import branch_of, propose_nodes
    from gitdag.transport.outcomes import RefPush

    state, repo = store.remote, store.repo
    branch = branch_of(name)
    ref = "refs/heads/" + branch
    for _ in range(MAX_TRIES // 8):
        theirs = fetch_proposal(store, name)
        ours = _ref(repo, ref)
        if theirs is not None and ours is None:
            _set_ref(repo, ref, None, theirs, f"gitdag: follow {state.remote}")
            ours = theirs
        if theirs is not None and ours != theirs:
            raise InputError(
                f"{branch} here has commits that remote {state.remote}'s lacks: push it "
                f"(git push {state.remote} {branch}) or propose under another name; "
                "nothing was pushed"
            )
        outcome = propose_nodes(store, name, nodes, summary=summary, actor=actor)
        if isinstance(outcome, Rejected):
            return outcome
        pushed = state.push([RefPush(outcome.head, ref, theirs or "")])
        if pushed.ok:
            tracking = f"refs/remotes/{state.remote}/{branch}"
            _set_ref(repo, tracking, _ref(repo, tracking), outcome.head, "gitdag: pushed")
            return outcome
        _set_ref(repo, ref, outcome.head, ours, "gitdag: propose not pushed")
        if pushed.refusals():
            first = pushed.refusals()[0]
            said = "; ".join(pushed.remote_says[-3:])
            reason = first.summary + (f" ({said})" if said else "")
            raise RefRefused(f"remote {state.remote} refused {ref}: {reason}; nothing was "
                             "changed", ref, reason)  # fmt: skip
    raise StaleSnapshotError(f"remote {state.remote}: {branch} kept moving; nothing was written")
