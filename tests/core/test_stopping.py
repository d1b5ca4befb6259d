"""core/stopping.py: the one explanation of a stop, for `gitdag run` and `gitdag work`."""

from __future__ import annotations

import datetime as dt

from gitdag.core.model import Node, summarize
from gitdag.core.stopping import LocalFacts, why_stopped

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def s(nid: str, **kw: object):  # type: ignore[no-untyped-def]
    base: dict[str, object] = {"id": nid, "title": nid, "created_at": NOW, "updated_at": NOW}
    base.update(kw)
    return summarize(Node.model_validate(base))


def test_all_done_is_0_with_the_counts() -> None:
    nodes = {"a": s("a", status="done"), "b": s("b", status="cancelled")}
    stop = why_stopped(nodes, paused=False, now=NOW, facts=LocalFacts())
    assert stop.code == 0 and stop.line == "all done (done 1, cancelled 1)"


def test_every_reason_is_named_with_the_command_that_helps() -> None:
    nodes = {
        "f": s("f", status="failed"),
        "b": s("b", deps=["f"]),
        "q": s("q", kind="checkpoint", status="needs_human"),
    }
    facts = LocalFacts(proposals=("p-a1",), held_starts=("2 node(s) wait for a repair (x: y)",),
                       merge_hold=("target_dirty", "stash"), held_merges=1)  # fmt: skip
    stop = why_stopped(nodes, paused=True, now=NOW, facts=facts)
    assert stop.code == 1
    assert stop.line.startswith("stopped: nothing more can run (")
    for part in ("the graph is paused (gitdag resume)",
                 "1 node(s) wait for an answer (gitdag answer)",
                 "1 node(s) failed (gitdag show / gitdag retry)",
                 "2 node(s) wait for a repair (x: y)",
                 "1 merge(s) wait for a repair (target_dirty: stash)",
                 "1 node(s) blocked by failed deps",
                 "proposal p-a1 awaits review (gitdag apply-proposal p-a1)"):  # fmt: skip
        assert part in stop.line, (part, stop.line)


def test_a_pending_proposal_is_not_all_done() -> None:
    nodes = {"a": s("a", status="done")}
    stop = why_stopped(nodes, paused=False, now=NOW, facts=LocalFacts(proposals=("p",)))
    assert stop.code == 1 and "proposal p awaits review" in stop.line


def test_a_worker_lacking_labels_stops_with_0_and_names_the_nodes() -> None:
    nodes = {"a": s("a", labels=["gpu"]), "d": s("d", status="done")}
    stop = why_stopped(nodes, paused=False, now=NOW, facts=LocalFacts(labels=()))
    assert stop.code == 0
    assert stop.line == ("nothing left for this worker (open 1, done 1); 1 ready node(s) need "
                         "labels it lacks: a")  # fmt: skip


def test_a_worker_lacking_labels_beside_a_failure_says_both() -> None:
    nodes = {"a": s("a", labels=["gpu"]), "f": s("f", status="failed")}
    stop = why_stopped(nodes, paused=False, now=NOW, facts=LocalFacts(labels=()))
    assert stop.code == 1 and "1 node(s) failed" in stop.line
    assert "1 ready node(s) need labels this worker lacks" in stop.line


def test_nodes_elsewhere_are_named_for_run() -> None:
    nodes = {"r": s("r", status="running"), "m": s("m", status="merging")}
    stop = why_stopped(nodes, paused=False, now=NOW, facts=LocalFacts())
    assert "1 node(s) running elsewhere (gitdag status)" in stop.line
    assert "1 node(s) merging elsewhere (gitdag status)" in stop.line
