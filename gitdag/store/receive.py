"""Writing a remote through `git-receive-pack`, in-process (see wire.py): one push per connection.

The lease of each ref is checked against the refs the server advertises (a lost race sends no
pack), and each command's old value is the lease, so the server checks it again under its ref
lock. Its `report-status` becomes the `RefStatus` values that `git push --porcelain` gives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gitdag.store.gitpush import PushOutcome, RefPush, RefStatus
from gitdag.store.wire import (
    AGENT,
    FLUSH,
    ZERO,
    Channel,
    Endpoint,
    WireError,
    ends_with_flush,
    open_channel,
    pkt,
    read_lines,
    read_sideband,
)

MakePack = Callable[[Sequence[str], Sequence[str]], bytes]


def push(end: Endpoint, updates: Sequence[RefPush], *, atomic: bool, make_pack: MakePack,
         timeout_s: float) -> PushOutcome:  # fmt: skip
    """Push `updates` (each with its lease) in one receive-pack session; all or none if `atomic`.

    Args:
      end: where the remote is.
      updates: the refs to set, each with the commit the remote ref must hold now.
      atomic: ask the server to apply all of them or none.
      make_pack: (commits to send, commits the remote has) -> the pack to send.
      timeout_s: how long the connection and each read may take.

    Returns:
      Each ref's fate, as `git push --porcelain` would report it.

    Raises:
      WireError: unreachable (transient), refused as a whole (a read-only daemon), or dropped
        after the commands were sent (`dropped`: the push may have landed).
    """
    ch = open_channel(end, "receive-pack", v2=False, timeout_s=timeout_s)
    sent = False
    try:
        advertised, caps = _advertisement(ch)
        statuses = _leases(updates, advertised, atomic=atomic)
        todo = [u for u in updates if advertised.get(u.dst, ZERO) != (u.src or ZERO)]
        if statuses or not todo:
            ch.write(FLUSH)  # nothing to do: say so, and the server ends the session
            done = {s.ref for s in statuses}
            statuses += [RefStatus(u.dst, "=", "[up to date]") for u in updates
                         if u.dst not in done]  # fmt: skip
            return PushOutcome(tuple(_in_order(updates, statuses)))
        if atomic and len(todo) > 1 and b"atomic" not in caps:
            raise WireError("the receiving end does not support --atomic push")
        if any(not u.src for u in todo) and b"delete-refs" not in caps:
            raise WireError("the receiving end does not support deleting refs")
        wanted = [b"report-status", b"side-band-64k", b"quiet"]
        if atomic and len(todo) > 1:
            wanted.append(b"atomic")
        ours = b" ".join(c for c in wanted if c in caps) + b" " + AGENT.strip()
        commands = []
        for i, up in enumerate(todo):
            line = f"{advertised.get(up.dst, ZERO)} {up.src or ZERO} {up.dst}".encode()
            commands.append(pkt(line + (b"\0" + ours if i == 0 else b"") + b"\n"))
        news = [u.src for u in todo if u.src]
        pack = make_pack(news, sorted(set(advertised.values()) - {ZERO})) if news else b""
        sent = True
        ch.write(b"".join(commands) + FLUSH + pack)
        said: list[str] = []
        # The report is all we need: receive-pack sends it, then runs post-receive hooks and its
        # auto-gc, and only then ends the side-band stream; we stop reading at the report.
        report = (read_sideband(ch, said, ends_with_flush) if b"side-band-64k" in caps
                  else None)  # fmt: skip
        lines = _report_lines(report) if report is not None else read_lines(ch)
        results = _report(todo, advertised, lines)
        done = {s.ref for s in results}
        results += [RefStatus(u.dst, "=", "[up to date]") for u in updates if u.dst not in done]
        return PushOutcome(tuple(_in_order(updates, results)), tuple(said))
    except (OSError, EOFError) as exc:
        detail = ch.stderr() or str(exc) or "the remote end hung up unexpectedly"
        raise WireError(detail, transient=not sent, dropped=sent) from None
    finally:
        ch.close()


def _advertisement(ch: Channel) -> tuple[dict[str, str], set[bytes]]:
    """Read receive-pack's ref advertisement: {ref: sha} and its capabilities."""
    refs: dict[str, str] = {}
    caps: set[bytes] = set()
    for i, line in enumerate(read_lines(ch)):
        if i == 0:
            line, _, capability_text = line.partition(b"\0")
            caps = set(capability_text.split())
        sha, _, name = line.decode("utf-8", "replace").rstrip("\n").partition(" ")
        if name and name != "capabilities^{}":
            refs[name] = sha
    return refs, caps


def _leases(updates: Sequence[RefPush], advertised: dict[str, str], *,
            atomic: bool) -> list[RefStatus]:  # fmt: skip
    """The refs whose lease fails against the advertisement (and, if atomic, all the others)."""
    stale = [
        u for u in updates
        if u.expect is not None and advertised.get(u.dst, ZERO) != (u.expect or ZERO)
    ]  # fmt: skip
    if not stale:
        return []
    found = [RefStatus(u.dst, "!", "[rejected] (stale info)") for u in stale]
    if atomic and len(updates) > 1:
        names = {u.dst for u in stale}
        found += [RefStatus(u.dst, "!", "[rejected] (atomic push failed)") for u in updates
                  if u.dst not in names]  # fmt: skip
    return found


def _report_lines(data: bytes) -> list[bytes]:
    """Split the pkt-lines of a report-status carried inside side-band 1."""
    lines = []
    at = 0
    while at + 4 <= len(data):
        size = int(data[at : at + 4], 16)
        if size == 0:
            at += 4
            continue
        lines.append(data[at + 4 : at + size])
        at += size
    return lines


def _report(todo: Sequence[RefPush], advertised: dict[str, str],
            lines: list[bytes]) -> list[RefStatus]:  # fmt: skip
    """Turn `report-status` lines into RefStatus values worded like `git push --porcelain`."""
    text = [ln.decode("utf-8", "replace").rstrip("\n") for ln in lines]
    if not text or not text[0].startswith("unpack "):
        raise WireError("protocol error: no report-status from the remote")
    unpack = text[0][len("unpack ") :]
    by_ref: dict[str, str | None] = {}
    for line in text[1:]:
        verdict, _, rest = line.partition(" ")
        ref, _, why = rest.partition(" ")
        by_ref[ref] = None if verdict == "ok" else (why or "rejected")
    found = []
    for up in todo:
        old = advertised.get(up.dst, ZERO)
        reason: str | None = f"unpacker error: {unpack}"
        if unpack == "ok":
            reason = by_ref.get(up.dst, "no report")
        if reason is not None:
            found.append(RefStatus(up.dst, "!", f"[remote rejected] ({reason})"))
        elif not up.src:
            found.append(RefStatus(up.dst, "-", "[deleted]"))
        elif old == ZERO:
            found.append(RefStatus(up.dst, "*", "[new branch]"))
        else:
            found.append(RefStatus(up.dst, " ", f"{old[:10]}..{up.src[:10]}"))
    return found


def _in_order(updates: Sequence[RefPush], statuses: list[RefStatus]) -> list[RefStatus]:
    rank = {u.dst: i for i, u in enumerate(updates)}
    return sorted(statuses, key=lambda s: rank.get(s.ref, len(rank)))
