"""Describing a run in words: the `log` file's header and footer, and the `outcome.json` record.

Also the phrases (durations, exit codes, last lines) that they and `RunOutcome.verdict()` share.
"""

from __future__ import annotations

import datetime as dt
import signal
from typing import TYPE_CHECKING

from gitdag.core.results import ResultProblem
from gitdag.runner.run_files import LOG_FILE, STDERR_FILE, STDOUT_FILE, Stream

if TYPE_CHECKING:
    from gitdag.runner.launch import LaunchSpec, RunOutcome


def write_log_header(spec: LaunchSpec, cmd: str, started: dt.datetime, on_stdin: bool,
                      pid: int | None) -> None:  # fmt: skip
    packet = f"{spec.packet.md} ({'on stdin' if on_stdin else 'by path'})"
    lines = [
        f"[gitdag] node: {spec.node_id}  attempt: {spec.attempt}  run: {spec.run_id}  "
        f"runner: {spec.runner}",
        f"[gitdag] cmd: {cmd}",
        f"[gitdag] cwd: {spec.cwd}",
        f"[gitdag] packet: {packet}",
        f"[gitdag] result: {spec.result_path}",
        f"[gitdag] timeout: {seconds(spec.timeout_s)} (then TERM, KILL after "
        f"{seconds(spec.kill_grace_s)})"
        + (" - what is left of the loop's max_duration_s" if spec.deadline else ""),
        f"[gitdag] started: {iso(started)}",
        f"[gitdag] live output: {spec.run_dir / STDOUT_FILE} and {spec.run_dir / STDERR_FILE}",
    ]
    if pid is not None:
        lines.append(f"[gitdag] pid: {pid} (its own process group)")
    (spec.run_dir / LOG_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_log_footer(spec: LaunchSpec, outcome: RunOutcome, killed: bool,
                      streams: tuple[Stream, Stream]) -> None:  # fmt: skip
    parts = []
    for stream in streams:
        text = stream.text
        head = f"[gitdag] ---- {stream.path.name} ({stream.size} bytes) ----\n"
        if not stream.whole:
            head += f"[… {stream.size - len(stream.data)} earlier bytes are in {stream.path} …]\n"
        parts.append(head + text + ("" if not text or text.endswith("\n") else "\n"))
    end = [f"[gitdag] ended: {iso(outcome.ended_at)}  {exit_text(outcome.exit_code)}  "
           f"after {outcome.duration_s:.2f}s"]  # fmt: skip
    if outcome.timed_out:
        end.append(f"[gitdag] timed out after {seconds(spec.timeout_s)}: sent TERM to the group"
                   + (", then KILL" if killed else ""))  # fmt: skip
    if outcome.cancelled:
        end.append("[gitdag] cancelled: sent TERM to the group" + (", then KILL" if killed else ""))
    if outcome.spawn_error:
        end.append(f"[gitdag] spawn error: {outcome.spawn_error}")
    verdict = outcome.verdict()
    shown = (f"{verdict.kind.value}: {verdict.reason}" if isinstance(verdict, ResultProblem)
             else f"result {verdict.status} (from {outcome.result_source})")  # fmt: skip
    end.append(f"[gitdag] verdict: {shown}")
    with open(spec.run_dir / LOG_FILE, "a", encoding="utf-8") as log:
        log.write("".join(parts) + "\n".join(end) + "\n")


def outcome_json(outcome: RunOutcome) -> dict[str, object]:
    verdict = outcome.verdict()
    return {
        "node_id": outcome.node_id,
        "attempt": outcome.attempt,
        "run_id": outcome.run_id,
        "exit_code": outcome.exit_code,
        "timed_out": outcome.timed_out,
        "cancelled": outcome.cancelled,
        "spawn_error": outcome.spawn_error,
        "duration_s": round(outcome.duration_s, 3),
        "started_at": iso(outcome.started_at),
        "ended_at": iso(outcome.ended_at),
        "result_source": outcome.result_source,
        "verdict": verdict.kind.value if isinstance(verdict, ResultProblem) else verdict.status,
        "reason": verdict.reason if isinstance(verdict, ResultProblem) else verdict.summary,
    }


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seconds(value: float) -> str:
    return f"{value:g}s"


def exit_text(code: int | None) -> str:
    if code is None:
        return "did not start"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


def last_line(text: str, limit: int = 300) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return one_line(lines[-1], limit) if lines else ""


def one_line(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
