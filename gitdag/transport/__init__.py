"""What moves refs and objects between repositories: the transports, and their outcomes as values.

This package knows git remotes, not gitdag's state: `store/remote.py` decides what to fetch and
push, a transport only moves it. `choose` picks one per remote:

- `ClientTransport` (client.py): `dulwich.client` in-process, for `http(s)://` (smart HTTP),
  `git://`, ssh (one shared connection per worker: ssh's ControlMaster) and local paths;
- `CliTransport` (cli.py): the git CLI, whenever the configuration could send git elsewhere than
  the URL says (`url.*.insteadOf`, a separate `pushurl`), or `GITDAG_WIRE=cli` is set (over ssh
  with the same shared connection).

Both report `PushOutcome` values (outcomes.py), retry transient failures for a bounded time
(retry.py), and raise `RemoteError` for everything else.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from dulwich.repo import BaseRepo

from gitdag.transport.base import Transport
from gitdag.transport.cli import CliTransport
from gitdag.transport.client import ClientTransport
from gitdag.transport.endpoints import client_for
from gitdag.transport.retry import Retry

WIRE_ENV = "GITDAG_WIRE"  # "cli": always use the git CLI

__all__ = ["WIRE_ENV", "CliTransport", "ClientTransport", "Transport", "choose"]


def choose(
    repo: BaseRepo,
    root: Path,
    remote: str,
    timeout_s: float,
    clear_locks: Callable[[float], int],
    retry: Retry | None = None,
) -> Transport:
    """The transport for `remote`: in-process where dulwich speaks its URL, else the git CLI."""
    retry = retry or Retry()
    config = repo.get_config_stack()
    name = remote.encode()
    try:
        url = config.get((b"remote", name), b"url").decode()
    except KeyError:
        url = ""
    ssh = url.startswith(("ssh://", "git+ssh://", "ssh+git://")) or (
        "://" not in url and ":" in url.split("/", 1)[0] and not os.path.exists(url)
    )
    cli = CliTransport(root, remote, timeout_s, clear_locks, retry, ssh=ssh)
    if not url or os.environ.get(WIRE_ENV, "").lower() == "cli" or _rewritten(config, name):
        return cli
    programs = _programs(config, name)
    if programs and ssh:
        return cli  # git runs them on the ssh host; dulwich's ssh client would not
    found = client_for(url, root, timeout_s, config, programs, path_s=retry.floor_s)
    if found is None:
        return cli
    client, path = found
    return ClientTransport(repo, root, remote, client, path, clear_locks, retry, timeout_s)


def _rewritten(config: object, name: bytes) -> bool:
    """Tell whether git could send this remote's traffic elsewhere than its `url` says."""
    try:
        config.get((b"remote", name), b"pushurl")  # type: ignore[attr-defined]
        return True
    except KeyError:
        pass
    for backend in getattr(config, "backends", [config]):
        sections = getattr(backend, "sections", None)
        if callable(sections) and any(section[0] == b"url" for section in sections()):
            return True
    return False


def _programs(config: object, name: bytes) -> dict[bytes, str]:
    """The remote's `uploadpack` / `receivepack` (git config), by the command they replace."""
    found = {}
    for key, cmd in ((b"uploadpack", b"upload-pack"), (b"receivepack", b"receive-pack")):
        try:
            value = config.get((b"remote", name), key)  # type: ignore[attr-defined]
        except KeyError:
            continue
        if value:
            found[cmd] = value.decode(errors="surrogateescape")
    return found
