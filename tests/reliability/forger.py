"""A runner that bypasses the supervisor: on attempt 1 it moves dagain/state itself, then succeeds.

Env FORGE_MODE: `illegal` (git plumbing: flips node `victim` to done without a result, then
`git update-ref`), or `signed` (a perfectly legal `cancel victim` written with gitdag's own store,
signed with the supervisor's actor taken from this node's claim). Later attempts behave.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def git(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["git", *args], input=input, capture_output=True, text=True, check=True,
                          env={**os.environ, **(env or {})})  # fmt: skip
    return proc.stdout.strip()


def forge_illegal(repo: str) -> None:
    from gitdag.core.ids import node_path

    path = node_path("victim")
    head = git("-C", repo, "rev-parse", "refs/heads/dagain/state")
    text = git("-C", repo, "show", f"{head}:{path}") + "\n"
    done = text.replace("status: open", "status: done")
    blob = git("-C", repo, "hash-object", "-w", "--stdin", input=done)
    index = {"GIT_INDEX_FILE": os.path.join(os.environ["GITDAG_WORKTREE"], ".forge-index")}
    git("-C", repo, "read-tree", head, env=index)
    git("-C", repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=index)
    tree = git("-C", repo, "write-tree", env=index)
    os.unlink(index["GIT_INDEX_FILE"])
    message = ("complete victim: open -> done\n\nGitdag-Transition: complete\nGitdag-Node: victim\n"
               "Gitdag-Actor: runner\n")  # fmt: skip
    commit = git("-C", repo, "commit-tree", tree, "-p", head, input=message)
    git("-C", repo, "update-ref", "refs/heads/dagain/state", commit, head)


def forge_signed(repo: str) -> None:
    from gitdag.core import human_verbs
    from gitdag.store.state import StateStore

    with StateStore.open(repo, use_disk_cache=False) as store:
        snap = store.snapshot()
        me = store.node(snap, os.environ["GITDAG_NODE_ID"])
        assert me.claim is not None
        store.transact(lambda s, now: human_verbs.cancel(store.node(s, "victim"), by="x", now=now),
                       actor=me.claim.worker)  # fmt: skip


def main() -> int:
    repo = os.environ["GITDAG_REPO"]
    if os.environ["GITDAG_ATTEMPT"] == "1":
        mode = os.environ.get("FORGE_MODE", "illegal")
        forge_illegal(repo) if mode == "illegal" else forge_signed(repo)
    with open(os.environ["GITDAG_RESULT"], "w") as fh:
        json.dump({"status": "success", "summary": "did the work"}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
