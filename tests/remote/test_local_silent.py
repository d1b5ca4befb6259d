"""A remote that is a local path is bounded too: an upload-pack that hangs (a path on a hung
network mount, a wrapper that never answers) is killed with what it started, and the command
fails in about `remote.timeout_s` with one line naming the remote.

Real parts: a bare repository used by path, the remote's `uploadpack` program (git config,
honoured by gitdag's in-process client as by git), the real `gitdag` CLI over both wires.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import git
from tests.remote.conftest import Daemon, build_cluster, task, wait_for
from tests.remote.test_silent import _alive
from tests.timing import within


def _configure(clone: Path) -> None:
    config = clone / ".dagain" / "config.yaml"
    config.write_text(config.read_text().replace(
        "retry_for_s: 3", "retry_for_s: 120\n  timeout_s: 2"))  # fmt: skip


@pytest.mark.parametrize("wire", ["client", "cli"])
def test_a_local_remote_whose_upload_pack_hangs_fails_in_its_bound(
    tmp_path: Path, daemons: list[Daemon], wire: str
) -> None:
    """`remote.origin.uploadpack` sleeps and says nothing: `status --remote` exits 2 with one
    line in about the 2 s bound (not `remote.retry_for_s`, 120 s), and no process is left."""
    cluster = build_cluster(tmp_path, daemons, [task("a")], serve=False)
    clone = cluster.clone("laptop")
    _configure(clone)
    pids = tmp_path / "upload-pack.pids"
    script = tmp_path / "hung-upload-pack"
    script.write_text(f'#!/bin/sh\nsleep 300 &\necho "$$ $!" >> {pids}\nwait\n')
    script.chmod(0o755)
    git(clone, "config", "remote.origin.uploadpack", str(script))
    env = {"GITDAG_WIRE": "cli"} if wire == "cli" else {}
    began = time.monotonic()
    res = cluster.gitdag(clone, "status", "--remote", "origin", timeout=within(60), **env)
    took = time.monotonic() - began
    assert res.code == 2, (res.out, res.err)
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and "remote origin" in lines[0], res.err
    assert "no answer within 2 s" in lines[0], res.err
    assert took < min(within(8), 100), (took, res.err)
    started = [int(p) for line in pids.read_text().splitlines() for p in line.split()]
    assert started  # the program ran
    wait_for(lambda: not any(_alive(p) for p in started), within(5), "nothing left running")


def test_a_local_remote_honours_its_upload_pack_program(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """The in-process client runs the remote's `uploadpack` as git does (a wrapper that logs and
    runs git-upload-pack): the look works through it."""
    cluster = build_cluster(tmp_path, daemons, [task("a")], serve=False)
    clone = cluster.clone("laptop")
    said = tmp_path / "wrapper.log"
    script = tmp_path / "logging upload-pack"  # a space: the path is quoted for the shell
    script.write_text(f'#!/bin/sh\necho "$@" >> {said}\nexec git-upload-pack "$@"\n')
    script.chmod(0o755)
    git(clone, "config", "remote.origin.uploadpack", f"'{script}'")
    res = cluster.gitdag(clone, "status", "--remote", "origin")
    assert res.code == 0, res.err
    assert "1 nodes" in res.out
    assert str(cluster.bare) in said.read_text()


def test_a_look_at_a_local_path_that_does_not_answer_is_given_up_on() -> None:
    """`path_answers` (a stat on a hung network mount cannot be interrupted): past its bound it
    raises `RemoteUnreachable` naming the remote; otherwise the check's value or error."""
    import threading

    from gitdag.errors import RemoteUnreachable
    from gitdag.transport.deadline import path_answers

    hung = threading.Event()
    began = time.monotonic()
    with pytest.raises(RemoteUnreachable, match=r"remote origin: no answer within 0\.5 s"):
        path_answers(lambda: hung.wait(60), 0.5, "remote origin")
    assert time.monotonic() - began < within(2)
    hung.set()
    assert path_answers(lambda: 42, 5, "remote origin") == 42
    with pytest.raises(ZeroDivisionError):
        path_answers(lambda: 1 // 0, 5, "remote origin")
