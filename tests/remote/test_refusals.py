"""A remote that refuses pushes or cannot be reached: a clear error, exit 2, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitdag.core.model import ErrorKind, Status
from tests.conftest import git
from tests.remote.conftest import (
    Cluster,
    Daemon,
    build_cluster,
    command,
    finish,
    free_port,
    start_daemon,
    task,
)
from tests.remote.test_outage import _retry_for

REFUSE_ALL = "#!/bin/sh\necho 'pushes are closed here' >&2\nexit 1\n"
# Refuses result commits only: claims land, the worker runs the node, its result is refused.
REFUSE_RESULTS = """#!/bin/sh
while read old new ref; do
    if [ "$ref" = refs/heads/dagain/state ]; then
        case "$(git log -1 --format=%s "$new")" in
            complete*) echo "results are not accepted here" >&2; exit 1 ;;
        esac
    fi
done
exit 0
"""


def hook(cluster: Cluster, text: str) -> None:
    path = cluster.bare / "hooks" / "pre-receive"
    path.write_text(text)
    path.chmod(0o755)


def unchanged(cluster: Cluster, head: str, clone: Path) -> None:
    assert cluster.state_head() == head
    assert cluster.rows() == []  # no runner ran
    assert git(clone, "branch", "--list", "dagain/state", "dagain/work/*") == ""


def test_read_only_daemon(tmp_path: Path, daemons: list[Daemon]) -> None:
    cluster = build_cluster(tmp_path, daemons, [command("a", tmp_path / "runs.log")])
    read_only = start_daemon(cluster.bare.parent, receive_pack=False)
    daemons.append(read_only)
    clone = cluster.clone("w0", read_only.url("project.git"))
    head = cluster.state_head()
    res = cluster.gitdag(clone, "work", "--remote", "origin", "--poll", "0.2")
    assert res.code == 2, res.err
    assert "remote origin" in res.err and "push" in res.err
    assert "Traceback" not in res.err
    unchanged(cluster, head, clone)
    # Reading still works: the graph as the remote has it.
    status = cluster.gitdag(clone, "status", "--remote", "origin")
    assert status.code == 0 and "1 nodes" in status.out


def test_hook_refusal(tmp_path: Path, daemons: list[Daemon]) -> None:
    cluster = build_cluster(tmp_path, daemons, [command("a", tmp_path / "runs.log")], serve=False)
    hook(cluster, REFUSE_ALL)
    clone = cluster.clone("w0")
    head = cluster.state_head()
    res = cluster.gitdag(clone, "work", "--remote", "origin")
    assert res.code == 2, res.err
    assert "refused refs/heads/dagain/state" in res.err and "pre-receive hook declined" in res.err
    unchanged(cluster, head, clone)


def test_unreachable(tmp_path: Path, daemons: list[Daemon]) -> None:
    cluster = build_cluster(tmp_path, daemons, [command("a", tmp_path / "runs.log")])
    clone = cluster.clone("w0")
    git(clone, "remote", "set-url", "origin", f"git://127.0.0.1:{free_port()}/project.git")
    _retry_for(clone, 1)  # refused at once, tried again for 1 s (not the cluster's 3 s)
    head = cluster.state_head()
    for args in (("work", "--remote", "origin"), ("status", "--remote", "origin")):
        res = cluster.gitdag(clone, *args)
        assert res.code == 2, res.err
        assert "remote origin" in res.err and "unable to connect" in res.err
    unchanged(cluster, head, clone)
    missing = cluster.gitdag(clone, "work", "--remote", "upstream")
    assert missing.code == 2 and "no git remote named 'upstream'" in missing.err


def test_result_refused_keeps_the_work_locally(tmp_path: Path, daemons: list[Daemon]) -> None:
    cluster = build_cluster(tmp_path, daemons, [task("t")], serve=False)
    hook(cluster, REFUSE_RESULTS)
    clone = cluster.clone("w0")
    code, err = finish(cluster.work(clone))
    assert code == 2, err
    assert "results are not accepted here" in err
    # The claim landed; the result did not: the node stays running on the remote until its
    # lease runs out, and the work is all still here.
    node = cluster.nodes()["t"]
    assert node.status is Status.RUNNING and node.attempts == 1
    assert [r[:2] for r in cluster.rows()] == [("t", 1)]
    assert git(clone, "show", "dagain/work/t:out/t.txt").strip() == "t"
    assert (clone / ".dagain" / "local" / "runs" / "t" / "1" / "result.json").is_file()
    assert cluster.remote_git("branch", "--list", "dagain/work/*") == ""


def test_a_refused_result_is_pushed_again_without_running_the_agent(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    cluster = build_cluster(tmp_path, daemons, [task("t")], serve=False)
    hook(cluster, REFUSE_RESULTS)
    clone = cluster.clone("w0")
    code, err = finish(cluster.work(clone))
    assert code == 2 and "results are not accepted here" in err, err
    assert (clone / ".dagain" / "local" / "pending" / "t.json").is_file()
    (cluster.bare / "hooks" / "pre-receive").unlink()  # the repair
    code, err = finish(cluster.work(clone))
    assert code == 0, err
    assert "pushing the kept result of attempt 1 again" in err
    node = cluster.nodes()["t"]
    assert node.status is Status.DONE and node.attempts == 1 and node.error is None
    assert [r[:2] for r in cluster.rows()] == [("t", 1)]  # its agent ran once
    assert cluster.remote_git("show", "dagain/integration:out/t.txt").strip() == "t"
    assert not (clone / ".dagain" / "local" / "pending" / "t.json").exists()
    assert not any(nid.startswith("escalate") for nid in cluster.nodes())


def test_work_refuses_a_missing_runner_executable_before_any_claim(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    cluster = build_cluster(tmp_path, daemons, [task("t")], serve=False)
    clone = cluster.clone("w0")
    cfg = clone / ".dagain" / "config.yaml"
    cfg.write_text(cfg.read_text().replace("cmd: sh ", "cmd: no-such-agent-cli "))
    head = cluster.state_head()
    res = cluster.gitdag(clone, "work", "--remote", "origin")
    assert res.code == 2, res.err
    assert (
        "runner 'fake'" in res.err and "no-such-agent-cli" in res.err and "config.yaml:4" in res.err
    )
    assert cluster.state_head() == head and cluster.rows() == []


def test_checkout_without_config(tmp_path: Path, daemons: list[Daemon]) -> None:
    """A CI job that checked out dagain/state has no runners: refused before anything is claimed."""
    cluster = build_cluster(tmp_path, daemons, [command("a", tmp_path / "runs.log")], serve=False)
    clone = cluster.clone("w0")
    git(clone, "checkout", "-q", "--detach", "origin/dagain/state")
    head = cluster.state_head()
    res = cluster.gitdag(clone, "work", "--remote", "origin")
    assert res.code == 2 and "config.yaml: missing" in res.err, res.err
    unchanged(cluster, head, clone)


def test_stale_tracking_ref_lock_of_a_killed_worker(tmp_path: Path, daemons: list[Daemon]) -> None:
    """kill -9 in the middle of a ref update leaves a `.lock`: it must not wedge the clone."""
    import os
    import time

    cluster = build_cluster(tmp_path, daemons, [command("a", tmp_path / "runs.log")], serve=False)
    clone = cluster.clone("w0")
    assert cluster.gitdag(clone, "status", "--remote", "origin").code == 0
    lock = clone / ".git" / "refs" / "gitdag" / "remotes" / "origin" / "state.lock"
    lock.write_text("")
    old = time.time() - 60
    os.utime(lock, (old, old))
    # The remote moves, so the next fetch must update the locked ref.
    added = cluster.gitdag(cluster.seed, "add", "b", "--kind", "command", "--run", "true",
                           "--title", "b")  # fmt: skip
    assert added.code == 0, added.err
    git(cluster.seed, "push", "-q", str(cluster.bare), "dagain/state")
    res = cluster.gitdag(clone, "status", "--remote", "origin")
    assert res.code == 0, res.err
    assert "2 nodes" in res.out and not lock.exists()
    lock.write_text("")  # fresh: only the worker, holding the clone's lock, may clear it
    code, err = finish(cluster.work(clone))
    assert code == 0, err
    assert sorted(r[0] for r in cluster.rows()) == ["a"]


# The server refuses one node's branch (as GitHub refuses a workflow token's push of a change
# under .github/workflows/): per ref (an update hook), or the whole push (a pre-receive hook).
REFUSE_B_UPDATE = """#!/bin/sh
if [ "$1" = refs/heads/dagain/work/b ]; then
    echo "refusing to allow this token to update dagain/work/b" >&2; exit 1
fi
exit 0
"""
REFUSE_B_PRE_RECEIVE = """#!/bin/sh
while read old new ref; do
    if [ "$ref" = refs/heads/dagain/work/b ]; then
        echo "refusing to allow this token to update dagain/work/b" >&2; exit 1
    fi
done
exit 0
"""


@pytest.mark.parametrize(
    ("which", "text", "serve"),
    [("update", REFUSE_B_UPDATE, False), ("pre-receive", REFUSE_B_PRE_RECEIVE, "http")],
    ids=["update-hook-path", "pre-receive-hook-http"],
)
def test_a_refused_branch_fails_its_node_once(
    tmp_path: Path, daemons: list[Daemon], which: str, text: str, serve: str | bool
) -> None:
    cluster = build_cluster(tmp_path, daemons, [task("a"), task("b"), task("c")], serve=serve)
    path = cluster.bare / "hooks" / which
    path.write_text(text)
    path.chmod(0o755)
    workers = [cluster.work(cluster.clone(f"w{i}")) for i in range(2)]
    for proc in workers:
        code, err = finish(proc, timeout=120)
        assert code == 1, err  # some node failed; nobody stopped on the refusal
    nodes = cluster.nodes()
    assert nodes["a"].status is Status.DONE and nodes["c"].status is Status.DONE
    b = nodes["b"]
    assert b.status is Status.FAILED and b.attempts == 1  # failed once, not retried
    assert b.error is not None and b.error.kind is ErrorKind.PUSH_REFUSED
    assert "dagain/work/b" in b.error.summary
    assert "refusing to allow this token" in b.error.summary
    assert "escalate-b" not in nodes  # nothing a planner could fix
    assert sorted(r[0] for r in cluster.rows()) == ["a", "b", "c"]  # each ran once
    assert cluster.remote_git("branch", "--list", "dagain/work/b") == ""


def test_a_runner_executable_that_disappears_is_held_not_failed(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    from tests.remote.conftest import RUNNER

    cluster = build_cluster(tmp_path, daemons, [task("a"), task("b", deps=["a"])], serve=False)
    clone = cluster.clone("w0")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    agent = bindir / "my-agent"
    # Node a's run removes the executable: node b's start finds it gone.
    agent.write_text(f'#!/bin/sh\n[ "$GITDAG_NODE_ID" = a ] && rm -f "$0"\nexec sh {RUNNER}\n')
    agent.chmod(0o755)
    cfg = clone / ".dagain" / "config.yaml"
    cfg.write_text(cfg.read_text().replace(f"cmd: sh {RUNNER}", "cmd: my-agent"))
    path = f"{bindir}:/usr/bin:/bin"
    code, err = finish(cluster.work(clone, PATH=path))
    assert code == 1, err
    assert sum("held (runner_missing)" in line for line in err.splitlines()) == 1, err
    nodes = cluster.nodes()
    assert nodes["a"].status is Status.DONE
    assert nodes["b"].status is Status.OPEN and nodes["b"].error is not None
    assert nodes["b"].attempts - nodes["b"].attempt_base == 0  # the lost start does not count
    assert [r[0] for r in cluster.rows()] == ["a"]
    assert not any(nid.startswith("escalate") for nid in nodes)


# Refuses every update of the target branch (a protected branch): claims and results land, the
# merge push (the target with the node's `merge` transition, one atomic push) does not.
REFUSE_TARGET = """#!/bin/sh
while read old new ref; do
    if [ "$ref" = refs/heads/dagain/integration ]; then
        echo "dagain/integration is protected" >&2; exit 1
    fi
done
exit 0
"""


def test_a_refused_merge_push_holds_the_node(tmp_path: Path, daemons: list[Daemon]) -> None:
    cluster = build_cluster(tmp_path, daemons, [task("a"), task("b")], serve=False)
    hook(cluster, REFUSE_TARGET)
    clone = cluster.clone("w0")
    code, err = finish(cluster.work(clone), timeout=120)
    assert code == 1, err  # stopped, naming the hold, once nothing else could go on
    held = [line for line in err.splitlines() if "held (ref_refused)" in line]
    assert len(held) == 1, err  # said once, though both merges wait on it
    assert "dagain/integration" in held[0] and "is protected" in held[0], held
    assert "Traceback" not in err
    nodes = cluster.nodes()
    assert {n.status for n in nodes.values()} == {Status.MERGING}  # both agents ran: the
    assert sorted(r[0] for r in cluster.rows()) == ["a", "b"]  # worker went on with b
    hold = [n.hold for n in nodes.values() if n.hold is not None]
    assert hold and hold[0].kind.value == "ref_refused" and "protected" in hold[0].reason
    assert not any(nid.startswith("escalate") for nid in nodes)
    # The repair: the merges go through without running an agent again.
    (cluster.bare / "hooks" / "pre-receive").unlink()
    code, err = finish(cluster.work(clone), timeout=120)
    assert code == 0, err
    nodes = cluster.nodes()
    assert all(n.status is Status.DONE and n.hold is None for n in nodes.values()), nodes
    assert sorted(r[0] for r in cluster.rows()) == ["a", "b"]


def test_an_idle_exit_worker_waits_on_a_held_merge_and_merges_once_repaired(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    from tests.remote.conftest import wait_for

    cluster = build_cluster(tmp_path, daemons, [task("a")], serve=False)
    refusals = tmp_path / "refusals"
    hook(cluster, REFUSE_TARGET.replace("exit 1", f"echo x >> {refusals}; exit 1"))
    clone = cluster.clone("w0")
    # Not repaired within --idle-exit: it re-checked meanwhile, said the hold once, and exits 1.
    code, err = finish(cluster.work(clone, "--idle-exit", "4"), timeout=120)
    assert code == 1, err
    assert sum("held (ref_refused)" in line for line in err.splitlines()) == 1, err
    assert "stopped: waiting for a repair (ref_refused" in err
    assert len(refusals.read_text().split()) >= 2  # retried at a backoff, not once and given up
    assert cluster.nodes()["a"].status is Status.MERGING
    # Repaired while a worker waits: it merges by itself, without running the agent again.
    before = len(refusals.read_text().split())
    proc = cluster.work(clone, "--idle-exit", "60")
    wait_for(lambda: len(refusals.read_text().split()) > before, 60, "the merge retried")
    (cluster.bare / "hooks" / "pre-receive").unlink()
    code, err = finish(proc, timeout=120)
    assert code == 0, err
    assert "repaired: ref_refused" in err
    node = cluster.nodes()["a"]
    assert node.status is Status.DONE and node.hold is None and node.attempts == 1
    assert [r[0] for r in cluster.rows()] == ["a"]


def test_an_idle_exit_worker_waits_on_a_held_start_shown_in_status(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    import json

    from tests.remote.conftest import RUNNER, wait_for

    cluster = build_cluster(tmp_path, daemons, [task("a"), task("b", deps=["a"])], serve=False)
    clone = cluster.clone("w0")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    agent = bindir / "my-agent"
    script = f'#!/bin/sh\n[ "$GITDAG_NODE_ID" = a ] && rm -f "$0"\nexec sh {RUNNER}\n'
    agent.write_text(script)
    agent.chmod(0o755)
    cfg = clone / ".dagain" / "config.yaml"
    cfg.write_text(cfg.read_text().replace(f"cmd: sh {RUNNER}", "cmd: my-agent"))
    proc = cluster.work(clone, "--idle-exit", "60", PATH=f"{bindir}:/usr/bin:/bin")

    def holds() -> list[dict[str, object]]:
        res = cluster.gitdag(clone, "status", "--remote", "origin", "--json")
        return list(json.loads(res.out)["start_holds"]) if res.code == 0 else []

    wait_for(lambda: holds(), 60, "the held start in status")
    assert holds()[0]["kind"] == "runner_missing" and "my-agent" in str(holds()[0]["reason"])
    agent.write_text(script)  # the repair: the worker finds it by itself and starts b
    agent.chmod(0o755)
    code, err = finish(proc, timeout=120)
    assert code == 0, err
    assert "repaired: runner_missing" in err
    assert sum("held (runner_missing)" in line for line in err.splitlines()) == 1, err
    assert [r[0] for r in cluster.rows()] == ["a", "b"]
    assert {n.status for n in cluster.nodes().values()} == {Status.DONE}
    assert holds() == []
