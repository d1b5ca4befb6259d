"""`gitdag ui` live and steering: pushes from other shells, commits from the page, the token."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from gitdag.store.state import StateStore
from gitdag.supervisor import control
from tests.conftest import git, run_gitdag
from tests.ui.conftest import listed, sealed_env, serve, stop, wait_graph


def _ok(root: Path, *args: str) -> str:
    res = run_gitdag(root, *args)
    assert res.code == 0, res.err
    return res.out


@pytest.fixture(scope="module")
def ran_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """After `gitdag run --workers 2`: a and b ran at once, gate waits for a human, x for gate."""
    base = tmp_path_factory.mktemp("ran")
    env = sealed_env(base / "home")
    root = base / "repo"
    root.mkdir()
    git_env = {"cwd": root, "env": env, "check": True, "capture_output": True}
    subprocess.run(["git", "init", "-q", "-b", "main"], **git_env)  # type: ignore[call-overload]
    (root / "README.md").write_text("# p\n")
    subprocess.run(["git", "add", "-A"], **git_env)  # type: ignore[call-overload]
    subprocess.run(["git", "commit", "-q", "-m", "initial"], **git_env)  # type: ignore[call-overload]

    def gitdag(*args: str, code: int = 0) -> None:
        proc = subprocess.run([sys.executable, "-m", "gitdag", *args], cwd=root, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert proc.returncode == code, proc.stderr

    gitdag("init")
    for nid in ("a", "b"):
        gitdag("add", nid, "--title", f"sleep in {nid}", "--kind", "command", "--run", "sleep 1.5")
    gitdag("add", "gate", "--title", "Ship?", "--kind", "checkpoint", "--description", "Ship it?")
    gitdag("add", "x", "--title", "after the gate", "--deps", "gate")
    gitdag("run", "--workers", "2", "-q", code=1)  # exit 1: waits for a human
    return root


@pytest.fixture
def ran(ran_once: Path, tmp_path: Path) -> Path:
    """A copy of `ran_once` of this test's own (the tests change it)."""
    return Path(shutil.copytree(ran_once, tmp_path / "repo", symlinks=True))


def _head(root: Path) -> str:
    return git(root, "rev-parse", "dagain/state").strip()


def test_a_transition_from_another_shell_shows_on_the_page_within_a_second(
    page: Any, repo: Path
) -> None:
    _ok(repo, "init")
    _ok(repo, "add", "a", "--title", "first")
    _ok(repo, "add", "b", "--title", "second", "--deps", "a")
    served = serve(repo)
    try:
        page.goto(served.page_url)
        wait_graph(page)
        page.wait_for_selector("#live.on")
        assert listed(page) == {"a": "open", "b": "open"}
        # Another process than the server's commits, as `gitdag cancel b` would (the clock starts
        # when the commit is on the branch; a CLI process would add its own exit to the figure).
        with StateStore.open(repo) as store:
            control.cancel(store, "b")
        t0 = time.monotonic()
        page.wait_for_selector("#nodes li[data-id=b][data-status=cancelled]", timeout=5000)
        seen = time.monotonic() - t0
        _ok(repo, "add", "c", "--title", "third")  # a new node is laid out and listed too
        page.wait_for_selector("#nodes li[data-id=c][data-status=open]", timeout=5000)
        assert page.evaluate("window.gitdagView.pos.has('c')")
    finally:
        stop(served)
    print(f"transition reached the page {seen * 1000:.0f} ms after the commit")
    assert seen <= 1.0


def test_cancel_and_answer_from_the_page_are_commits_by_ui(page: Any, ran: Path) -> None:
    served = serve(ran)
    try:
        page.goto(served.page_url)
        wait_graph(page)
        page.click("#nodes li[data-id=x]")
        page.click("#panel-steer button[data-action=cancel]")
        page.wait_for_selector("#nodes li[data-id=x][data-status=cancelled]", timeout=5000)
        page.click("#nodes li[data-id=gate]")
        page.wait_for_selector("#answer-text")
        page.fill("#answer-text", "yes, ship it")
        page.click("#panel-steer button[data-action=answer]")
        page.wait_for_selector("#nodes li[data-id=gate][data-status=done]", timeout=5000)
        page.click("#pause")
        page.wait_for_selector("#resume:not([hidden])", timeout=5000)
    finally:
        stop(served)
    log = git(
        ran, "log", "-3", "--format=%s|%(trailers:key=Gitdag-Actor,valueonly)", "dagain/state"
    )
    lines = [line for line in log.splitlines() if line.strip()]
    assert [line.split("|")[0] for line in lines] == [
        "pause graph: active -> paused",
        "answer gate: needs_human -> done",
        "cancel x: open -> cancelled",
    ]
    assert all(line.split("|")[1].startswith("ui@") for line in lines), lines
    shown = json.loads(_ok(ran, "show", "gate", "--json"))
    assert shown["checkpoint"]["answer"] == "yes, ship it"
    assert shown["checkpoint"]["answered_by"].startswith("ui@")


def _post(url: str, token: str | None, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-Gitdag-Token"] = token
    request = urllib.request.Request(
        url, data=json.dumps(body or {}).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_a_request_without_the_token_is_refused_and_changes_nothing(ran: Path) -> None:
    served = serve(ran)
    before = _head(ran)
    try:
        requests: list[tuple[str, dict[str, Any] | None]] = [
            ("api/node/x/cancel", None),
            ("api/pause", None),
            ("api/node/gate/answer", {"text": "no"}),
            ("api/propose", {"text": "x"}),
        ]
        for path, body in requests:
            for token in (None, "wrong", ""):
                code, answer = _post(served.url + path, token, body)
                assert code == 403, (path, token, code)
                assert "X-Gitdag-Token" in answer["error"]
        assert _head(ran) == before
        assert "dagain/proposals" not in git(ran, "branch", "--list", "dagain/*")
        # Reads on loopback need no token; a wrong answer from the store is a 400, not a crash.
        with urllib.request.urlopen(served.url + "api/graph", timeout=10) as response:
            assert response.status == 200
        code, answer = _post(served.url + "api/node/nope/cancel", served.token)
        assert code == 400 and "unknown node 'nope'" in answer["error"]
        code, answer = _post(served.url + "api/node/gate/answer", served.token, {"option": 9})
        assert code == 400
        assert _head(ran) == before
    finally:
        stop(served)


def test_the_timeline_of_a_two_worker_run_shows_two_overlapping_attempts(
    page: Any, ran: Path, artifacts: Path
) -> None:
    served = serve(ran)
    try:
        page.goto(served.page_url)
        wait_graph(page)
        page.click("button[data-tab=timeline]")
        page.wait_for_selector(".tl-bar[data-node=a]")
        bars = {
            node: page.locator(f".tl-bar[data-node={node}][data-phase=run]").bounding_box()
            for node in ("a", "b")
        }
        times = page.evaluate(
            "Object.fromEntries([...document.querySelectorAll('.tl-bar[data-phase=run]')]"
            ".map(b => [b.dataset.node, [Number(b.dataset.start), Number(b.dataset.end)]]))"
        )
        page.screenshot(path=str(artifacts / "timeline-two-workers.png"))
    finally:
        stop(served)
    (a0, a1), (b0, b1) = times["a"], times["b"]
    assert a0 < b1 and b0 < a1, times  # overlapping in time ...
    a, b = bars["a"], bars["b"]
    assert a is not None and b is not None
    assert a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]  # ... and on the page


def test_free_text_becomes_a_plan_node_proposed_for_review(page: Any, ran: Path) -> None:
    served = serve(ran)
    before = _head(ran)
    try:
        page.goto(served.page_url)
        wait_graph(page)
        page.click("button[data-tab=request]")
        page.fill("#request-text", "Add rate limiting to the login endpoint\nUse a token bucket.")
        page.click("#request-go")
        page.wait_for_function("document.querySelector('#request-out').textContent.length")
        out = page.inner_text("#request-out")
    finally:
        stop(served)
    assert out.startswith("proposed ui-"), out
    branch = out.split(" on ")[1].split()[0]
    assert _head(ran) == before  # proposed, not applied
    diff = json.loads(_ok(ran, "diff", "dagain/state", branch, "--json"))
    (added,) = diff["added"]
    fields = {f["field"]: f["new"] for f in added["fields"]}
    assert fields["kind"] == "plan" and "token bucket" in fields["description"]
    actor = git(ran, "log", "-1", "--format=%(trailers:key=Gitdag-Actor,valueonly)", branch)
    assert actor.strip().startswith("ui@")


def test_the_runner_output_shows_in_the_panel_while_it_runs(page: Any, repo: Path) -> None:
    _ok(repo, "init")
    run = "echo started; sleep 3; echo finished"
    _ok(repo, "add", "slow", "--title", "talks slowly", "--kind", "command", "--run", run)
    served = serve(repo)
    supervisor = subprocess.Popen([sys.executable, "-m", "gitdag", "run", "-q"], cwd=repo,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        page.goto(served.page_url)
        wait_graph(page)
        page.click("#nodes li[data-id=slow]")
        live = "#panel-runs pre[data-attempt='1'][data-file=stdout]"
        page.wait_for_function(
            f"(document.querySelector(\"{live}\") || {{}}).textContent === 'started\\n'",
            timeout=15000,
        )
        # The attempt is still running when its first line is on the page.
        assert page.get_attribute("#nodes li[data-id=slow]", "data-status") == "running"
        page.wait_for_function(
            f"(document.querySelector(\"{live}\") || {{}}).textContent === 'started\\nfinished\\n'",
            timeout=15000,
        )
        assert supervisor.wait(timeout=30) == 0
        page.wait_for_selector("#nodes li[data-id=slow][data-status=done]", timeout=5000)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        stop(served)


def test_retry_force_reopens_a_done_node_after_the_page_asks(page: Any, ran: Path) -> None:
    before = _head(ran)
    served = serve(ran)
    try:
        page.goto(served.page_url)
        wait_graph(page)
        assert listed(page)["a"] == "done"
        page.click("#nodes li[data-id=a]")
        page.wait_for_selector("#panel-steer button[data-action=retry-force]")
        # Saying no to the question changes nothing.
        page.once("dialog", lambda dialog: dialog.dismiss())
        page.click("#panel-steer button[data-action=retry-force]")
        page.wait_for_timeout(300)
        assert _head(ran) == before
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#panel-steer button[data-action=retry-force]")
        page.wait_for_selector("#nodes li[data-id=a][data-status=open]", timeout=5000)
    finally:
        stop(served)
    subject, actor = git(
        ran, "log", "-1", "--format=%s|%(trailers:key=Gitdag-Actor,valueonly)", "dagain/state"
    ).split("|")
    assert subject == "retry a: done -> open"
    assert actor.strip().startswith("ui@")
