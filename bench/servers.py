"""Git servers on 127.0.0.1 for the benchmarks: git daemon, smart HTTP, HTTP with added delay, ssh.

`Servers(root)` serves the bare repositories under `root/served` and stops everything on exit;
`start(kind)` returns the base URL (`<base>/<name>.git` is a repository).
"""

from __future__ import annotations

import contextlib
import heapq
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parents[1]
USER, PASSWORD = "bench", "s3cret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, proc: subprocess.Popen[bytes] | None, what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not start")


class DelayRelay:
    """A TCP relay that delivers every chunk `one_way_s` after it arrived, in each direction."""

    def __init__(self, target: int, one_way_s: float) -> None:
        self.target, self.delay = target, one_way_s
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        queue: list[tuple[float, int, bytes]] = []
        ready = threading.Condition()
        seq = 0

        def sender() -> None:
            while True:
                with ready:
                    while not queue:
                        ready.wait()
                    due, _, data = queue[0]
                    wait = due - time.monotonic()
                    if wait > 0:
                        ready.wait(wait)
                        continue
                    heapq.heappop(queue)
                with contextlib.suppress(OSError):
                    if not data:
                        dst.shutdown(socket.SHUT_WR)
                        return
                    dst.sendall(data)

        threading.Thread(target=sender, daemon=True).start()
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            with ready:
                seq += 1
                heapq.heappush(queue, (time.monotonic() + self.delay, seq, data))
                ready.notify()
            if not data:
                return


class Servers:
    """The servers of one benchmark run (stopped on exit)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = root / "served"
        self.base.mkdir(exist_ok=True)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.http_port: int | None = None

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        for proc in self.procs:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            if proc.poll() is None:
                proc.kill()

    def _spawn(self, args: list[str], port: int, what: str, **kw: object) -> None:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]
        self.procs.append(proc)
        wait_port(port, proc, what)

    def start(self, kind: str) -> str:
        """Start a server of `kind` (daemon, http, delay, ssh); return its base URL."""
        if kind == "daemon":
            port = free_port()
            self._spawn(["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
                         f"--base-path={self.base}", f"--port={port}", "--listen=127.0.0.1",
                         str(self.base)], port, "git daemon")  # fmt: skip
            return f"git://127.0.0.1:{port}"
        if kind == "http-delay":
            kind = "delay"
        if kind in ("http", "delay"):
            if self.http_port is None:
                self.http_port = free_port()
                self._spawn([sys.executable, "-m", "tests.remote.httpd", str(self.base),
                             str(self.http_port), USER, PASSWORD], self.http_port,
                            "the HTTP server", cwd=REPO)  # fmt: skip
            port = self.http_port
            if kind == "delay":
                port = DelayRelay(self.http_port, 0.05).port
            return f"http://{USER}:{PASSWORD}@127.0.0.1:{port}"
        if kind == "ssh":
            return self._sshd()
        raise SystemExit(f"unknown transport {kind!r}")

    def _sshd(self) -> str:
        """sshd on a port of its own, with a key made for the run (tests/remote/sshd.py)."""
        from tests.remote import sshd

        if not sshd.available():
            raise SystemExit("sshd cannot run here (apt-get install openssh-server; as root)")
        server = sshd.start_sshd(self.root / "ssh",
                                 login_rc=os.environ.get("BENCH_SSH_LOGIN_RC") == "1",
                                 protocol_v2=os.environ.get("BENCH_SSH_V0") != "1")  # fmt: skip
        self.procs.append(server.proc)  # type: ignore[arg-type]
        os.environ["GIT_SSH_COMMAND"] = server.command
        return server.url(self.base)
