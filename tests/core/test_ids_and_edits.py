"""Ids, shards, the model's strictness, the add/init decisions, and transition messages."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from hypothesis import given
from pydantic import ValidationError

from gitdag.core import codec, edits
from gitdag.core.ids import id_problem, node_path, shard
from gitdag.core.model import Node
from gitdag.core.transitions import Rejected, Transition, message, parse_trailers
from tests.strategies import node_ids, summary

NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("../x", "'..'"), ("a..b", "'..'"), ("A B", "must match"), ("Upper", "must match"),
        ("x" * 65, "65 characters"), ("x" * 70, "70 characters"), ("", "must match"),
        ("-lead", "must match"), (".hidden", "must match"), ("a/b", "must match"),
        ("tab\tid", "must match"), ("é", "must match"), (7, "must be a string"),
    ],
)  # fmt: skip
def test_invalid_ids_say_why(value: object, why: str) -> None:
    problem = id_problem(value)
    assert problem is not None and why in problem


@given(node_ids)
def test_valid_ids_and_their_shard(nid: str) -> None:
    assert id_problem(nid) is None
    assert shard(nid) == hashlib.sha1(nid.encode()).hexdigest()[:2]
    assert node_path(nid) == f"nodes/{shard(nid)}/{nid}.yaml"


def test_64_characters_is_the_limit() -> None:
    assert id_problem("a" * 64) is None
    assert id_problem("a" * 65) is not None


@pytest.mark.parametrize(
    ("field", "value"),
    [("priority", "3"), ("worktree", "yes"), ("deps", "a"), ("attempts", -1), ("title", 5),
     ("status", "ready"), ("kind", "job"), ("created_at", 5), ("deps", ["Bad Id"])],
)  # fmt: skip
def test_model_is_strict(field: str, value: object) -> None:
    data = {"id": "a", "title": "t", "created_at": NOW, "updated_at": NOW, field: value}
    with pytest.raises(ValidationError):
        Node.model_validate(data)


def test_unknown_key_is_named() -> None:
    text = codec.dump(Node(id="a", title="t", created_at=NOW, updated_at=NOW))
    with pytest.raises(codec.DecodeError, match=r"^field colour: unknown key$"):
        codec.load_node(text + "colour: blue\n")


def test_add_rejections_name_the_field() -> None:
    existing = {"a": summary("a"), "b": summary("b", deps=("a",))}
    cases = {
        "../x": "invalid id", "A B": "invalid id", "x" * 70: "invalid id",
    }  # fmt: skip
    for nid, why in cases.items():
        out = edits.add_transition(existing, {"id": nid, "title": "t"}, NOW)
        assert isinstance(out, Rejected) and why in out.reason and out.field == "id"
    dup = edits.add_transition(existing, {"id": "a", "title": "t"}, NOW)
    assert isinstance(dup, Rejected) and "already exists" in str(dup)
    unknown = edits.add_transition(existing, {"id": "c", "title": "t", "deps": ["zz"]}, NOW)
    assert isinstance(unknown, Rejected) and str(unknown) == "c.deps: unknown node 'zz'"
    bad_type = edits.add_transition(existing, {"id": "c", "title": "t", "priority": "high"}, NOW)
    assert isinstance(bad_type, Rejected) and "priority" in str(bad_type)


def test_adding_a_node_that_closes_a_cycle_is_impossible_but_checked() -> None:
    # A new node cannot be depended on yet, so `add` alone cannot close a cycle; proposals that
    # add several nodes at once can, and check_additions catches it.
    n1 = Node(id="x", title="t", deps=("y",), created_at=NOW, updated_at=NOW)
    n2 = Node(id="y", title="t", deps=("x",), created_at=NOW, updated_at=NOW)
    out = edits.check_additions({}, [n1, n2])
    assert isinstance(out, Rejected) and out.reason.startswith("cycle: ")
    assert set(out.nodes) == {"x", "y"}


def test_add_builds_an_open_node_with_times() -> None:
    out = edits.add_transition({}, {"id": "a", "title": "Do", "deps": []}, NOW)
    assert isinstance(out, Transition)
    (node,) = out.put
    assert node.status.value == "open" and node.created_at == NOW and node.attempts == 0
    assert (out.verb, out.subject, out.to_status) == ("add", "a", "open")


def test_init_with_and_without_goal() -> None:
    with_goal = edits.init_transition("Ship it\nwith care", "dagain/integration", NOW)
    assert isinstance(with_goal, Transition) and with_goal.graph is not None
    assert [n.id for n in with_goal.put] == ["plan-000"]
    assert with_goal.put[0].title == "Ship it" and with_goal.put[0].kind.value == "plan"
    bare = edits.init_transition("", "main", NOW)
    assert isinstance(bare, Transition) and bare.put == ()
    bad = edits.init_transition("", "bad..branch", NOW)
    assert isinstance(bad, Rejected)


def test_message_and_trailers() -> None:
    t = Transition(verb="claim", subject="a", from_status="open", to_status="running",
                   summary="taking it\n  now", attempt=2, nodes=("a", "b"),
                   trailers=(("Gitdag-Nonce", "xyz"),))  # fmt: skip
    text = message(t, "supervisor@host:42")
    assert text.splitlines()[0] == "claim a: open -> running"
    assert text.splitlines()[2] == "taking it now"
    assert parse_trailers(text) == {
        "Gitdag-Transition": ["claim"], "Gitdag-Node": ["a", "b"], "Gitdag-Attempt": ["2"],
        "Gitdag-Actor": ["supervisor@host:42"], "Gitdag-Nonce": ["xyz"],
    }  # fmt: skip


def test_codec_refuses_a_lone_surrogate_rather_than_write_an_unreadable_file() -> None:
    node = Node(id="a", title="t", created_at=NOW, updated_at=NOW)
    broken = node.model_copy(update={"title": "bad \udcff"})  # model_copy does not validate
    with pytest.raises(ValueError, match="lone surrogate U\\+DCFF"):
        codec.dump(broken)
    with pytest.raises(ValidationError):
        Node(id="a", title="bad \udcff", created_at=NOW, updated_at=NOW)


def test_store_never_writes_an_oversized_node(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gitdag.errors import InputError
    from gitdag.store.state import StateStore
    from tests.conftest import make_repo

    repo = make_repo(tmp_path / "r")
    store = StateStore.open(repo)
    t = edits.init_transition("", "main", NOW)
    assert isinstance(t, Transition)
    store.init(t, "me")
    node = Node(id="big", title="t", created_at=NOW, updated_at=NOW)
    huge = node.model_copy(update={"description": "x" * (codec.MAX_FILE_BYTES + 1)})
    head = store.head()
    with pytest.raises(InputError, match=r"nodes/../big.yaml: the node file would be \d+ bytes"):
        store.transact(lambda s, now: Transition(verb="add", subject="big", put=(huge,)), actor="t")
    assert store.head() == head
    store.close()
