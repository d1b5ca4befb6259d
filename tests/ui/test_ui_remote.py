"""`gitdag ui` in a clone whose graph has a remote: it shows and steers the remote's graph.

Real parts throughout: a bare remote served by git daemon or smart HTTP (tests/remote/conftest.py),
real clones, a real CI-side `gitdag work`, the real `gitdag ui` process, HTTP requests to its API,
and the distribution's Chromium for the page.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitdag.core.model import Status
from gitdag.ui.remote_source import POLL_MAX_S
from tests.conftest import git
from tests.remote.conftest import (
    Cluster,
    Daemon,
    build_cluster,
    command,
    finish,
    task,
    wait_for,
)
from tests.remote.test_steer import laptop, remote_commits
from tests.remote.test_sync import with_default_remote
from tests.timing import within
from tests.ui.conftest import Served, listed, serve, stop, wait_graph


@pytest.fixture
def servers() -> Iterator[list[Daemon]]:
    """Git servers started by a test (tests/remote/conftest.py), stopped after it."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.stop()


def _api(served: Served, path: str, body: dict[str, Any] | None = None,
         timeout: float = 60) -> tuple[int, Any]:  # fmt: skip
    """GET (or POST with `body`) /api/PATH with the token; (status, JSON answer)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        served.url + "api/" + path, data=data, method="GET" if body is None else "POST",
        headers={"X-Gitdag-Token": served.token, "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _statuses(served: Served) -> dict[str, str]:
    code, graph = _api(served, "graph")
    assert code == 200, graph
    return {n["id"]: n["status"] for n in graph["nodes"]}


def _ref(clone: Path, ref: str) -> str:
    return git(clone, "rev-parse", ref).strip()


def _steered(tmp_path: Path, started: list[Daemon], serve_kind: str) -> tuple[Cluster, Path]:
    """A laptop whose graph lives on origin; another clone added `c` there since its fetch."""
    cluster = build_cluster(tmp_path, started, [task("a"), task("b", deps=["a"])],
                            serve=serve_kind)  # fmt: skip
    lap = laptop(cluster)
    with_default_remote(lap)
    added = cluster.gitdag(cluster.clone("other"), "add", "c", "--title", "c", "--remote",
                           "origin")  # fmt: skip
    assert added.code == 0, added.err
    return cluster, lap


def test_the_page_shows_the_remote_graph_where_a_ci_worker_finished_a_node(
    tmp_path: Path, servers: list[Daemon], page: Any, artifacts: Path
) -> None:
    log = tmp_path / "runs.log"
    cluster = build_cluster(tmp_path, servers, [command("x", log), task("y", deps=["x"])],
                            serve="http")  # fmt: skip
    lap, ci = laptop(cluster), cluster.clone("ci")
    stale = _ref(lap, "dagain/state")
    code, err = finish(cluster.work(ci, "--max-nodes", "1"))  # CI runs x; the laptop is behind
    assert code == 0, err
    assert cluster.nodes()["x"].status == Status.DONE
    with_default_remote(lap)
    served = serve(lap, env=cluster.env())
    try:
        assert _statuses(served) == {"x": "done", "y": "open"}
        code, graph = _api(served, "graph")
        source = graph["source"]
        assert source["source"] == "remote" and source["remote"] == "origin", source
        assert source["head"] == cluster.state_head() and source["warning"] is None
        assert source["ahead"] == 0 and source["behind"] > 0
        assert f"{source['behind']} transition(s) behind: gitdag sync origin" in source["line"]
        # History, node panels and diffs read the fetched commits.
        code, entries = _api(served, "log")
        assert code == 200 and entries[0]["commit"] == cluster.state_head()
        assert any(e["verb"] == "claim" and "x" in e["nodes"] for e in entries), entries
        code, node = _api(served, "node/x")
        assert code == 200 and node["node"]["status"] == "done"
        assert any(t["verb"] == "claim" for t in node["transitions"])
        code, diff = _api(served, f"diff?a={stale}&b=dagain/state")
        assert code == 200 and [c["id"] for c in diff["changed"]] == ["x"], diff
        # The page says which graph it shows, and shows x done.
        page.goto(served.page_url)
        wait_graph(page)
        assert listed(page)["x"] == "done"
        page.wait_for_selector("#source:not([hidden])")
        said = page.inner_text("#source")
        assert "graph: origin's dagain/state" in said and "behind: gitdag sync origin" in said
        assert page.get_attribute("#source", "data-source") == "remote"
        page.screenshot(path=str(artifacts / "ui-remote-graph.png"))
        # Steered from elsewhere meanwhile: the background fetch brings it to the open page.
        res = cluster.gitdag(ci, "cancel", "y", "--remote", "origin")
        assert res.code == 0, res.err
        head = cluster.state_head()
        page.wait_for_function(
            "document.querySelector('#nodes li[data-id=\"y\"]').dataset.status === 'cancelled'",
            timeout=(POLL_MAX_S + within(5)) * 1000,  # the next background fetch at the latest
        )
        page.wait_for_function(f"document.querySelector('#source').textContent.includes("
                               f"'{head[:12]}')", timeout=within(3) * 1000)  # fmt: skip
        # Steered from the page: one push to the remote, the page follows its new head.
        page.click("#nodes li[data-id=y]")
        page.click("#panel-steer button[data-action=retry]")
        page.wait_for_selector("#nodes li[data-id=y][data-status=open]", timeout=within(5) * 1000)
        assert "on origin" in page.inner_text("#banner")
        assert remote_commits(cluster, head) == ["retry y: cancelled -> open"]
        actor = cluster.remote_git("log", "-1", "--format=%(trailers:key=Gitdag-Actor,valueonly)",
                                   "dagain/state")  # fmt: skip
        assert actor.strip().startswith("ui@"), actor
    finally:
        stop(served)
    assert _ref(lap, "dagain/state") == stale  # showing the remote's graph moved nothing local


@pytest.mark.parametrize("serve_kind", ["daemon", "http"])
def test_steering_from_the_page_lands_on_the_remote_as_one_commit(
    tmp_path: Path, servers: list[Daemon], serve_kind: str
) -> None:
    cluster, lap = _steered(tmp_path, servers, serve_kind)
    local = _ref(lap, "dagain/state")
    served = serve(lap, env=cluster.env())
    try:
        assert _statuses(served) == {"a": "open", "b": "open", "c": "open"}
        before = cluster.state_head()
        code, got = _api(served, "node/c/cancel", {})
        assert code == 200, got
        assert got["head"] == cluster.state_head() and got["remote"] == "origin"
        assert remote_commits(cluster, before) == ["cancel c: open -> cancelled"]
        body = cluster.remote_git("log", "-1", "--format=%B", "dagain/state")
        assert "Gitdag-Actor: ui@" in body, body
        # The page reads the new remote head (the push moved gitdag's tracking ref).
        wait_for(lambda: _statuses(served)["c"] == "cancelled", within(3), "the page to follow")
        wait_for(lambda: _api(served, "config")[1]["source"]["head"] == got["head"], within(3),
                 "the source line to follow the new head")  # fmt: skip
        # Pause and a request to the planner go to the remote too.
        before = cluster.state_head()
        code, got = _api(served, "pause", {})
        assert code == 200, got
        assert remote_commits(cluster, before) == ["pause graph: active -> paused"]
        code, got = _api(served, "propose", {"text": "Add rate limiting"})
        assert code == 200, got
        assert cluster.remote_git("rev-parse", got["branch"]).strip() == got["head"]
        # Refused as the CLI refuses it: nothing pushed.
        before = cluster.state_head()
        code, got = _api(served, "node/nope/cancel", {})
        assert code == 400 and "nope" in got["error"]
        assert cluster.state_head() == before
    finally:
        stop(served)
    assert _ref(lap, "dagain/state") == local  # nothing written to this clone's graph


def test_with_the_remote_down_the_page_warns_and_steering_writes_nothing(
    tmp_path: Path, servers: list[Daemon]
) -> None:
    cluster, lap = _steered(tmp_path, servers, "http")
    server = servers[-1]
    local = _ref(lap, "dagain/state")
    served = serve(lap, env=cluster.env())
    try:
        assert "c" in _statuses(served)
        tracking = _ref(lap, "refs/gitdag/remotes/origin/state")
        server.stop()
        # The next background fetch fails: the graph last fetched stays, with a warning.
        wait_for(lambda: _api(served, "graph")[1]["source"]["warning"] is not None,
                 POLL_MAX_S + within(5), "the page to say the remote is not reached")  # fmt: skip
        code, graph = _api(served, "graph")
        assert code == 200 and {n["id"] for n in graph["nodes"]} == {"a", "b", "c"}
        warning = graph["source"]["warning"]
        assert "remote origin not reached" in warning and "as fetched at" in warning, warning
        began = time.monotonic()
        code, got = _api(served, "node/a/cancel", {})
        assert code == 502 and "origin" in got["error"], got
        assert time.monotonic() - began < within(15)
        assert _ref(lap, "refs/gitdag/remotes/origin/state") == tracking
        assert _statuses(served)["a"] == "open"
    finally:
        stop(served)
    # Down at start: this clone's graph, said so, quickly.
    began = time.monotonic()
    served = serve(lap, env=cluster.env())
    try:
        assert time.monotonic() - began < within(8)
        code, graph = _api(served, "graph")
        assert code == 200 and {n["id"] for n in graph["nodes"]} == {"a", "b"}
        source = graph["source"]
        assert source["source"] == "local" and "showing this clone's dagain/state" in (
            source["warning"] or "")  # fmt: skip
        code, got = _api(served, "node/a/cancel", {})
        assert code == 502, got
        assert _ref(lap, "dagain/state") == local
        # The remote answers again: the page switches to its graph by itself.
        server.restart()
        wait_for(lambda: _api(served, "graph")[1]["source"]["source"] == "remote",
                 POLL_MAX_S + within(5), "the page to show the remote's graph again")  # fmt: skip
        code, graph = _api(served, "graph")
        assert {n["id"] for n in graph["nodes"]} == {"a", "b", "c"}
        assert graph["source"]["warning"] is None
    finally:
        stop(served)
    assert _ref(lap, "dagain/state") == local
    assert cluster.nodes()["a"].status == Status.OPEN


def test_local_keeps_this_clones_graph(tmp_path: Path, servers: list[Daemon]) -> None:
    cluster, lap = _steered(tmp_path, servers, "daemon")
    remote_head = cluster.state_head()
    served = serve(lap, env=cluster.env(), args=("--local",))
    try:
        code, graph = _api(served, "graph")
        assert {n["id"] for n in graph["nodes"]} == {"a", "b"}
        assert graph["source"]["source"] == "local" and graph["source"]["remote"] is None
        code, got = _api(served, "node/a/cancel", {})
        assert code == 200, got
        assert _ref(lap, "dagain/state") == got["head"]  # this clone's graph, as before
    finally:
        stop(served)
    assert cluster.state_head() == remote_head
    unknown = cluster.gitdag(lap, "ui", "--port", "0", "--remote", "nope", timeout=60)
    assert unknown.code == 2 and "no git remote named 'nope'" in unknown.err, unknown.err
    both = cluster.gitdag(lap, "ui", "--port", "0", "--remote", "origin", "--local", timeout=60)
    assert both.code == 2 and "not both" in both.err


def test_a_fresh_clone_without_a_local_graph_shows_the_remotes(
    tmp_path: Path, servers: list[Daemon]
) -> None:
    cluster = build_cluster(tmp_path, servers, [task("a")], serve="daemon")
    fresh = cluster.clone("fresh")  # no local dagain/state: what a person clones
    with_default_remote(fresh)
    served = serve(fresh, env=cluster.env())
    try:
        code, graph = _api(served, "graph")
        assert code == 200 and [n["id"] for n in graph["nodes"]] == ["a"]
        line = graph["source"]["line"]
        assert "no local dagain/state here (gitdag sync origin makes one)" in line, line
        code, got = _api(served, "node/a/cancel", {})
        assert code == 200 and got["head"] == cluster.state_head(), got
    finally:
        stop(served)
    assert git(fresh, "branch", "--list", "dagain/state").strip() == ""
