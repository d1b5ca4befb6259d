"""Never behind: `gitdag sync` and `gitdag run` on a graph shared with CI workers.

Against the real smart-HTTP server (`git http-backend` with basic auth) and git daemon on
127.0.0.1 (tests/remote/conftest.py).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from gitdag.core.model import Status
from tests.conftest import git, make_repo
from tests.remote.conftest import (
    CONFIG,
    RUNNER,
    TARGET,
    Cluster,
    Daemon,
    build_cluster,
    command,
    finish,
    task,
    wait_for,
)
from tests.remote.test_steer import laptop, local_equals_remote
from tests.timing import within


def with_default_remote(clone: Path) -> None:
    """`remote.name: origin` in the clone's config: the graph lives on origin."""
    (clone / ".dagain" / "config.yaml").write_text(
        CONFIG.format(runner=RUNNER) + "  name: origin\n"
    )


def validate_remote(cluster: Cluster, clone: Path) -> None:
    git(clone, "fetch", "-q", "origin")
    res = cluster.gitdag(clone, "validate", "..origin/dagain/state")
    assert res.code == 0, res.out + res.err


@pytest.mark.parametrize("serve", ["http", "daemon"])
def test_run_after_a_ci_worker_does_not_run_its_node_again(
    tmp_path: Path, daemons: list[Daemon], serve: str
) -> None:
    log = tmp_path / "runs.log"
    nodes = [command("x", log), command("y", log, deps=["x"]), task("z", deps=["y"])]
    cluster = build_cluster(tmp_path, daemons, nodes, serve=serve)
    lap, ci = laptop(cluster), cluster.clone("ci")
    stale = git(lap, "rev-parse", "dagain/state").strip()
    code, err = finish(cluster.work(ci, "--max-nodes", "1"))  # CI runs x, and only x
    assert code == 0, err
    assert [(r[0], r[3]) for r in cluster.rows()] == [("x", str(ci))]
    with_default_remote(lap)
    res = cluster.gitdag(lap, "run", "--no-color", timeout=180)
    assert res.code == 0, res.err
    assert "fast-forwarded" in res.err
    runs = Counter(r[0] for r in cluster.rows())
    assert runs == Counter({"x": 1, "y": 1, "z": 1}), cluster.rows()
    assert {r[3] for r in cluster.rows() if r[0] != "x"} == {str(lap)}
    assert git(lap, "rev-parse", "dagain/state").strip() != stale
    assert local_equals_remote(cluster, lap)
    assert {n.status for n in cluster.nodes().values()} == {Status.DONE}
    assert "out/z.txt" in cluster.remote_git("ls-tree", "-r", "--name-only", TARGET)
    # The reverse: a CI worker afterwards finds nothing to run.
    code, err = finish(cluster.work(ci))
    assert code == 0 and "all done" in err, err
    assert len(cluster.rows()) == 3
    status = json.loads(cluster.gitdag(lap, "status", "--json").out)
    assert status["counts"]["done"] == 3
    validate_remote(cluster, lap)


def test_the_upstream_of_dagain_state_is_the_default_remote(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    cluster = build_cluster(tmp_path, daemons, [task("a")], serve="http")
    lap = laptop(cluster)
    git(lap, "branch", "--set-upstream-to=origin/dagain/state", "dagain/state")
    before = cluster.state_head()
    res = cluster.gitdag(lap, "cancel", "a")
    assert res.code == 0, res.err
    assert cluster.state_head() != before and local_equals_remote(cluster, lap)
    # --local leaves the remote alone; the next sync pushes the local transition.
    res = cluster.gitdag(lap, "retry", "a", "--local")
    assert res.code == 0, res.err
    assert cluster.state_head() != git(lap, "rev-parse", "dagain/state").strip()
    res = cluster.gitdag(lap, "sync")
    assert res.code == 0, res.err
    assert "pushed 1 local transition(s) to origin" in res.out
    assert local_equals_remote(cluster, lap)
    assert cluster.nodes()["a"].status is Status.OPEN


def test_diverged_local_transitions_are_replayed_on_the_remote(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    log = tmp_path / "runs.log"
    cluster = build_cluster(tmp_path, daemons, [command("x", log), task("y", deps=["x"])],
                            serve="http")  # fmt: skip
    lap, ci = laptop(cluster), cluster.clone("ci")
    for args in (["add", "z", "--title", "Z", "--deps", "x"], ["cancel", "y"], ["pause"]):
        res = cluster.gitdag(lap, *args, "--local")
        assert res.code == 0, res.err
    code, err = finish(cluster.work(ci, "--max-nodes", "1"))  # x runs on CI meanwhile
    assert code == 0, err
    before = cluster.state_head()
    # A steering command refuses to leave the local transitions behind.
    res = cluster.gitdag(lap, "resume", "--remote", "origin")
    assert res.code == 2 and "gitdag sync origin" in res.err
    assert cluster.state_head() == before
    res = cluster.gitdag(lap, "sync", "origin", "--json")
    assert res.code == 0, res.err
    done = json.loads(res.out)
    assert done["action"] == "replayed" and done["pushed"] == 3 and done["skipped"] == 0
    titles = cluster.remote_git("log", "--format=%s", f"{before}..dagain/state").splitlines()
    assert [t.split(":")[0] for t in reversed(titles)] == ["add z", "cancel y", "pause graph"]
    body = cluster.remote_git("log", "-1", "--format=%B", "dagain/state")
    assert "Gitdag-Replayed: " in body
    nodes = cluster.nodes()
    assert nodes["x"].status is Status.DONE and nodes["y"].status is Status.CANCELLED
    assert nodes["z"].status is Status.OPEN and nodes["z"].deps == ("x",)
    assert local_equals_remote(cluster, lap)
    validate_remote(cluster, lap)
    again = cluster.gitdag(lap, "sync", "origin")
    assert again.code == 0 and "up to date" in again.out, again.err
    # A steering command now lands as usual.
    res = cluster.gitdag(lap, "resume", "--remote", "origin")
    assert res.code == 0, res.err


def test_a_conflicting_local_state_is_refused_never_pushed_over(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    log = tmp_path / "runs.log"
    cluster = build_cluster(tmp_path, daemons, [command("x", log)], serve="http")
    lap, ci = laptop(cluster), cluster.clone("ci")
    res = cluster.gitdag(lap, "cancel", "x", "--local")  # while CI runs x to done
    assert res.code == 0, res.err
    code, err = finish(cluster.work(ci, "--max-nodes", "1"))
    assert code == 0, err
    remote, local = cluster.state_head(), git(lap, "rev-parse", "dagain/state").strip()
    res = cluster.gitdag(lap, "sync", "origin")
    assert res.code == 2, res.err
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and "conflicting node(s) x" in lines[0] and "status" in lines[0]
    assert "<<<<<<<" not in res.err
    assert cluster.state_head() == remote and git(lap, "rev-parse", "dagain/state").strip() == local
    with_default_remote(lap)
    res = cluster.gitdag(lap, "run", "--no-color")
    assert res.code == 2 and "conflicting node(s) x" in res.err, res.err
    assert [r[0] for r in cluster.rows()] == ["x"]  # nothing ran here
    assert cluster.state_head() == remote
    # The way out: take the remote's graph (the local transition stays in the reflog).
    res = cluster.gitdag(lap, "sync", "--discard-local")
    assert res.code == 0 and "1 local transition(s) dropped" in res.out, res.err
    assert local_equals_remote(cluster, lap)
    assert cluster.nodes()["x"].status is Status.DONE


def test_merges_made_here_travel_with_the_graph(tmp_path: Path, daemons: list[Daemon]) -> None:
    """A laptop ran nodes on its own (`run --local`): sync pushes the graph and the target."""
    cluster = build_cluster(tmp_path, daemons, [task("t")], serve="http")
    lap = laptop(cluster)
    git(lap, "branch", TARGET, f"origin/{TARGET}")
    res = cluster.gitdag(lap, "run", "--local", "--no-color", timeout=120)
    assert res.code == 0, res.err
    assert cluster.nodes()["t"].status is Status.OPEN
    res = cluster.gitdag(lap, "sync", "origin")
    assert res.code == 0, res.err
    assert f"with {TARGET}" in res.out
    assert cluster.nodes()["t"].status is Status.DONE
    assert "out/t.txt" in cluster.remote_git("ls-tree", "-r", "--name-only", TARGET)
    assert local_equals_remote(cluster, lap)


def test_sync_publishes_a_graph_the_remote_does_not_have(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    cluster = build_cluster(tmp_path, daemons, [task("a")], serve="http")
    fresh = make_repo(tmp_path / "fresh")
    res = cluster.gitdag(fresh, "init", "--goal", "g")
    assert res.code == 0, res.err
    empty = cluster.bare.parent / "empty.git"
    git(tmp_path, "init", "-q", "--bare", str(empty))
    git(fresh, "remote", "add", "origin", cluster.url.replace("project.git", "empty.git"))
    res = cluster.gitdag(fresh, "sync", "origin")
    assert res.code == 0, res.err
    assert "pushed" in res.out and TARGET in res.out
    head = git(fresh, "rev-parse", "dagain/state").strip()
    assert git(empty, "rev-parse", "dagain/state").strip() == head
    assert git(empty, "rev-parse", TARGET).strip() == git(fresh, "rev-parse", TARGET).strip()


def test_run_watch_with_a_remote_takes_new_work_until_interrupted(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    log = tmp_path / "runs.log"
    cluster = build_cluster(tmp_path, daemons, [command("x", log)], serve="http")
    lap, other = laptop(cluster), cluster.clone("other")
    with_default_remote(lap)
    said = tmp_path / "run.err"
    with said.open("w") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gitdag", "run", "--watch", "--no-color"], cwd=lap,
            env=cluster.env(), stdout=subprocess.DEVNULL, stderr=err_file, text=True,
        )  # fmt: skip
    cluster.procs.append(proc)

    def watching(times: int) -> bool:
        return said.read_text().count("watching origin's graph") >= times

    try:
        wait_for(lambda: watching(1), within(90), "x done, then watching")
        res = cluster.gitdag(other, "add", "y", "--title", "Y", "--kind", "command", "--run",
                             f"echo y 1 $$ {lap} >> {log}", "--remote", "origin")  # fmt: skip
        assert res.code == 0, res.err
        wait_for(lambda: watching(2), within(90), "y done by the watcher, then watching again")
        proc.send_signal(signal.SIGINT)
        # Prompt even inside a call the remote answers slowly (a loaded http-backend): the
        # signal cuts the call short (remote/link.py), giving the node back gets 5 s at most.
        code = proc.wait(timeout=within(10))
    finally:
        cluster.stop_all()
    assert code == 130, said.read_text()
    assert cluster.nodes()["y"].status is Status.DONE
    assert [r[0] for r in cluster.rows()] == ["x", "y"]


def test_a_sync_that_loses_a_race_replays_again_on_the_new_head(
    tmp_path: Path, daemons: list[Daemon], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitdag.remote.steer import open_remote
    from gitdag.remote.sync import sync
    from gitdag.store.remote import RemoteState

    cluster = build_cluster(tmp_path, daemons, [task("a"), task("b")], serve="http")
    lap, other = laptop(cluster), cluster.clone("other")
    assert cluster.gitdag(lap, "add", "mine", "--title", "M", "--local").code == 0
    assert cluster.gitdag(other, "cancel", "b", "--remote", "origin").code == 0  # diverged
    real = RemoteState.push
    pushes: list[str] = []

    def push(self: RemoteState, updates: list[object], **kw: object) -> object:
        pushes.append(cluster.state_head())
        if len(pushes) == 1:  # someone lands first, between our fetch and our push
            assert cluster.gitdag(other, "pause", "--remote", "origin").code == 0
        return real(self, updates, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(RemoteState, "push", push)
    state = open_remote(lap, "origin", fetch=False)
    try:
        synced = sync(state)
    finally:
        state.close()
    assert synced.action == "replayed" and synced.pushed == 1 and len(pushes) == 2
    titles = cluster.remote_git("log", "--format=%s", "dagain/state").splitlines()
    assert titles[0].startswith("add mine") and titles[1].startswith("pause")
    assert titles[2].startswith("cancel b")
    assert sum(t.startswith("add mine") for t in titles) == 1
    assert local_equals_remote(cluster, lap)
