"""Bounding one try of a remote call: a remote that accepts and never answers costs seconds.

A server (or a proxy, or an ssh) that accepts the connection and then says nothing would hold
one try for the transport's whole timeout (store/remote.py's `GIT_TIMEOUT_S`), and the retry's
bound (retry.py) would never get a say. So each try gets `try_bound`: the time its call may
still spend (`Retry.left`: what is left of `remote.retry_for_s`, or of a worker's slice), never
less than `Retry.floor_s` (`remote.timeout_s`, default `ANSWER_S`), never more than the
transport's ceiling.

- git:// and http(s) (in-process sockets): the bound is an *idle* timeout, set per try on the
  socket (each connect, send and receive waits at most that long): a big fetch that keeps
  streaming is never cut, and git's upload-pack and receive-pack send keepalives while they work
  (every 5 s by default: `uploadpack.keepAlive`, `receive.keepAlive`).
- ssh through dulwich (`WatchedSSHVendor`): the ssh process runs in a process group of its own;
  a watcher kills the group once nothing was read from or written to it for the bound (idle
  again).
- a local path through dulwich (`WatchedLocalClient`): `git upload-pack` / `receive-pack` (or
  the remote's `uploadpack` / `receivepack` program) likewise, watched and killed once silent:
  a path on a hung network mount, a receive hook that never returns. The checks of such a path
  in-process (is it a directory, is it this repository) run in a thread, given up on past the
  bound (`path_answers`): a stat stuck in the kernel cannot be interrupted, but is not waited for.
- the git CLI (`run_bounded`): `fetch` and `push` run with `--progress`, and the bound is idle
  again (each progress line restarts it: objects still coming); `ls-remote` prints none, and
  its bound is its total time. Past it the whole process group (git, its ssh or remote helper)
  is killed.

A try cut this way is a transient failure (`Failure.TRANSIENT`: retried while the call has time,
then `RemoteUnreachable` saying the remote did not answer within the bound). A push cut after its
commands went is uncertain (client.py's `_Dropped`): the caller fetches and looks.

The floor's default is measured, not guessed (docs/many-machines.md, "A remote that does not
answer"): the longest single transport call seen with 8 workers claiming over HTTP and git daemon
on 2 cores at load 10 to 13 was 2.1 s, and git's servers send a keepalive every 5 s while
they build a pack; 10 s is twice that, so a slow but alive server is not declared down.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

from dulwich.client import (
    StrangeHostname,
    SubprocessGitClient,
    SubprocessSSHVendor,
    SubprocessWrapper,
    find_git_command,
)
from dulwich.protocol import DEFAULT_GIT_PROTOCOL_VERSION_FETCH, Protocol

from gitdag.errors import RemoteError, RemoteUnreachable
from gitdag.transport.retry import ANSWER_S, Retry

_REAP_S = 2.0  # after a kill: how long to wait for the group's pipes to close
_T = TypeVar("_T")


def try_bound(retry: Retry, ceiling: float) -> float:
    """How long one try may wait for the remote: what its call has left, within the floor.

    `retry.try_s`, when set, is the bound instead (a call a person waits on: the floor; a
    worker loop's call: its slice).

    Args:
      retry: the call's retry (its `left()` is the time the call may still spend).
      ceiling: the transport's own bound (a try never waits longer).
    """
    if retry.try_s is not None:
        return min(ceiling, retry.try_s)
    return min(ceiling, max(retry.floor_s, retry.left()))


def no_answer(seconds: float) -> str:
    """The detail of a try cut at its bound (the remote named by the caller's message)."""
    shown = f"{round(seconds, 1):g}"
    return f"no answer within {shown} s (the remote accepted the connection, then was silent)"


def path_answers(check: Callable[[], _T], seconds: float, what: str) -> _T:
    """Run `check` (a look at a local path) for at most `seconds`: a hung mount does not hang us.

    It runs in a daemon thread, left behind past the bound (a stat stuck in the kernel cannot be
    interrupted; the process still exits).

    Raises:
      RemoteUnreachable: no answer within `seconds` (`what` names the remote).
      Exception: what `check` raised.
    """
    done = threading.Event()
    found: list[Any] = []

    def run() -> None:
        try:
            found.append((True, check()))
        except BaseException as exc:  # handed to the caller's thread
            found.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=run, name="path-check", daemon=True).start()
    if not done.wait(seconds):
        shown = f"{round(seconds, 1):g}"
        raise RemoteUnreachable(f"{what}: no answer within {shown} s from its path (a network "
                                "mount that does not answer?)")  # fmt: skip
    ok, value = found[0]
    if not ok:
        raise value
    result: _T = value
    return result


def kill_group(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Kill `proc`'s process group (it leads one: started with `start_new_session`)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_bounded(args: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout_s: float,
                idle: bool = False) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run a git command that talks to a remote, killing its process group once past `timeout_s`.

    `idle`: the bound is on silence, not on the whole run: any output (a `--progress` line as
    objects come, git's own and the server's) restarts it, so a long transfer that keeps going is
    never cut; the progress lines are then left out of the returned stderr. Otherwise it is the
    run's total time. Its own session, so that a kill reaches what git started (ssh,
    git-remote-http) and no prompt can reach a terminal (git_env asks for none either). Ctrl-C
    (an exception raised in the wait) kills the group too.

    Raises:
      subprocess.TimeoutExpired: the bound passed (the group is killed and reaped).
      OSError: git cannot be started.
    """
    proc = subprocess.Popen(list(args), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    heard = [time.monotonic()]
    got: dict[int, list[bytes]] = {1: [], 2: []}

    def pump(stream: IO[bytes], key: int) -> None:
        while chunk := os.read(stream.fileno(), 65536):
            got[key].append(chunk)
            heard[0] = time.monotonic()

    streams = ((1, proc.stdout), (2, proc.stderr))
    pumps = [threading.Thread(target=pump, args=(stream, key), daemon=True)
             for key, stream in streams if stream is not None]  # fmt: skip
    for thread in pumps:
        thread.start()
    start = heard[0]
    try:
        while True:
            left = (heard[0] if idle else start) + timeout_s - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(list(args), timeout_s)
            try:
                proc.wait(timeout=min(left, 0.25))
                break
            except subprocess.TimeoutExpired:
                continue
    except BaseException:
        kill_group(proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=_REAP_S)
        if proc.poll() is None:  # not in its group any more: the process itself
            proc.kill()
            proc.wait()
        raise
    finally:
        for thread in pumps:
            thread.join(_REAP_S)  # a grandchild of another group may hold a pipe: not forever
    out, err = (b"".join(got[k]).decode("utf-8", "surrogateescape") for k in (1, 2))
    return subprocess.CompletedProcess(list(args), proc.returncode, out,
                                       without_progress(err) if idle else err)  # fmt: skip


_PROGRESS = re.compile(
    r"^(?:remote: )?(?:[A-Z][A-Za-z ]*: +\d+% \(|Total \d+ \(delta|"
    r"(?:Enumerating|Counting|Compressing|Writing|Receiving|Resolving|Unpacking) objects)"
)


def without_progress(stderr: str) -> str:
    """`stderr` less git's progress lines (each update of one ends in a carriage return)."""
    kept = []
    for line in stderr.split("\n"):
        last = line.rstrip("\r").rpartition("\r")[2]
        if last and not _PROGRESS.match(last):
            kept.append(last)
    return "\n".join(kept) + ("\n" if kept else "")


class _Watched(SubprocessWrapper):
    """An ssh process whose group is killed once it has been silent for `idle_s`."""

    def __init__(self, proc: subprocess.Popen[bytes], idle_s: float) -> None:
        super().__init__(proc)
        self.idle_s = idle_s
        self.last = time.monotonic()
        self.expired = False
        self.done = threading.Event()
        read, write = self.read, self.write

        def reading(size: int = -1) -> bytes:
            data: bytes = read(size)
            self.last = time.monotonic()
            return data

        def writing(data: bytes) -> int | None:
            self.last = time.monotonic()
            return write(data)

        self.read = reading  # type: ignore[assignment]
        self.write = writing  # type: ignore[assignment]
        threading.Thread(target=self._watch, name="ssh-deadline", daemon=True).start()

    def _watch(self) -> None:
        while not self.done.wait(max(0.05, self.last + self.idle_s - time.monotonic())):
            if time.monotonic() - self.last >= self.idle_s and self.proc.poll() is None:
                self.expired = True
                kill_group(self.proc)
                return

    def close(self, timeout: int | None = 60) -> None:
        self.done.set()
        super().close(timeout)


class WatchedSSHVendor(SubprocessSSHVendor):
    """dulwich's ssh vendor, each ssh in its own process group, killed when silent (doc)."""

    def __init__(self) -> None:
        self.idle_s = ANSWER_S  # set per try (client.py)
        self.last: _Watched | None = None  # the latest connection (did its watcher cut it?)

    def run_command(self, host: str, command: bytes, username: str | None = None,
                    port: int | None = None, password: str | None = None,
                    key_filename: str | None = None, ssh_command: str | None = None,
                    protocol_version: int | None = None) -> SubprocessWrapper:  # fmt: skip
        """Start `ssh HOST COMMAND` as dulwich's own vendor does, in a new session."""
        if password is not None:  # endpoints.py never passes one: ssh logs in with keys
            raise RemoteError(
                f"ssh to {host}: a password in the remote's URL is not used; "
                "authenticate with a key (ssh-agent, or -i in GIT_SSH_COMMAND)"
            )
        args = [*shlex.split(ssh_command or "ssh", posix=sys.platform != "win32"), "-x"]
        if port:
            args += ["-p", str(port)]
        if key_filename:
            args += ["-i", str(key_filename)]
        version = DEFAULT_GIT_PROTOCOL_VERSION_FETCH if protocol_version is None else (
            protocol_version)  # fmt: skip
        if version > 0:
            args += ["-o", f"SetEnv GIT_PROTOCOL=version={version}"]
        if username:
            host = f"{username}@{host}"
        if host.startswith("-"):
            raise StrangeHostname(hostname=host)
        proc = subprocess.Popen(
            [*args, host, command.decode(errors="surrogateescape")], bufsize=0,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        self.last = _Watched(proc, self.idle_s)
        return self.last

    def cut(self) -> bool:
        """Tell whether the latest connection was killed by its watcher."""
        return self.last is not None and self.last.expired


class WatchedLocalClient(SubprocessGitClient):
    """dulwich's client for a local path, its git process group killed once silent (module doc).

    `programs`: the remote's `uploadpack` / `receivepack` (git config), run by the shell with
    the quoted path appended, as git runs them; else `git upload-pack PATH` as dulwich does.
    """

    def __init__(self, programs: Mapping[bytes, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.idle_s = ANSWER_S  # set per try (client.py)
        self.programs = dict(programs or {})
        self.last: _Watched | None = None

    def _connect(self, cmd: bytes, path: bytes | str, protocol_version: int | None = None,
                 ) -> tuple[Protocol, Callable[[], bool], IO[bytes] | None]:  # fmt: skip
        if isinstance(path, bytes):
            path = path.decode(self._remote_path_encoding)
        program = self.programs.get(cmd)
        if program:
            argv = ["sh", "-c", f"{program} {shlex.quote(path)}"]
        else:
            argv = [*(self.git_command or find_git_command()), cmd.decode("ascii"), path]
        proc = subprocess.Popen(argv, bufsize=0, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
        self.last = watched = _Watched(proc, self.idle_s)
        proto = Protocol(watched.read, watched.write, watched.close,
                         report_activity=self._report_activity)  # fmt: skip
        return proto, watched.can_read, proc.stderr

    def cut(self) -> bool:
        """Tell whether the latest process was killed by its watcher."""
        return self.last is not None and self.last.expired
