"""`gitdag doctor` in clones without a local dagain/state: a worker's clone, a plain clone."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.conftest import git
from tests.remote.conftest import Daemon, build_cluster, command, finish


def test_worker_clone_is_not_told_to_init(tmp_path: Path, daemons: list[Daemon]) -> None:
    cluster = build_cluster(tmp_path, daemons, [command("a", tmp_path / "runs.log")])
    clone = cluster.clone("w0")
    code, err = finish(cluster.work(clone, "--idle-exit", "5"))
    assert code == 0, err
    assert git(clone, "branch", "--list", "dagain/state") == ""  # a worker keeps no local branch

    res = cluster.gitdag(clone, "doctor")
    assert res.code == 0, res.out + res.err
    assert "a worker's clone of origin" in res.out
    assert "gitdag status --remote origin" in res.out
    assert "gitdag init" not in res.out + res.err
    data = json.loads(cluster.gitdag(clone, "doctor", "--json").out)
    assert data["findings"] == [] and "origin" in data["clone"]

    # What a killed worker leaves: a result that never landed, a lock on the tracking ref.
    pending = clone / ".dagain" / "local" / "pending"
    pending.mkdir(parents=True, exist_ok=True)
    (pending / "a.json").write_text(json.dumps({"attempt": 1, "result": {}, "work": None}))
    lock = clone / ".git" / "refs" / "gitdag" / "remotes" / "origin" / "state.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("")
    old = time.time() - 60
    os.utime(lock, (old, old))
    # A runner that no longer resolves in this clone's config.
    config = clone / ".dagain" / "config.yaml"
    config.write_text(config.read_text().replace("cmd: sh ", "cmd: no-such-runner-xyz "))

    res = cluster.gitdag(clone, "doctor", "--json")
    assert res.code == 1, res.err
    found = {f["check"]: f for f in json.loads(res.out)["findings"]}
    assert set(found) == {"pending", "lock", "config"}, found
    assert "a attempt 1" in found["pending"]["problem"]
    assert found["pending"]["repair"].startswith("gitdag work --remote origin")
    assert "state.lock" in found["lock"]["problem"] and found["lock"]["fixable"]
    assert "fake" in found["config"]["problem"]

    fixed = cluster.gitdag(clone, "doctor", "--fix")
    assert not lock.exists(), fixed.out
    assert "gitdag init" not in fixed.out


def test_plain_clone_is_told_where_the_graph_is(tmp_path: Path, daemons: list[Daemon]) -> None:
    cluster = build_cluster(tmp_path, daemons, [command("a", tmp_path / "runs.log")])
    clone = cluster.clone("plain")
    res = cluster.gitdag(clone, "doctor")
    assert res.code == 1, res.out + res.err
    assert "no local dagain/state branch, but remote origin has one" in res.out
    assert "git fetch origin dagain/state:dagain/state" in res.out
    assert "gitdag work --remote origin" in res.out
    assert "gitdag init" not in res.out
    # Following the advice makes a clone the doctor is content with.
    git(clone, "fetch", "-q", "origin", "dagain/state:dagain/state")
    again = cluster.gitdag(clone, "doctor")
    assert "no local dagain/state" not in again.out, again.out


def test_repository_without_a_graph_is_told_to_init(tmp_path: Path) -> None:
    from tests.conftest import make_repo, run_gitdag

    repo = make_repo(tmp_path / "r")
    res = run_gitdag(repo, "doctor")
    assert res.code == 1
    assert "no dagain/state branch" in res.out and "gitdag init" in res.out
