"""What a transport reports, as values: each ref's fate in a push, and why a call failed.

A push is a list of `RefPush` (a ref, the commit to put there, the lease); git's answer is one
`RefStatus` per ref. A ref refused because it was not where the lease said is a lost race
(`stale`), one refused only because another ref of the same atomic push was is `collateral`,
and anything else (a hook, permissions, a read-only remote) is a refusal the caller reports.

A call that failed before anything happened is classified (`classify`): `transient` (the
network or the server had a bad moment: connection refused or reset, a timeout, HTTP 500, 502,
503 or 504, a DNS failure, curl's "Couldn't connect to server" or "Empty reply from server"),
worth retrying
for a while; `refused` (authentication, permissions, no such repository), and `fatal` (anything
else): reported at once.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

# A connection that failed before anything happened (git daemon's accept backlog is 5; a busy
# host drops connections; a server restarting; a load balancer without a backend for a moment):
# worth retrying before the remote counts as unreachable. Matched case-insensitively against
# git's stderr and against the text of the client's exceptions.
_TRANSIENT = (
    "connection reset", "connection refused", "unable to connect", "hung up unexpectedly",
    "early eof", "timed out", "timeout", "couldn't connect to server", "failed to connect",
    "empty reply from server", "could not resolve host", "couldn't resolve host",
    "could not resolve hostname", "name or service not known", "temporary failure in name",
    "name resolution", "broken pipe", "connection aborted", "connection closed",
    "remote disconnected", "network is unreachable", "no route to host",
    "the requested url returned error: 500", "the requested url returned error: 502",
    "the requested url returned error: 503", "the requested url returned error: 504",
    "http resp 500", "http resp 502", "http resp 503", "http resp 504", "500 internal server",
    "502 bad gateway", "503 service unavailable", "504 gateway timeout", "max retries exceeded",
    "rpc failed", "unexpected disconnect",
)  # fmt: skip
# Failures that waiting will not fix: the server said no to who we are or what we asked.
_REFUSED = (
    "authentication failed", "permission denied", "http resp 401", "http resp 403",
    "returned error: 401", "returned error: 403", "unauthorized", "forbidden",
    "repository not found", "does not appear to be a git repository", "not found",
    "not a git repository", "access denied", "could not read username", "notgitrepository",
    "httpunauthorized", "no valid credentials",
)  # fmt: skip
# Why a ref was refused, as `git push --porcelain` words it, when the cause is that the ref was
# not where we expected (a lost race): the client-side lease check, or the server's own check
# under its ref lock when the race was lost between the two (`failed to update ref`, which is
# confirmed by fetching: if the ref did not move, it was something else).
_STALE_REASONS = (
    "stale info", "cannot lock ref", "but expected", "fetch first", "non-fast-forward",
    "failed to update ref", "failed to lock",
)  # fmt: skip
# A ref refused only because another ref of the same atomic push was.
_COLLATERAL = ("atomic push failed", "atomic transaction failed")
_QUIET = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "",
    "SSH_ASKPASS": "",
    "LC_ALL": "C",
    "LANGUAGE": "",
}
# Variables a git hook would have set: they would point our git commands at another repository.
_LOCATION_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX",
                  "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE",
                  "GIT_QUARANTINE_PATH")  # fmt: skip


@dataclass(frozen=True)
class RefPush:
    """One ref to update on the remote.

    Attributes:
      src: the commit to put there ("" deletes the ref).
      dst: the full ref name on the remote.
      expect: the lease: the commit the remote ref must point at now, "" for "must not exist",
        or None to force it without a lease (a node's own work branch).
    """

    src: str
    dst: str
    expect: str | None = None


@dataclass(frozen=True)
class RefStatus:
    """One line of `git push --porcelain`: a ref, its flag and git's summary of what happened."""

    ref: str
    flag: str
    summary: str

    @property
    def ok(self) -> bool:
        """The ref now points where we asked (`=` is "already there")."""
        return self.flag in (" ", "+", "-", "*", "=")

    @property
    def stale(self) -> bool:
        """Refused because the ref was not where our lease said: a lost race."""
        return not self.ok and any(r in self.summary for r in _STALE_REASONS)

    @property
    def collateral(self) -> bool:
        """Refused only because another ref of the same atomic push was."""
        return not self.ok and any(r in self.summary for r in _COLLATERAL)

    def moved(self, old: str, new: str) -> bool:
        """Tell whether git reports this ref updated from `old` to `new` by this very push.

        The summary of an update is `<old>..<new>` (`...` when forced), in abbreviated names;
        `old` "" is a ref created (`[new branch]`). Anything else, notably `=` (already up to
        date: it may have landed on an earlier, dropped connection), is not proof.
        """
        if old == "":
            return self.flag == "*"
        if self.flag not in (" ", "+"):
            return False
        before, dots, after = self.summary.partition("..")
        after = after.lstrip(".").split()[0] if after.strip() else ""
        return (bool(dots) and len(before) >= 4 and len(after) >= 4
                and old.startswith(before) and new.startswith(after))  # fmt: skip


@dataclass(frozen=True)
class PushOutcome:
    """What a push came to, ref by ref. A refusal is a value; only trouble is an exception."""

    statuses: tuple[RefStatus, ...]
    remote_says: tuple[str, ...] = ()  # what the server printed (`remote: ...`: a hook's reason)
    # The connection failed after the commands were sent, or the push was tried again: it may
    # have landed whatever the statuses say, and they are no proof of who moved a ref (the
    # caller reads the remote back).
    uncertain: bool = False
    # Where the server said the remote's refs were before this push (its ref advertisement),
    # when the transport saw it: a lost race tells the new head without another request.
    seen: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every ref landed."""
        return bool(self.statuses) and all(s.ok for s in self.statuses)

    def stale_refs(self) -> tuple[str, ...]:
        """The refs whose lease failed (refs refused only as collateral are not listed)."""
        return tuple(s.ref for s in self.statuses if s.stale)

    def refusals(self) -> tuple[RefStatus, ...]:
        """Refs refused for a reason other than a lost race (a hook, permissions, ...)."""
        return tuple(s for s in self.statuses if not s.ok and not s.stale and not s.collateral)


@dataclass(frozen=True)
class LostRef:
    """A ref pushed along with a transition had moved on the remote: the caller must redo its work.

    Attributes:
      ref: the full name of the ref whose lease failed (e.g. the target branch).
    """

    ref: str


def parse_porcelain(text: str) -> tuple[RefStatus, ...]:
    """Parse the ref lines of `git push --porcelain` output (`<flag> TAB <from>:<to> TAB <why>`)."""
    found: list[RefStatus] = []
    for line in text.splitlines():
        if len(line) < 3 or line[1] != "\t":
            continue
        flag, rest = line[0], line[2:]
        refs, _, summary = rest.partition("\t")
        _, _, dst = refs.rpartition(":")
        if dst.startswith("refs/"):
            found.append(RefStatus(dst, flag, summary.strip()))
    return tuple(found)


class Failure(enum.Enum):
    """Why a call to a remote failed (before anything happened on the remote)."""

    TRANSIENT = "transient"  # the network or the server had a bad moment: retry for a while
    REFUSED = "refused"  # the server said no (credentials, permissions, no such repository)
    FATAL = "fatal"  # anything else: a retry would say the same


def classify(text: str) -> Failure:
    """Classify a failure by what git or the client said about it (see the module doc)."""
    low = text.lower()
    if any(t in low for t in _REFUSED):
        return Failure.REFUSED
    if any(t in low for t in _TRANSIENT):
        return Failure.TRANSIENT
    return Failure.FATAL


class MissingRef(Exception):
    """A ref asked for is not on the remote (nothing was fetched)."""

    def __init__(self, ref: str) -> None:
        super().__init__(ref)
        self.ref = ref


def git_env() -> dict[str, str]:
    """The environment of our git children: never prompting, English, no hook location vars."""
    env = {k: v for k, v in os.environ.items() if k not in _LOCATION_VARS}
    env.update(_QUIET)
    return env
