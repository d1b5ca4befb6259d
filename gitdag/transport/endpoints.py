"""Where a remote is, and which `dulwich.client` speaks to it: git://, http(s), ssh, local paths.

`client_for(url)` returns dulwich's client and the path on the server, or None when dulwich does
not speak the URL (the git CLI does). git:// gets a small subclass of dulwich's TCP client with a
connection timeout and TCP_QUICKACK (git writes pkt-lines as small segments; with delayed ACKs
each waits 40 ms for the previous one). HTTP takes credentials from the URL, else from git's
credential helpers. ssh runs through the worker's one shared connection (cli.ssh_command).
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit, urlunsplit

from dulwich.client import (
    GitClient,
    SSHGitClient,
    SubprocessGitClient,
    TCPGitClient,
    Urllib3HttpGitClient,
)
from dulwich.config import Config, StackedConfig
from dulwich.protocol import Protocol

from gitdag.transport.cli import ssh_command
from gitdag.transport.outcomes import git_env

_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class QuickTcpClient(TCPGitClient):
    """dulwich's git:// client with a connect timeout, TCP_NODELAY and TCP_QUICKACK."""

    def __init__(self, host: str, port: int | None, timeout_s: float) -> None:
        super().__init__(host, port)
        self.timeout_s = timeout_s

    def _connect(self, cmd: bytes, path: str | bytes, protocol_version: int | None = None,
                 ) -> tuple[Protocol, Callable[[], bool], IO[bytes] | None]:  # fmt: skip
        if isinstance(path, str):
            path = path.encode()
        sock = socket.create_connection((self._host, self._port), timeout=self.timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def read(size: int) -> bytes:
            if _QUICKACK is not None:  # the kernel clears it again by itself: set per read
                sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            data = bytearray()
            while len(data) < size:
                chunk = sock.recv(size - len(data))
                if not chunk:
                    break
                data += chunk
            return bytes(data)

        def close() -> None:
            sock.close()

        proto = Protocol(read, sock.sendall, close, report_activity=self._report_activity)
        if cmd == b"upload-pack":
            self.protocol_version = protocol_version or 2
            version = b"\0\0version=%d\0" % self.protocol_version
        else:
            self.protocol_version = 0
            version = b""
        proto.send_cmd(b"git-" + cmd, path, b"host=" + self._host.encode("ascii") + version)
        return proto, lambda: _can_read(sock), None


def _can_read(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def client_for(url: str, root: Path, timeout_s: float,
               config: Config | None = None) -> tuple[GitClient, str] | None:  # fmt: skip
    """Return dulwich's client and the path on the server for `url` (None: not spoken here).

    Args:
      url: the remote's URL as configured.
      root: the repository's top directory (a relative path is relative to it).
      timeout_s: how long a connection and each read may take.
      config: the repository's git configuration (http settings, credential helpers).
    """
    if url.startswith("git://"):
        parts = urlsplit(url)
        if not parts.hostname or not parts.path:
            return None
        return QuickTcpClient(parts.hostname, parts.port, timeout_s), unquote(parts.path)
    if url.startswith(("http://", "https://")):
        return _http(url, root, timeout_s, config or StackedConfig.default())
    if url.startswith("file://"):
        local = Path(unquote(urlsplit(url).path))
    elif url.startswith(("ssh://", "git+ssh://", "ssh+git://")) or (
        "://" not in url and _scp_like(url)
    ):
        return _ssh(url, root, config)
    elif "://" in url:
        return None  # anything else: the git CLI
    else:
        local = Path(url) if os.path.isabs(url) else root / url
    if not local.is_dir():
        return None  # a bundle, or missing: the git CLI says what is wrong
    return SubprocessGitClient(), str(local)


def _ssh(url: str, root: Path, config: Config | None) -> tuple[GitClient, str] | None:
    """ssh: dulwich runs `ssh HOST git-upload-pack PATH` through the worker's shared connection."""
    if "://" in url:
        parts = urlsplit(url)
        host, port, user, path = parts.hostname, parts.port, parts.username, unquote(parts.path)
        if path.startswith("/~"):
            path = path[1:]
    else:
        where, _, path = url.partition(":")
        user, _, host = where.rpartition("@")
        port, user = None, user or None
    if not host or not path:
        return None
    client = SSHGitClient(host, port=port, username=user, ssh_command=ssh_command(root),
                          config=config)  # fmt: skip
    return client, path


def _http(url: str, root: Path, timeout_s: float, stack: Config) -> tuple[GitClient, str]:
    """Smart HTTP: credentials from the URL, else from git's credential helpers (if any)."""
    parts = urlsplit(url)
    base = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if user is None and _has_helper(stack):
        user, password = _credential_fill(root, base)
    client = Urllib3HttpGitClient(base, config=stack, username=user, password=password,
                                  timeout=timeout_s)  # fmt: skip
    return client, parts.path


def _has_helper(config: Config) -> bool:
    try:
        return bool(config.get((b"credential",), b"helper"))
    except KeyError:
        return False


def _credential_fill(root: Path, url: str) -> tuple[str | None, str | None]:
    """Ask git's credential helpers for `url` (`git credential fill`, never prompting)."""
    parts = urlsplit(url)
    query = f"protocol={parts.scheme}\nhost={parts.netloc}\npath={parts.path.lstrip('/')}\n\n"
    proc = subprocess.run(["git", "-c", "credential.interactive=never", "credential", "fill"],
                          cwd=root, input=query, capture_output=True, text=True, env=git_env(),
                          check=False, timeout=30)  # fmt: skip
    if proc.returncode != 0:
        return None, None
    found = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return found.get("username"), found.get("password")


def _scp_like(url: str) -> bool:
    """`host:path` (ssh), as git tells it from a local path: a colon before any slash."""
    colon, slash = url.find(":"), url.find("/")
    return colon > 0 and (slash < 0 or colon < slash)
