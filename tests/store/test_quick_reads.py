"""store/gitfiles.py reads what dulwich reads, or declines; store/reportcache.py expires on time.

The quick start of `status` and `ready` trusts these two (issue 18 part 5): a ref read wrong
or a report used past its time would show a graph that is not the head's.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from dulwich.repo import Repo

from gitdag.store import gitfiles, reportcache
from gitdag.store.repo import open_repo
from tests.conftest import git, make_repo

STATE = "refs/heads/dagain/state"


@pytest.fixture
def refs(repo: Path) -> Path:
    """A repository with a branch, an annotated tag and `dagain/state` (a second commit)."""
    git(repo, "branch", "dagain/state")
    git(repo, "commit", "-q", "--allow-empty", "-m", "two")
    git(repo, "tag", "-a", "v1", "-m", "annotated: packed-refs peels it")
    return repo


def _dulwich(repo: Path, name: str) -> str | None:
    r = Repo(str(repo))
    try:
        return r.refs[name.encode()].decode()
    except KeyError:
        return None
    finally:
        r.close()


@pytest.mark.parametrize("packed", [False, True])
def test_a_branch_reads_as_dulwich_reads_it(refs: Path, packed: bool) -> None:
    if packed:
        git(refs, "pack-refs", "--all")
        assert "^" in (refs / ".git/packed-refs").read_text()
    git_dir = str(refs / ".git")
    for name in (STATE, "refs/heads/main", "refs/tags/v1"):
        assert gitfiles.read_ref(git_dir, name) == _dulwich(refs, name), name
    # A loose ref is newer than its packed line.
    git(refs, "update-ref", STATE, "main")
    assert (
        gitfiles.read_ref(git_dir, STATE)
        == _dulwich(refs, STATE)
        == git(refs, "rev-parse", "main").strip()
    )


def test_what_is_not_a_plain_sha_is_left_to_dulwich(refs: Path) -> None:
    git_dir = str(refs / ".git")
    assert gitfiles.read_ref(git_dir, "refs/heads/nothing") is None
    git(refs, "symbolic-ref", "refs/heads/alias", "refs/heads/main")
    assert gitfiles.read_ref(git_dir, "refs/heads/alias") is None  # dulwich follows it
    git(refs, "pack-refs", "--all")
    packed = refs / ".git/packed-refs"
    text = packed.read_text()
    packed.write_text(text + "not a ref line\n")
    assert gitfiles.read_ref(git_dir, STATE) is None  # dulwich raises on it: let it
    packed.write_text(text.replace("# pack-refs with: peeled", "# pack-refs with:"))
    assert gitfiles.read_ref(git_dir, STATE) is None  # a peeled line without the header
    packed.write_text(text)
    (refs / ".git/refs/heads/dagain").mkdir(parents=True, exist_ok=True)
    (refs / ".git/refs/heads/dagain/state").write_text("")  # empty: packed-refs decides
    assert gitfiles.read_ref(git_dir, STATE) == _dulwich(refs, STATE) is not None


def test_refs_under_a_prefix(refs: Path) -> None:
    git_dir = str(refs / ".git")
    prefix = "refs/heads/dagain/proposals/"
    assert gitfiles.has_refs_under(git_dir, prefix) is False
    git(refs, "branch", "dagain/proposals/p1", "main")
    assert gitfiles.has_refs_under(git_dir, prefix) is True
    git(refs, "pack-refs", "--all")
    assert not (refs / ".git/refs/heads/dagain/proposals/p1").exists()
    assert gitfiles.has_refs_under(git_dir, prefix) is True


def test_the_place_is_open_repo_s(refs: Path, tmp_path: Path) -> None:
    (refs / "sub" / "deeper").mkdir(parents=True)
    git(refs, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "side")
    for start in (refs, refs / "sub" / "deeper", tmp_path / "wt"):
        repo, paths = open_repo(start)
        repo.close()
        assert gitfiles.locate(str(start)) == (str(paths.root), str(paths.git_dir)), start


def test_what_the_place_finder_does_not_read(refs: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(refs), str(bare))
    assert gitfiles.locate(str(bare)) is None
    sub = make_repo(tmp_path / "outer")
    git(sub, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(refs), "inner")
    assert gitfiles.locate(str(sub / "inner")) is None  # a .git file without commondir
    assert gitfiles.locate(str(tmp_path)) is None  # no repository at all
    monkeypatch.setenv("GIT_DIR", str(refs / ".git"))
    assert gitfiles.locate(str(refs)) is None
    monkeypatch.delenv("GIT_DIR")
    config = refs / ".git/config"
    plain = config.read_text()
    for extra in ("[core]\n\tworktree = /elsewhere\n", "[include]\n\tpath = x.cfg\n",
                  "[extensions]\n\tobjectFormat = sha1\n",
                  '[branch "dagain/state"]\n\tremote = origin\n',
                  "[Core]\n\trepositoryFormatVersion = 2\n", "  = what is this\n"):  # fmt: skip
        config.write_text(plain + extra)
        assert gitfiles.locate(str(refs)) is None, extra
    config.write_text(plain)
    assert gitfiles.locate(str(refs)) is not None


def _kept(local: Path, **kwargs: object) -> None:
    report = {"head": "a" * 40, "running": [{"id": "r", "since": "2025-01-01T00:00:00+00:00",
                                             "elapsed_s": None}]}  # fmt: skip
    args = {"head": "a" * 40, "now": dt.datetime(2025, 1, 1, 0, 1, tzinfo=dt.UTC),
            "until_us": None, "ready": ["x"], "report": report, **kwargs}  # fmt: skip
    reportcache.save(local, b"refs/heads/dagain/state", **args)  # type: ignore[arg-type]


def test_a_kept_report_holds_until_the_clock_reaches_a_not_before(tmp_path: Path) -> None:
    ref = b"refs/heads/dagain/state"
    made = int(dt.datetime(2025, 1, 1, 0, 1, tzinfo=dt.UTC).timestamp())
    until = (made + 30) * 10**6
    _kept(tmp_path, until_us=until)
    assert reportcache.load(tmp_path, ref, "b" * 40, made) is None  # another head
    assert reportcache.load(tmp_path, ref, "a" * 40, made - 1) is None  # the clock went back
    assert reportcache.load(tmp_path, ref, "a" * 40, made + 30) is None  # a not_before came
    kept = reportcache.load(tmp_path, ref, "a" * 40, made + 29)
    assert kept is not None and kept["ready"] == ["x"]
    assert kept["report"]["running"][0]["elapsed_s"] == 89.0  # since 00:00:00, now 00:01:29
    # A `ready` alone leaves the status's report of the same head in place.
    reportcache.save(tmp_path, ref, head="a" * 40, now=dt.datetime(2025, 1, 1, 0, 1, 5,
                     tzinfo=dt.UTC), until_us=None, ready=["y"], report=None)  # fmt: skip
    kept = reportcache.load(tmp_path, ref, "a" * 40, made + 10)
    assert kept is not None and kept["ready"] == ["x"] and kept["report"] is not None


def test_valid_until_is_the_first_future_not_before_of_an_open_node() -> None:
    from gitdag.core.summary import Kind, NodeSummary, Status

    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

    def node(nid: str, status: Status, later_s: int | None) -> NodeSummary:
        nb = None if later_s is None else now + dt.timedelta(seconds=later_s)
        return NodeSummary(nid, Kind.TASK, status, 0, (), (), None, nb, now, (), (), None, 0)

    nodes = {"a": node("a", Status.OPEN, -5), "b": node("b", Status.OPEN, 50),
             "c": node("c", Status.OPEN, 20), "d": node("d", Status.DONE, 10),
             "e": node("e", Status.OPEN, None)}  # fmt: skip
    assert reportcache.valid_until(nodes, now) == reportcache.epoch_us(
        now + dt.timedelta(seconds=20)
    )
    assert reportcache.valid_until({"e": nodes["e"]}, now) is None


def test_a_report_from_another_version_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _kept(tmp_path)
    monkeypatch.setattr(reportcache, "__version__", "0.0.0-other")
    made = int(dt.datetime(2025, 1, 1, 0, 1, tzinfo=dt.UTC).timestamp())
    assert reportcache.load(tmp_path, b"refs/heads/dagain/state", "a" * 40, made) is None
    assert os.path.isfile(tmp_path / "cache" / "report-refs_heads_dagain_state.marshal")
