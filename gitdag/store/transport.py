"""How a remote is read and written: in-process over the wire, or through the git CLI.

`RemoteState` (remote.py) decides what to fetch and push; a transport only moves refs and
objects. `WireTransport` speaks the protocol itself (wire.py: `git://` and local paths, about ten
times faster per round trip on loopback); `CliTransport` runs `git fetch` / `git push` for every
other URL (ssh, http), for a server that does not speak protocol v2, and whenever
`GITDAG_WIRE=cli` is set. Both report the same values (`PushOutcome`) and raise the same errors.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from dulwich.file import FileLocked
from dulwich.objects import ObjectID, ShaFile
from dulwich.refs import Ref
from dulwich.repo import BaseRepo

from gitdag.errors import RemoteError, StoreError
from gitdag.store import receive, wire
from gitdag.store.gitpush import (
    PushOutcome,
    RefPush,
    RefStatus,
    git_env,
    parse_porcelain,
    transient,
)
from gitdag.store.packs import pack_for, pack_of, store_pack
from gitdag.store.upload import Upload

NET_RETRIES = 3
HOLD_S = 0.5  # how long the connection of a look stays open for the fetch that may follow
WIRE_ENV = "GITDAG_WIRE"  # "cli": always use the git CLI
_MISSING = re.compile(r"couldn't find remote ref (\S+)")
_R = TypeVar("_R")


class MissingRef(Exception):
    """A ref asked for is not on the remote (nothing was fetched)."""

    def __init__(self, ref: str) -> None:
        super().__init__(ref)
        self.ref = ref


class Transport(ABC):
    """Moves refs and objects between our repository and one remote.

    Attributes:
      retried: the last push's connection failed after it was sent and was retried, so its
        report may not be about it (the caller checks by fetching).
    """

    retried = False

    @abstractmethod
    def fetch(self, specs: Sequence[tuple[str, str]], haves: Sequence[str],
              known: Mapping[str, str] | None = None) -> None:  # fmt: skip
        """Copy each remote ref `src` to our ref `dst` (forced), with the objects they need.

        `known`: where the remote's refs were a moment ago (a look just made), to skip asking.

        Raises:
          MissingRef: a `src` is not on the remote.
          RemoteError: unreachable, or the remote answered nonsense.
        """

    # Whether `push` can send objects not yet in the repository (`objects`).
    sends_unwritten = False

    @abstractmethod
    def push(self, updates: Sequence[RefPush], *, atomic: bool,
             objects: Sequence[ShaFile] = ()) -> PushOutcome:  # fmt: skip
        """Push `updates` with their leases in one round trip (all or none when `atomic`).

        `objects`: when given (and `sends_unwritten`), everything the remote lacks for them.
        """

    @abstractmethod
    def ref(self, name: str) -> str | None:
        """Where one remote ref points now, without fetching (None: no such ref)."""

    @abstractmethod
    def refs(self, prefixes: Sequence[str]) -> dict[str, str]:
        """Every remote ref whose name starts with one of `prefixes`, without fetching."""

    def close(self) -> None:  # noqa: B027 - optional: only some transports hold a connection
        """Release connections."""


class CliTransport(Transport):
    """`git fetch` / `git push --porcelain --force-with-lease` / `git ls-remote` (any URL)."""

    def __init__(self, root: Path, remote: str, timeout_s: float,
                 clear_locks: Callable[[float], int]) -> None:  # fmt: skip
        self.root = root
        self.remote = remote
        self.timeout_s = timeout_s
        self.clear_locks = clear_locks

    def git(self, *args: str, check: bool = True,
            network: bool = False) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """Run git in the repository; a `network` command that failed to connect is retried."""
        delay = 0.1
        for _ in range(NET_RETRIES):
            proc = self._git_once(args)
            if not (network and proc.returncode != 0 and transient(proc)):
                break
            self.retried = True
            time.sleep(delay)
            delay *= 2
        if check and proc.returncode != 0:
            raise RemoteError(self.describe(args[0], proc))
        return proc

    def _git_once(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
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

    def describe(self, what: str, proc: subprocess.CompletedProcess[str]) -> str:
        """A one-line error for a failed git command: its `fatal:`/`error:` lines."""
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        useful = [ln for ln in lines if ln.startswith(("fatal:", "error:", "remote:"))] or lines
        detail = "; ".join(useful[-3:]) or f"exit {proc.returncode}"
        return f"remote {self.remote}: git {what} failed: {detail}"

    def fetch(self, specs: Sequence[tuple[str, str]], haves: Sequence[str],
              known: Mapping[str, str] | None = None) -> None:  # fmt: skip
        """`git fetch` of `+src:dst` for each spec (git negotiates what we have itself)."""
        args = ("fetch", "-q", "--no-tags", "--no-write-fetch-head", self.remote,
                *(f"+{src}:{dst}" for src, dst in specs))  # fmt: skip
        proc = self.git(*args, check=False, network=True)
        # A process killed while it updated one of our tracking refs (kill -9 of a worker)
        # leaves its `.lock` behind for good; git holds such a lock for milliseconds.
        if proc.returncode != 0 and "cannot lock ref" in proc.stderr and self.clear_locks(5.0):
            proc = self.git(*args, check=False, network=True)
        if proc.returncode != 0:
            missing = _MISSING.search(proc.stderr)
            if missing:
                raise MissingRef(missing.group(1))
            raise RemoteError(self.describe("fetch", proc))

    def push(self, updates: Sequence[RefPush], *, atomic: bool,
             objects: Sequence[ShaFile] = ()) -> PushOutcome:  # fmt: skip
        """`git push --porcelain` with a `--force-with-lease` per ref (objects: on disk)."""
        self.retried = False
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
            raise RemoteError(self.describe("push", proc))
        said = tuple(
            line[len("remote:") :].strip() for line in (proc.stderr or "").splitlines()
            if line.startswith("remote:") and line[len("remote:") :].strip()
        )  # fmt: skip
        return PushOutcome(statuses, said)

    def ref(self, name: str) -> str | None:
        """`git ls-remote` of one ref."""
        return self.refs([name]).get(name)

    def refs(self, prefixes: Sequence[str]) -> dict[str, str]:
        """`git ls-remote` with a pattern per prefix, filtered to the refs under them."""
        patterns = [p + "*" if p.endswith("/") else p for p in prefixes]
        out = self.git("ls-remote", self.remote, *patterns, network=True).stdout
        found = {}
        for line in out.splitlines():
            sha, _, name = line.partition("\t")
            name = name.strip()
            if any(name == p or (p.endswith("/") and name.startswith(p)) for p in prefixes):
                found[name] = sha.strip()
        return found


class WireTransport(Transport):
    """The protocol spoken in-process (wire.py): one connection per fetch, one per push.

    Raises wire.NotV2 from its first call when the server is too old for protocol v2 (the
    caller then switches to the CLI).
    """

    def __init__(self, repo: BaseRepo, root: Path, remote: str, end: wire.Endpoint,
                 timeout_s: float, clear_locks: Callable[[float], int]) -> None:  # fmt: skip
        self.repo = repo
        self.root = root
        self.remote = remote
        self.end = end
        self.timeout_s = timeout_s
        self.clear_locks = clear_locks
        # The connection of the last `refs`, kept open for a moment: a fetch of what it saw
        # (`known`) right after it goes over the same connection (one process less on the
        # server). Never asked for refs again: upload-pack answers from what it read first.
        self._held: tuple[Upload, float] | None = None

    def _take_held(self) -> Upload | None:
        held, self._held = self._held, None
        if held is None:
            return None
        if time.monotonic() - held[1] > HOLD_S:
            held[0].close()
            return None
        return held[0]

    def close(self) -> None:
        """Close the held connection, if any."""
        held = self._take_held()
        if held is not None:
            held.close()

    def _retrying(self, what: str, call: Callable[[], _R]) -> _R:
        delay = 0.1
        for attempt in range(NET_RETRIES):
            try:
                return call()
            except wire.WireError as exc:
                if not exc.transient or attempt == NET_RETRIES - 1:
                    raise RemoteError(f"remote {self.remote}: git {what} failed: {exc}") from None
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def fetch(self, specs: Sequence[tuple[str, str]], haves: Sequence[str],
              known: Mapping[str, str] | None = None) -> None:  # fmt: skip
        """ls-refs (unless `known` has them), fetch what we lack, then set our refs."""
        names = list(dict.fromkeys(src for src, _ in specs))
        store = self.repo.object_store
        ours = [h for h in dict.fromkeys(haves) if h]

        held = self._take_held() if known is not None else None

        def once() -> tuple[dict[str, str], bytes]:
            nonlocal held
            up, held = held or Upload(self.end, timeout_s=self.timeout_s), None
            with up:
                if known is not None and all(n in known for n in names):
                    found = {n: known[n] for n in names}
                else:
                    found = up.ls_refs(names)
                missing = [s for s in names if s not in found]
                if missing:
                    return found, b""
                wants = sorted(
                    {found[s] for s in names if ObjectID(found[s].encode()) not in store}
                )
                return found, up.fetch(wants, ours)

        found, data = self._retrying("fetch", once)
        for src in names:
            if src not in found:
                raise MissingRef(src)
        try:
            store_pack(self.repo, data, self.root)
        except StoreError as exc:
            raise RemoteError(f"remote {self.remote}: git fetch failed: {exc}") from None
        for src, dst in specs:
            self._set(dst, found[src])

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

    sends_unwritten = True

    def push(self, updates: Sequence[RefPush], *, atomic: bool,
             objects: Sequence[ShaFile] = ()) -> PushOutcome:  # fmt: skip
        """One receive-pack session (receive.push); a dropped one is reported as a lost race."""
        self.retried = False
        self.close()

        def make(commits: Sequence[str], remote_has: Sequence[str]) -> bytes:
            if objects:
                return pack_of(self.repo, objects)
            return pack_for(self.repo, self.root, commits, remote_has)

        def once() -> PushOutcome:
            try:
                return receive.push(self.end, updates, atomic=atomic, make_pack=make,
                                 timeout_s=self.timeout_s)  # fmt: skip
            except wire.WireError as exc:
                if not exc.dropped:
                    raise
            # The connection failed after the push was sent: it may or may not have landed.
            # Reported as a lost race of the state ref, so the caller fetches and looks.
            self.retried = True
            first, *rest = updates
            lost = RefStatus(first.dst, "!", "[rejected] (connection dropped; fetch first)")
            rest_ = [RefStatus(u.dst, "!", "[rejected] (atomic push failed)") for u in rest]
            return PushOutcome((lost, *rest_))

        return self._retrying("push", once)

    def ref(self, name: str) -> str | None:
        """ls-refs of one ref on the open connection."""
        return self.refs([name]).get(name)

    def refs(self, prefixes: Sequence[str]) -> dict[str, str]:
        """ls-refs of the refs under `prefixes` (a full name is its own prefix), one connection."""
        self.close()

        def once() -> dict[str, str]:
            up = Upload(self.end, timeout_s=self.timeout_s)
            try:
                found = up.ls_refs(prefixes, prefixes=True)
            except BaseException:
                up.close()
                raise
            self._held = (up, time.monotonic())
            return found

        found = self._retrying("ls-remote", once)
        return {
            name: sha for name, sha in found.items()
            if any(name == p or (p.endswith("/") and name.startswith(p)) for p in prefixes)
        }  # fmt: skip


def choose(repo: BaseRepo, root: Path, remote: str, timeout_s: float,
           clear_locks: Callable[[float], int]) -> Transport:  # fmt: skip
    """The transport for `remote`: in-process where wire.py speaks its URL, else the git CLI.

    The git CLI is kept whenever the configuration could send git elsewhere than the URL says
    (`url.*.insteadOf`, a separate `pushurl`), so both always talk to the same place.
    """
    cli = CliTransport(root, remote, timeout_s, clear_locks)
    if os.environ.get(WIRE_ENV, "").lower() == "cli":
        return cli
    config = repo.get_config_stack()
    name = remote.encode()
    try:
        url = config.get((b"remote", name), b"url").decode()
    except KeyError:
        return cli
    try:
        config.get((b"remote", name), b"pushurl")
        return cli
    except KeyError:
        pass
    if any(section[0] == b"url" for section in _sections(config)):
        return cli
    end = wire.endpoint(url, root)
    if end is None:
        return cli
    return WireTransport(repo, root, remote, end, timeout_s, clear_locks)


def _sections(config: object) -> list[tuple[bytes, ...]]:
    found: list[tuple[bytes, ...]] = []
    for backend in getattr(config, "backends", [config]):
        sections = getattr(backend, "sections", None)
        if callable(sections):
            found.extend(sections())
    return found
