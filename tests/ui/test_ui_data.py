"""`gitdag ui` without a browser: its data, its guards, and the command line."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gitdag.errors import InputError
from gitdag.store.history import LogEntry
from gitdag.store.state import StateStore
from gitdag.ui import data, steer
from gitdag.ui.export import history_data
from tests.conftest import run_gitdag
from tests.ui.conftest import serve, stop

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def entry(i: int, title: str, verb: str, node: str, attempt: int | None = 1) -> LogEntry:
    return LogEntry(commit=f"{i:040x}", parents=(), time=T0 + dt.timedelta(seconds=i),
                    title=title, summary="", verb=verb, nodes=(node,), attempt=attempt,
                    actor="supervisor@h:1", trailers={})  # fmt: skip


def test_timeline_runs_from_claim_to_completion_then_through_the_merge_queue() -> None:
    oldest_first = [
        entry(1, "claim a: open -> running", "claim", "a"),
        entry(2, "claim b: open -> running", "claim", "b"),
        entry(3, "lease a: running -> running", "lease", "a"),
        entry(5, "complete a: running -> merging", "complete", "a"),
        entry(6, "fail b: running -> open", "fail", "b"),
        entry(7, "merge a: merging -> done", "merge", "a"),
        entry(8, "claim b: open -> running", "claim", "b", attempt=2),
    ]
    bars = data.timeline(list(reversed(oldest_first)))  # newest first, as the log lists them
    t = T0.timestamp()
    assert [
        (
            b["node"],
            b["attempt"],
            b["phase"],
            b["start"] - t,
            b["end"] and b["end"] - t,
            b["outcome"],
        )
        for b in bars
    ] == [
        ("a", 1, "run", 1, 5, "complete -> merging"),
        ("b", 1, "run", 2, 6, "fail -> open"),
        ("a", 1, "merge", 5, 7, "merge -> done"),
        ("b", 2, "run", 8, None, None),
    ]


def test_run_files_are_read_only_inside_the_run_directory(repo: Path) -> None:
    assert run_gitdag(repo, "init").code == 0
    with StateStore.open(repo) as store:
        run = store.paths.local / "runs" / "a" / "1"
        run.mkdir(parents=True)
        (run / "stdout").write_text("hello\nworld\n")
        got = data.run_file(store, "a", 1, "stdout", 6)
        assert got == {"text": "world\n", "offset": 12, "size": 12, "finished": False}
        (run / "outcome.json").write_text("{}")
        assert data.run_file(store, "a", 1, "stdout", 12)["finished"] is True
        assert data.runs_of(store, "a")[0]["files"]["stdout"] == 12
        for node, name in (("a", "../../../config.yaml"), ("a", "pid.json"), ("../x", "stdout")):
            with pytest.raises(InputError):
                data.run_file(store, node, 1, name, 0)


def test_free_text_is_proposed_as_a_plan_node_not_applied(repo: Path) -> None:
    assert run_gitdag(repo, "init").code == 0
    with StateStore.open(repo) as store:
        head = store.head()
        done = steer.propose_text(store, "Add caching!\nKeep it simple.", now=T0)
        assert store.head() == head
        assert done["node"] == "ui-20260101-000000-add-caching-keep-it-simple"
        assert done["branch"] == "dagain/proposals/" + done["node"]
        with pytest.raises(InputError):
            steer.propose_text(store, "   ")
    res = run_gitdag(repo, "apply-proposal", done["node"])
    assert res.code == 0, res.err
    shown = json.loads(run_gitdag(repo, "show", done["node"], "--json").out)
    assert shown["kind"] == "plan" and shown["description"] == "Add caching!\nKeep it simple."


def test_export_records_each_commits_drawn_changes_and_the_last_versions(repo: Path) -> None:
    assert run_gitdag(repo, "init").code == 0
    assert run_gitdag(repo, "add", "a", "--title", "A").code == 0
    assert run_gitdag(repo, "add", "b", "--title", "B", "--deps", "a").code == 0
    assert run_gitdag(repo, "cancel", "a").code == 0
    with StateStore.open(repo) as store:
        entries = data.log_entries(store)
        got = history_data(store, entries, window=2)
    drawn = [
        {k: v and (v["status"], v["deps"]) for k, v in c["set"].items()} for c in got["changes"]
    ]
    assert drawn == [{}, {"a": ("open", [])}, {"b": ("open", ["a"])}, {"a": ("cancelled", [])}]
    window = got["window"]
    # The window's base is the tree before its first commit: `a` alone, open.
    assert list(window["base"]) == ["a"]
    assert window["versions"][window["base"]["a"]]["fields"]["status"] == "open"
    assert [s["commit"] for s in window["steps"]] == [e.commit for e in entries[1::-1]]
    cancelled = window["versions"][window["steps"][1]["set"]["a"]]
    assert "status: cancelled" in cancelled["file"] and cancelled["fields"]["title"] == "A"


def test_ui_without_starlette_says_how_to_install_it(repo: Path) -> None:
    code = "import sys; sys.modules['starlette'] = None; from gitdag.cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", code, "ui"], cwd=repo, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "gitdag: error: gitdag ui needs Starlette and uvicorn: pip install 'gitdag[ui]'"
    )


def test_off_loopback_reads_need_the_token_too(repo: Path) -> None:
    assert run_gitdag(repo, "init").code == 0
    served = serve(repo, host="127.0.0.2")
    try:
        assert served.url.startswith("http://127.0.0.2:")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(served.url + "api/graph", timeout=10)
        assert refused.value.code == 403
        request = urllib.request.Request(served.url + "api/graph",
                                         headers={"X-Gitdag-Token": served.token})  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["nodes"] == []
        with urllib.request.urlopen(served.url, timeout=10) as response:  # the page itself
            assert b"gitdag" in response.read()
        # A page reached through DNS rebinding names another host: refused before anything runs.
        port = served.url.rsplit(":", 1)[1].strip("/")
        for host, code in ((f"evil.example:{port}", 400), (f"127.0.0.2:{port}", 403)):
            request = urllib.request.Request(served.url + "api/pause", data=b"{}", method="POST",
                                             headers={"Host": host})  # fmt: skip
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code == code
    finally:
        stop(served)


def test_a_bad_port_is_one_line_and_exit_2(repo: Path) -> None:
    assert run_gitdag(repo, "init").code == 0
    first = serve(repo)
    try:
        port = first.url.rsplit(":", 1)[1].strip("/")
        res = run_gitdag(repo, "ui", "--port", port, timeout=30)
        assert res.code == 2
        assert res.err.startswith(f"gitdag: error: --port {port}: cannot listen on 127.0.0.1")
    finally:
        stop(first)


def test_ctrl_c_stops_the_server_quietly_with_exit_0(repo: Path) -> None:
    assert run_gitdag(repo, "init").code == 0
    served = serve(repo)
    with urllib.request.urlopen(served.url + "api/events", timeout=10) as stream:
        assert stream.readline().startswith(b"event: hello")  # a stream is open
        served.proc.send_signal(signal.SIGINT)
        assert served.proc.wait(timeout=15) == 0
    assert served.proc.stderr is not None and served.proc.stderr.read() == ""


def test_run_bars_take_the_runners_own_times_when_the_run_is_here(repo: Path) -> None:
    assert run_gitdag(repo, "init").code == 0
    t = T0.timestamp()
    bars = [
        {"node": "a", "attempt": 1, "phase": "run", "start": t + 1, "end": t + 3},
        {"node": "b", "attempt": 1, "phase": "run", "start": t + 1, "end": t + 3},
        {"node": "c", "attempt": 1, "phase": "run", "start": t + 1, "end": t + 3},
    ]
    with StateStore.open(repo) as store:
        # a ran inside its bar; b's run directory is from another history (outside the bar).
        for node, start, end in (("a", "01.250000", "02.500000"), ("b", "30.000000", "31.000000")):
            folder = store.paths.local / "runs" / node / "1"
            folder.mkdir(parents=True)
            (folder / "outcome.json").write_text(json.dumps({
                "started_at": f"2026-01-01T00:00:{start}Z",
                "ended_at": f"2026-01-01T00:00:{end}Z",
            }))  # fmt: skip
        got = data.with_run_times(store, bars)
    assert [(b["start"] - t, b["end"] - t) for b in got] == [(1.25, 2.5), (1, 3), (1, 3)]
