"""Fixtures for many machines: a bare repository served on loopback, and clones.

`cluster` builds a seed repository (gitdag init, a config whose runner is `runner.sh`, nodes
added in-process for speed), a bare copy served by a server started for the test (and stopped
after it), and hands out clones whose `origin` is the server's URL.

Servers: smart HTTP (`git http-backend` behind a WSGI server with basic auth: httpd.py), or
`git daemon`. `build_cluster(serve=...)` picks one; `serve=True` is the default server, which
`GITDAG_TEST_SERVER` chooses (`daemon`, the default, or `http`: the whole suite over HTTP).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gitdag import actions
from gitdag.store.state import StateStore
from tests.conftest import Result, git, make_repo

RUNNER = Path(__file__).with_name("runner.sh")
TARGET = "dagain/integration"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


HTTP_USER, HTTP_PASSWORD = "gitdag", "s3cret"
DEFAULT_SERVER = os.environ.get("GITDAG_TEST_SERVER", "daemon")


@dataclass
class Daemon:
    """A server of the repositories under `base`: `git daemon`, or smart HTTP (`kind`)."""

    base: Path
    port: int
    proc: subprocess.Popen[bytes]
    kind: str = "daemon"

    def url(self, name: str, credentials: bool = True) -> str:
        if self.kind == "http":
            auth = f"{HTTP_USER}:{HTTP_PASSWORD}@" if credentials else ""
            return f"http://{auth}127.0.0.1:{self.port}/{name}"
        return f"git://127.0.0.1:{self.port}/{name}"

    def restart(self) -> None:
        """Start the same server again on the same port (after `stop`)."""
        again = start_http(self.base, self.port) if self.kind == "http" else start_daemon(
            self.base, port=self.port)  # fmt: skip
        self.proc = again.proc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _wait_listening(proc: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    proc.kill()
    proc.wait()
    return False


def start_http(base: Path, port: int | None = None) -> Daemon:
    """Serve the repositories under `base` over smart HTTP with basic auth (httpd.py)."""
    for _ in range(5):
        chosen = port or free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.remote.httpd", str(base), str(chosen), HTTP_USER,
             HTTP_PASSWORD], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd=Path(__file__).parents[2],
        )  # fmt: skip
        if _wait_listening(proc, chosen):
            return Daemon(base, chosen, proc, "http")
    raise RuntimeError("the HTTP server did not start")


def start_daemon(base: Path, *, receive_pack: bool = True, port: int | None = None,
                 access_hook: Path | None = None) -> Daemon:  # fmt: skip
    """Serve the repositories under `base` on 127.0.0.1 (a free port), pushes allowed or not.

    `access_hook`: git daemon runs it before each service (`--access-hook`).
    """
    for _ in range(5):
        chosen = port or free_port()
        args = ["git", "daemon", "--reuseaddr", "--export-all", "--informative-errors",
                f"--base-path={base}", f"--port={chosen}", "--listen=127.0.0.1"]  # fmt: skip
        if receive_pack:
            args.append("--enable=receive-pack")
        if access_hook is not None:
            args.append(f"--access-hook={access_hook}")
        proc = subprocess.Popen([*args, str(base)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        if _wait_listening(proc, chosen):
            return Daemon(base, chosen, proc)
    raise RuntimeError("git daemon did not start")


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Started daemons are stopped after the test, whatever happened."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.stop()


CONFIG = """schema_version: 1
runners:
  fake:
    cmd: sh {runner}
    timeout_s: 120
roles:
  planner: fake
  executor: fake
  verifier: fake
defaults:
  kill_grace_s: 1
remote:
  retry_for_s: 3
"""


@dataclass
class Cluster:
    """A shared remote (bare, served by git daemon) and the clones workers run in."""

    tmp: Path
    seed: Path
    bare: Path
    url: str
    log: Path
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "REMOTE_LOG": str(self.log), **extra}

    def clone(self, name: str, url: str | None = None) -> Path:
        path = self.tmp / name
        git(self.tmp, "clone", "-q", url or self.url, str(path))
        return path

    def gitdag(self, cwd: Path, *args: str, timeout: float = 60, **env: str) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "gitdag", *args], cwd=cwd, capture_output=True, text=True,
            env=self.env(**env), timeout=timeout,
        )  # fmt: skip
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def work(self, cwd: Path, *args: str, **env: str) -> subprocess.Popen[str]:
        """Start `gitdag work --remote origin --poll 0.3 ARGS` in a clone (not waited for)."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "gitdag", "work", "--remote", "origin", "--poll", "0.3", *args],
            cwd=cwd, env=self.env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def rows(self) -> list[tuple[str, int, int, str]]:
        """The runner log: (node, attempt, pid, clone) per attempt started."""
        if not self.log.exists():
            return []
        found = []
        for line in self.log.read_text().splitlines():
            node, attempt, pid, repo = line.split(" ", 3)
            found.append((node, int(attempt), int(pid), repo))
        return found

    def remote_git(self, *args: str) -> str:
        return git(self.bare, *args)

    def state_head(self) -> str:
        return self.remote_git("rev-parse", "refs/heads/dagain/state").strip()

    def nodes(self) -> dict[str, Any]:
        """Every node of the remote's graph as stored (read from the bare repository)."""
        with StateStore.open(self.bare, use_disk_cache=False) as store:
            snap = store.snapshot()
            return {nid: node for nid, node in store.nodes(snap).items()}

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for _, _, pid, _ in self.rows():
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)  # a runner orphaned by a killed worker


def build_cluster(tmp: Path, daemons: list[Daemon], nodes: list[dict[str, Any]],
                  lease: int | None = None, serve: bool | str = True,
                  backoff: float | None = None) -> Cluster:  # fmt: skip
    """Seed a graph, make the bare remote, and serve it (or use it by path when not `serve`).

    `serve`: True (the default server), "daemon", "http", or False (a path).
    """
    seed = make_repo(tmp / "seed")
    log = tmp / "runs.log"
    with StateStore.open(seed, use_disk_cache=False) as store:
        defaults: dict[str, Any] = {"lease_s": lease} if lease else {}
        if backoff is not None:
            defaults["retry"] = {"backoff_s": backoff}
        actions.init(store, "", TARGET, defaults or None)
        (seed / ".dagain" / "config.yaml").write_text(CONFIG.format(runner=RUNNER))
        for fields in nodes:
            actions.add(store, fields)
    git(seed, "add", ".dagain")
    git(seed, "commit", "-q", "-m", "gitdag config")
    base = tmp / "served"
    base.mkdir()
    bare = base / "project.git"
    git(tmp, "clone", "-q", "--bare", str(seed), str(bare))
    if serve:
        kind = DEFAULT_SERVER if serve is True else serve
        daemon = start_http(base) if kind == "http" else start_daemon(base)
        daemons.append(daemon)
        url = daemon.url("project.git")
    else:
        url = str(bare)
    return Cluster(tmp, seed, bare, url, log)


def command(node_id: str, log: Path, **extra: Any) -> dict[str, Any]:
    run = f'echo "$GITDAG_NODE_ID $GITDAG_ATTEMPT $$ $GITDAG_REPO" >> {log}'
    return {"id": node_id, "title": node_id, "kind": "command", "run": run, **extra}


def task(node_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "title": node_id, "kind": "task", **extra}


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"worker did not stop in {timeout} s:\n{err}") from None
    return proc.returncode, err
