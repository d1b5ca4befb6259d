"""Time travel shows the graph OF a commit, live and in the export; the export's diff is gitdag's.

The history used: `keep`, then `gone` (depending on `keep`), then `other` (no deps): that commit is
OLD. Later, `other` gains a dependency on `keep` (a reviewed edit), `late` is added and the add of
`gone` is reverted. At OLD the page must show `gone` and its edge, not `late`, and `other` without
its later edge; at the head the reverse.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gitdag.store.state import StateStore
from gitdag.ui import data
from gitdag.ui.export import export
from tests.conftest import git, run_gitdag
from tests.ui.conftest import listed, serve, stop, wait_graph


def _ok(root: Path, *args: str) -> str:
    res = run_gitdag(root, *args)
    assert res.code == 0, res.err
    return res.out


def _history(repo: Path, tmp_path: Path) -> str:
    """Build the history above in `repo`; return OLD."""
    _ok(repo, "init")
    _ok(repo, "add", "keep", "--title", "Keep")
    _ok(repo, "add", "gone", "--title", "Gone", "--deps", "keep")
    added_gone = git(repo, "rev-parse", "dagain/state").strip()
    _ok(repo, "add", "other", "--title", "Other")
    old = git(repo, "rev-parse", "dagain/state").strip()
    edit = tmp_path / "wire.yaml"
    edit.write_text("nodes:\n  - {id: other, title: Other, deps: [keep]}\n")
    _ok(repo, "propose", "wire", "--from-file", str(edit))
    _ok(repo, "apply-proposal", "wire")
    _ok(repo, "add", "late", "--title", "Late")
    _ok(repo, "revert", added_gone)
    return old


def _slide_to(page: Any, commit: str | None) -> None:
    page.evaluate(
        """(commit) => {
            const G = window.gitdag, s = document.querySelector('#slider');
            const i = commit ? G.log.findIndex(e => e.commit === commit) : 0;
            s.value = String(G.log.length - 1 - i);
            s.dispatchEvent(new Event('input'));
        }""",
        commit,
    )


def _drawn(page: Any) -> dict[str, Any]:
    """What the canvas holds: laid-out ids, and each drawn node's deps."""
    return page.evaluate(
        """() => ({
            laid: [...window.gitdagView.pos.keys()].sort(),
            deps: Object.fromEntries(window.gitdagView.nodes.map(n => [n.id, n.deps])),
        })"""
    )


def _check_old_and_head(page: Any, old: str) -> None:
    assert sorted(listed(page)) == ["keep", "late", "other"]
    assert _drawn(page) == {
        "laid": ["keep", "late", "other"],
        "deps": {"keep": [], "late": [], "other": ["keep"]},
    }
    _slide_to(page, old)
    page.wait_for_selector("#nodes li[data-id=gone][data-status=open]", timeout=10000)
    assert listed(page) == {"keep": "open", "gone": "open", "other": "open"}
    assert _drawn(page) == {
        "laid": ["gone", "keep", "other"],
        "deps": {"gone": ["keep"], "keep": [], "other": []},
    }
    # The removed node's file, as it was at OLD.
    page.click("#nodes li[data-id=gone]")
    page.wait_for_function(
        "(document.querySelector('#panel-file') || {}).textContent?.includes('id: gone')"
    )
    assert "- keep" in page.inner_text("#panel-file")
    _slide_to(page, None)
    page.wait_for_selector("#nodes li[data-id=late]", timeout=10000)
    assert _drawn(page)["laid"] == ["keep", "late", "other"]


def test_the_slider_shows_the_graph_of_an_old_commit_live(
    page: Any, repo: Path, tmp_path: Path
) -> None:
    old = _history(repo, tmp_path)
    served = serve(repo)
    try:
        page.goto(served.page_url)
        wait_graph(page)
        _check_old_and_head(page, old)
        # While the slider is on OLD, a node added from another shell arrives (the log grows)
        # but the graph shown stays OLD's; back at the head it is there.
        _slide_to(page, old)
        page.wait_for_selector("#nodes li[data-id=gone]", timeout=10000)
        seen = page.evaluate("window.gitdag.log.length")
        _ok(repo, "add", "newer", "--title", "Newer")
        page.wait_for_function(f"window.gitdag.log.length > {seen}", timeout=10000)
        assert sorted(listed(page)) == ["gone", "keep", "other"]
        assert _drawn(page)["laid"] == ["gone", "keep", "other"]
        _slide_to(page, None)
        page.wait_for_selector("#nodes li[data-id=newer]", timeout=10000)
        assert _drawn(page)["laid"] == ["keep", "late", "newer", "other"]
    finally:
        stop(served)


def test_the_export_shows_the_graph_and_files_of_an_old_commit(
    page: Any, repo: Path, tmp_path: Path
) -> None:
    old = _history(repo, tmp_path)
    out = tmp_path / "site"
    _ok(repo, "ui", "--export", str(out))
    page.goto((out / "index.html").as_uri())
    wait_graph(page)
    _check_old_and_head(page, old)
    # The diff tab is `gitdag diff --json` for OLD against the head.
    got = page.evaluate(
        "([a, b]) => window.gitdagExportApi(`diff?a=${a}&b=${b}`)",
        [old, git(repo, "rev-parse", "dagain/state").strip()],
    )
    assert got == json.loads(_ok(repo, "diff", old, "dagain/state", "--json"))


def test_the_exports_diff_equals_gitdag_diff_for_the_pairs_it_offers(
    page: Any, demo_repo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "site"
    _ok(demo_repo, "ui", "--export", str(out))
    page.goto((out / "index.html").as_uri())
    wait_graph(page)
    commits = git(demo_repo, "log", "--format=%H", "dagain/state").split()
    # Every pair of a spread of the demo's commits (claims, completions with outputs, errors,
    # checkpoints, merges), both ways: the same diff as the store's, which `gitdag diff` prints.
    picks = list(dict.fromkeys([*commits[:: max(1, len(commits) // 12)], commits[-1]]))
    pairs = [(a, b) for a in picks for b in picks if a != b]
    shown = page.evaluate(
        "(pairs) => pairs.map(([a, b]) => window.gitdagExportApi(`diff?a=${a}&b=${b}`))", pairs
    )
    with StateStore.open(demo_repo) as store:
        expected = [data.diff_data(store, a, b) for a, b in pairs]
    for pair, js, py in zip(pairs, shown, expected, strict=True):
        assert js == py, pair
    assert any(d["changed"] for d in expected)
    # And one through the CLI itself.
    a, b = pairs[0]
    assert shown[0] == json.loads(_ok(demo_repo, "diff", a, b, "--json"))
    # The node panel shows the file as of the slider's commit: verify running before completion.
    lines = git(demo_repo, "log", "--format=%H %s", "dagain/state").splitlines()
    done = next(i for i, x in enumerate(lines) if x.endswith("complete verify: running -> done"))
    _slide_to(page, lines[done + 1].split()[0])
    page.wait_for_selector("#nodes li[data-id=verify][data-status=running]", timeout=5000)
    page.click("#nodes li[data-id=verify]")
    page.wait_for_function(
        "(document.querySelector('#panel-file') || {}).textContent?.includes('status: running')"
    )
    _slide_to(page, None)
    page.wait_for_function(
        "(document.querySelector('#panel-file') || {}).textContent?.includes('status: done')"
    )


def test_an_export_of_a_longer_history_than_its_window_says_what_it_holds(
    page: Any, repo: Path, tmp_path: Path
) -> None:
    old = _history(repo, tmp_path)  # 7 commits; the window holds the last 3, OLD is before them
    out = tmp_path / "site"
    with StateStore.open(repo) as store:
        export(store, out, window=3)
    page.goto((out / "index.html").as_uri())
    wait_graph(page)
    # Older commits still show their own graph ...
    _slide_to(page, old)
    page.wait_for_selector("#nodes li[data-id=gone]", timeout=10000)
    assert _drawn(page)["deps"] == {"gone": ["keep"], "keep": [], "other": []}
    # ... but not their files, and the panel says so.
    page.click("#nodes li[data-id=other]")
    page.wait_for_selector("#panel-file")
    assert "node files of the last 3 commits only" in page.inner_text("#panel-file")
    page.click("button[data-tab=history]")
    assert page.locator("#diff-a option").count() == 3
    assert "last 3 of 7 commits" in page.inner_text("#diff-note")
    # Within the window, the file is the one of the slider's commit: before the edit was applied
    # `other` had no deps; the first window commit is that edit.
    first = git(repo, "log", "--format=%H", "dagain/state").split()[2]
    _slide_to(page, first)
    page.wait_for_function(
        "(document.querySelector('#panel-file') || {}).textContent?.includes('- keep')"
    )
