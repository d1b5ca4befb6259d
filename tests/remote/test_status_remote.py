"""`gitdag status` in a clone whose graph has a remote shows the remote's graph (issue 13).

Against the real smart-HTTP server: the remote's graph with a line comparing the local copy;
the server down: the local graph with one warning naming the remote, quickly; `--local`: the
local graph, no network.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.remote.conftest import Daemon, build_cluster, task
from tests.timing import within


def _named(clone: Path) -> None:
    config = clone / ".dagain" / "config.yaml"
    config.write_text(config.read_text().replace("remote:\n", "remote:\n  name: origin\n"))


def _local_copy(clone: Path) -> None:
    subprocess.run(["git", "fetch", "-q", "origin", "dagain/state:dagain/state"], cwd=clone,
                   check=True)  # fmt: skip


def test_status_shows_the_remote_graph_and_how_the_local_copy_compares(
    tmp_path: Path, daemons: list[Daemon], monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = build_cluster(tmp_path, daemons, [task("a")], serve="http")
    laptop, other = cluster.clone("laptop"), cluster.clone("other")
    _named(laptop)
    _local_copy(laptop)
    added = cluster.gitdag(other, "add", "b", "--title", "b", "--remote", "origin")
    assert added.code == 0, added.err
    res = cluster.gitdag(laptop, "status")
    assert res.code == 0, res.err
    assert "2 nodes" in res.out, res.out
    assert "graph: origin's dagain/state" in res.out
    assert "1 transition(s) behind: gitdag sync origin" in res.out, res.out
    data = json.loads(cluster.gitdag(laptop, "status", "--json").out)
    assert data["total"] == 2
    assert data["graph"] == {"source": "remote", "remote": "origin", "behind": 1, "ahead": 0,
                             "warning": None}  # fmt: skip
    # --local: this clone's copy, nothing fetched, nothing said about the remote.
    local = cluster.gitdag(laptop, "status", "--local")
    assert local.code == 0 and "1 nodes" in local.out and "graph:" not in local.out
    local_json = json.loads(cluster.gitdag(laptop, "status", "--local", "--json").out)
    assert local_json["graph"]["source"] == "local" and local_json["graph"]["remote"] is None
    # status is read-only: the local branch did not move.
    synced = cluster.gitdag(laptop, "status", "--local")
    assert "1 nodes" in synced.out
    both = cluster.gitdag(laptop, "status", "--local", "--remote", "origin")
    assert both.code == 2 and "not both" in both.err
    # `gitdag ui` says at start that its page shows this clone's copy, and how it compares.
    from gitdag.cli.status_remote import ui_note
    from gitdag.store.state import StateStore

    monkeypatch.chdir(laptop)
    with StateStore.open(laptop) as store:
        note = ui_note(store)
    assert note is not None and "this page shows this clone's dagain/state" in note
    assert "1 transition(s) behind and 0 ahead of origin's: gitdag sync origin" in note, note


def test_status_with_the_remote_down_shows_the_local_graph_with_a_warning(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    cluster = build_cluster(tmp_path, daemons, [task("a")], serve="http")
    server = daemons[-1]
    laptop = cluster.clone("laptop")
    _local_copy(laptop)
    # The upstream of dagain/state names the graph's remote (no remote.name in the config).
    subprocess.run(["git", "branch", "-q", "--set-upstream-to=origin/dagain/state",
                    "dagain/state"], cwd=laptop, check=True)  # fmt: skip
    config = laptop / ".dagain" / "config.yaml"
    config.write_text(config.read_text().replace("retry_for_s: 3", "retry_for_s: 600"))
    up = cluster.gitdag(laptop, "status")
    assert up.code == 0 and "this clone's copy is up to date" in up.out, up.out + up.err
    server.stop()
    began = time.monotonic()
    res = cluster.gitdag(laptop, "status")
    took = time.monotonic() - began
    assert res.code == 0, res.err
    assert "1 nodes" in res.out
    warnings = [ln for ln in res.err.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "remote origin not reached" in warnings[0], res.err
    assert took < within(8), took  # quick, not remote.retry_for_s (600 s)
    data = json.loads(cluster.gitdag(laptop, "status", "--json").out)
    assert data["graph"]["source"] == "local" and "not reached" in data["graph"]["warning"]
    # --remote NAME asked for that remote: unreachable stays an error.
    config.write_text(config.read_text().replace("retry_for_s: 600", "retry_for_s: 1"))
    explicit = cluster.gitdag(laptop, "status", "--remote", "origin", timeout=120)
    assert explicit.code == 2
