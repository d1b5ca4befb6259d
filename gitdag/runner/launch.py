"""Launching a runner: one process group per attempt, its output in files, its result collected.

`launch()` never blocks on the runner. The command runs under `/bin/sh -c` in a new session (so a
new process group, detached from the supervisor's terminal: Ctrl-C reaches the supervisor, which
then stops its runners itself). stdout and stderr go straight to files in the run directory, so a
runner keeps running, and its output keeps landing, even if the supervisor dies; `pid.json` lets
the next supervisor find it (see `gitdag.runner.orphans`).

How the exit code and the result combine (`RunOutcome.verdict()`):

1. cancelled → `cancelled`; timed out → `timeout` (or, when the time that ran out was what was
   left of the loop's `max_duration_s`, `task_failure` naming it); the command could not be
   started, or the shell said it does not exist / cannot execute it (exit 127 / 126) →
   `spawn_error`.
2. exit 0 → the result decides: a valid result is returned as is (its own `status`); no result →
   `missing_result`; an unusable one → `invalid_result`.
3. non-zero exit → only a `fail` or `checkpoint` result is honoured as given; anything else (no
   result, an invalid one, or `success`) is a `task_failure`, because a process that reports
   success and then crashes did not finish cleanly.

For `command` nodes (`expect_result=False`) exit 0 without a result is a success.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from gitdag.config import RunnerConfig
from gitdag.core.model import ErrorKind
from gitdag.core.results import ResultProblem, RunnerResult
from gitdag.runner import procs, run_log
from gitdag.runner.bindings import unwrap
from gitdag.runner.collect import ResultSource, collect_result, with_output_file
from gitdag.runner.packet import PacketFiles
from gitdag.runner.run_files import (
    OUTCOME_FILE,
    OUTPUT_FILE,
    PID_FILE,
    STDERR_FILE,
    STDOUT_FILE,
    Stream,
    write_once,
)

DEFAULT_SCRIPT = ".dagain/script.yaml"

# Variables git sets for hooks and aliases; inherited, they would point the runner's own git
# commands at the supervisor's repository instead of the node's worktree.
_GIT_REPO_VARS = frozenset(
    {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
     "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_PREFIX", "GIT_NAMESPACE"}
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class LaunchSpec:
    """Everything needed to start one attempt of one node."""

    node_id: str
    attempt: int
    run_id: str
    runner: str
    cmd: str
    cwd: Path
    run_dir: Path
    packet: PacketFiles
    result_path: Path
    timeout_s: float
    kill_grace_s: float = 5.0
    env: Mapping[str, str] = field(default_factory=dict)
    gitdag_env: Mapping[str, str] = field(default_factory=dict)
    expect_result: bool = True
    stdin_packet: bool = True
    # Set when `timeout_s` is what is left of a bound of the node's whole loop (its
    # max_duration_s) rather than the runner's timeout: the failure summary naming that bound.
    deadline: str | None = None


@dataclass(frozen=True, kw_only=True)
class RunOutcome:
    """How an attempt ended. `verdict()` combines exit code and result (see the module doc)."""

    node_id: str
    attempt: int
    run_id: str
    runner: str
    exit_code: int | None  # None: never started; negative: killed by that signal
    timed_out: bool
    cancelled: bool
    spawn_error: str | None
    duration_s: float
    started_at: dt.datetime
    ended_at: dt.datetime
    result: RunnerResult | ResultProblem
    result_source: ResultSource
    run_dir: Path
    timeout_s: float
    output_tail: str = ""  # the end of stderr (or of stdout when stderr is empty)
    expect_result: bool = True
    deadline: str | None = None  # LaunchSpec.deadline

    def verdict(self) -> RunnerResult | ResultProblem:
        """Return what the attempt amounts to: a result to judge, or a failure of a given kind."""
        if self.cancelled:
            return ResultProblem(ErrorKind.CANCELLED, "cancelled while running")
        if self.timed_out and self.deadline is not None:  # the loop's bound, not the run's
            return ResultProblem(ErrorKind.TASK_FAILURE, f"{self.deadline}; process group stopped")
        if self.timed_out:
            reason = f"timed out after {run_log.seconds(self.timeout_s)}; process group stopped"
            return ResultProblem(ErrorKind.TIMEOUT, reason)
        if self.spawn_error is not None:
            return ResultProblem(ErrorKind.SPAWN_ERROR, self.spawn_error)
        if self.exit_code == 0:
            return self.result
        if isinstance(self.result, RunnerResult) and self.result.status != "success":
            return self.result
        how = run_log.exit_text(self.exit_code)
        who = "runner" if self.expect_result else "command"
        if isinstance(self.result, RunnerResult):
            reason = f"{who} {how} after reporting success"
            if self.result.summary:
                reason += f" ({run_log.one_line(self.result.summary, 200)})"
        elif self.result_source == "none":
            reason = f"{who} {how}" + (" with no result" if self.expect_result else "")
        else:
            reason = f"{who} {how}; its result was unusable too: {self.result.reason}"
        if self.output_tail:
            reason += f"; last output: {run_log.last_line(self.output_tail)}"
        return ResultProblem(ErrorKind.TASK_FAILURE, reason)


class RunHandle:
    """A running attempt. Poll it from the supervisor's loop; nothing here blocks but `wait`."""

    def __init__(self, spec: LaunchSpec, proc: subprocess.Popen[bytes] | None,
                 started_at: dt.datetime, spawn_error: str | None = None) -> None:  # fmt: skip
        self.spec = spec
        self.started_at = started_at
        self._proc = proc
        self._t0 = time.monotonic()
        self._stop_at: float | None = None
        self._killed = False
        self._timed_out = False
        self._cancelled = False
        self._outcome: RunOutcome | None = None
        if proc is None:
            self._outcome = self._finish(None, spawn_error or "could not start the runner")

    @property
    def pid(self) -> int | None:
        """The runner's pid, which is also its process group id."""
        return self._proc.pid if self._proc is not None else None

    @property
    def done(self) -> bool:
        return self._outcome is not None

    def poll(self) -> RunOutcome | None:
        """Return the outcome once the runner has ended, else None; enforces timeout and grace."""
        if self._outcome is not None:
            return self._outcome
        assert self._proc is not None
        now = time.monotonic()
        if not self._leader_exited():
            if self._stop_at is None and now - self._t0 >= self.spec.timeout_s:
                self._timed_out = True
                self._stop(now)
            elif (self._stop_at is not None and not self._killed
                  and now - self._stop_at >= self.spec.kill_grace_s):  # fmt: skip
                self._kill()
            return None
        # The leader has exited but is not reaped yet, so its pid still names our group and
        # cannot have been reused: stragglers it left behind are killed before anything is read.
        procs.signal_group(self._proc.pid, signal.SIGKILL)
        code = self._proc.wait()
        self._outcome = self._finish(code, None)
        return self._outcome

    def wait(self, timeout: float | None = None) -> RunOutcome | None:
        """Block until the runner ends (or `timeout` seconds pass: then None)."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            outcome = self.poll()
            if outcome is not None:
                return outcome
            # Sleep rather than Popen.wait(): waiting would reap the leader before its group is
            # cleaned up, and a reaped pid may be reused by an unrelated process group.
            step = 0.02
            if end is not None:
                left = end - time.monotonic()
                if left <= 0:
                    return None
                step = min(step, left)
            time.sleep(step)

    def cancel(self) -> None:
        """Stop the runner: TERM to its group now, KILL after the grace period (on a later poll)."""
        if self._outcome is not None or self._cancelled:
            return
        self._cancelled = True
        if self._stop_at is None:
            self._stop(time.monotonic())

    def _leader_exited(self) -> bool:
        assert self._proc is not None
        if self._proc.returncode is not None:
            return True
        try:
            # WNOWAIT: look without reaping, so the pid stays ours until the group is cleaned up.
            info = os.waitid(os.P_PID, self._proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def _stop(self, now: float) -> None:
        assert self._proc is not None
        self._stop_at = now
        if self.spec.kill_grace_s <= 0:
            self._kill()
        else:
            procs.signal_group(self._proc.pid, signal.SIGTERM)

    def _kill(self) -> None:
        assert self._proc is not None
        self._killed = True
        procs.signal_group(self._proc.pid, signal.SIGKILL)

    def _finish(self, code: int | None, spawn_error: str | None) -> RunOutcome:
        spec = self.spec
        ended = run_log.now()
        duration = time.monotonic() - self._t0
        out = Stream.read(spec.run_dir / STDOUT_FILE)
        err = Stream.read(spec.run_dir / STDERR_FILE)
        stderr_tail = err.text[-2048:]
        tail = stderr_tail or out.text[-2048:]
        result, source = collect_result(spec, out)
        if (spawn_error is None and code in (126, 127) and not isinstance(result, RunnerResult)
                and not self._timed_out and not self._cancelled):  # fmt: skip
            what = "not found" if code == 127 else "cannot be executed"
            who = "runner command" if spec.expect_result else "command"
            spawn_error = f"{who} {what} (exit {code})"
            if stderr_tail.strip():
                spawn_error += f": {run_log.last_line(stderr_tail)}"
        if (not spec.expect_result and source == "none" and code == 0
                and not self._timed_out and not self._cancelled):  # fmt: skip
            summary = f"`{run_log.one_line(unwrap(spec.cmd), 200)}` exited 0"
            result = RunnerResult(status="success", summary=summary)
            source = "exit_code"
        result = with_output_file(result, spec.run_dir / OUTPUT_FILE)
        outcome = RunOutcome(
            node_id=spec.node_id, attempt=spec.attempt, run_id=spec.run_id, runner=spec.runner,
            exit_code=code, timed_out=self._timed_out, cancelled=self._cancelled,
            spawn_error=spawn_error, duration_s=duration, started_at=self.started_at,
            ended_at=ended, result=result, result_source=source, run_dir=spec.run_dir,
            timeout_s=spec.timeout_s, output_tail=tail.strip()[-1000:],
            expect_result=spec.expect_result, deadline=spec.deadline,
        )  # fmt: skip
        run_log.write_log_footer(spec, outcome, self._killed, (out, err))
        # Not atomic on purpose: only its existence matters to readers, and it is written per run.
        record = json.dumps(run_log.outcome_json(outcome), indent=1) + "\n"
        (spec.run_dir / OUTCOME_FILE).write_text(record, encoding="utf-8")
        return outcome


# --- starting ------------------------------------------------------------------------------------


def runner_command(runner: RunnerConfig, repo_root: Path) -> str:
    """Return the shell command of a configured runner (a builtin becomes a real process too)."""
    if runner.builtin == "scripted":
        script = Path(runner.script or DEFAULT_SCRIPT)
        if not script.is_absolute():
            script = repo_root / script
        return (f"{shlex.quote(sys.executable)} -m gitdag.runner.scripted "
                f"--script {shlex.quote(str(script))}")  # fmt: skip
    if runner.cmd is None:
        raise ValueError("runner has neither cmd nor builtin")
    return runner.cmd


def expand_command(cmd: str, packet: PacketFiles) -> tuple[str, bool]:
    """Substitute `{packet}` (and `{packet_json}`); return the command and whether stdin gets it."""
    uses_placeholder = "{packet}" in cmd
    out = cmd.replace("{packet_json}", shlex.quote(str(packet.json)))
    out = out.replace("{packet}", shlex.quote(str(packet.md)))
    return out, not uses_placeholder


def runner_env(spec: LaunchSpec) -> dict[str, str]:
    """Return the runner's environment: ours, the runner's `env`, then the protocol variables."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_REPO_VARS}
    env.update(spec.env)
    env.update(spec.gitdag_env)
    env.setdefault("GITDAG_WORKTREE", str(spec.cwd))
    env.update(
        GITDAG_NODE_ID=spec.node_id,
        GITDAG_ATTEMPT=str(spec.attempt),
        GITDAG_RUN_ID=spec.run_id,
        GITDAG_RUN_DIR=str(spec.run_dir),
        GITDAG_RUNNER=spec.runner,
        GITDAG_PACKET=str(spec.packet.md),
        GITDAG_PACKET_JSON=str(spec.packet.json),
        GITDAG_RESULT=str(spec.result_path),
        GITDAG_OUTPUT=str(spec.run_dir / OUTPUT_FILE),
        DAGAIN_NODE_ID=spec.node_id,
        DAGAIN_RUN_ID=spec.run_id,
    )
    return env


def launch(spec: LaunchSpec) -> RunHandle:
    """Start a runner and return at once. A start failure comes back as a finished handle."""
    if not spec.run_dir.is_dir():  # usually write_packet made it: a stat is cheaper than mkdir
        spec.run_dir.mkdir(parents=True, exist_ok=True)
    for stale in (spec.result_path, spec.run_dir / OUTCOME_FILE, spec.run_dir / OUTPUT_FILE):
        stale.unlink(missing_ok=True)  # a result from an earlier run in this directory is not ours
    cmd, packet_on_stdin = expand_command(spec.cmd, spec.packet)
    on_stdin = packet_on_stdin and spec.stdin_packet
    started = run_log.now()
    files: list[IO[bytes]] = []
    try:
        stdin: IO[bytes] | int = subprocess.DEVNULL
        if on_stdin:
            stdin = open(spec.packet.md, "rb")  # noqa: SIM115 - handed to the child, closed below
            files.append(stdin)
        out = open(spec.run_dir / STDOUT_FILE, "wb")  # noqa: SIM115
        files.append(out)
        err = open(spec.run_dir / STDERR_FILE, "wb")  # noqa: SIM115
        files.append(err)
        before = procs.boot_ticks()
        proc = subprocess.Popen(
            ["/bin/sh", "-c", cmd], cwd=spec.cwd, env=runner_env(spec), stdin=stdin,
            stdout=out, stderr=err, start_new_session=True, close_fds=True,
        )  # fmt: skip
    except OSError as exc:
        run_log.write_log_header(spec, cmd, started, on_stdin, None)
        return RunHandle(spec, None, started, f"cannot start the runner in {spec.cwd}: {exc}")
    finally:
        for handle in files:
            handle.close()
    low, high = procs.tick_window(before, procs.boot_ticks())
    write_once(spec.run_dir / PID_FILE, {
        "pid": proc.pid,
        "pgid": proc.pid,
        "start_ticks": low,  # the leader started within [start_ticks, start_ticks_max]
        "start_ticks_max": high,
        "started_at": run_log.iso(started),
        "node_id": spec.node_id,
        "attempt": spec.attempt,
        "run_id": spec.run_id,
        "runner": spec.runner,
        "cmd": cmd,
        "host": socket.gethostname(),
        "supervisor_pid": os.getpid(),
        "supervisor_start_ticks": procs.own_start_ticks(),
    })  # fmt: skip
    run_log.write_log_header(spec, cmd, started, on_stdin, proc.pid)
    return RunHandle(spec, proc, started)
