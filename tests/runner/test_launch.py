"""Launching real runner processes: environment, packet delivery, timeouts, cancel, results."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitdag.config import RunnerConfig
from gitdag.core.model import ErrorKind
from gitdag.core.results import ResultProblem, RunnerResult
from gitdag.runner import procs
from gitdag.runner.collect import scan_stdout
from gitdag.runner.launch import RunOutcome, expand_command, launch, runner_command
from tests.timing import within

from .helpers import PY, spec

OK = """echo '{"status": "success", "summary": "fine"}' > "$GITDAG_RESULT"\n"""


def run(tmp: Path, cmd: str, **kwargs: object) -> RunOutcome:
    outcome = launch(spec(tmp, cmd, **kwargs)).wait(timeout=60)  # type: ignore[arg-type]
    assert outcome is not None
    return outcome


def problem(outcome: RunOutcome) -> ResultProblem:
    verdict = outcome.verdict()
    assert isinstance(verdict, ResultProblem), verdict
    return verdict


def result(outcome: RunOutcome) -> RunnerResult:
    verdict = outcome.verdict()
    assert isinstance(verdict, RunnerResult), verdict
    return verdict


def dead(pid: int) -> bool:
    stat = procs.proc_stat(pid)
    return stat is None or stat.state in ("Z", "X")


def wait_for_file(path: Path, timeout: float = 10) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


# --- environment and packet delivery --------------------------------------------------------------


def test_environment_and_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_DIR", "/somewhere/else/.git")  # as inside a git hook
    monkeypatch.setenv("KEEP_ME", "inherited")
    s = spec(tmp_path, 'env > "$GITDAG_RUN_DIR/env.txt"; pwd > "$GITDAG_RUN_DIR/pwd.txt";' + OK,
             env={"RUNNER_VAR": "from-config", "GITDAG_NODE_ID": "spoofed"})  # fmt: skip
    outcome = launch(s).wait()
    assert outcome is not None and result(outcome).summary == "fine"
    env = dict(
        line.split("=", 1)
        for line in (s.run_dir / "env.txt").read_text().splitlines()
        if "=" in line
    )
    assert env["GITDAG_NODE_ID"] == "task-a"  # the protocol wins over the runner's env
    assert env["GITDAG_ATTEMPT"] == "1"
    assert env["GITDAG_PACKET"] == str(s.packet.md)
    assert env["GITDAG_PACKET_JSON"] == str(s.packet.json)
    assert env["GITDAG_RESULT"] == str(s.result_path)
    assert env["GITDAG_WORKTREE"] == str(s.cwd)
    assert env["GITDAG_REPO"] == str(tmp_path / "repo")
    assert env["GITDAG_STATE_REF"] == "refs/heads/dagain/state"
    assert env["GITDAG_TARGET"] == "dagain/integration"
    assert env["DAGAIN_NODE_ID"] == "task-a" and env["DAGAIN_RUN_ID"] == "task-a.1"
    assert env["RUNNER_VAR"] == "from-config" and env["KEEP_ME"] == "inherited"
    assert "GIT_DIR" not in env
    assert (s.run_dir / "pwd.txt").read_text().strip() == str(s.cwd)


def test_packet_on_stdin_without_placeholder(tmp_path: Path) -> None:
    s = spec(tmp_path, 'cat > "$GITDAG_RUN_DIR/got.md";' + OK)
    assert launch(s).wait() is not None
    assert (s.run_dir / "got.md").read_text() == s.packet.md.read_text()
    assert "## How to answer" in (s.run_dir / "got.md").read_text()


def test_packet_path_with_placeholder_is_quoted(tmp_path: Path) -> None:
    base = tmp_path / "dir with 'quotes' and spaces"
    s = spec(base, 'cp {packet} "$GITDAG_RUN_DIR/got.md"; cat > "$GITDAG_RUN_DIR/stdin.txt";' + OK)
    outcome = launch(s).wait()
    assert outcome is not None and result(outcome).status == "success"
    assert (s.run_dir / "got.md").read_text() == s.packet.md.read_text()
    assert (s.run_dir / "stdin.txt").read_text() == ""  # stdin is empty when {packet} is used


def test_expand_command() -> None:
    from gitdag.runner.packet import PacketFiles

    files = PacketFiles(md=Path("/r/a b/packet.md"), json=Path("/r/packet.json"))
    assert expand_command("agent --file {packet}", files) == (
        "agent --file '/r/a b/packet.md'",
        False,
    )
    assert expand_command("agent -", files) == ("agent -", True)
    assert expand_command("agent --json {packet_json}", files)[0] == "agent --json /r/packet.json"


def test_command_nodes_get_no_stdin_and_succeed_on_exit_0(tmp_path: Path) -> None:
    s = spec(tmp_path, 'cat > "$GITDAG_RUN_DIR/stdin.txt"', expect_result=False, stdin_packet=False)
    outcome = launch(s).wait()
    assert outcome is not None
    assert (s.run_dir / "stdin.txt").read_text() == ""
    assert result(outcome).status == "success" and outcome.result_source == "exit_code"
    failed = run(tmp_path / "f", "exit 4", expect_result=False)
    assert problem(failed).kind is ErrorKind.TASK_FAILURE and "code 4" in problem(failed).reason


def test_runner_command_for_builtin_and_cmd(tmp_path: Path) -> None:
    cmd = runner_command(RunnerConfig(builtin="scripted"), tmp_path)
    assert cmd.startswith(PY) or cmd.startswith(f"'{PY}'")
    assert (
        "-m gitdag.runner.scripted --script" in cmd and str(tmp_path / ".dagain/script.yaml") in cmd
    )
    assert runner_command(RunnerConfig(cmd="claude -p"), tmp_path) == "claude -p"


# --- output and results ---------------------------------------------------------------------------


def test_log_captures_stdout_and_stderr(tmp_path: Path) -> None:
    s = spec(tmp_path, "echo out-line; echo err-line >&2;" + OK)
    outcome = launch(s).wait()
    assert outcome is not None
    log = (s.run_dir / "log").read_text()
    assert "out-line" in log and "err-line" in log
    assert "[gitdag] cmd: echo out-line" in log and "verdict: result success (from file)" in log
    assert (s.run_dir / "stdout").read_text() == "out-line\n"
    assert (s.run_dir / "stderr").read_text() == "err-line\n"
    recorded = json.loads((s.run_dir / "outcome.json").read_text())
    assert recorded["exit_code"] == 0 and recorded["verdict"] == "success"
    pid = json.loads((s.run_dir / "pid.json").read_text())
    assert pid["node_id"] == "task-a" and pid["attempt"] == 1 and pid["pgid"] == pid["pid"]
    assert pid["supervisor_pid"] == os.getpid() and isinstance(pid["start_ticks"], int)


def test_result_from_stdout(tmp_path: Path) -> None:
    outcome = run(
        tmp_path,
        "echo 'thinking';"
        """ echo '<result>{"status": "fail", "summary": "no"}</result>';"""
        """ echo '<result>{"status": "success"}</result>'""",
    )
    assert outcome.result_source == "stdout"
    assert result(outcome).status == "fail" and result(outcome).summary == "no"


def test_result_file_wins_over_stdout(tmp_path: Path) -> None:
    outcome = run(tmp_path, """echo '<result>{"status": "fail"}</result>';""" + OK)
    assert outcome.result_source == "file" and result(outcome).status == "success"


def test_empty_result_file_falls_back_to_stdout(tmp_path: Path) -> None:
    outcome = run(
        tmp_path, """: > "$GITDAG_RESULT"; echo '<result>{"status": "success"}</result>'"""
    )
    assert outcome.result_source == "stdout" and result(outcome).status == "success"


def test_stale_result_file_is_not_taken(tmp_path: Path) -> None:
    s = spec(tmp_path, "true")
    s.result_path.write_text('{"status": "success"}')  # left by an earlier run in this directory
    outcome = launch(s).wait()
    assert outcome is not None and problem(outcome).kind is ErrorKind.MISSING_RESULT


def test_malformed_json(tmp_path: Path) -> None:
    outcome = run(tmp_path, """printf '{"status": "success",\\n  oops}' > "$GITDAG_RESULT\"""")
    found = problem(outcome)
    assert found.kind is ErrorKind.INVALID_RESULT and "malformed JSON at line 2" in found.reason


def test_no_result(tmp_path: Path) -> None:
    found = problem(run(tmp_path, "echo working"))
    assert found.kind is ErrorKind.MISSING_RESULT and "$GITDAG_RESULT" in found.reason


def test_unknown_status(tmp_path: Path) -> None:
    found = problem(run(tmp_path, """echo '<result>{"status": "maybe"}</result>'"""))
    assert (
        found.kind is ErrorKind.INVALID_RESULT
        and "field status: unknown value 'maybe'" in found.reason
    )


@pytest.mark.parametrize("via", ["file", "stdout"])
def test_result_over_1_mib(tmp_path: Path, via: str) -> None:
    script = tmp_path / "big.py"
    body = """'{"status": "success", "summary": "' + 'x' * 1200000 + '"}'"""
    if via == "file":
        script.write_text(f"import os\nopen(os.environ['GITDAG_RESULT'], 'w').write({body})\n")
    else:
        script.write_text(f"print('noise <result>' + {body} + '</result> more')\n")
    found = problem(run(tmp_path, f"{PY} {script}"))
    assert found.kind is ErrorKind.INVALID_RESULT
    size = len('{"status": "success", "summary": "') + 1200000 + len('"}')
    assert found.reason == f"result is {size} bytes, over 1 MiB"


def test_nonexistent_command_is_a_spawn_error(tmp_path: Path) -> None:
    found = problem(run(tmp_path, "no-such-agent-cli --flag"))
    assert found.kind is ErrorKind.SPAWN_ERROR
    assert "not found" in found.reason and "no-such-agent-cli" in found.reason


def test_unstartable_cwd_is_a_spawn_error(tmp_path: Path) -> None:
    s = spec(tmp_path, "true")
    s.cwd.rmdir()
    handle = launch(s)
    outcome = handle.poll()
    assert outcome is not None and handle.pid is None
    found = problem(outcome)
    assert found.kind is ErrorKind.SPAWN_ERROR and "cannot start" in found.reason


def test_non_zero_exit_without_result(tmp_path: Path) -> None:
    outcome = run(tmp_path, "echo 'disk full' >&2; exit 3")
    found = problem(outcome)
    assert outcome.exit_code == 3
    assert found.kind is ErrorKind.TASK_FAILURE
    assert "exited with code 3 with no result" in found.reason and "disk full" in found.reason


def test_non_zero_exit_vetoes_success(tmp_path: Path) -> None:
    found = problem(run(tmp_path, OK + "exit 1"))
    assert found.kind is ErrorKind.TASK_FAILURE and "after reporting success" in found.reason


def test_non_zero_exit_keeps_fail_and_checkpoint(tmp_path: Path) -> None:
    failed = run(
        tmp_path / "a",
        """echo '{"status": "fail", "summary": "cannot"}' > "$GITDAG_RESULT"; exit 1""",
    )
    assert result(failed).status == "fail" and result(failed).summary == "cannot"
    asked = run(
        tmp_path / "b",
        """echo '{"status": "checkpoint", "checkpoint": {"question": "ok?"}}'"""
        """ > "$GITDAG_RESULT"; exit 2""",
    )
    assert result(asked).status == "checkpoint"


def test_killed_by_a_signal(tmp_path: Path) -> None:
    outcome = run(tmp_path, "kill -SEGV $$")
    assert outcome.exit_code == -11
    assert "killed by SIGSEGV" in problem(outcome).reason


# --- timeouts, cancel, process groups -------------------------------------------------------------


def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    s = spec(tmp_path, 'sleep 30 & echo $! > "$GITDAG_RUN_DIR/child.pid"; wait', timeout_s=0.5)
    start = time.monotonic()
    handle = launch(s)
    child = int(wait_for_file(s.run_dir / "child.pid"))
    outcome = handle.wait(timeout=10)
    assert outcome is not None and outcome.timed_out
    assert time.monotonic() - start < within(3)
    found = problem(outcome)
    assert found.kind is ErrorKind.TIMEOUT and "0.5s" in found.reason
    end = time.monotonic() + 2
    while not dead(child) and time.monotonic() < end:
        time.sleep(0.02)
    assert dead(child), "the runner's child survived the timeout"
    assert "timed out after 0.5s" in (s.run_dir / "log").read_text()


def test_timeout_escalates_to_kill_after_grace(tmp_path: Path) -> None:
    s = spec(tmp_path, "trap '' TERM; sleep 30", timeout_s=0.3, kill_grace_s=0.5)
    start = time.monotonic()
    outcome = launch(s).wait(timeout=10)
    elapsed = time.monotonic() - start
    assert outcome is not None and outcome.timed_out
    assert 0.75 <= elapsed < within(3), elapsed  # TERM was ignored: KILL came after the grace
    assert outcome.exit_code == -9
    assert "then KILL" in (s.run_dir / "log").read_text()


def test_cancel_takes_effect_within_two_seconds(tmp_path: Path) -> None:
    s = spec(tmp_path, "trap '' TERM; sleep 30 & echo $! > \"$GITDAG_RUN_DIR/child.pid\"; wait",
             kill_grace_s=0.5)  # fmt: skip
    handle = launch(s)
    child = int(wait_for_file(s.run_dir / "child.pid"))
    start = time.monotonic()
    handle.cancel()
    outcome = handle.wait(timeout=within(2))
    assert outcome is not None, "cancel did not stop the runner within 2 s"
    assert time.monotonic() - start < within(2)
    assert outcome.cancelled and problem(outcome).kind is ErrorKind.CANCELLED
    assert dead(child)
    handle.cancel()  # idempotent once finished
    assert handle.poll() is outcome


def test_leftover_background_processes_are_stopped_at_exit(tmp_path: Path) -> None:
    s = spec(tmp_path, 'sleep 30 & echo $! > "$GITDAG_RUN_DIR/child.pid";' + OK)
    outcome = launch(s).wait(timeout=10)
    assert outcome is not None and result(outcome).status == "success"
    child = int((s.run_dir / "child.pid").read_text())
    end = time.monotonic() + 2
    while not dead(child) and time.monotonic() < end:
        time.sleep(0.02)
    assert dead(child)


def test_poll_does_not_block(tmp_path: Path) -> None:
    handle = launch(spec(tmp_path, "sleep 1;" + OK))
    start = time.monotonic()
    assert handle.poll() is None and not handle.done
    assert time.monotonic() - start < within(0.1)
    assert handle.wait(timeout=0.05) is None
    outcome = handle.wait(timeout=10)
    # The clock starts once the launch returns; under load the child may have run a little
    # before that, so the measured duration may fall short of the 1 s sleep by that much.
    assert outcome is not None and outcome.duration_s >= 1 - within(0.05)
    assert outcome.ended_at > outcome.started_at


# --- scanning stdout in chunks --------------------------------------------------------------------


@given(
    st.text(max_size=60).filter(lambda s: "<result>" not in s),
    st.text(max_size=60).filter(lambda s: "</result>" not in s),
    st.text(max_size=60),
    st.integers(1, 17),
)
def test_scan_stdout_matches_extract_result(
    before: str, inner: str, after: str, chunk: int
) -> None:
    import tempfile

    from gitdag.core.results import extract_result, strip_fence

    text = f"{before}<result>{inner}</result>{after}"
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "stdout"
        path.write_text(text, encoding="utf-8")
        found = scan_stdout(path, chunk=chunk)
    assert isinstance(found, bytes)
    assert found.decode("utf-8") == inner
    assert extract_result(text) == strip_fence(inner)  # the in-memory path agrees


def test_scan_stdout_counts_an_oversized_block_without_keeping_it(tmp_path: Path) -> None:
    path = tmp_path / "stdout"
    inner = b"y" * 1_300_000
    path.write_bytes(b"noise <result>" + inner + b"</result> tail <result>{}</result>")
    assert scan_stdout(path, chunk=4096) == len(inner)
    path.write_bytes(b"<result>" + inner)  # never closed
    assert scan_stdout(path, chunk=4096) is None
