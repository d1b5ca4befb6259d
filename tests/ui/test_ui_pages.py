"""`gitdag ui` on the demo repository, driven by a real browser: graph, panel, timeline, history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import git, run_gitdag
from tests.ui.conftest import listed, serve, stop, wait_graph


def _graph_json(root: Path) -> dict[str, str]:
    res = run_gitdag(root, "graph", "--format", "json")
    assert res.code == 0, res.err
    return {n["id"]: n["status"] for n in json.loads(res.out)["nodes"]}


def test_demo_graph_renders_every_node_with_its_status_and_screenshots(
    page: Any, demo_repo: Path, artifacts: Path
) -> None:
    expected = _graph_json(demo_repo)
    served = serve(demo_repo)
    try:
        page.goto(served.page_url)
        wait_graph(page)
        assert listed(page) == expected
        # The canvas drew every node (the view is fitted to the whole graph at first paint).
        assert page.evaluate("window.gitdagView.drawnNodes") == len(expected)
        assert page.evaluate("window.gitdagView.pos.size") == len(expected)
        page.screenshot(path=str(artifacts / "graph.png"))

        page.click("#nodes li[data-id=stats-median]")
        page.wait_for_selector("#panel-file")
        panel = page.inner_text("#panel")
        assert "id: stats-median" in page.inner_text("#panel-file")
        assert "Gitdag-Transition: merge" in panel and "merge_conflict" in panel
        rows = page.locator("#panel-attempts tr").count()
        assert rows == 1 + 4  # header, then run + merge of each of the two attempts
        page.wait_for_function(
            "[...document.querySelectorAll('#panel-runs pre')].some(p => p.textContent.length)"
        )
        page.screenshot(path=str(artifacts / "node-panel.png"))

        page.click("button[data-tab=timeline]")
        page.wait_for_selector(".tl-bar")
        nodes = page.evaluate(
            "[...new Set([...document.querySelectorAll('.tl-bar')].map(b => b.dataset.node))]"
        )
        assert sorted(nodes) == sorted(expected)
        page.screenshot(path=str(artifacts / "timeline.png"))

        page.click("button[data-tab=queue]")
        page.wait_for_selector("#queue h3")
        assert "merge stats-median: merging -> done" in page.inner_text("#queue")
    finally:
        stop(served)
    for name in ("graph.png", "node-panel.png", "timeline.png"):
        assert (artifacts / name).stat().st_size > 5000


def _slide_to(page: Any, commit: str) -> None:
    page.evaluate(
        """(commit) => {
            const i = window.gitdag.log.findIndex(e => e.commit === commit);
            const s = document.querySelector('#slider');
            s.value = String(window.gitdag.log.length - 1 - i);
            s.dispatchEvent(new Event('input'));
        }""",
        commit,
    )


def test_slider_before_a_completion_shows_the_node_running_and_diff_matches_the_cli(
    page: Any, demo_repo: Path
) -> None:
    lines = git(demo_repo, "log", "--format=%H %s", "dagain/state").splitlines()
    done = next(
        i for i, line in enumerate(lines) if line.endswith("complete verify: running -> done")
    )
    before = lines[done + 1].split()[0]  # the commit just before verify completed
    served = serve(demo_repo)
    try:
        page.goto(served.page_url)
        wait_graph(page)
        _slide_to(page, before)
        page.wait_for_selector("#nodes li[data-id=verify][data-status=running]", timeout=5000)
        assert "at " + before[:10] in page.inner_text("#at")
        page.click("#live-btn")
        page.wait_for_selector("#nodes li[data-id=verify][data-status=done]", timeout=5000)

        # The history tab's diff is `gitdag diff`'s.
        first = lines[-1].split()[0]
        page.click("button[data-tab=history]")
        page.select_option("#diff-a", first)
        page.select_option("#diff-b", before)
        page.click("#diff-go")
        page.wait_for_selector("#diff tr")
        shown = page.evaluate(
            "[...document.querySelectorAll('#diff tr')].map(r => r.dataset.id).filter(Boolean)"
        )
        res = run_gitdag(demo_repo, "diff", first, before, "--json")
        cli = json.loads(res.out)
        ids = [c["id"] for key in ("added", "removed", "changed") for c in cli[key]]
        assert shown == ids and ids
    finally:
        stop(served)


def test_export_opens_from_file_and_shows_the_same_graph(
    page: Any, demo_repo: Path, tmp_path: Path, artifacts: Path
) -> None:
    out = tmp_path / "site"
    res = run_gitdag(demo_repo, "ui", "--export", str(out))
    assert res.code == 0, res.err
    assert (out / "static" / "vendor" / "dagre.min.js").is_file()
    assert (out / "static" / "vendor" / "dagre.LICENSE").is_file()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((out / "index.html").as_uri())
    wait_graph(page)
    assert listed(page) == _graph_json(demo_repo)
    assert all(url.startswith("file://") for url in requests), requests
    # History works offline: before verify completed it was running.
    lines = git(demo_repo, "log", "--format=%H %s", "dagain/state").splitlines()
    done = next(
        i for i, line in enumerate(lines) if line.endswith("complete verify: running -> done")
    )
    _slide_to(page, lines[done + 1].split()[0])
    page.wait_for_selector("#nodes li[data-id=verify][data-status=running]", timeout=5000)
    page.click("#nodes li[data-id=words-unique]")
    page.wait_for_selector("#panel-file")
    assert "id: words-unique" in page.inner_text("#panel-file")
    page.screenshot(path=str(artifacts / "export.png"))
    again = run_gitdag(demo_repo, "ui", "--export", str(out))
    assert again.code == 2 and "not an empty directory" in again.err


def test_a_big_graph_is_drawn_in_planner_clusters_searchable_and_filterable(
    page: Any, repo: Path, tmp_path: Path, artifacts: Path
) -> None:
    assert run_gitdag(repo, "init").code == 0
    lines = ["nodes:", "  - {id: p0, title: root plan, kind: plan}"]
    for p in range(1, 11):
        lines.append(f"  - {{id: p{p}, title: plan {p}, kind: plan, parent: p0}}")
        for t in range(40):
            deps = f", deps: [p{p}-t{t - 1}]" if t % 4 else ""
            lines.append(f"  - {{id: p{p}-t{t}, title: task {t} of plan {p}, parent: p{p}{deps}}}")
    (tmp_path / "nodes.yaml").write_text("\n".join(lines) + "\n")
    assert run_gitdag(repo, "propose", "big", "--from-file", str(tmp_path / "nodes.yaml")).code == 0
    assert run_gitdag(repo, "apply-proposal", "big").code == 0
    assert run_gitdag(repo, "cancel", "p3-t7").code == 0
    served = serve(repo)
    try:
        page.goto(served.page_url)
        wait_graph(page)
        assert page.evaluate("window.gitdagView.pos.size") == 411
        # One box per planner: p0's (the sub-plans) and each sub-plan's 40 tasks, plus the top.
        clusters = page.evaluate("window.gitdagView.clusters.map(c => c.id).sort()")
        assert clusters == sorted(["", "p0", *(f"p{p}" for p in range(1, 11))])
        page.wait_for_function("window.gitdagView.refined", timeout=15000)
        assert len(listed(page)) == 300
        assert "and 111 more" in page.inner_text("#nodes li.more")
        page.screenshot(path=str(artifacts / "graph-411-nodes.png"))

        page.fill("#search", "of plan 10")
        page.wait_for_function("document.querySelectorAll('#nodes li[data-id]').length === 40")
        assert set(listed(page)) == {f"p10-t{t}" for t in range(40)}
        assert page.evaluate("window.gitdagView.match.size") == 40
        page.fill("#search", "")
        page.uncheck("#filters input[data-status=open]")
        page.wait_for_function("document.querySelectorAll('#nodes li[data-id]').length === 1")
        assert listed(page) == {"p3-t7": "cancelled"}
        assert page.evaluate("window.gitdagView.visible.size") == 1
    finally:
        stop(served)
