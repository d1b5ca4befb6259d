"""Running the merge check command on a merged tree: a shell command with a timeout and a log."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitdag.workspace.gitcli import git_env

TAIL_BYTES = 4096
_TERM_GRACE_S = 2.0
_STOP_POLL_S = 0.05


@dataclass(frozen=True)
class CheckOutcome:
    ok: bool
    tail: str
    timed_out: bool
    stopped: bool = False  # `stop` turned true: the check was killed, its verdict is void


def run_check(
    cmd: str,
    cwd: Path,
    log: Path,
    timeout_s: float,
    env: dict[str, str],
    stop: Callable[[], bool] | None = None,
) -> CheckOutcome:
    """Run `cmd` with the shell in `cwd`, output (stdout and stderr) to `log`; pass = exit 0.

    The command gets its own process group, so a timeout stops everything it started, and
    whatever it leaves running after it exits is stopped too (the checkout is reused next).
    `stop` is polled every `_STOP_POLL_S`: once true (the node was cancelled), the group is
    killed at once and the outcome is `stopped`.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            shell=True,
            cwd=cwd,
            env=git_env(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        timed_out = stopped = False
        try:
            code = _wait(proc, timeout_s, stop)
        except _Stopped:
            stopped = True
            _signal_group(proc.pid, signal.SIGKILL)
            code = proc.wait()
        except subprocess.TimeoutExpired:
            timed_out = True
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                code = proc.wait(timeout=_TERM_GRACE_S)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                code = proc.wait()
        _signal_group(proc.pid, signal.SIGKILL)
    tail = _tail(log)
    if stopped:
        tail += "\n[gitdag] the merge check was stopped: the node was cancelled\n"
        return CheckOutcome(ok=False, tail=tail, timed_out=False, stopped=True)
    if timed_out:
        tail += f"\n[gitdag] the merge check timed out after {timeout_s:g} s and was stopped\n"
    elif code != 0:
        tail += f"\n[gitdag] the merge check exited with status {code}\n"
    return CheckOutcome(ok=code == 0 and not timed_out, tail=tail, timed_out=timed_out)


def check_merge(
    root: Path,
    git_dir: Path,
    local: Path,
    target: str,
    commit: str,
    cmd: str,
    timeout_s: float,
    log_name: str,
    env: dict[str, str],
    *,
    stop: Callable[[], bool] | None = None,
    slot: int = 0,
) -> tuple[CheckOutcome, Path]:
    """Run the merge check on exactly `commit`, in the target's scratch checkout `slot`.

    The log is `merge-checks/<log_name>.log`; the environment gets `GITDAG_TARGET`,
    `GITDAG_MERGE_COMMIT` and `GITDAG_WORKTREE` on top of `env`. Slot 0 is the checkout the
    serial queue uses; a batch bisecting with several checks at once uses 1, 2, ... as well.
    """
    from gitdag.workspace.worktrees import Worktrees  # worktrees is the heavier import

    log = local / "merge-checks" / f"{log_name}.log"
    name = "merge-" + target.replace("/", "-") + (f"-{slot}" if slot else "")
    full = {**env, "GITDAG_TARGET": target, "GITDAG_MERGE_COMMIT": commit}
    with Worktrees(root, git_dir, local).using_scratch(commit, name=name) as scratch:
        full["GITDAG_WORKTREE"] = str(scratch)
        return run_check(cmd, scratch, log, timeout_s, full, stop=stop), log


class _Stopped(Exception):
    pass


def _wait(proc: subprocess.Popen[bytes], timeout_s: float, stop: Callable[[], bool] | None) -> int:
    """Wait for the check's exit; raise TimeoutExpired after `timeout_s`, _Stopped on `stop`."""
    if stop is None:
        return proc.wait(timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise subprocess.TimeoutExpired(proc.args, timeout_s)
        try:
            return proc.wait(timeout=min(left, _STOP_POLL_S))
        except subprocess.TimeoutExpired:
            if stop():
                raise _Stopped from None


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _tail(path: Path) -> str:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - TAIL_BYTES))
        data = f.read()
    text = data.decode("utf-8", errors="replace")
    return ("…" + text) if size > TAIL_BYTES else text
