"""Reading a remote through `git-upload-pack`, protocol v2, in-process (see wire.py).

One connection per look: `ls-refs` for where refs point, then (on the same connection) `fetch`
with `done` (no negotiation round) for the objects. Never a connection kept for later looks: a
long-lived upload-pack answers from the loose refs it read first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TypeVar

from gitdag.store.wire import (
    AGENT,
    DELIM_PKT,
    FLUSH,
    Channel,
    Endpoint,
    NotV2,
    WireError,
    open_channel,
    pkt,
    read_lines,
    read_pkt,
    read_sideband,
)

_T = TypeVar("_T")


class Upload:
    """One look at a remote through `upload-pack` (protocol v2): where refs are, their objects.

    Use as a context manager; the connection opens on the first call.

    Args:
      end: where the remote is.
      timeout_s: how long a connection attempt or a read may take.
    """

    def __init__(self, end: Endpoint, *, timeout_s: float) -> None:
        self.end = end
        self.timeout_s = timeout_s
        self._ch: Channel | None = None

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Say goodbye and close the connection."""
        if self._ch is not None:
            ch, self._ch = self._ch, None
            with contextlib.suppress(OSError):
                ch.write(FLUSH)  # "no more commands": the server exits cleanly
            ch.close()

    def ls_refs(self, names: Sequence[str], *, prefixes: bool = False) -> dict[str, str]:
        """Return where each of `names` (full ref names) points on the remote; absent: missing.

        With `prefixes`, `names` are prefixes and every ref under them is returned.

        Raises:
          WireError: the remote cannot be reached or answered nonsense.
          NotV2: the server does not speak protocol v2.
        """
        request = [pkt(b"command=ls-refs\n"), pkt(AGENT), DELIM_PKT]
        request += [pkt(f"ref-prefix {name}\n".encode()) for name in names]
        lines = self._call(b"".join(request) + FLUSH, read_lines)
        wanted = set(names)
        found = {}
        for line in lines:
            sha, _, rest = line.decode("utf-8", "replace").rstrip("\n").partition(" ")
            name = rest.split(" ", 1)[0]
            if name in wanted or prefixes:
                found[name] = sha
        return found

    def fetch(self, wants: Sequence[str], haves: Sequence[str]) -> bytes:
        """Return a pack with the objects of `wants` that `haves` lack (b"" for no wants)."""
        if not wants:
            return b""
        request = [pkt(b"command=fetch\n"), pkt(AGENT), DELIM_PKT,
                   pkt(b"no-progress\n"), pkt(b"ofs-delta\n")]  # fmt: skip
        request += [pkt(f"want {w}\n".encode()) for w in wants]
        request += [pkt(f"have {h}\n".encode()) for h in haves]
        request.append(pkt(b"done\n"))
        return self._call(b"".join(request) + FLUSH, _read_packfile)

    def _call(self, request: bytes, parse: Callable[[Channel], _T]) -> _T:
        ch = self._connect()
        try:
            ch.write(request)
            return parse(ch)
        except (OSError, EOFError) as exc:
            detail = ch.stderr() or str(exc) or type(exc).__name__
            self.close()
            raise WireError(detail, transient=isinstance(exc, ConnectionError)) from None
        except BaseException:
            self.close()
            raise

    def _connect(self) -> Channel:
        if self._ch is not None:
            return self._ch
        ch = open_channel(self.end, "upload-pack", v2=True, timeout_s=self.timeout_s)
        try:
            first = read_pkt(ch)
            if first != b"version 2\n":
                raise NotV2()
            read_lines(ch)  # the capabilities: everything we use is in every v2 server
        except (OSError, EOFError) as exc:
            ch.close()
            raise WireError(ch.stderr() or str(exc) or "the remote end hung up unexpectedly",
                            transient=isinstance(exc, ConnectionError)) from None  # fmt: skip
        except BaseException:
            ch.close()
            raise
        self._ch = ch
        return ch


def _read_packfile(ch: Channel) -> bytes:
    """Read a v2 fetch response: skip to its `packfile` section and return the pack."""
    while True:
        line = read_pkt(ch)
        if line is None:
            raise WireError("protocol error: the fetch response had no packfile")
        if line == b"packfile\n":
            return read_sideband(ch, [])
        # acknowledgments / shallow-info sections: nothing we asked for; read past them
