"""Crash-injection points for tests: the process dies at a named point the way kill -9 would.

Tests of recovery need a process to die at an exact place (say, right after the target branch
advanced and before the state transition was recorded) the way kill -9 would: no cleanup, no
`finally`, no flushed buffers. Two switches, both read from the environment on every call:

- `GITDAG_CRASH_AT=a,b`: die at points a and b, the first time they are reached; `a#3` dies
  the third time this process reaches `a`.
- `GITDAG_CRASH_RANDOM=<seed>:<probability>`: die at each point reached with that probability,
  decided by a generator seeded with (seed, pid, how many points this process passed), so a crash
  harness kills at a *random* point and a given run can be replayed.

`GITDAG_FAIL_AT=a,b` raises `InjectedFault` at points a and b instead: an ordinary exception, so
`finally` blocks and rollbacks run (tests of all-or-nothing operations such as `gitdag init`).
`a:TypeError` (or `KeyError`) raises that instead, as a bug of gitdag would; `a:EIO` (any errno
name below) the OSError the world would. `fail_point(name)` is a point that only fails, never
kills: the points around an attempt (`attempt.start` before a runner is prepared,
`attempt.settle` before a finished one's leftovers are committed, `merge.integrate` on the merge
thread), so that tests show a bug there crashes (exit 3) and the world's error fails the node.

`GITDAG_CRASH_LOG=<path>` appends the name of the point before dying (the harness counts where
the kills landed). This module imports nothing from gitdag, so every layer can use it.

A third switch fails instead of killing: `GITDAG_FAULT_AT=<point>:<ERRNO>[@<flag file>],...`
makes `fault_point` raise the OSError a full disk or a read-only file system would (ENOSPC,
EROFS, EDQUOT, EACCES, EIO); with `@<flag file>` only while that file exists, so a test can "free
the disk" mid-run by deleting it. Fault points: `store.write_object`, `store.write_ref` (where
objects and refs are written), `git.commit` (a git command that writes a commit: a worktree's
leftovers, a merge commit), `supervisor.state_commit` (before any of a supervisor's state commits).

Points (grep for `crash_point(`): store.before_cas, store.after_cas, supervisor.after_claim,
supervisor.after_launch, supervisor.after_runner_exit, supervisor.after_result_commit,
supervisor.before_merge_commit, workspace.after_leftover_commit, merge.after_advance,
merge.batch_after_advance, merge.group_after_advance, merge.before_group_push,
checkout.after_intent, checkout.after_files, checkout.after_ref, checkout.after_restore,
init.after_files, init.after_target (after `gitdag init` wrote .dagain/ and the target branch,
before the state branch).
"""

from __future__ import annotations

import errno
import itertools
import os
import random
from collections.abc import Mapping

ENV = "GITDAG_CRASH_AT"
RANDOM_ENV = "GITDAG_CRASH_RANDOM"
LOG_ENV = "GITDAG_CRASH_LOG"
FAIL_ENV = "GITDAG_FAIL_AT"
EXIT_CODE = 137  # what a shell reports for a process killed by SIGKILL
FAULT_ENV = "GITDAG_FAULT_AT"
_ERRNOS = {"ENOSPC": 28, "EROFS": 30, "EDQUOT": 122, "EACCES": 13, "EIO": 5}
_BUGS: dict[str, type[Exception]] = {"TypeError": TypeError, "KeyError": KeyError}

# itertools.count is atomic under the GIL: the merge thread passes points too.
_calls = itertools.count(1)
_seen: dict[str, itertools.count[int]] = {}


def parse_random(spec: str) -> tuple[str, float]:
    """Return (seed, probability) of a `<seed>:<probability>` spec.

    Raises:
      ValueError: the spec is malformed or the probability is outside [0, 1].
    """
    seed, sep, prob = spec.rpartition(":")
    if not sep:
        raise ValueError(f"{RANDOM_ENV}={spec!r}: expected <seed>:<probability>")
    value = float(prob)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{RANDOM_ENV}={spec!r}: the probability must be within [0, 1]")
    return seed, value


def should_crash(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Tell whether the process must die at point `name` now (advances the random draw)."""
    env = os.environ if environ is None else environ
    spec = env.get(ENV)
    if spec:
        wanted = [part.strip() for part in spec.split(",")]
        if name in wanted:
            return True
        if any(part.startswith(name + "#") for part in wanted):
            nth = next(_seen.setdefault(name, itertools.count(1)))
            if f"{name}#{nth}" in wanted:
                return True
    chance = env.get(RANDOM_ENV)
    if chance:
        try:
            seed, probability = parse_random(chance)
        except ValueError:
            return False  # a test harness's typo must not turn into a crash everywhere
        draw = random.Random(f"{seed}:{os.getpid()}:{next(_calls)}").random()
        return draw < probability
    return False


class InjectedFault(RuntimeError):
    """Raised at a point named in `GITDAG_FAIL_AT` (a test's fault, not a kill)."""


def _injected(name: str, spec: str) -> BaseException | None:
    """What `GITDAG_FAIL_AT` raises at `name`, or None.

    `<point>`: InjectedFault; `<point>:TypeError`: a bug of ours (TypeError, KeyError);
    `<point>:<ERRNO>`: the OSError the world would raise.
    """
    for part in spec.split(","):
        point, _, kind = part.strip().partition(":")
        if point != name:
            continue
        where = f"injected at {name} ({FAIL_ENV})"
        if not kind:
            return InjectedFault(f"injected fault at {name} ({FAIL_ENV})")
        if kind in _BUGS:
            return _BUGS[kind](where)
        number = _ERRNOS.get(kind, errno.EIO)
        return OSError(number, os.strerror(number), where)
    return None


def fail_point(name: str) -> None:
    """Raise what `GITDAG_FAIL_AT` asks for at `name` (tests only; never kills, never draws)."""
    fail = os.environ.get(FAIL_ENV)
    if fail:
        exc = _injected(name, fail)
        if exc is not None:
            raise exc


def crash_point(name: str) -> None:
    """Exit at once with status 137 if `name` is selected (see the module docstring)."""
    fail_point(name)
    if not (os.environ.get(ENV) or os.environ.get(RANDOM_ENV)):
        return  # the common case: one dict lookup per switch
    if should_crash(name):
        log = os.environ.get(LOG_ENV)
        if log:
            try:
                with open(log, "a", encoding="utf-8") as fh:
                    fh.write(f"{name} {os.getpid()}\n")
            except OSError:
                pass
        os._exit(EXIT_CODE)


def fault_point(name: str, path: str) -> None:
    """Raise the OSError `GITDAG_FAULT_AT=<point>:<ERRNO>` asks for at `name` (tests only).

    The environment's failures (a full disk, a read-only file system) cannot be made on demand
    by a test running as root; this seam makes the one place objects and refs are written fail
    as the kernel would, naming `path`.
    """
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    for item in spec.split(","):
        point, _, rest = item.partition(":")
        code, _, flag = rest.partition("@")
        if point == name and (not flag or os.path.exists(flag)):
            number = _ERRNOS.get(code or "ENOSPC", errno.ENOSPC)
            raise OSError(number, os.strerror(number), path)
