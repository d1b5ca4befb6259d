"""Dynamic dependencies: a result may say what it `needs` first (issue 17 part 2)."""

from __future__ import annotations

import json

from tests.agents.conftest import LoopProject
from tests.conftest import git

ONE_ATTEMPT = {"max_attempts": 1, "backoff_s": 0}


def test_a_node_that_needs_a_new_node_waits_for_it_then_sees_its_outputs(
    loops: LoopProject,
) -> None:
    packets = loops.tmp / "api-packet-{attempt}.json"
    gen = {"id": "gen-schema", "title": "generate the schema", "kind": "verify"}
    loops.plan(
        [{"id": "api", "title": "the api", "retry": {"max_attempts": 2, "backoff_s": 0}}],
        {
            "api": {
                "write_attempt": True,
                "copy_packet": str(packets),
                "results": [
                    {"status": "needs", "summary": "the schema first", "needs": [gen]},
                    {"status": "success", "summary": "api built on the schema"},
                ],
            },
            "gen-schema": {
                "results": [
                    {"status": "success", "summary": "schema v1", "outputs": {"schema": "v1"}}
                ]
            },
        },
    )
    res = loops.gitdag("run")
    assert res.code == 0, res.err
    order = [(r.node, r.attempt) for r in loops.rows() if r.kind == "start"]
    assert order.index(("gen-schema", 1)) < order.index(("api", 2))
    api = loops.show("api")
    assert api["status"] == "done"
    assert api["deps"] == ["gen-schema"]
    assert api["attempts"] - api["attempt_base"] == 1  # type: ignore[operator]  # nothing spent
    second = json.loads((loops.tmp / "api-packet-2.json").read_text())
    assert second["loop"]["waited_for"] == ["gen-schema"]
    dep = next(d for d in second["deps"] if d["id"] == "gen-schema")
    assert dep["outputs"]["schema"] == "v1"
    # Attempt 1's work was kept on the branch: both attempts' files land, in one integration.
    assert git(loops.root, "show", "dagain/integration:api-a1.txt") == "attempt 1\n"
    assert git(loops.root, "show", "dagain/integration:api-a2.txt") == "attempt 2\n"
    assert len([s for s in loops.target_log() if s.startswith("gitdag: integrate api")]) == 1
    assert any("Gitdag-Transition: defer" in m for m in loops.state_log())
    assert loops.gitdag("validate").code == 0


def test_a_needs_that_would_make_a_cycle_is_refused_and_named(loops: LoopProject) -> None:
    loops.plan(
        [
            {"id": "a", "title": "a", "kind": "verify", "retry": ONE_ATTEMPT},
            {"id": "b", "title": "b", "kind": "verify", "deps": ["a"]},
        ],
        {"a": {"results": [{"status": "needs", "needs": ["b"]}]}},
    )
    res = loops.gitdag("run")
    assert res.code != 0
    a = loops.show("a")
    assert a["status"] == "failed"
    assert a["deps"] == []
    assert "needs would make a cycle: a -> b -> a" in str(a["error"])
    assert loops.gitdag("validate").code == 0


def test_a_node_defers_at_most_max_deferrals_times(loops: LoopProject) -> None:
    waits = [
        {"status": "needs", "needs": [{"id": f"w{i}", "title": f"w{i}", "kind": "verify"}]}
        for i in range(1, 5)
    ]
    loops.plan(
        [{"id": "x", "title": "x", "kind": "verify", "retry": ONE_ATTEMPT}],
        {"x": {"results": waits}},
    )
    res = loops.gitdag("run")
    assert res.code != 0
    x = loops.show("x")
    assert x["status"] == "failed"
    assert "max_deferrals is 3" in str(x["error"])
    assert x["deps"] == ["w1", "w2", "w3"]
    assert loops.gitdag("validate").code == 0
