"""The git CLI as a transport: `git fetch`, `git push --porcelain`, `git ls-remote`, any URL.

Used where git itself must decide where the bytes go (ssh, `url.*.insteadOf`, a separate
`pushurl`, `GITDAG_WIRE=cli`). Over ssh every git call would pay a new connection (key
exchange, authentication: ~0.65 s each on loopback), so a worker's git calls share one:
`GIT_SSH_COMMAND` gets ssh's ControlMaster, with the control socket under `.dagain/local/`
(kept open 60 s after the last call).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from dulwich.objects import ShaFile

from gitdag.errors import RemoteError, RemoteUnreachable
from gitdag.transport.base import Transport, under
from gitdag.transport.deadline import no_answer, run_bounded, try_bound
from gitdag.transport.outcomes import (
    Failure,
    MissingRef,
    PushOutcome,
    RefPush,
    classify,
    git_env,
    parse_porcelain,
)
from gitdag.transport.retry import Retry, Unreachable

_MISSING = re.compile(r"couldn't find remote ref (\S+)")
CONTROL_PERSIST_S = 60
_SOCKET_MAX = 100  # a unix socket's path must be short (108 bytes on Linux)


def ssh_command(root: Path) -> str:
    """`GIT_SSH_COMMAND` sharing one ssh connection per host among a clone's git calls."""
    base = os.environ.get("GIT_SSH_COMMAND") or "ssh"
    folder = root / ".dagain" / "local" / "ssh"
    if len(str(folder)) + 42 > _SOCKET_MAX:  # %C is 40 hex digits
        digest = hashlib.sha1(str(root).encode()).hexdigest()[:12]
        folder = Path(tempfile.gettempdir()) / f"gitdag-ssh-{os.getuid()}-{digest}"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return (f"{base} -o ControlMaster=auto -o ControlPersist={CONTROL_PERSIST_S} "
            f"-o ControlPath={folder}/%C")  # fmt: skip


class CliTransport(Transport):
    """`git fetch` / `git push --porcelain --force-with-lease` / `git ls-remote` (any URL)."""

    def __init__(self, root: Path, remote: str, timeout_s: float,
                 clear_locks: Callable[[float], int], retry: Retry | None = None,
                 ssh: bool = False) -> None:  # fmt: skip
        self.root = root
        self.remote = remote
        self.timeout_s = timeout_s
        self.clear_locks = clear_locks
        self.retry = retry or Retry()
        self.env = git_env()
        self.cut_fetch = False  # a fetch was cut at its bound (_git_once)
        if ssh:
            self.env["GIT_SSH_COMMAND"] = ssh_command(root)

    def git(self, *args: str, check: bool = True,
            network: bool = False) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """Run git in the repository; a `network` command that failed transiently is retried."""

        def once() -> subprocess.CompletedProcess[str]:
            proc = self._git_once(args, try_bound(self.retry, self.timeout_s),
                                  idle="--progress" in args)  # fmt: skip
            if network and proc.returncode != 0 and not parse_porcelain(proc.stdout):
                kind = classify(proc.stderr or "")
                if kind is Failure.TRANSIENT:
                    raise Unreachable(self.describe(args[0], proc), kind)
            return proc

        try:
            proc = self.retry.run(once) if network else self._git_once(args, self.timeout_s)
        except Unreachable as exc:
            raise RemoteUnreachable(exc.detail + self.retry.gave_up(exc)) from None
        if check and proc.returncode != 0:
            raise RemoteError(self.describe(args[0], proc))
        return proc

    def _git_once(self, args: Sequence[str], bound: float,
                  idle: bool = False) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """One git command, killed after `bound` s (of silence if `idle`): a transient failure."""
        # git unpacks a fetch of few objects without a word, however long the transfer: once a
        # fetch was cut, every later one is kept as a pack, whose indexing reports progress.
        pack = ("-c", "fetch.unpackLimit=1") if self.cut_fetch and args[0] == "fetch" else ()
        try:
            return run_bounded(["git", *pack, *args], cwd=self.root, env=self.env,
                               timeout_s=bound, idle=idle)  # fmt: skip
        except subprocess.TimeoutExpired:
            self.cut_fetch = self.cut_fetch or args[0] == "fetch"
            raise Unreachable(f"remote {self.remote}: git {args[0]} failed: {no_answer(bound)}",
                              Failure.TRANSIENT, silent=True) from None  # fmt: skip
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
        # --progress: while objects come, git says so, and a try is cut only once silent.
        args = ("fetch", "--progress", "--no-tags", "--no-write-fetch-head", self.remote,
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
        args = ["push", "--porcelain", "--no-verify", "--progress"]
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
        # A retried push may have landed on the try that failed: its report is then not proof.
        uncertain = self.retry.retried
        statuses = parse_porcelain(proc.stdout)
        if not statuses:
            raise RemoteError(self.describe("push", proc))
        said = tuple(
            line[len("remote:") :].strip() for line in (proc.stderr or "").splitlines()
            if line.startswith("remote:") and line[len("remote:") :].strip()
        )  # fmt: skip
        return PushOutcome(statuses, said, uncertain)

    def refs(self, prefixes: Sequence[str]) -> dict[str, str]:
        """`git ls-remote` with a pattern per prefix, filtered to the refs under them."""
        patterns = [p + "*" if p.endswith("/") else p for p in prefixes]
        out = self.git("ls-remote", self.remote, *patterns, network=True).stdout
        found = {}
        for line in out.splitlines():
            sha, _, name = line.partition("\t")
            name = name.strip()
            if under(name, prefixes):
                found[name] = sha.strip()
        return found
