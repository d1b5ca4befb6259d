"""Running the merge check command on a merged tree: a shell command with a timeout and a log."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gitdag.workspace.gitcli import git_env

TAIL_BYTES = 4096
_TERM_GRACE_S = 2.0


@dataclass(frozen=True)
class CheckOutcome:
    ok: bool
    tail: str
    timed_out: bool


def run_check(
    cmd: str, cwd: Path, log: Path, timeout_s: float, env: dict[str, str]
) -> CheckOutcome:
    """Run `cmd` with the shell in `cwd`, output (stdout and stderr) to `log`; pass = exit 0.

    The command gets its own process group, so a timeout stops everything it started, and
    whatever it leaves running after it exits is stopped too (the checkout is reused next).
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
        timed_out = False
        try:
            code = proc.wait(timeout=timeout_s)
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
    if timed_out:
        tail += f"\n[gitdag] the merge check timed out after {timeout_s:g} s and was stopped\n"
    elif code != 0:
        tail += f"\n[gitdag] the merge check exited with status {code}\n"
    return CheckOutcome(ok=code == 0 and not timed_out, tail=tail, timed_out=timed_out)


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
