"""Worktrees and the merge queue driven by `gitdag run` (issue 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import git, run_gitdag
from tests.supervisor.conftest import Project


def plan_tasks(*tasks: dict[str, object]) -> dict[str, object]:
    return {"plan-000": {"result": {"status": "success", "next": {"addNodes": list(tasks)}}}}


def target_log(project: Project) -> list[str]:
    return git(project.root, "log", "--format=%s", "dagain/integration").splitlines()


def test_four_tasks_on_four_files_integrate_once_each_in_queue_order(project: Project) -> None:
    head, branch = git(project.root, "rev-parse", "HEAD"), git(project.root, "symbolic-ref", "HEAD")
    before = git(project.root, "status", "--porcelain")
    behaviours = plan_tasks(*({"id": f"t{i}", "title": f"file {i}"} for i in range(4)))
    for i in range(4):
        behaviours[f"t{i}"] = {"write": {f"f{i}.txt": f"content {i}\n"}, "sleep": 0.2 * i}
    project.plan(behaviours)
    res = project.gitdag("run", "--workers", "4")
    assert res.code == 0, res.err
    for i in range(4):
        assert git(project.root, "show", f"dagain/integration:f{i}.txt") == f"content {i}\n"
    merges = [line for line in target_log(project) if line.startswith("gitdag: integrate")]
    assert sorted(merges) == sorted(set(merges)) and len(merges) == 4  # each exactly once
    entries = json.loads(project.gitdag("log", "--json").out)
    queued = [
        e["nodes"][0]
        for e in reversed(entries)
        if e["verb"] == "complete" and e["nodes"][0] != "plan-000"
    ]
    merged = [e["nodes"][0] for e in reversed(entries) if e["verb"] == "merge"]
    assert merged == queued  # integrated in the order they entered the queue
    for nid in merged:
        node = project.show(nid)
        assert node["status"] == "done" and node["work"]["merged"]  # type: ignore[index]
    assert git(project.root, "rev-parse", "HEAD") == head
    assert git(project.root, "symbolic-ref", "HEAD") == branch
    assert git(project.root, "status", "--porcelain") == before
    assert "worktrees" not in git(project.root, "worktree", "list") or all(
        "_scratch" in line or line.startswith(str(project.root) + " ")
        for line in git(project.root, "worktree", "list").splitlines()
    )


def test_same_lines_conflict_then_retry_integrates_without_markers(
    project: Project, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    packet = tmp_path / "second-{attempt}.md"
    project.plan(
        {
            **plan_tasks({"id": "first", "title": "first"}, {"id": "second", "title": "second"}),
            "first": {"write": {"src/app.py": "x = 'first'\n"}},
            "second": [
                {"write": {"src/app.py": "x = 'second'\n"}, "sleep": 0.8},
                {
                    "copy_packet": str(packet),
                    "write": {"src/app.py": "x = 'first'\ny = 'second'\n"},
                },
            ],
        }
    )
    res = project.gitdag("run", "--workers", "2")
    assert res.code == 0, res.err
    text = (tmp_path / "second-2.md").read_text()
    assert "merge_conflict" in text and "src/app.py" in text
    final = git(project.root, "show", "dagain/integration:src/app.py")
    assert final == "x = 'first'\ny = 'second'\n"
    for rev in git(project.root, "rev-list", "dagain/integration").split():
        blob = git(project.root, "show", f"{rev}:src/app.py")
        assert "<<<<<<<" not in blob and ">>>>>>>" not in blob
    entries = json.loads(project.gitdag("log", "second", "--json").out)
    assert any("merge conflict in src/app.py" in e["summary"] for e in entries)


def test_agent_commit_and_uncommitted_leftovers_both_integrate(project: Project) -> None:
    project.plan(
        {
            **plan_tasks({"id": "committer", "title": "c"}, {"id": "leaver", "title": "l"}),
            "committer": {"write": {"c.txt": "committed\n"}, "commit": "agent's own commit"},
            "leaver": {"write": {"l.txt": "left\n"}},
        }
    )
    assert project.gitdag("run", "--workers", "2").code == 0
    assert git(project.root, "show", "dagain/integration:c.txt") == "committed\n"
    assert git(project.root, "show", "dagain/integration:l.txt") == "left\n"
    assert "agent's own commit" in git(project.root, "log", "--format=%s", "dagain/integration")


def test_failing_check_keeps_the_target_and_retries(project: Project) -> None:
    project.config(extra="merge:\n  check: test ! -e broken.txt\n")
    project.plan(
        {
            **plan_tasks({"id": "t", "title": "t"}),
            "t": [{"write": {"broken.txt": "x\n"}}, {"write": {"fixed.txt": "y\n"}}],
        }
    )
    tip = git(project.root, "rev-parse", "dagain/integration").strip()
    res = project.gitdag("run")
    assert res.code == 0, res.err
    entries = json.loads(project.gitdag("log", "t", "--json").out)
    failed_merge = [e for e in entries if e["verb"] == "merge" and "check failed" in e["summary"]]
    assert failed_merge
    assert git(project.root, "show", "dagain/integration:fixed.txt") == "y\n"
    assert git(project.root, "cat-file", "-e", "dagain/integration:broken.txt", check=False) == ""
    # The failed check never moved the target: exactly one merge (attempt 2's) sits on the old tip.
    assert git(project.root, "rev-parse", "dagain/integration^1").strip() == tip


def test_crash_after_target_advanced_finds_code_and_record_together(project: Project) -> None:
    # The target's advance and the node's `merge` transition are one ref transaction: a crash
    # right after it finds both (never the code without its record), and a restart adds nothing.
    project.plan({**plan_tasks({"id": "t", "title": "t"}), "t": {"write": {"t.txt": "t\n"}}})
    env = {**os.environ, **project.env(), "GITDAG_CRASH_AT": "merge.after_advance"}
    proc = subprocess.run(
        [sys.executable, "-m", "gitdag", "run"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 137
    advanced = git(project.root, "rev-parse", "dagain/integration").strip()
    node = project.show("t")
    assert node["status"] == "done" and node["work"]["merged"] == advanced  # type: ignore[index]
    res = project.gitdag("run")
    assert res.code == 0, res.err
    node = project.show("t")
    assert node["status"] == "done" and node["work"]["merged"] == advanced  # type: ignore[index]
    assert git(project.root, "rev-parse", "dagain/integration").strip() == advanced  # merged once
    merges = [s for s in target_log(project) if s.startswith("gitdag: integrate t ")]
    assert len(merges) == 1


def test_demo_runs_and_exits_0(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import time

    start = time.monotonic()
    res = run_gitdag(tmp_path, "demo", "--dir", str(tmp_path / "demo"), timeout=60)
    assert res.code == 0, res.out + res.err
    assert time.monotonic() - start < 60
    assert "merge_conflict" in res.out and "all done" in res.out
    demo = tmp_path / "demo"
    stats = git(demo, "show", "dagain/integration:textkit/stats.py")
    assert "def mean" in stats and "def median" in stats
    assert git(demo, "status", "--porcelain").strip() == "?? .dagain/"


def test_gc_removes_leftovers_and_reports_freed_disk(project: Project) -> None:
    project.plan(
        {
            **plan_tasks({"id": "ok", "title": "ok"}, {"id": "bad", "title": "bad"}),
            "ok": {"write": {"ok.txt": "ok\n"}},
            "bad": {
                "write": {"bad.txt": "x" * 200_000},
                "result": {"status": "fail", "summary": "no"},
            },
        }
    )
    assert project.gitdag("run", "--workers", "2").code == 1  # bad failed for good
    scratch = [
        p
        for p in (project.root / ".dagain/local/worktrees").iterdir()
        if p.name.startswith("_scratch")
    ]
    assert scratch  # the plan node's scratch checkout is still there
    res = project.gitdag("gc")
    assert res.code == 0, res.err
    assert "removed scratch checkouts" in res.out and "freed" in res.out
    assert "kept branches (unmerged work) (1): bad" in res.out  # the only copy of failed work
    assert git(project.root, "show", "dagain/work/bad:bad.txt") == "x" * 200_000
    assert not any(
        p.name.startswith("_scratch") for p in (project.root / ".dagain/local/worktrees").iterdir()
    )
    branches = git(project.root, "branch", "--list", "dagain/work/*")
    assert "dagain/work/ok" not in branches and "dagain/work/bad" in branches
    res = project.gitdag("gc", "--delete-unmerged")
    assert res.code == 0 and "dagain/work/bad" not in git(
        project.root, "branch", "--list", "dagain/work/*"
    )


def test_conflicting_retry_packet_names_the_other_node_and_shows_the_hunk(
    project: Project, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    packet = tmp_path / "second-{attempt}.md"
    project.plan(
        {
            **plan_tasks({"id": "first", "title": "first"}, {"id": "second", "title": "second"}),
            "first": {"write": {"src/app.py": "x = 'first'\n"}},
            "second": [
                {"write": {"src/app.py": "x = 'second'\n"}, "sleep": 0.8},
                {"copy_packet": str(packet), "write": {"src/app.py": "x = 'both'\n"}},
            ],
        }
    )
    res = project.gitdag("run", "--workers", "2")
    assert res.code == 0, res.err
    text = (tmp_path / "second-2.md").read_text()
    merge_of_first = git(
        project.root,
        "log",
        "--format=%H",
        "--grep",
        "^gitdag: integrate first",
        "dagain/integration",
    ).split()[0]
    assert f"it collided with: node first (merge {merge_of_first[:12]})" in text
    # The retry starts from the tip that holds first's merge, and says so.
    second = project.show("second")
    assert f"starts from the target's new tip `{merge_of_first[:12]}`" in text
    assert "<<<<<<< target" in text and "x = 'first'" in text
    assert "=======" in text and "x = 'second'" in text and ">>>>>>> previous attempt" in text
    entries = json.loads(project.gitdag("log", "second", "--json").out)
    assert any("with the change of node first" in e["summary"] for e in entries)
    assert second["status"] == "done"
