"""`gitdag work`: a bug of gitdag around an attempt crashes (exit 3, a crash log) and spends
nothing; the world's error fails or holds the node as before (issue 14, part 4)."""

from __future__ import annotations

from pathlib import Path

from gitdag.core.model import ErrorKind, HoldKind, Status
from tests.remote.conftest import Daemon, build_cluster, command, finish, task


def crash_logs(clone: Path) -> list[str]:
    logs = clone / ".dagain" / "local" / "logs"
    return [p.read_text() for p in sorted(logs.glob("crash-*.log"))] if logs.is_dir() else []


def test_a_bug_starting_an_attempt_crashes_and_gives_it_back(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    cluster = build_cluster(tmp_path, daemons, [command("a", tmp_path / "runs.log")], serve=False)
    clone = cluster.clone("w0")
    code, err = finish(cluster.work(clone, GITDAG_FAIL_AT="attempt.start:TypeError"))
    assert code == 3 and "unexpected error; traceback in" in err, err
    logs = crash_logs(clone)
    assert len(logs) == 1 and "TypeError: injected at attempt.start" in logs[0], logs
    node = cluster.nodes()["a"]
    assert node.status is Status.OPEN and node.attempts - node.attempt_base == 0, node
    code, err = finish(cluster.work(clone))
    assert code == 0, err
    node = cluster.nodes()["a"]
    assert node.status is Status.DONE and node.attempts - node.attempt_base == 1


def test_an_os_error_starting_an_attempt_still_fails_it(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    cluster = build_cluster(tmp_path, daemons, [command("a", tmp_path / "runs.log")], serve=False,
                            backoff=0)  # fmt: skip
    clone = cluster.clone("w0")
    code, err = finish(cluster.work(clone, GITDAG_FAIL_AT="attempt.start:EIO"))
    assert code == 1, err
    assert crash_logs(clone) == []
    node = cluster.nodes()["a"]
    assert node.status is Status.FAILED and node.error is not None, node
    assert node.error.kind is ErrorKind.SPAWN_ERROR and "Input/output error" in node.error.summary


def test_a_bug_in_a_merge_crashes_and_leaves_the_node_merging(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    # A short lease: the next worker adopts the merge its crashed predecessor left.
    cluster = build_cluster(tmp_path, daemons, [task("t")], serve=False, lease=5)
    clone = cluster.clone("w0")
    code, err = finish(cluster.work(clone, GITDAG_FAIL_AT="merge.integrate:KeyError"))
    assert code == 3, err
    assert any("KeyError" in log for log in crash_logs(clone)), crash_logs(clone)
    node = cluster.nodes()["t"]
    assert node.status is Status.MERGING and node.error is None and node.attempts == 1, node
    code, err = finish(cluster.work(clone))
    assert code == 0, err
    assert cluster.nodes()["t"].status is Status.DONE
    assert [r[:2] for r in cluster.rows()] == [("t", 1)]  # its agent ran once


def test_an_os_error_in_a_merge_still_holds_the_node(tmp_path: Path, daemons: list[Daemon]) -> None:
    cluster = build_cluster(tmp_path, daemons, [task("t")], serve=False)
    clone = cluster.clone("w0")
    code, err = finish(cluster.work(clone, GITDAG_FAIL_AT="merge.integrate:EIO"))
    assert code == 1 and "stopped: waiting for a repair (git_error" in err, err
    assert crash_logs(clone) == []
    node = cluster.nodes()["t"]
    assert node.status is Status.MERGING and node.hold is not None, node
    assert node.hold.kind is HoldKind.GIT_ERROR and "Input/output error" in node.hold.reason
