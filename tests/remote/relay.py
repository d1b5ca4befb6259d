"""A TCP relay on 127.0.0.1 in front of a test server: what passes, what is kept, what is lost.

One accept loop and one copy loop for the remote tests' relays; each kind changes one step:
`accepted` (answer a connection itself), `relay` (the two copy loops of a connection), `_pipe`
(one direction). Out of the box it can swallow (`hang`: connections accepted, nothing answered)
and keep what clients sent (`record`).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from pathlib import Path

from tests.remote.conftest import Daemon


class Relay:
    """A TCP relay to `target` that can start swallowing: nothing reaches or comes back any more."""

    def __init__(self, target: int, *, record: bool = False, hang: bool = False) -> None:
        self.target = target
        self.hang = threading.Event()
        if hang:  # a server that accepts and never answers (`target` unused)
            self.hang.set()
        self.record = record
        self.sent = bytearray()  # what clients sent, when `record`
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port: int = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []  # every socket to close at the end
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self, url: str) -> str:
        """`url` (of the server on `target`) through this relay."""
        moved = url.replace(f":{self.target}/", f":{self.port}/")
        assert moved != url, url
        return moved

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.hang.is_set():
                self.held.append(client)  # accepted, never answered
                continue
            if self.accepted(client):
                server = socket.create_connection(("127.0.0.1", self.target))
                self.held += [client, server]
                self.relay(client, server)

    def accepted(self, client: socket.socket) -> bool:
        """Whether to relay `client` to the server (False: this relay answered it itself)."""
        return True

    def relay(self, client: socket.socket, server: socket.socket) -> None:
        """Copy both ways, each in a thread of its own."""
        for a, b in ((client, server), (server, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        upstream = src.getpeername()[1] != self.target
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if self.record and upstream:
                    self.sent += data
                if not self.hang.is_set():
                    dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()
        for sock in self.held:
            with contextlib.suppress(OSError):
                sock.close()


def relayed(clone: Path, server: Daemon, relay: Relay) -> None:
    """Point `clone`'s origin at `server` through `relay`."""
    url = relay.url(server.url("project.git"))
    subprocess.run(["git", "remote", "set-url", "origin", url], cwd=clone, check=True)
