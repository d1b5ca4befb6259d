"""Transaction groups across machines: `gitdag work` lands a whole group in one atomic push."""

from __future__ import annotations

from pathlib import Path

from gitdag.core.model import Status
from tests.conftest import git
from tests.remote.conftest import (
    CONFIG,
    RUNNER,
    TARGET,
    Cluster,
    Daemon,
    build_cluster,
    finish,
    task,
)

MEMBERS = ("g1", "g2", "g3")
FILES = {f"out/{nid}.txt" for nid in MEMBERS}


def group_of(*ids: str) -> list[dict[str, object]]:
    """A group whose first member only worker `a` runs, the others only worker `b`."""
    return [task(nid, group="api", labels=["a" if i == 0 else "b"]) for i, nid in enumerate(ids)]


def run_two(cluster: Cluster, config: str | None = None, **env: str) -> list[Path]:
    """Two workers in two clones (labels `a` and `b`), until the graph is done."""
    clones = [cluster.clone("w0"), cluster.clone("w1")]
    if config is not None:
        for clone in clones:
            (clone / ".dagain" / "config.yaml").write_text(config)
    procs = [cluster.work(c, "--idle-exit", "15", "--labels", label, "--workers", "2", **env)
             for c, label in zip(clones, "ab", strict=True)]  # fmt: skip
    try:
        for proc in procs:
            code, err = finish(proc, timeout=180)
            assert code == 0, err
    finally:
        cluster.stop_all()
    return clones


def group_landed_whole(cluster: Cluster) -> None:
    """Every first-parent commit of the remote's target holds all of the group or none of it,
    and exactly one commit integrated it; its members are done, their work branches gone."""
    line = cluster.remote_git("rev-list", "--first-parent", TARGET).split()
    for commit in line:
        files = set(cluster.remote_git("ls-tree", "-r", "--name-only", commit).split())
        assert files & FILES in (set(), FILES), (commit, files & FILES)
    subjects = cluster.remote_git("log", "--first-parent", "--format=%s", TARGET).splitlines()
    lands = [s for s in subjects if s.startswith("gitdag: integrate")]
    assert lands == ["gitdag: integrate group api (3 nodes)"]
    nodes = cluster.nodes()
    merged = {nodes[nid].work.merged for nid in MEMBERS}
    assert len(merged) == 1 and merged.pop() == line[0]
    assert {nodes[nid].status for nid in MEMBERS} == {Status.DONE}
    branches = cluster.remote_git("for-each-ref", "--format=%(refname)", "refs/heads/dagain/work")
    assert branches.strip() == ""
    state = cluster.remote_git("log", "--format=%B%x00", "dagain/state")
    landed = [m.strip() for m in state.split("\x00") if "integrated into" in m]
    assert len(landed) == 1 and "Gitdag-Group: api" in landed[0]


def spent(cluster: Cluster) -> tuple[int, ...]:
    nodes = cluster.nodes()
    return tuple(nodes[nid].attempts - nodes[nid].attempt_base for nid in MEMBERS)


def test_two_workers_land_a_three_member_group_in_one_target_commit(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    cluster = build_cluster(tmp_path, daemons, group_of(*MEMBERS), serve="http")
    run_two(cluster)
    group_landed_whole(cluster)
    made = {node: repo for node, _, _, repo in cluster.rows()}
    assert made["g1"] != made["g2"] == made["g3"]  # the members were made on two machines
    assert spent(cluster) == (1, 1, 1)


def test_a_member_failing_the_check_never_lets_the_others_land_alone(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    cluster = build_cluster(tmp_path, daemons, group_of(*MEMBERS), backoff=0)
    # g3's first attempt breaks the check; its retry (fresh from the tip) does not.
    check = '! git log --format=%s HEAD | grep -qx "gitdag: g3 attempt 1"'
    run_two(cluster, CONFIG.format(runner=RUNNER) + f"merge:\n  check: '{check}'\n")
    group_landed_whole(cluster)
    assert spent(cluster) == (1, 1, 2)  # only the member whose merge failed the check
    log = cluster.remote_git("log", "--format=%B%x00", "dagain/state")
    back = [m.strip() for m in log.split("\x00") if "group api did not land" in m]
    assert {m.split()[1].rstrip(":") for m in back} == {"g1", "g2"}
    assert all("Gitdag-Group: api" in m and "not involved" in m for m in back)


def test_a_conflict_sends_back_only_the_members_involved(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    cluster = build_cluster(tmp_path, daemons, group_of(*MEMBERS), backoff=0)
    run_two(cluster, SHARED_NODES="g1 g2")
    group_landed_whole(cluster)
    assert spent(cluster) == (2, 2, 1)
    log = cluster.remote_git("log", "--format=%B%x00", "dagain/state")
    conflicts = [m.strip() for m in log.split("\x00") if "merge conflict in shared.txt" in m]
    assert {m.split()[1].rstrip(":") for m in conflicts} == set(MEMBERS)
    assert [m.split()[1].rstrip(":") for m in conflicts if "not involved" in m] == ["g3"]


def test_a_group_merge_abandoned_by_a_dead_worker_is_adopted_and_lands_once(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    cluster = build_cluster(tmp_path, daemons, group_of(*MEMBERS), lease=5)
    first, second = cluster.clone("w0"), cluster.clone("w1")
    # The first worker makes every member, merges the group locally, and dies before its push.
    dying = cluster.work(first, "--labels", "a,b", "--workers", "3",
                         GITDAG_CRASH_AT="merge.before_group_push")  # fmt: skip
    code, err = finish(dying, timeout=120)
    assert code == 137, err
    assert cluster.remote_git("log", "--format=%s", TARGET).count("integrate group") == 0
    # Another worker adopts the group once it has seen no progress for a lease, and lands it.
    code, err = finish(cluster.work(second, "--idle-exit", "15"), timeout=120)
    assert code == 0, err
    group_landed_whole(cluster)
    assert spent(cluster) == (1, 1, 1)
    # The dead worker's clone heals: its unpushed group merge is dropped for the remote's.
    try:
        code, err = finish(cluster.work(first, "--idle-exit", "5"), timeout=60)
    finally:
        cluster.stop_all()
    assert code == 0, err
    assert git(first, "rev-parse", TARGET) == cluster.remote_git("rev-parse", TARGET)
