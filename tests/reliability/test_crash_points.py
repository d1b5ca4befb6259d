"""gitdag/crash.py: named, counted and random crash points die like kill -9, and only when asked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gitdag import crash

CALLS = (
    "from gitdag.crash import crash_point\n"
    "for i in range(1, 6):\n    crash_point('p')\n    print(i, flush=True)\n"
)


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CALLS], capture_output=True, text=True, env=env)


def test_named_point_dies_first_time_and_counted_point_the_nth_time(tmp_path: Path) -> None:
    log = tmp_path / "crash.log"
    first = run({"GITDAG_CRASH_AT": "q, p", "GITDAG_CRASH_LOG": str(log)})
    assert first.returncode == 137 and first.stdout == ""
    third = run({"GITDAG_CRASH_AT": "p#3"})
    assert third.returncode == 137 and third.stdout.split() == ["1", "2"]
    other = run({"GITDAG_CRASH_AT": "q#1,pp"})
    assert other.returncode == 0 and other.stdout.split() == ["1", "2", "3", "4", "5"]
    assert log.read_text().split()[0] == "p"


def test_random_mode_always_never_and_about_its_probability(tmp_path: Path) -> None:
    log = tmp_path / "crash.log"
    always = run({"GITDAG_CRASH_RANDOM": "7:1", "GITDAG_CRASH_LOG": str(log)})
    assert always.returncode == 137 and log.read_text().startswith("p ")
    assert run({"GITDAG_CRASH_RANDOM": "7:0"}).returncode == 0
    assert run({"GITDAG_CRASH_RANDOM": "nonsense"}).returncode == 0  # a typo never kills
    env = {"GITDAG_CRASH_RANDOM": "42:0.1"}
    hits = sum(crash.should_crash("x", env) for _ in range(2000))
    assert 120 < hits < 280


def test_parse_random_rejects_bad_specs() -> None:
    assert crash.parse_random("a:b:0.25") == ("a:b", 0.25)
    for bad in ("0.5", "s:2", "s:-0.1", "s:x"):
        with pytest.raises(ValueError):
            crash.parse_random(bad)
