"""An idle worker backs off its fetches (remote/idle.py) instead of asking every `--poll`."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitdag.core.model import Status
from gitdag.remote.idle import IdlePoll
from tests.remote.conftest import Daemon, build_cluster, finish, wait_for
from tests.remote.httpd import REQUEST_LOG

# A fetch asks the refs first (one ls-refs request: the capabilities are known after the first).
FETCH = "POST /project.git/git-upload-pack"


def test_interval_doubles_while_quiet_and_resets_on_change() -> None:
    poll = IdlePoll(0.5, 4.0)
    seen = []
    for _ in range(6):
        poll.fetched(changed=False)
        seen.append(poll.interval)
    assert seen == [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    poll.fetched(changed=True)
    assert poll.interval == 0.5
    poll.fetched(changed=False)
    poll.busy()
    assert poll.interval == 0.5
    assert IdlePoll(5.0, 1.0).max_s == 5.0  # the cap is never below --poll
    assert IdlePoll(2.0).max_s == 30.0  # unless given: 15 x --poll


def test_idle_worker_fetch_count_is_bounded(tmp_path: Path, daemons: list[Daemon],
                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    requests = tmp_path / "requests.log"
    monkeypatch.setenv(REQUEST_LOG, str(requests))
    log = tmp_path / "runs.log"
    # Fails once, then waits 300 s for its retry: the worker has nothing to do, but the graph
    # is not finished, so it stays until --idle-exit.
    node = {
        "id": "a",
        "title": "a",
        "kind": "command",
        "run": f'echo "$GITDAG_NODE_ID $GITDAG_ATTEMPT $$ $GITDAG_REPO" >> {log}; exit 1',
    }
    cluster = build_cluster(tmp_path, daemons, [node], serve="http", backoff=300)
    clone = cluster.clone("w0")
    idle_s = 10.0
    proc = cluster.work(clone, "--idle-exit", str(idle_s))  # --poll 0.3

    def failed_once() -> bool:
        node = cluster.nodes()["a"]
        return bool(node.attempts) and node.status is not Status.RUNNING

    wait_for(failed_once, 60, "the failed attempt on the remote")

    def fetches() -> int:
        return sum(1 for line in requests.read_text().splitlines() if line.startswith(FETCH))

    start = fetches()
    code, err = finish(proc, timeout=120)
    assert code == 0, err
    assert "--idle-exit" in err
    idle_fetches = fetches() - start
    # A fixed 0.3 s poll would fetch about 33 times in 10 idle seconds; doubling from 0.3 s up
    # to 15 x 0.3 s (0.6, 1.2, 2.4, 4.5, 4.5) about 6 times. Slower machines fetch less, not more.
    assert 1 <= idle_fetches <= 12, idle_fetches
