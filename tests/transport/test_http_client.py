"""The smart-HTTP client asks a server for its protocol-v2 capabilities once per worker.

Against the real `git http-backend` (tests/remote/httpd.py), counting the server's requests: a
look (`ls-refs`) after the first is one POST, a fetch two at most, never a discovery GET; a
server that went away and came back is asked again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitdag.store.remote import RemoteState
from tests.remote.conftest import Daemon, build_cluster, task
from tests.remote.httpd import REQUEST_LOG

DISCOVER = "GET /project.git/info/refs?service=git-upload-pack"
POST = "POST /project.git/git-upload-pack"
STATE = "refs/heads/dagain/state"


def test_capabilities_are_asked_once(tmp_path: Path, daemons: list[Daemon],
                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    requests = tmp_path / "requests.log"
    monkeypatch.setenv(REQUEST_LOG, str(requests))
    cluster = build_cluster(tmp_path, daemons, [task("a")], serve="http")
    clone = cluster.clone("w0")
    requests.write_text("")

    def counts() -> tuple[int, int]:
        lines = requests.read_text().splitlines()
        return sum(ln.startswith(DISCOVER) for ln in lines), sum(
            ln.startswith(POST) for ln in lines
        )

    with RemoteState.open(clone, "origin") as remote:
        remote.retry_for(0.5)
        head = remote.fetch()
        assert counts()[0] == 1
        for _ in range(3):
            assert remote.remote_ref(STATE) == head
        assert counts() == (1, counts()[1])
        before = counts()[1]
        remote.remote_ref(STATE)
        assert counts() == (1, before + 1)  # a look: one request
        remote.fetch()
        assert counts()[0] == 1 and counts()[1] - before - 1 <= 2 * 2  # state and target
        # The server goes away and comes back: the next call discovers again.
        daemons[-1].stop()
        with pytest.raises(Exception, match="remote origin"):
            remote.remote_ref(STATE)
        daemons[-1].restart()
        assert remote.remote_ref(STATE) == head
        assert counts()[0] == 2
