"""The remote spoken to in-process with `dulwich.client`: smart HTTP(S), ssh, git://, local paths.

No git process per call on our side, and one HTTP connection pool per worker (keep-alive):
a look at the remote head is one `ls-refs` request, a fetch one protocol-v2 `fetch` (ref
prefixes, the few commits we have as haves, `done` at once), a push one `receive-pack` session.

Leases: `send_pack` shows us the refs the server advertises before anything is sent
(`update_refs`); a ref that is not where its lease says fails there (a lost race costs no pack),
and each command's old value is the lease, so the server checks it again under its ref lock.
The server's report becomes the `RefStatus` values `git push --porcelain` gives (outcomes.py).

Which client speaks to which URL: endpoints.py.
"""

from __future__ import annotations

import io
import socket
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from dulwich.client import GitClient, SSHGitClient
from dulwich.errors import ChecksumMismatch, HangupException
from dulwich.file import FileLocked
from dulwich.objects import ObjectID, ShaFile
from dulwich.pack import PackData, PackInflater, UnpackedObject, pack_objects_to_data
from dulwich.refs import Ref
from dulwich.repo import BaseRepo

from gitdag.errors import RemoteError, RemoteUnreachable
from gitdag.transport.base import Transport, under
from gitdag.transport.deadline import WatchedLocalClient, WatchedSSHVendor, no_answer, try_bound
from gitdag.transport.endpoints import KeepAliveHttpClient, QuickTcpClient
from gitdag.transport.outcomes import (
    Failure,
    MissingRef,
    PushOutcome,
    RefPush,
    RefStatus,
    classify,
    git_env,
)
from gitdag.transport.retry import Retry, Unreachable

ZERO = "0" * 40
# Fewer objects than this are stored loose (git's fetch.unpackLimit is 100; ours is lower: a
# worker waiting for its turn catches up on several transitions at once, and one pack is
# cheaper to write than dozens of loose objects).
UNPACK_LIMIT = 16
MAX_PACKS = 32  # more packs than this and small ones are merged (`git repack --geometric`)


class _Haves:
    """A graph walker that offers the server only the tips we name (no negotiation rounds)."""

    def __init__(self, haves: Sequence[str]) -> None:
        self.todo = [ObjectID(h.encode()) for h in haves]
        self.shallow: set[bytes] = set()

    def __next__(self) -> ObjectID | None:
        return self.todo.pop(0) if self.todo else None

    next = __next__

    def ack(self, sha: bytes) -> None:
        """The server has it (nothing to do: we offered only tips)."""

    def nak(self) -> None:
        """The server has none of them (it sends everything)."""


class ClientTransport(Transport):
    """A remote read and written in-process through `dulwich.client` (module doc)."""

    sends_unwritten = True

    def __init__(self, repo: BaseRepo, root: Path, remote: str, client: GitClient, path: str,
                 clear_locks: Callable[[float], int], retry: Retry | None = None,
                 timeout_s: float = 120.0) -> None:  # fmt: skip
        self.repo = repo
        self.timeout_s = timeout_s  # the most one try waits for a silent remote (deadline.py)
        self.root = root
        self.remote = remote
        self.client = client
        self.path = path
        self.clear_locks = clear_locks
        self.retry = retry or Retry()

    def _failed(self, what: str, exc: BaseException) -> RemoteError:
        detail = _describe(exc)
        return RemoteError(f"remote {self.remote}: git {what} failed: {detail}")

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        """Run one exchange, retrying transient failures (retry.py); others: RemoteError."""

        def once() -> Any:
            bound = self._bound()
            try:
                return call()
            except _Dropped:
                raise
            except (OSError, HangupException, EOFError) as exc:
                cut = self._cut(exc)
                detail = no_answer(bound) if cut else _describe(exc)
                raise Unreachable(detail, Failure.TRANSIENT, silent=cut) from None
            except (RemoteError, MissingRef):
                raise
            except Exception as exc:  # dulwich's protocol and HTTP errors: classified by text
                if self._cut(exc):
                    raise Unreachable(no_answer(bound), Failure.TRANSIENT, silent=True) from None
                raise Unreachable(_describe(exc), classify(_describe(exc))) from None

        try:
            return self.retry.run(once)
        except Unreachable as exc:
            message = f"remote {self.remote}: git {what} failed: {exc.detail}"
            if exc.failure is Failure.TRANSIENT:
                raise RemoteUnreachable(message + self.retry.gave_up(exc)) from None
            raise RemoteError(message) from None

    def _bound(self) -> float:
        """Bound the try starting now by the time its call has left (deadline.py)."""
        bound = try_bound(self.retry, self.timeout_s)
        client = self.client
        if isinstance(client, QuickTcpClient):
            client.timeout_s = bound
        elif isinstance(client, KeepAliveHttpClient):
            client.bound(bound)
        elif isinstance(client, SSHGitClient) and isinstance(client.ssh_vendor, WatchedSSHVendor):
            client.ssh_vendor.idle_s = bound
        elif isinstance(client, WatchedLocalClient):
            client.idle_s = bound
        return bound

    def _cut(self, exc: BaseException) -> bool:
        """Tell whether a try failed because the remote was silent past its bound."""
        vendor = getattr(self.client, "ssh_vendor", None)
        if isinstance(vendor, WatchedSSHVendor) and vendor.cut():
            return True
        if isinstance(self.client, WatchedLocalClient) and self.client.cut():
            return True
        return isinstance(exc, TimeoutError) or "timed out" in str(exc).lower()

    def refs(self, prefixes: Sequence[str]) -> dict[str, str]:
        """ls-refs of the refs under `prefixes` (a full name is its own prefix)."""
        wanted = [p.encode() for p in prefixes]

        def once() -> dict[str, str]:
            result = self.client.get_refs(self.path.encode(), protocol_version=2, ref_prefix=wanted)
            return {k.decode(): v.decode() for k, v in result.refs.items() if v is not None}

        found: dict[str, str] = self._call("ls-remote", once)
        return {name: sha for name, sha in found.items() if under(name, prefixes)}

    def fetch(self, specs: Sequence[tuple[str, str]], haves: Sequence[str],
              known: Mapping[str, str] | None = None) -> None:  # fmt: skip
        """One protocol-v2 fetch of the refs of `specs` (skipped when `known` has them all)."""
        names = list(dict.fromkeys(src for src, _ in specs))
        store = self.repo.object_store
        if known is not None and all(
            n in known and ObjectID(known[n].encode()) in store for n in names
        ):  # a look just made, and we have it all: nothing to ask
            for src, dst in specs:
                self._set(dst, known[src])
            return
        ours = [h for h in dict.fromkeys(haves) if h]

        def once() -> tuple[dict[str, str], bytes]:
            found: dict[str, str] = {}
            data = io.BytesIO()

            def wants(refs: Mapping[Ref, ObjectID | None], depth: int | None = None,
                      ) -> list[ObjectID]:  # fmt: skip
                for name in names:
                    sha = refs.get(Ref(name.encode()))
                    if sha is not None:
                        found[name] = sha.decode()
                if any(n not in found for n in names):
                    return []
                shas = {ObjectID(s.encode()) for s in found.values()}
                return sorted(sha for sha in shas if sha not in store)

            self.client.fetch_pack(
                self.path.encode(), wants, _Haves(ours), data.write,
                ref_prefix=[n.encode() for n in names], protocol_version=2,
            )  # fmt: skip
            return found, data.getvalue()

        # Where the refs are is known (a look, a lost push's advertisement): the fetch asks
        # for those commits at once, without listing the refs again (endpoints.py).
        hinted = known is not None and all(n in known for n in names)
        if hinted and isinstance(self.client, KeepAliveHttpClient):
            self.client.refs_hint = {n: known[n] for n in names} if known is not None else None
        try:
            found, data = self._call("fetch", once)
        finally:
            if isinstance(self.client, KeepAliveHttpClient):
                self.client.refs_hint = None
        for src in names:
            if src not in found:
                raise MissingRef(src)
        try:
            self._store(data)
        except (ChecksumMismatch, ValueError, KeyError, AssertionError) as exc:
            raise RemoteError(f"remote {self.remote}: git fetch failed: a damaged pack: {exc}"
                              ) from None  # fmt: skip
        for src, dst in specs:
            self._set(dst, found[src])

    def _store(self, data: bytes) -> None:
        """Add a fetched pack's objects: loose when few, else kept as a pack (git does so too)."""
        if not data:
            return
        store = self.repo.object_store
        pack = PackData.from_file(io.BytesIO(data), store.object_format, len(data))
        try:
            pack.check()
            if len(pack) >= UNPACK_LIMIT and hasattr(store, "add_thin_pack"):
                store.add_thin_pack(io.BytesIO(data).read, None)
                self._merge_small_packs()
                return
            for obj in PackInflater.for_pack_data(pack, store.get_raw):
                store.add_object(obj)
        finally:
            pack.close()

    def _merge_small_packs(self) -> None:
        """Merge small packs once there are many (each lookup looks at every pack): best effort."""
        folder = Path(self.repo.object_store.path) / "pack"  # type: ignore[attr-defined]
        try:
            count = sum(1 for p in folder.iterdir() if p.suffix == ".pack")
        except OSError:
            return
        if count > MAX_PACKS:
            subprocess.run(["git", "repack", "-d", "-q", "--geometric=2"], cwd=self.root,
                           env=git_env(), capture_output=True, check=False)  # fmt: skip

    def _set(self, ref: str, sha: str) -> None:
        """Point our ref at `sha` (forced, like `+src:dst`), clearing a killed process's lock."""
        for attempt in range(2):
            try:
                self.repo.refs.set_if_equals(Ref(ref.encode()), None, ObjectID(sha.encode()))
                return
            except FileLocked:
                if attempt or not self.clear_locks(5.0):
                    raise RemoteError(
                        f"remote {self.remote}: git fetch failed: cannot lock ref '{ref}': "
                        "another process is updating it"
                    ) from None

    def push(self, updates: Sequence[RefPush], *, atomic: bool,
             objects: Sequence[ShaFile] = ()) -> PushOutcome:  # fmt: skip
        """One receive-pack session; a connection lost after the commands went is uncertain."""
        try:
            outcome: PushOutcome = self._call(
                "push", lambda: self._push_once(updates, atomic, objects)
            )
        except _Dropped:
            # It may or may not have landed: reported as a lost race of the state ref, and
            # uncertain, so the caller fetches and looks.
            first, *rest = updates
            lost = RefStatus(first.dst, "!", "[rejected] (connection dropped; fetch first)")
            others = [RefStatus(u.dst, "!", "[rejected] (atomic push failed)") for u in rest]
            return PushOutcome((lost, *others), uncertain=True)
        # Tries before this one failed before their commands went (else _Dropped): the report
        # is about this push alone.
        return outcome

    def _push_once(self, updates: Sequence[RefPush], atomic: bool,
                   objects: Sequence[ShaFile]) -> PushOutcome:  # fmt: skip
        plan: dict[str, Any] = {"statuses": None, "advertised": {}, "sent": False}
        said: list[str] = []

        def update_refs(old: dict[Ref, ObjectID]) -> dict[Ref, ObjectID]:
            advertised = {k.decode(): v.decode() for k, v in old.items()}
            plan["advertised"] = advertised
            stale = _leases(updates, advertised, atomic=atomic)
            todo = [u for u in updates if advertised.get(u.dst, ZERO) != (u.src or ZERO)]
            if stale or not todo:
                plan["statuses"] = stale
                return dict(old)  # nothing changes: dulwich sends a flush and no pack
            # Only the refs that change: dulwich 1.2.0 sends a pack whenever any ref in this
            # map is not a deletion, even an unchanged one, and git's receive-pack, having
            # only delete commands, never reads it; it closes, and the reset can beat its
            # report to us (a delete-only push over git:// then looks dropped).
            new = {Ref(u.dst.encode()): ObjectID((u.src or ZERO).encode()) for u in todo}
            plan["todo"] = todo
            plan["sent"] = True
            return new

        def pack(
            have: AbstractSet[ObjectID],
            want: AbstractSet[ObjectID],
            *,
            ofs_delta: bool = False,
            progress: Callable[[bytes], None] | None = None,
        ) -> tuple[int, Iterator[UnpackedObject]]:
            if objects:
                return pack_objects_to_data(list(objects))
            return self.repo.generate_pack_data(
                {h for h in have if h in self.repo.object_store}, set(want), ofs_delta=ofs_delta
            )  # fmt: skip

        def progress(chunk: bytes) -> None:
            said.extend(ln.strip() for ln in chunk.decode("utf-8", "replace").splitlines()
                        if ln.strip())  # fmt: skip

        try:
            result = self.client.send_pack(self.path.encode(), update_refs, pack,
                                           progress=progress,
                                           atomic=atomic and len(updates) > 1)  # fmt: skip
        except Exception as exc:
            if plan["sent"] and not isinstance(exc, (RemoteError,)) and _network(exc):
                raise _Dropped() from None
            raise
        if plan["statuses"] is not None:
            statuses: list[RefStatus] = plan["statuses"]
            done = {s.ref for s in statuses}
            statuses += [RefStatus(u.dst, "=", "[up to date]") for u in updates
                         if u.dst not in done]  # fmt: skip
            return PushOutcome(tuple(_in_order(updates, statuses)), seen=plan["advertised"])
        report = {k.decode(): v for k, v in (result.ref_status or {}).items()}
        statuses = _report(plan["todo"], plan["advertised"], report)
        done = {s.ref for s in statuses}
        statuses += [RefStatus(u.dst, "=", "[up to date]") for u in updates if u.dst not in done]
        return PushOutcome(tuple(_in_order(updates, statuses)), tuple(said),
                           seen=plan["advertised"])  # fmt: skip


class _Dropped(Exception):
    """The connection failed after a push's commands were sent: it may have landed."""


def _network(exc: BaseException) -> bool:
    if isinstance(exc, (OSError, HangupException, EOFError)):
        return True
    return classify(_describe(exc)) is Failure.TRANSIENT


def _describe(exc: BaseException) -> str:
    """One line for an exception of the client, with its type (it often says the most)."""
    if isinstance(exc, ConnectionRefusedError | socket.gaierror | socket.timeout):
        return f"unable to connect: {exc}"
    text = " ".join(str(exc).split())
    if isinstance(exc, HangupException | EOFError) and not text:
        return "the remote end hung up unexpectedly"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _leases(updates: Sequence[RefPush], advertised: Mapping[str, str], *,
            atomic: bool) -> list[RefStatus]:  # fmt: skip
    """The refs whose lease fails against the advertisement (and, if atomic, all the others)."""
    stale = [
        u for u in updates
        if u.expect is not None and advertised.get(u.dst, ZERO) != (u.expect or ZERO)
    ]  # fmt: skip
    if not stale:
        return []
    found = [RefStatus(u.dst, "!", "[rejected] (stale info)") for u in stale]
    if atomic and len(updates) > 1:
        names = {u.dst for u in stale}
        found += [RefStatus(u.dst, "!", "[rejected] (atomic push failed)") for u in updates
                  if u.dst not in names]  # fmt: skip
    return found


def _report(todo: Sequence[RefPush], advertised: Mapping[str, str],
            report: Mapping[str, str | None]) -> list[RefStatus]:  # fmt: skip
    """The server's report-status as RefStatus values worded like `git push --porcelain`."""
    found = []
    for up in todo:
        old = advertised.get(up.dst, ZERO)
        reason = report.get(up.dst)
        if reason is not None:
            found.append(RefStatus(up.dst, "!", f"[remote rejected] ({reason})"))
        elif not up.src:
            found.append(RefStatus(up.dst, "-", "[deleted]"))
        elif old == ZERO:
            found.append(RefStatus(up.dst, "*", "[new branch]"))
        else:
            found.append(RefStatus(up.dst, " ", f"{old[:10]}..{up.src[:10]}"))
    return found


def _in_order(updates: Sequence[RefPush], statuses: list[RefStatus]) -> list[RefStatus]:
    rank = {u.dst: i for i, u in enumerate(updates)}
    return sorted(statuses, key=lambda s: rank.get(s.ref, len(rank)))
