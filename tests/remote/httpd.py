"""A real smart-HTTP git server for tests and benchmarks: `git http-backend` behind a WSGI server.

git's own CGI program serves every request (protocol v2 included, through `Git-Protocol`), run
by a threaded stdlib WSGI server on 127.0.0.1 with basic authentication on: every request
without the right `Authorization` gets 401, as a forge would answer. The server's sockets send
at once (TCP_NODELAY), as every production web server's do.

Run as a program (`python -m tests.remote.httpd BASE PORT USER PASSWORD`) it serves until
killed: the tests and the benchmark start it as a process of its own, so it can be stopped and
started again on the same port (an outage), and its CPU is not the test's.
"""

from __future__ import annotations

import base64
import os
import socket
import socketserver
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

StartResponse = Callable[..., Any]


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ["wsgi.input"]
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        data = bytearray()
        while True:
            size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                stream.readline()
                return bytes(data)
            data += stream.read(size)
            stream.readline()
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return stream.read(length) if length else b""


REQUEST_LOG = "GITDAG_TEST_HTTP_LOG"  # a file the server appends one line per request to


def make_app(base: Path, user: str, password: str) -> Callable[..., Iterable[bytes]]:
    """The WSGI application: basic auth, then `git http-backend` for the repositories in `base`."""
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    log = os.environ.get(REQUEST_LOG)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if log is not None:  # tests count requests (e.g. an idle worker's fetches)
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}"
                         f"?{environ.get('QUERY_STRING', '')}\n")  # fmt: skip
        if environ.get("HTTP_AUTHORIZATION") != expected:
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"'),
                                                ("Content-Length", "0")])  # fmt: skip
            return [b""]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(base),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": user,
            "REMOTE_ADDR": environ.get("REMOTE_ADDR", "127.0.0.1"),
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "PATH_INFO": environ.get("PATH_INFO", ""),
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "GIT_PROTOCOL": environ.get("HTTP_GIT_PROTOCOL", ""),
            "HTTP_CONTENT_ENCODING": environ.get("HTTP_CONTENT_ENCODING", ""),
        }
        body = _read_body(environ)
        env["CONTENT_LENGTH"] = str(len(body))
        proc = subprocess.run(["git", "http-backend"], input=body, env=env,
                              capture_output=True, check=False)  # fmt: skip
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = proc.stdout.partition(b"\n\n")
        status = "200 OK"
        headers = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name:
                headers.append((name.strip(), value.strip()))
        headers.append(("Content-Length", str(len(payload))))
        start_response(status, headers)
        return [payload]

    return app


class _Quiet(WSGIRequestHandler):
    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """One thread per connection; a deep backlog (many workers connect at once)."""

    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True


def serve(base: Path, port: int, user: str, password: str) -> None:
    """Serve the repositories under `base` on 127.0.0.1:`port` until killed."""
    server = ThreadingWSGIServer(("127.0.0.1", port), _Quiet)
    server.set_app(make_app(base, user, password))
    server.serve_forever()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])
