"""What every transport does: read refs, fetch refs with their objects, push refs with leases."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

from dulwich.objects import ShaFile

from gitdag.transport.outcomes import PushOutcome, RefPush
from gitdag.transport.retry import Retry


class Transport(ABC):
    """Moves refs and objects between our repository and one remote.

    Attributes:
      remote: the remote's name (for messages).
      retry: how transient failures are retried (`remote.retry_for_s`).
    """

    remote: str
    retry: Retry
    # Whether `push` can send objects not yet in the repository (`objects`).
    sends_unwritten = False

    @abstractmethod
    def fetch(self, specs: Sequence[tuple[str, str]], haves: Sequence[str],
              known: Mapping[str, str] | None = None) -> None:  # fmt: skip
        """Copy each remote ref `src` to our ref `dst` (forced), with the objects they need.

        `known`: where the remote's refs were a moment ago (a look just made), to skip asking.

        Raises:
          MissingRef: a `src` is not on the remote.
          RemoteError: unreachable (past the retry bound), refused, or nonsense.
        """

    @abstractmethod
    def push(self, updates: Sequence[RefPush], *, atomic: bool,
             objects: Sequence[ShaFile] = ()) -> PushOutcome:  # fmt: skip
        """Push `updates` with their leases in one round trip (all or none when `atomic`).

        `objects`: when given (and `sends_unwritten`), everything the remote lacks for them.
        A push whose connection failed after its commands went, or that was tried again, is
        `uncertain` (it may have landed): the caller reads the remote back.
        """

    @abstractmethod
    def refs(self, prefixes: Sequence[str]) -> dict[str, str]:
        """Every remote ref whose name starts with one of `prefixes`, without fetching."""

    def ref(self, name: str) -> str | None:
        """Where one remote ref points now, without fetching (None: no such ref)."""
        return self.refs([name]).get(name)

    def close(self) -> None:  # noqa: B027 - optional: only some transports hold a connection
        """Release connections."""


def under(name: str, prefixes: Sequence[str]) -> bool:
    """Tell whether a ref is one of `prefixes` (a full name) or under one (ending in `/`)."""
    return any(name == p or (p.endswith("/") and name.startswith(p)) for p in prefixes)
