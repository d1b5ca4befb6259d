"""`gitdag ui --export` writes the graph the page shows: the remote's when the graph has one.

Real parts: a bare remote served by git daemon (tests/remote/conftest.py), real clones, the real
`gitdag` CLI; the export is read back from the `data.js` it wrote (no browser needed: the
page reads that object, and the page itself is tested in test_ui_pages.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git
from tests.remote.conftest import Cluster, Daemon, build_cluster, task
from tests.remote.test_steer import laptop
from tests.remote.test_sync import with_default_remote


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Git servers started by a test (tests/remote/conftest.py), stopped after it."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.stop()


def _data(out: Path) -> dict[str, Any]:
    text = (out / "data.js").read_text(encoding="utf-8")
    prefix = "window.GITDAG_EXPORT = "
    assert text.startswith(prefix), text[:80]
    found: dict[str, Any] = json.loads(text[len(prefix) :].rstrip().rstrip(";"))
    return found


def _behind(tmp_path: Path, daemons: list[Daemon]) -> tuple[Cluster, Path]:
    """A laptop whose graph lives on origin, where another clone added `c` since its fetch."""
    cluster = build_cluster(tmp_path, daemons, [task("a"), task("b", deps=["a"])],
                            serve="daemon")  # fmt: skip
    lap = laptop(cluster)
    with_default_remote(lap)
    added = cluster.gitdag(cluster.clone("other"), "add", "c", "--title", "c", "--remote",
                           "origin")  # fmt: skip
    assert added.code == 0, added.err
    return cluster, lap


def test_the_export_holds_the_remote_graph_the_page_shows(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """Default remote: the remote's graph (with `c`), said in the output and in the page's bar;
    this clone's `dagain/state` does not move. `--local`: this clone's copy (without `c`)."""
    cluster, lap = _behind(tmp_path, daemons)
    local = git(lap, "rev-parse", "dagain/state").strip()
    head = cluster.state_head()
    res = cluster.gitdag(lap, "ui", "--export", str(tmp_path / "shown"))
    assert res.code == 0, res.err
    assert res.out.startswith(f"exported origin's dagain/state ({head[:12]}) to "), res.out
    data = _data(tmp_path / "shown")
    assert {n["id"] for n in data["graph"]["nodes"]} == {"a", "b", "c"}
    source = data["graph"]["source"]
    assert source["source"] == "remote" and source["remote"] == "origin", source
    assert source["head"] == head and source["behind"] == 1 and source["ahead"] == 0, source
    assert "1 transition(s) behind" in source["line"], source
    assert data["log"][0]["commit"] == head  # the history is the remote's
    assert git(lap, "rev-parse", "dagain/state").strip() == local  # nothing local moved

    mine = cluster.gitdag(lap, "ui", "--export", str(tmp_path / "mine"), "--local", "--json")
    assert mine.code == 0, mine.err
    said = json.loads(mine.out)
    assert said["graph"]["source"] == "local" and said["export"].endswith("index.html")
    assert {n["id"] for n in _data(tmp_path / "mine")["graph"]["nodes"]} == {"a", "b"}
    text = cluster.gitdag(lap, "ui", "--export", str(tmp_path / "mine2"), "--local")
    assert text.out.startswith(f"exported this clone's dagain/state ({local[:12]}) to "), text.out


def test_an_export_when_the_remote_is_not_reached(tmp_path: Path, daemons: list[Daemon]) -> None:
    """The default remote down: this clone's graph, with one warning line (exit 0).
    `--remote origin` down: exit 2, one line, nothing written."""
    cluster, lap = _behind(tmp_path, daemons)
    daemons[-1].stop()
    res = cluster.gitdag(lap, "ui", "--export", str(tmp_path / "fallback"))
    assert res.code == 0, res.err
    warnings = [ln for ln in res.err.splitlines() if ln.strip()]
    assert len(warnings) == 1 and "remote origin not reached" in warnings[0], res.err
    assert "exported this clone's dagain/state" in warnings[0], res.err
    assert res.out.startswith("exported this clone's dagain/state"), res.out
    data = _data(tmp_path / "fallback")
    assert {n["id"] for n in data["graph"]["nodes"]} == {"a", "b"}
    assert data["graph"]["source"]["warning"] == warnings[0].removeprefix("gitdag: warning: ")

    asked = cluster.gitdag(lap, "ui", "--export", str(tmp_path / "asked"), "--remote", "origin")
    assert asked.code == 2, (asked.out, asked.err)
    assert len(asked.err.strip().splitlines()) == 1 and "remote origin" in asked.err, asked.err
    assert not (tmp_path / "asked").exists()
