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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from dulwich.client import (
    DEFAULT_REF_PREFIX,
    GitClient,
    SSHGitClient,
    TCPGitClient,
    Urllib3HttpGitClient,
    build_ls_refs_request_v2,
    extract_object_format_from_capabilities,
    read_pkt_refs_v2,
)
from dulwich.config import Config, StackedConfig
from dulwich.objects import ObjectID
from dulwich.protocol import Protocol, pkt_line
from dulwich.refs import Ref
from urllib3.util.retry import Retry

from gitdag.transport.cli import ssh_command
from gitdag.transport.deadline import WatchedLocalClient, WatchedSSHVendor, path_answers
from gitdag.transport.outcomes import git_env
from gitdag.transport.retry import ANSWER_S

_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class QuickTcpClient(TCPGitClient):
    """dulwich's git:// client with a connect and idle timeout, TCP_NODELAY and TCP_QUICKACK.

    `timeout_s` bounds the connect and each send and receive (an idle timeout: a pack that keeps
    coming is never cut); the transport sets it per try (deadline.py).
    """

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


class KeepAliveHttpClient(Urllib3HttpGitClient):
    """dulwich's smart-HTTP client, asking for the server's capabilities once, not per call.

    A protocol-v2 `ls-refs` or `fetch` over HTTP starts with a discovery request (`GET
    info/refs?service=git-upload-pack`) whose answer is the server's v2 capabilities and no
    refs; dulwich asks it on every call. The capabilities of one server do not change between
    a worker's calls, so after the first discovery a look is one `POST` (ls-refs) instead of
    two requests, and a fetch two instead of three: on a forge, and even more on a loaded
    `git http-backend`, each request costs a server process. A failed call forgets them (the
    server may have been replaced). Pushes (protocol v0) are unchanged: their discovery is the
    ref advertisement that the leases are checked against.
    """

    _v2_capabilities: set[bytes] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A read that timed out is not tried again by urllib3 (3 more times, for a GET): the
        # transport's own retry decides, within the time its call has (deadline.py).
        self.pool_manager.connection_pool_kw["retries"] = Retry(total=3, read=0)

    def bound(self, seconds: float) -> None:
        """Wait at most `seconds` to connect and for each read (an idle timeout, per try)."""
        self._timeout = seconds

    # Set by a fetch that knows where its refs are (a look just made): the fetch asks for
    # those commits without listing the refs (protocol v2 allows wants of any object).
    refs_hint: dict[str, str] | None = None

    def _discover_references(self, service: bytes, base_url: str,
                             protocol_version: int | None = None,
                             ref_prefix: Sequence[bytes] | None = None,
                             ) -> tuple[Any, set[bytes], str, Any, Any]:  # fmt: skip
        known = self._v2_capabilities
        if service != b"git-upload-pack" or known is None or protocol_version not in (None, 2):
            found = super()._discover_references(service, base_url, protocol_version, ref_prefix)
            if service == b"git-upload-pack" and self.protocol_version == 2 and not self.dumb:
                self._v2_capabilities = set(found[1])
            return found
        self.protocol_version = 2
        if self.refs_hint is not None:
            hinted = {Ref(k.encode()): ObjectID(v.encode()) for k, v in self.refs_hint.items()}
            return hinted, known, base_url, {}, {}
        fmt = extract_object_format_from_capabilities(known)
        commands, args = build_ls_refs_request_v2(known, fmt, ref_prefix or DEFAULT_REF_PREFIX)
        body = b"".join([pkt_line(c) for c in commands] + [b"0001"]
                        + [pkt_line(a) for a in args] + [b"0000"])  # fmt: skip
        try:
            resp, read = self._smart_request("git-upload-pack", base_url, body)
            try:
                proto = Protocol(read, lambda data: None)
                refs, symrefs, peeled = read_pkt_refs_v2(proto.read_pkt_seq())
            finally:
                resp.close()
        except BaseException:
            self._v2_capabilities = None
            raise
        return refs, known, base_url, symrefs, peeled


def _can_read(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def client_for(url: str, root: Path, timeout_s: float, config: Config | None = None,
               programs: Mapping[bytes, str] | None = None, path_s: float = ANSWER_S,
               ) -> tuple[GitClient, str] | None:  # fmt: skip
    """Return dulwich's client and the path on the server for `url` (None: not spoken here).

    Args:
      url: the remote's URL as configured.
      root: the repository's top directory (a relative path is relative to it).
      timeout_s: how long a connection and each read may take.
      config: the repository's git configuration (http settings, credential helpers).
      programs: the remote's `uploadpack` / `receivepack` (by command), for a local path.
      path_s: how long a local path may take to say whether it is a directory (a hung mount).

    Raises:
      RemoteUnreachable: a local path that does not answer within `path_s`.
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
    if not path_answers(local.is_dir, path_s, f"remote {url}"):
        return None  # a bundle, or missing: the git CLI says what is wrong
    return WatchedLocalClient(programs), str(local)


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
                          config=config, vendor=WatchedSSHVendor())  # fmt: skip
    return client, path


def _http(url: str, root: Path, timeout_s: float, stack: Config) -> tuple[GitClient, str]:
    """Smart HTTP: credentials from the URL, else from git's credential helpers (if any)."""
    parts = urlsplit(url)
    base = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if user is None and _has_helper(stack):
        user, password = _credential_fill(root, base)
    client = KeepAliveHttpClient(base, config=stack, username=user, password=password,
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
