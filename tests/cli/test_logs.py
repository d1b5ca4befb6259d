"""`gitdag logs ID`: a node's runner output, live with --follow; `show` and `run` point at it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import run_gitdag

# A runner that prints a line, then waits for a flag file before it reports (no fixed sleep).
RUNNER = """\
import os, pathlib, sys, time
print("hello from the agent", flush=True)
print("a warning on stderr", file=sys.stderr, flush=True)
flag = pathlib.Path(os.environ["FLAG"])
end = time.monotonic() + 120
while not flag.exists() and time.monotonic() < end:
    time.sleep(0.05)
print("second line", flush=True)
pathlib.Path(os.environ["GITDAG_RESULT"]).write_text('{"status": "success", "summary": "ok"}')
"""


def _configure(repo: Path, tmp_path: Path) -> dict[str, str]:
    script = tmp_path / "agent.py"
    script.write_text(RUNNER)
    (repo / ".dagain" / "config.yaml").write_text(
        f"schema_version: 1\nrunners:\n  agent:\n    cmd: {sys.executable} {script}\n"
        "    timeout_s: 120\n"
        "roles:\n  planner: agent\n  executor: agent\n  verifier: agent\n"
        "defaults:\n  kill_grace_s: 1\n"
    )
    return {**os.environ, "FLAG": str(tmp_path / "flag")}


def _wait_for(path: Path, text: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never held {text!r}")


def test_logs_follow_shows_a_line_while_the_runner_runs(repo: Path, tmp_path: Path) -> None:
    assert run_gitdag(repo, "init").code == 0
    env = _configure(repo, tmp_path)
    assert run_gitdag(repo, "add", "a", "--title", "A").code == 0
    cmd = [sys.executable, "-m", "gitdag"]
    sup = subprocess.Popen([*cmd, "run"], cwd=repo, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        run_dir = repo / ".dagain" / "local" / "runs" / "a" / "1"
        _wait_for(run_dir / "stdout", "hello from the agent")
        follow = subprocess.Popen([*cmd, "logs", "a", "--follow"], cwd=repo, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        assert follow.stdout is not None
        line = follow.stdout.readline()
        assert line == b"hello from the agent\n"
        assert follow.poll() is None  # still following: the runner still runs
        assert not (run_dir / "outcome.json").exists()
        # While it runs: status and show give its elapsed time.
        (running,) = json.loads(run_gitdag(repo, "status", "--json").out)["running"]
        assert running["id"] == "a" and running["elapsed_s"] >= 0
        timing = json.loads(run_gitdag(repo, "show", "a", "--json").out)["timing"]
        (now,) = timing["attempts"]
        assert now["ended"] is None and now["seconds"] is None and now["elapsed_s"] >= 0
        assert "# attempts: 1 running " in run_gitdag(repo, "show", "a").out
        (tmp_path / "flag").write_text("go")
        out, err = follow.communicate(timeout=120)
        assert follow.returncode == 0, err
        assert out == b"second line\n"  # the rest, then it stopped by itself
        assert b"a warning on stderr" in err  # stderr goes to stderr
    finally:
        (tmp_path / "flag").write_text("go")
        sup.communicate(timeout=120)
    assert sup.returncode == 0

    r = run_gitdag(repo, "logs", "a")
    assert r.out == "hello from the agent\nsecond line\n" and r.err == "a warning on stderr\n"
    r = run_gitdag(repo, "logs", "a", "--stream", "stderr")
    assert r.out == "a warning on stderr\n"
    log = run_gitdag(repo, "logs", "a", "--stream", "log").out
    assert "[gitdag] node: a  attempt: 1" in log and "[gitdag] verdict: result success" in log
    data = json.loads(run_gitdag(repo, "logs", "a", "--json").out)
    assert data["attempt"] == 1 and data["attempts"] == [1] and data["running"] is False
    assert data["stdout"] == "hello from the agent\nsecond line\n"
    assert data["outcome"]["verdict"] == "success"

    shown = run_gitdag(repo, "show", "a").out
    assert "# runner output: gitdag logs a (in " in shown
    assert "# attempts: 1 complete " in shown and "# total: " in shown
    timing = json.loads(run_gitdag(repo, "show", "a", "--json").out)["timing"]
    (attempt,) = timing["attempts"]
    assert attempt["ended_by"] == "complete" and attempt["seconds"] >= 0
    assert timing["total_s"] == attempt["seconds"]


def test_logs_errors_are_one_line(repo: Path) -> None:
    assert run_gitdag(repo, "init").code == 0
    assert run_gitdag(repo, "add", "a", "--title", "A").code == 0
    for args, text in (
        (["logs", "nope"], "unknown node 'nope'"),
        (["logs", "a"], "a has no run directory here"),
        (["logs", "a", "--json", "--follow"], "--json and --follow do not go together"),
    ):
        r = run_gitdag(repo, *args)
        assert r.code == 2 and r.out == "" and text in r.err and r.err.count("\n") == 1, r


def test_run_failure_line_names_the_logs_command(repo: Path, tmp_path: Path) -> None:
    assert run_gitdag(repo, "init", "--max-attempts", "1").code == 0
    (repo / ".dagain" / "config.yaml").write_text(
        "schema_version: 1\nrunners:\n  bad:\n    cmd: echo oops >&2; exit 3\n"
        "roles:\n  planner: bad\n  executor: bad\n  verifier: bad\n"
    )
    assert run_gitdag(repo, "add", "a", "--title", "A").code == 0
    r = run_gitdag(repo, "run")
    assert r.code == 1
    assert "a: running -> failed — task_failure: runner exited with code 3" in r.err
    assert "(see: gitdag logs a)" in r.err
    assert run_gitdag(repo, "logs", "a").err == "oops\n"
