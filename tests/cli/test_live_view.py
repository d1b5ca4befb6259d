"""`gitdag run` on a terminal: a live view of running nodes, in colour; plain without one.

Run under a real pseudo-terminal (the `pty` module); the bytes it prints are replayed through a
small screen model (newline, carriage return, cursor-up-to-line-start, erase-below, colours
dropped), and the assertions are about the lines a person would see.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import run_gitdag

RUNNER = """\
import os, pathlib, time
print("step 1: reading the code", flush=True)
print("step 2: editing parser.py", flush=True)
flag = pathlib.Path(os.environ["FLAG"])
end = time.monotonic() + 120
while not flag.exists() and time.monotonic() < end:
    time.sleep(0.05)
pathlib.Path(os.environ["GITDAG_RESULT"]).write_text('{"status": "success", "summary": "ok"}')
"""

_CSI = re.compile(r"\x1b\[([0-9;]*)([A-Za-z])")


def render(raw: bytes) -> list[str]:
    """The screen's lines after `raw`: what a terminal shows (scrollback included)."""
    data = raw.decode("utf-8", errors="replace")
    lines: list[str] = [""]
    row, col = 0, 0
    pos = 0
    while pos < len(data):
        match = _CSI.match(data, pos)
        if match:
            arg, cmd = match.group(1), match.group(2)
            n = int(arg) if arg.isdigit() else 1
            if cmd == "F":  # cursor up n lines, to column 0
                row, col = max(0, row - n), 0
            elif cmd == "J":  # erase from the cursor to the end of the screen
                lines[row] = lines[row][:col]
                del lines[row + 1 :]
            elif cmd == "K":
                lines[row] = lines[row][:col]
            pos = match.end()
            continue
        char = data[pos]
        pos += 1
        if char == "\n":
            row += 1
            col = 0
            if row == len(lines):
                lines.append("")
        elif char == "\r":
            col = 0
        else:
            line = lines[row]
            lines[row] = line[:col].ljust(col) + char + line[col + 1 :]
            col += 1
    return lines


def _setup(repo: Path, tmp_path: Path) -> dict[str, str]:
    assert run_gitdag(repo, "init").code == 0
    script = tmp_path / "agent.py"
    script.write_text(RUNNER)
    (repo / ".dagain" / "config.yaml").write_text(
        f"schema_version: 1\nrunners:\n  agent:\n    cmd: {sys.executable} {script}\n"
        "roles:\n  planner: agent\n  executor: agent\n  verifier: agent\n"
    )
    assert run_gitdag(repo, "add", "parser", "--title", "Write the parser").code == 0
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    return {**env, "FLAG": str(tmp_path / "flag"), "COLUMNS": "120", "LINES": "40"}


def _run_on_pty(repo: Path, env: dict[str, str], *args: str, until: bytes | None,
                flag: Path) -> tuple[int, bytes, bytes]:  # fmt: skip
    """Run `gitdag run ARGS` on a pty; return (exit, output up to `until`, all output)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "gitdag", "run", *args], cwd=repo, env=env,
                            stdin=follower, stdout=follower, stderr=follower)  # fmt: skip
    os.close(follower)
    out = b""
    seen: bytes | None = None
    end = time.monotonic() + 120
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the child side closed
                    break
                if not chunk:
                    break
                out += chunk
            if seen is None and (until is None or until in out):
                seen = out
                flag.write_text("go")
            if proc.poll() is not None and not ready:
                break
    finally:
        flag.write_text("go")
        proc.wait(timeout=120)
        os.close(leader)
    return proc.returncode, seen or b"", out


def test_live_view_shows_the_running_node_its_runner_elapsed_and_last_line(
    repo: Path, tmp_path: Path
) -> None:
    env = _setup(repo, tmp_path)
    code, during, after = _run_on_pty(repo, env, until=b"step 2: editing parser.py",
                                      flag=tmp_path / "flag")  # fmt: skip
    assert code == 0, after
    assert b"\x1b[" in during  # colour on a terminal
    screen = render(during)
    rows = [line for line in screen if re.fullmatch(r"\s+parser\s+agent\s+\S+s\s+.*", line)]
    assert rows, screen
    assert rows[-1].rstrip().endswith("step 2: editing parser.py")
    assert any(line.startswith("gitdag run · done 0/1 · running 1") for line in screen), screen
    # At the end the block is gone: only the event lines stay on the screen.
    final = [line for line in render(after) if line.strip()]
    assert final[-1].endswith("all done (done 1)"), final
    assert not any("step 2" in line for line in final)


def test_no_color_and_no_color_flag_print_plain_lines_on_a_terminal(
    repo: Path, tmp_path: Path
) -> None:
    env = _setup(repo, tmp_path)
    for extra_env, args in (({"NO_COLOR": "1"}, ()), ({}, ("--no-color",))):
        (tmp_path / "flag").write_text("go")  # the runner finishes at once
        code, _, out = _run_on_pty(repo, {**env, **extra_env}, *args, until=None,
                                   flag=tmp_path / "flag")  # fmt: skip
        assert code == 0, out
        assert b"\x1b" not in out
        text = out.decode().replace("\r\n", "\n")
        assert re.search(r"^\d\d:\d\d:\d\d parser: started \(attempt \d\)$", text, re.M), text
        assert run_gitdag(repo, "retry", "parser", "--force").code == 0
