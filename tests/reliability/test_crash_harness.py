"""The crash harness (bench/crash.py): kill `gitdag run` at random points until the graph finishes.

CI runs 5 kills on one 30-node round, with and without the target checked out (about half of
each test's time was the restarts and interventions of the kills); `-m slow` runs the same
rounds with 10 kills, and the issue's 100 kills.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

HARNESS = REPO_ROOT / "bench" / "crash.py"


def harness(tmp_path: Path, *args: str, timeout: float) -> dict[str, object]:
    out = tmp_path / "crash.json"
    proc = subprocess.run([sys.executable, str(HARNESS), "--json", str(out), *args],
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    summary: dict[str, object] = json.loads(out.read_text())
    assert proc.returncode == 0, json.dumps(summary, indent=2)
    return summary


KILLS = [5, pytest.param(10, marks=pytest.mark.slow)]


@pytest.mark.parametrize("kills", KILLS)
def test_kills_leave_every_invariant_true(tmp_path: Path, kills: int) -> None:
    summary = harness(tmp_path, "--kills", str(kills), "--max-kills-per-round", str(kills),
                      "--no-floor", "--seed", "3", "--max-sleep", "0.3", timeout=420)  # fmt: skip
    assert int(summary["kills"]) >= kills  # type: ignore[call-overload]
    assert summary["rounds"] == summary["rounds_ok"]  # a round that finished early adds one
    assert summary["invariant_failures"] == {} and summary["anomalies"] == []
    assert summary["runner_starts"] >= 30  # every node ran; killed attempts ran again


@pytest.mark.parametrize("kills", KILLS)
def test_kills_with_the_target_checked_out_leave_it_clean_at_its_tip(
    tmp_path: Path, kills: int
) -> None:
    # Every merge moves the user's checkout of the target (files, then ref): killed anywhere,
    # the checkout ends clean at the target's tip (the `checkout` invariant), changes land once.
    summary = harness(tmp_path, "--kills", str(kills), "--max-kills-per-round", str(kills),
                      "--no-floor", "--seed", "3", "--max-sleep", "0.3", "--user-checkout",
                      timeout=420)  # fmt: skip
    assert int(summary["kills"]) >= kills  # type: ignore[call-overload]
    assert summary["rounds"] == summary["rounds_ok"]
    assert summary["invariant_failures"] == {} and summary["anomalies"] == []


@pytest.mark.slow
def test_a_hundred_kills_leave_every_invariant_true(tmp_path: Path) -> None:
    summary = harness(tmp_path, "--kills", "100", "--seed", "5", timeout=3600)
    assert int(summary["kills"]) >= 100  # type: ignore[call-overload]
    assert summary["rounds"] == summary["rounds_ok"] and summary["floor_ok"] is True
    assert summary["invariant_failures"] == {} and summary["anomalies"] == []
