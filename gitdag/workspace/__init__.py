"""Worktrees and the merge queue's git work (the git CLI). Never the state branch or statuses.

- `worktrees.Worktrees`: a worktree and branch per code-changing node; scratch checkouts.
- `merge_queue.integrate`: merge a node's branch into the target, check, compare-and-swap advance.
- `gc.gc`: remove leftovers and report the disk freed.
"""
