"""Finished attempts kept in the clone until their result lands on the remote (`gitdag work`).

A finished attempt's result and work record (its branch `dagain/work/<id>` and the head to push
there) are written to `.dagain/local/pending/<id>.json` before the push, and dropped once it
landed or was judged; so is the failure of an attempt whose runner ended badly (a timeout, no
result: its kind and summary). While the remote does not answer, a running worker keeps them
there and pushes them when it answers again (remote/link.py). Whatever keeps the push from
landing — the remote unreachable past `remote.retry_for_s`, a refusal of the state branch, the
worker killed mid-push — the entry stays, and so does the branch in the clone.

A worker started again in the same clone finishes the journal before it claims anything
(`replay`): an entry whose attempt still holds the node's claim (running, claimed by this clone)
is pushed again, and the agent does not run a second time; an entry whose lease was lost (the
node was reclaimed after its lease ran out, cancelled, retried or reset) is discarded, with one
line saying so. The result is fenced by its attempt on the remote anyway: replaying a lost one
could only be rejected. An entry whose result had in fact landed (the push went through and its
report was lost: the remote went away, or the try was cut, right after) is not lost: the node is
`merging` with the entry's branch head, and the clone takes its merge back (`landed`) instead of
leaving it to whichever worker adopts merges whose worker is gone, a lease later.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitdag.core.model import ErrorKind, Node, Status, Work
from gitdag.core.results import RunnerResult
from gitdag.store.remote import RemoteState


@dataclass(frozen=True)
class Entry:
    """One finished attempt whose result (or failure) has not landed yet."""

    node_id: str
    attempt: int
    result: RunnerResult | None
    work: Work | None
    failure: tuple[ErrorKind, str] | None = None  # (kind, summary) when the attempt failed


class Journal:
    """One file per node whose finished attempt has not landed on the remote yet."""

    def __init__(self, local: Path) -> None:
        self.dir = local / "pending"

    def save(self, node_id: str, attempt: int, result: RunnerResult, work: Work | None) -> None:
        """Keep a result before pushing it (best effort: losing it costs a re-run only)."""
        data = {
            "attempt": attempt,
            "result": result.model_dump(mode="json"),
            "work": work.model_dump(mode="json") if work is not None else None,
        }
        self._write(node_id, data)

    def save_failure(self, node_id: str, attempt: int, kind: ErrorKind, summary: str) -> None:
        """Keep an attempt's failure before pushing it (best effort, as `save`)."""
        data = {"attempt": attempt, "failure": {"kind": kind.value, "summary": summary}}
        self._write(node_id, data)

    def _write(self, node_id: str, data: dict[str, object]) -> None:
        with contextlib.suppress(OSError):
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = self.dir / f"{node_id}.json.tmp"
            tmp.write_text(json.dumps(data), encoding="utf-8")
            tmp.replace(self.dir / f"{node_id}.json")

    def _read(self, node_id: str) -> Entry | None:
        try:
            data = json.loads((self.dir / f"{node_id}.json").read_text(encoding="utf-8"))
            if data.get("failure"):
                failure = data["failure"]
                kind = ErrorKind(failure["kind"])
                return Entry(node_id, int(data["attempt"]), None, None, (kind, failure["summary"]))
            result = RunnerResult.model_validate(data["result"])
            work = Work.model_validate(data["work"]) if data.get("work") else None
            return Entry(node_id, int(data["attempt"]), result, work)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def load(self, node_id: str, attempt: int) -> Entry | None:
        """The kept result of that attempt, or None."""
        entry = self._read(node_id)
        return entry if entry is not None and entry.attempt == attempt else None

    def entries(self) -> list[Entry]:
        """Every kept result, by node id (an unreadable file is skipped: it cannot be pushed)."""
        if not self.dir.is_dir():
            return []
        names = sorted(p.name.removesuffix(".json") for p in self.dir.glob("*.json"))
        return [e for e in (self._read(n) for n in names) if e is not None]

    def has(self, node_id: str) -> bool:
        """Tell whether a result (or failure) of the node is kept."""
        return (self.dir / f"{node_id}.json").is_file()

    def drop(self, node_id: str) -> None:
        """The result landed (or can never land): forget it."""
        (self.dir / f"{node_id}.json").unlink(missing_ok=True)


def lost_lease(node: Node | None, attempt: int, token: str) -> str | None:
    """Why a kept result of `attempt` can no longer land (None: its claim is still ours).

    Ours: the node is running that very attempt, claimed by a worker of this clone (`token`
    ends its claim's worker).
    """
    if node is None:
        return "the node no longer exists"
    claim = node.claim
    if node.status is Status.RUNNING and claim is not None and claim.attempt == attempt:
        if claim.worker.endswith("." + token):
            return None
        return f"attempt {attempt} is claimed by {claim.worker}"
    return (f"its lease was lost (the node is {node.status.value} at attempt {node.attempts} "
            "on the remote)")  # fmt: skip


def landed(node: Node | None, entry: Entry) -> bool:
    """Tell whether the entry's result is the one the remote already holds, waiting to merge.

    The node is `merging` the very head the entry carries: that commit exists only because
    this clone's attempt made it, so the result landed even if its push never said so.
    """
    if node is None or node.status is not Status.MERGING or entry.result is None:
        return False
    return (entry.work is not None and entry.work.head is not None and node.work is not None
            and node.work.head == entry.work.head)  # fmt: skip


def replay(
    journal: Journal,
    remote: RemoteState,
    token: str,
    push: Callable[[Entry], None],
    say: Callable[[str], None],
    merge: Callable[[str], None] | None = None,
) -> list[str]:
    """Finish the journal: push each kept result whose claim is still ours, discard the rest.

    Args:
      journal: the clone's journal.
      remote: the remote, fetched (each entry is judged on its head as it is then).
      token: this clone's worker token.
      push: pushes one entry's result (and drops it from the journal once judged).
      say: reports one line.
      merge: takes back the merge of a node whose kept result had landed (`landed`).

    Returns:
      The ids of the nodes whose kept result was pushed.
    """
    pushed = []
    for entry in journal.entries():
        snap = remote.snapshot()
        node = remote.store.node(snap, entry.node_id) if entry.node_id in snap.nodes else None
        if merge is not None and landed(node, entry):
            journal.drop(entry.node_id)
            say(f"{entry.node_id}: the kept result of attempt {entry.attempt} had landed; its "
                "merge goes on here")  # fmt: skip
            merge(entry.node_id)
            continue
        why = lost_lease(node, entry.attempt, token)
        if why is not None:
            journal.drop(entry.node_id)
            say(f"{entry.node_id}: kept result of attempt {entry.attempt} discarded: {why}")
            continue
        what = "failure" if entry.failure is not None else "result"
        say(f"{entry.node_id}: pushing the kept {what} of attempt {entry.attempt} again (its "
            "agent does not run again)")  # fmt: skip
        push(entry)
        pushed.append(entry.node_id)
    return pushed
