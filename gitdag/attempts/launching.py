"""Everything between a claim and a runner process: cwd, packet, command, environment.

And everything between a runner's exit and the state commit that does not decide anything:
committing the worktree's leftovers, the merge queue's git work, removing worktrees.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitdag import crash
from gitdag.attempts import loops
from gitdag.attempts.holds import EnvHold, classify_error
from gitdag.attempts.scratch import ScratchPool
from gitdag.attempts.waiting import Waiting
from gitdag.config import RunnerConfig, Settings
from gitdag.core import agent_loops
from gitdag.core.judging import PoolRules
from gitdag.core.model import ErrorKind, HoldKind, Kind, Node, Work
from gitdag.core.results import ResultProblem, RunnerResult
from gitdag.errors import ENVIRONMENT_ERRORS, ConfigError, WorkspaceError
from gitdag.runner import bindings
from gitdag.runner.launch import LaunchSpec, RunHandle, RunOutcome, launch, runner_command
from gitdag.runner.packet import (
    Decision,
    DepInfo,
    InputValue,
    PacketData,
    Resume,
    load_prompt,
    write_packet,
)
from gitdag.store.layout import STATE_REF
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import StateStore
from gitdag.workspace import merge_queue
from gitdag.workspace.advance import Land
from gitdag.workspace.conflicts import collisions, hunks
from gitdag.workspace.merge_queue import MergeResult
from gitdag.workspace.worktrees import Worktrees


class LostWork(WorkspaceError):
    """A merging node's uncommitted work is gone: only another attempt can make it again."""


ROLE_OF_KIND = {Kind.PLAN: "planner", Kind.TASK: "executor", Kind.VERIFY: "verifier"}


@dataclass(frozen=True)
class Prepared:
    """A claimed attempt, ready to start."""

    node_id: str
    attempt: int
    kind: Kind
    cwd: Path
    run_dir: Path
    spec: LaunchSpec
    timeout_s: float
    code: bool  # works in its own worktree, integrates through the merge queue
    base: str | None  # the target commit the worktree started from
    branch: str | None
    slot: str | None  # the scratch checkout it borrowed


@dataclass(frozen=True)
class Settled:
    """A finished attempt: its `result` (and `work`, a success's branch), or its `problem`."""

    result: RunnerResult | None = None
    work: Work | None = None
    problem: ResultProblem | None = None
    hold: EnvHold | None = None  # its leftovers could not be committed yet (a full disk)


class Launcher:
    """Prepares, starts and cleans up after runs; owns the worktrees and scratch checkouts."""

    def __init__(self, store: StateStore, settings: Settings) -> None:
        paths = store.paths
        self.store = store
        self.settings = settings
        self.root = paths.root
        self.local = paths.ensure_local()
        self.runs = self.local / "runs"
        self.worktrees = Worktrees(paths.root, paths.git_dir, self.local)
        self.scratch = ScratchPool(self.worktrees)
        self.waiting = Waiting(self.worktrees)  # worktrees kept while their node waits (`needs`)
        self.git_dir = paths.git_dir
        # Nodes whose finished work waits uncommitted in its worktree (a full disk): the one
        # case where a merging node still needs its checkout.
        self.uncommitted: set[str] = set()

    # --- choosing the runner ------------------------------------------------------------------

    def role_of(self, node: Node) -> str | None:
        return node.role or ROLE_OF_KIND.get(node.kind)

    def pool_of(self, node: Node) -> tuple[str, ...]:
        if node.runner:
            return (node.runner,)
        role = self.role_of(node)
        return self.settings.pool_for(role) if role else ()

    def pool_rules(self, node: Node) -> PoolRules:
        pool = self.settings.pool
        return PoolRules(
            len(self.pool_of(node)), frozenset(pool.promote_on), pool.promote_after_attempts
        )

    def runner_for(self, node: Node) -> tuple[str, RunnerConfig]:
        pool = self.pool_of(node)
        if not pool:
            raise ConfigError(f"no runner for node {node.id} (role {self.role_of(node)!r})")
        index = min(node.pool.index if node.pool else 0, len(pool) - 1)
        name = pool[index]
        config = self.settings.runners.get(name)
        if config is None:
            raise ConfigError(
                f".dagain/config.yaml: runners: no runner named {name!r} (node {node.id})"
            )
        return name, config

    # --- preparing -----------------------------------------------------------------------------

    def prepare(self, snap: Snapshot, node: Node, *, same_worktree: bool = False) -> Prepared:
        """Set up cwd, packet and command; on failure nothing borrowed stays borrowed.

        `same_worktree`: an agent loop's next iteration, run in the worktree the last one left.
        """
        borrowed: list[str] = []
        try:
            return self._prepare(snap, node, borrowed, same_worktree)
        except BaseException:
            for slot in borrowed:
                self.scratch.release(slot)
            if node.changes_code():
                self.worktrees.remove(node.id, delete_branch=False, archive=False)
            raise

    def _prepare(self, snap: Snapshot, node: Node, borrowed: list[str], same: bool) -> Prepared:
        attempt = node.attempts
        run_dir = loops.run_dir(self.runs, node)
        run_dir.mkdir(parents=True, exist_ok=True)
        target = snap.graph.target
        code = node.changes_code()
        base = branch = slot = None
        if code:
            # After a `needs` wait: the worktree it left here, if still usable (waiting.py).
            info = None if same else self.waiting.take(node, target)
            if info is None:
                resume = loops.carried_work(node)
                info = self.worktrees.create(node.id, target, resume=resume, keep=same)
            cwd, base, branch = info.path, info.base, info.branch
        else:
            slot, cwd = self.scratch.acquire(target)
            borrowed.append(slot)
        defaults = self.settings.defaults
        if node.kind is Kind.COMMAND:
            if not node.run:
                raise ConfigError(f"command node {node.id} has no `run`")
            cmd, env = bindings.command(node, self._reader(snap))  # ${x.outputs.K}, failures
            runner_name, timeout, role = "command", float(defaults.timeout_s), "command"
        else:
            runner_name, config = self.runner_for(node)
            cmd = runner_command(config, self.root)
            env = dict(config.env)
            timeout = float(config.timeout_s or defaults.timeout_s)
            role = self.role_of(node) or "executor"
        if node.timeout_s is not None:
            timeout = float(node.timeout_s)  # the node's own bound overrides the runner's
        # Whichever ends first stops the run: this run's timeout, or the loop's max_duration_s.
        left = agent_loops.time_left(node, snap.graph, self.store.clock())
        deadline = None
        if left is not None and left < timeout:
            timeout, deadline = max(left, 0.001), agent_loops.duration_reason(node, snap.graph)
        result_path = run_dir / "result.json"
        # dagain's runners keep files between attempts here (one directory per node, never
        # cleaned by gitdag: `gitdag gc --runs-older-than` deletes run directories only).
        artifacts = self.local / "artifacts" / node.id
        artifacts.mkdir(parents=True, exist_ok=True)
        packet = write_packet(
            run_dir, self._packet_data(snap, node, role, run_dir, result_path, cwd, base)
        )
        spec = LaunchSpec(
            node_id=node.id,
            attempt=attempt,
            run_id=f"{node.id}.{attempt}",
            runner=runner_name,
            cmd=cmd,
            env=env,
            cwd=cwd,
            run_dir=run_dir,
            packet=packet,
            result_path=result_path,
            timeout_s=timeout,
            kill_grace_s=float(defaults.kill_grace_s),
            expect_result=node.kind is not Kind.COMMAND,
            deadline=deadline,
            gitdag_env={
                "GITDAG_WORKTREE": str(cwd),
                "GITDAG_REPO": str(self.root),
                "GITDAG_STATE_REF": STATE_REF.decode(),
                "GITDAG_TARGET": target,
                "GITDAG_ARTIFACTS_DIR": str(artifacts),
                "DAGAIN_ARTIFACTS_DIR": str(artifacts),
                "DAGAIN_PARENT_NODE_ID": node.parent or "",
                **loops.environment(node),
            },
        )
        return Prepared(
            node.id, attempt, node.kind, cwd, run_dir, spec, timeout, code, base, branch, slot
        )

    def _packet_data(
        self,
        snap: Snapshot,
        node: Node,
        role: str,
        run_dir: Path,
        result_path: Path,
        cwd: Path,
        base: str | None = None,
    ) -> PacketData:
        store = self.store
        deps = []
        for dep_id in node.deps + node.after:
            if dep_id in snap.nodes:
                dep = store.node(snap, dep_id)
                deps.append(
                    DepInfo(
                        dep.id,
                        dep.title,
                        dep.status.value,
                        bindings.dep_summary(dep),
                        dict(dep.outputs),
                    )
                )
        inputs = []
        for ref in node.inputs:
            value = (
                store.node(snap, ref.node).outputs.get(ref.key) if ref.node in snap.nodes else None
            )
            inputs.append(InputValue(ref.node, ref.key, value))
        node, referenced = bindings.packet_node(node, self._reader(snap))
        inputs += referenced
        decisions = []
        concerned = [node.id, *node.deps, *node.after]
        ancestor = node.parent
        seen: set[str] = set()
        while ancestor is not None and ancestor in snap.nodes and ancestor not in seen:
            seen.add(ancestor)
            concerned.append(ancestor)
            ancestor = snap.nodes[ancestor].parent
        for nid in dict.fromkeys(concerned):
            if nid not in snap.nodes:
                continue
            cp = node.checkpoint if nid == node.id else store.node(snap, nid).checkpoint
            if cp is not None and cp.answer is not None:
                decisions.append(
                    Decision(nid, cp.question, cp.answer, cp.answered_by, cp.answered_at)
                )
        resume = None
        if (
            node.attempts > 1
            or node.error is not None
            or (node.checkpoint and node.checkpoint.answer)
        ):
            err = node.error
            cp = node.checkpoint
            resume = Resume(
                error_kind=err.kind.value if err else None,
                summary=err.summary if err else "",
                paths=err.paths if err else (),
                check_output=err.summary if err and err.kind.value == "check_failed" else "",
                answer=cp.answer if cp else None,
                question=cp.question if cp else None,
                attempt=err.attempt if err else None,
                **self._conflict(node, base),
            )
        template = "" if role == "command" else load_prompt(self.store.paths.dagain, role)
        return PacketData(
            goal=snap.graph.goal,
            node=node,
            role=role,
            attempt=node.attempts,
            run_id=f"{node.id}.{node.attempts}",
            template=template,
            result_path=result_path,
            worktree=cwd,
            deps=deps,
            inputs=inputs,
            decisions=decisions,
            resume=resume,
            loop=loops.packet_loop(node, snap.graph),
            max_bytes=self.settings.packet.max_bytes,
        )

    def _reader(self, snap: Snapshot) -> bindings.Read:
        return lambda nid: self.store.node(snap, nid) if nid in snap.nodes else None

    def start(self, prepared: Prepared) -> RunHandle:
        return launch(prepared.spec)

    # --- after the runner ------------------------------------------------------------------------

    def settle(self, prepared: Prepared, outcome: RunOutcome) -> Settled:
        """What a finished attempt came to: its result and work, or why it cannot be used.

        Shared by `gitdag run` and `gitdag work`: the runner's answer is read (`verdict`), and
        a success's leftover changes in its worktree are committed to its branch.
        """
        verdict = outcome.verdict()
        if isinstance(verdict, ResultProblem):
            return Settled(problem=verdict)
        work = None
        if verdict.status in loops.KEEPS_WORK:
            try:
                crash.fail_point("attempt.settle")
                work = self.finish_work(prepared)
            except ENVIRONMENT_ERRORS as exc:  # a worktree git could not commit: whose fault?
                hold = classify_error(exc, target="", base=prepared.base)
                if hold is not None and hold.kind is HoldKind.DISK_FULL and prepared.branch:
                    # The work is done and in its worktree: it waits there, committed later.
                    pending = Work(branch=prepared.branch, base=prepared.base, head=None)
                    self.uncommitted.add(prepared.node_id)
                    return Settled(result=verdict, work=pending, hold=hold)
                why = f"could not commit the worktree's changes: {exc}"
                return Settled(problem=ResultProblem(ErrorKind.TASK_FAILURE, why))
        return Settled(result=verdict, work=work)

    def finish_work(self, prepared: Prepared) -> Work | None:
        if not prepared.code or prepared.branch is None:
            return None
        info = self.worktrees.commit_leftovers(
            prepared.node_id,
            prepared.attempt,
            f"gitdag: {prepared.node_id} attempt {prepared.attempt}",
        )
        if not info.changed:
            return None
        return Work(branch=prepared.branch, base=prepared.base, head=info.head)

    def between_iterations(self, prepared: Prepared) -> None:
        """An agent loop goes on: its scratch slot goes back, its worktree stays as it was left."""
        if prepared.slot is not None:
            self.scratch.release(prepared.slot)

    def keep_waiting(self, prepared: Prepared, snap: Snapshot) -> bool:
        """A `needs` was committed: keep the worktree for the node's next attempt (waiting.py).

        False (release it as usual) for a node without a worktree, or whose leftovers could not
        be committed (a full disk: they are not on the carried head).
        """
        node_id = prepared.node_id
        if not prepared.code or node_id in self.uncommitted or node_id not in snap.nodes:
            return False
        return self.waiting.keep(self.store.node(snap, node_id))

    def release(
        self, prepared: Prepared, *, keep_branch: bool = True, keep_worktree: bool = False
    ) -> None:
        if prepared.slot is not None:
            self.scratch.release(prepared.slot)
        if prepared.code and keep_worktree and prepared.node_id not in self.uncommitted:
            # Its work is committed on its branch, all the merge needs: the checkout goes now,
            # so live registrations stay as few as the running nodes (every merge reads them).
            self.worktrees.remove(prepared.node_id, delete_branch=False, archive=False)
        elif prepared.code and not keep_worktree:
            if keep_branch and self.worktrees.path_for(prepared.node_id).is_dir():
                # A failed or stopped attempt's work stays on its branch for inspection (the next
                # attempt starts afresh from the target tip; `gitdag gc` keeps such branches).
                # Best effort: the attempt is over either way.
                with contextlib.suppress(Exception):
                    self.worktrees.commit_leftovers(
                        prepared.node_id,
                        prepared.attempt,
                        f"gitdag: {prepared.node_id} attempt {prepared.attempt} "
                        "(did not succeed; kept for inspection)",
                    )
            self.worktrees.remove(prepared.node_id, delete_branch=not keep_branch, archive=False)

    # --- the merge queue ------------------------------------------------------------------

    def _conflict(self, node: Node, base: str | None) -> dict[str, Any]:
        """After a merge conflict: what it collided with, the new tip, the hunks (Resume fields)."""
        err, work = node.error, node.work
        if err is None or err.kind is not ErrorKind.MERGE_CONFLICT or base is None:
            return {}
        if work is None or work.head is None:
            return {"new_tip": base}
        hit = collisions(self.root, base, work.head, err.paths)
        return {
            "collided": tuple(c.describe() for c in hit),
            "new_tip": base,
            "conflicts": hunks(self.root, base, work.head),
        }

    def integrate(
        self,
        snap: Snapshot,
        node: Node,
        *,
        land: Land | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> MergeResult:
        """Merge a node's branch (on the merge thread); `land` lands it with its record."""
        assert node.work is not None
        if node.work.head is None:
            self._commit_pending(node)
        merge = self.settings.merge
        return merge_queue.integrate(
            self.root,
            self.git_dir,
            self.local,
            branch=node.work.branch,
            target=snap.graph.target,
            check_cmd=merge.check,
            check_timeout_s=float(merge.check_timeout_s),
            node_id=node.id,
            message=merge_message(node),
            land=land,
            cancelled=cancelled,
        )

    def _commit_pending(self, node: Node) -> None:
        """Commit the leftovers a full disk kept in a merging node's worktree (no agent run)."""
        if not self.worktrees.path_for(node.id).is_dir():
            raise LostWork(f"the uncommitted work of {node.id} is gone (its worktree was removed)")
        base = node.work.base if node.work else None
        self.worktrees.commit_leftovers(
            node.id, node.attempts, f"gitdag: {node.id} attempt {node.attempts}", base=base
        )
        self.uncommitted.discard(node.id)

    def after_merge(self, node_id: str, *, integrated: bool, final: bool = False) -> None:
        if integrated:
            archive = self.settings.merge.archive_branches
            self.worktrees.remove(node_id, delete_branch=True, archive=archive)
        else:
            self.worktrees.remove(node_id, delete_branch=False, archive=False)


def merge_message(node: Node) -> str:
    """The merge commit's message: its subject names the node (`conflicts.py` reads it back)."""
    return f"gitdag: integrate {node.id} (attempt {node.attempts})\n\n{node.title}\n"
