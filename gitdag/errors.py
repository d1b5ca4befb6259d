"""The one exception tree of gitdag; each class carries its exit code (spec §9).

```
GitdagError (1)
├── InputError (2)             bad user input: a node file, an id, a CLI argument, a result file
│   ├── ConfigError (2)        bad .dagain/config.yaml (names the key)
│   ├── GraphError (2)         cycle, unknown node, duplicate id
│   └── IncidentError (2)      something bypassed gitdag and moved dagain/state (a runner)
├── NotInitialisedError (2)    no dagain/state branch (run `gitdag init`)
├── StoreError (3)             the state branch cannot be read or written (corrupt objects, locks)
│   └── StaleSnapshotError (3) the head kept moving under compare-and-swap past the retry bound
├── TransitionError (3)        an illegal status change reached the store: a bug (core refuses them)
├── RunnerError (3)            a runner could not be launched for reasons outside the node
├── WorkspaceError (3)         worktree or merge trouble that is not an ordinary conflict
├── RemoteError (2)            a remote rejected a push or cannot be reached
│   ├── RefRefused (2)         the remote refused one ref of a push (a hook, a permission)
│   └── RemoteUnreachable (2)  the remote did not answer (transient failures past the bound)
└── LockedError (4)            another supervisor holds the lock
```

Expected outcomes (a rejected proposal, a lost race that is retried, a merge conflict) are values,
never exceptions. Anything that is not a GitdagError reaches the CLI as exit 3 with a logged
traceback. Around an attempt (its start, its leftovers, its merge) only `ENVIRONMENT_ERRORS` fail
or hold the node; a bug there (a TypeError, a KeyError) crashes with that log instead.
"""

from __future__ import annotations

import subprocess


class GitdagError(Exception):
    """Root of every error gitdag raises on purpose."""

    exit_code: int = 1


class InputError(GitdagError):
    """Bad input from a user or a runner: names the file or field, exit 2."""

    exit_code = 2


class ConfigError(InputError):
    """A bad `.dagain/config.yaml`: names the key."""


class GraphError(InputError):
    """A graph that breaks the rules: a cycle, an unknown dep, a duplicate id."""


class IncidentError(InputError):
    """A writer that bypassed the supervisor moved the state branch: nothing is built on it."""


class NotInitialisedError(GitdagError):
    """The repository has no state branch yet."""

    exit_code = 2


class DiskError(GitdagError):
    """The disk is full, over quota or read-only where gitdag writes: names the path, exit 2.

    The environment's doing, not the input's nor gitdag's: what was written before stays
    consistent (a ref moves only after its objects are written), and a restart goes on.
    """

    exit_code = 2


class StoreError(GitdagError):
    """The state branch cannot be read or written."""

    exit_code = 3


class StaleSnapshotError(StoreError):
    """The state ref kept moving under compare-and-swap past the retry bound."""


class TransitionError(GitdagError):
    """An illegal transition reached a writer: a bug, because core validates first."""

    exit_code = 3


class RunnerError(GitdagError):
    """A runner could not be launched for reasons outside the node's control."""

    exit_code = 3


class WorkspaceError(GitdagError):
    """Worktree or merge trouble that is not an ordinary conflict."""

    exit_code = 3


class RemoteError(GitdagError):
    """A remote refused a push or could not be reached."""

    exit_code = 2


class RefRefused(RemoteError):
    """The remote refused one ref of a push for a reason of its own (a hook, a permission).

    Attributes:
      ref: the full name of the refused ref (`refs/heads/dagain/work/<id>`, ...).
      reason: git's summary and what the server said, on one line.
    """

    def __init__(self, message: str, ref: str, reason: str) -> None:
        super().__init__(message)
        self.ref = ref
        self.reason = reason


class RemoteUnreachable(RemoteError):
    """The remote did not answer within the bound of one call (transient failures only).

    A worker goes on with its runners and tries again later (remote/link.py); a command that
    talks to the remote once exits 2.
    """


class LockedError(GitdagError):
    """Another supervisor holds the repository's lock."""

    exit_code = 4


# The world's errors around an attempt: a start that could not be set up, a leftover commit or a
# merge that failed. They fail the node (its attempt counts) or hold it (an environment cause);
# anything else raised there is a bug of gitdag and reaches the CLI's exit-3 crash log without
# touching the node (issue 14, part 4). Subprocess errors are git's or a check's (a timeout).
ENVIRONMENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    subprocess.SubprocessError,
    WorkspaceError,
    RunnerError,
    StoreError,
    DiskError,
    RemoteError,
)
