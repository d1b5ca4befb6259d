"""The read-only commands `status`, `ready` and `show`, and a start for them without click.

`gitdag status` on a big graph should cost little more than the interpreter (issue 18 part 5):
building the click group costs more than the whole of a warm status. `fast_main` runs these three
commands from the plain forms of their command lines - `[-C DIR] status [--json]`,
`[-C DIR] ready [--json]`, `[-C DIR] show NODE_ID [--json]` - and declines anything else (help,
completion, `--remote`, an unknown or repeated option), which click then parses as always. The
click commands (cli/graph_cmds.py) print through the same functions, and `failure` maps errors
to messages and exit codes for both (spec §9), so the output is the same either way
(tests/cli/test_fast_start.py compares them).

Before the store is opened, `quick` and `quick_show` try the quick start: the state ref read
from the repository's files (store/gitfiles.py) and, for status and ready, the report kept for
that head (store/reportcache.py); for show, a file gitdag wrote at a head a status read without a
problem. They print nothing and return False for anything they do not read exactly as the store
would (tests/cli/test_quick_start.py compares them with click).
"""

from __future__ import annotations

import os
import sys

from gitdag.core.render import duration

# A warm `status` or `ready` prints what the report cache kept (store/reportcache.py) after
# reading one ref and one small file; everything else is imported where it is used, so that
# path costs little more than the interpreter (issue 18 part 5; tests/cli/test_fast_start.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping
    from typing import Any

    from gitdag.core.summary import NodeSummary
    from gitdag.store.state import StateStore


def _echo(text: str, *, nl: bool = True, err: bool = False) -> None:
    # What click.echo does with a str: write it (and a newline) and flush; the stream is looked
    # up on each call, as click does, so a captured stdout (click's test runner) gets it.
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n" if nl else text)
    stream.flush()


def _echo_json(data: Any) -> None:
    import json

    _echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def open_store() -> StateStore:
    """The store of the repository around the working directory; `with` closes it afterwards."""
    from gitdag.store.state import StateStore

    return StateStore.open(".")  # a context manager of its own: `__exit__` closes it


# --- status -------------------------------------------------------------------------------------


def print_status(report: dict[str, Any], *, as_json: bool) -> None:
    """Print what `actions.status` returned, as `gitdag status` shows it."""
    if as_json:
        _echo_json(report)
        return
    _echo(f"goal: {report['goal'] or '(none)'}")
    paused = "  PAUSED" if report["paused"] else ""
    _echo(f"target: {report['target']}  state: {str(report['head'])[:12]}{paused}")
    counts = report["counts"]
    _echo(f"{report['total']} nodes: " + " · ".join(f"{k} {v}" for k, v in counts.items()))
    _list("ready", report["ready"])
    _list("blocked", report["blocked"])
    waiting = [f"{w['id']} ({'; '.join(w['for'])})" for w in report["waiting"]]
    _list("waiting", waiting)
    running = [
        f"{r['id']} (attempt {r['attempt']}"
        + (f", iteration {r['iteration']}" if r.get("iteration", 1) > 1 else "")
        + f", {r['worker']}"
        + (f", {duration(r['elapsed_s'])}" if r["elapsed_s"] is not None else "")
        + ")"
        for r in report["running"]
    ]
    _list("running", running)
    _list("merge queue", report["merge_queue"])
    _list("held", [f"{h['id']} ({h['kind']}: {h['repair']})" for h in report["held"]])
    for h in report["start_holds"]:
        count = h.get("count")
        who = "every start" if count is None else f"{count} ready node(s)"
        ids = ", ".join(h.get("nodes") or [])
        if ids:
            who += f": {ids}" + (" …" if count is not None and count > len(h["nodes"]) else "")
        _echo(f"starts held ({h['kind']}): {h['reason']}; {who}; repair: {h['repair']}")
    for g in report["groups"]:
        members = ", ".join(f"{m['id']} {m['status']}" for m in g["members"])
        _echo(f"group {g['name']}: {members} ({g['state']})")
    _list("needs human", report["needs_human"])
    _list("failed", report["failed"])
    for p in report["proposals"]:
        what = ", ".join(p["nodes"][:10]) + (" …" if len(p["nodes"]) > 10 else "")
        _echo(f"proposal {p['name']} awaits review ({what}): {p['review']}; then {p['apply']}")
        if p["conflict"]:
            _echo(f"  applying it now would be refused: {p['conflict']}")


def _list(label: str, items: list[str], limit: int = 20) -> None:
    if not items:
        return
    shown = ", ".join(items[:limit]) + (
        f", … (+{len(items) - limit})" if len(items) > limit else ""
    )
    _echo(f"{label} ({len(items)}): {shown}")


def status(*, as_json: bool) -> bool:
    """`gitdag status` of a clone whose graph has no remote.

    Returns False, having printed nothing, when the graph has one: click's `status` shows the
    remote's graph then (cli/status_remote.py).
    """
    from gitdag import actions
    from gitdag.graph_remote import LOCAL, graph_remote

    with open_store() as store:
        if graph_remote(store) is not None:
            return False
        now = store.clock()
        report = actions.status(store, now)
        _keep(store, report["head"], now, report["ready"], report)
    print_status({**report, "graph": LOCAL} if as_json else report, as_json=as_json)
    return True


# --- ready --------------------------------------------------------------------------------------


def ready(*, as_json: bool) -> None:
    """`gitdag ready`: the nodes that may start now, in claim order."""
    from gitdag.core import graph
    from gitdag.store.snapshot import Layered

    with open_store() as store:
        snap = store.snapshot()
        now = store.clock()
        nodes = snap.nodes.flat() if isinstance(snap.nodes, Layered) else snap.nodes
        ids = graph.ready(nodes, now, paused=snap.graph_summary.paused)
        if snap.head is not None:
            _keep(store, snap.head, now, ids, None, nodes)
    _print_ready(ids, as_json=as_json)


def _print_ready(ids: list[str], *, as_json: bool) -> None:
    if as_json:
        _echo_json(ids)
    else:
        for nid in ids:
            _echo(nid)


# --- the report cache: a warm status or ready without the store ---------------------------------


def _keep(
    store: StateStore,
    head: str,
    now: dt.datetime,
    ready_ids: list[str],
    report: dict[str, Any] | None,
    nodes: Mapping[str, NodeSummary] | None = None,
) -> None:
    # What this run computed at `head`, for the next status or ready at the same head.
    from gitdag.store import reportcache
    from gitdag.store.snapshot import Layered

    if nodes is None:
        nodes = store.snapshot_of(head).nodes  # the snapshot just computed: nothing is read
        nodes = nodes.flat() if isinstance(nodes, Layered) else nodes  # one fast pass follows
    until = reportcache.valid_until(nodes, now)
    reportcache.save(store.paths.local, store.ref, head=head, now=now, until_us=until,
                     ready=ready_ids, report=report)  # fmt: skip


def quick(command: str, *, as_json: bool) -> bool:
    """Print `status` or `ready` from the report cache when it holds the head's: True if done.

    Reads the state ref and the cache file without opening the repository (store/gitfiles.py);
    anything it cannot tell cheaply (a graph remote, proposal branches, a repository or cache
    it does not read) returns False, and the command runs through the store.
    """
    kept = _kept(command)
    if kept is None:
        return False
    if command == "ready":
        _print_ready(kept["ready"], as_json=as_json)
        return True
    report = kept["report"]
    if as_json:
        from gitdag.graph_remote import LOCAL

        report = {**report, "graph": LOCAL}
    print_status(report, as_json=as_json)
    return True


def _kept(command: str) -> dict[str, Any] | None:
    import time

    from gitdag.store import gitfiles, reportcache
    from gitdag.store.where import PROPOSAL_BRANCH_PREFIX, STATE_REF

    try:
        found = gitfiles.state_head(".")
        if found is None:
            return None
        root, git_dir, local, head = found
        kept = reportcache.load(local, STATE_REF, head, int(time.time()))
        if kept is None or command == "ready":
            return kept
        report = kept["report"]
        proposals = gitfiles.has_refs_under(git_dir, f"refs/heads/{PROPOSAL_BRANCH_PREFIX}")
        if report is None or proposals is not False or _may_name_remote(root):
            return None
        from gitdag.store import localholds

        report["start_holds"] = localholds.read(local)
    except Exception:
        return None  # the store reads it, and says what is wrong if anything is
    return kept


def _may_name_remote(root: str) -> bool:
    # graph_remote.py looks for `^remote\s*:` in `.dagain/config.yaml` (read with universal
    # newlines); any line starting with `remote` makes the store's path ask it. (The upstream
    # of dagain/state is in the git config, which gitfiles reads as not plain.)
    try:
        with open(os.path.join(root, ".dagain", "config.yaml"), "rb") as fh:
            data = fh.read()
    except OSError:
        return False
    return data.startswith(b"remote") or b"\nremote" in data or b"\rremote" in data


# --- errors and the fast start ------------------------------------------------------------------


def _show() -> Any:
    from gitdag import readonly_show  # only `show` pays for it

    return readonly_show


def failure(exc: Exception) -> int:
    """Print the one line an error gets and return the exit code (spec §9).

    A GitdagError carries its code; a full disk or a read-only repository is the environment,
    not the input (exit 2, naming the path); anything else is a bug: exit 3, traceback logged.
    """
    import errno

    from gitdag.errors import GitdagError

    if isinstance(exc, GitdagError):
        _echo(f"gitdag: error: {exc}", err=True)
        return exc.exit_code
    if isinstance(exc, BrokenPipeError):
        # `gitdag status | head`: the reader left. Nothing to say; exit as git does on SIGPIPE,
        # with stdout pointed at /dev/null so the interpreter's last flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    # No space, quota, read-only file system, permission: what the repository's storage refuses.
    storage = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
    if isinstance(exc, OSError) and exc.errno in storage:
        # Objects and refs are written before the ref moves, so nothing half-written is visible
        # (docs/input-rules.md).
        where = f"{exc.filename}: " if exc.filename else ""
        _echo(f"gitdag: error: {where}{exc.strerror or exc}; nothing was changed", err=True)
        return 2
    log = crash_log()
    _echo(f"gitdag: unexpected error; traceback in {log}", err=True)
    return 3


def crash_log() -> str:
    """Write the traceback being handled to `.dagain/local/logs/` (or the temp dir): its path."""
    import datetime as dt
    import tempfile
    import traceback
    from pathlib import Path

    text = traceback.format_exc()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    try:
        from gitdag.store.repo import open_repo

        _, paths = open_repo(".")
        if not paths.local.is_dir():  # never create .dagain/ (a failed init leaves nothing)
            raise FileNotFoundError(paths.local)
        target = paths.local / "logs" / f"crash-{stamp}.log"
    except Exception:
        target = Path(tempfile.gettempdir()) / f"gitdag-crash-{stamp}.log"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    except OSError:
        sys.stderr.write(text)
        return "(stderr)"
    return str(target)


def _parse(argv: list[str]) -> tuple[str | None, str, str | None, bool] | None:
    """Return (directory, command, node id, --json) for a plain command line, else None."""
    directory = None
    args = list(argv)
    if args[:1] == ["-C"] and len(args) >= 2:
        directory, args = args[1], args[2:]
        if not os.path.isdir(directory):
            return None  # click says what is wrong with it
    if not args or args[0] not in ("status", "ready", "show"):
        return None
    command, rest = args[0], args[1:]
    as_json = rest.count("--json") == 1
    if as_json:
        rest.remove("--json")
    if "--json" in rest:
        return None
    node_id = None
    if command == "show":
        if len(rest) != 1 or rest[0].startswith("-") or not rest[0]:
            return None
        node_id = rest[0]
    elif rest:
        return None
    return directory, command, node_id, as_json


def fast_main(argv: list[str]) -> int | None:
    """Run `status`, `ready` or `show` without click: the exit code, or None to use click."""
    if "_GITDAG_COMPLETE" in os.environ:
        return None  # shell completion is click's
    parsed = _parse(argv)
    if parsed is None:
        return None
    directory, command, node_id, as_json = parsed
    # A short-lived process that reads: reference counting frees what it drops, and the cyclic
    # collector would only walk the 10^5-10^6 objects of a big graph's summaries, repeatedly.
    import gc

    gc.disable()
    start = os.getcwd()
    try:
        try:
            if directory:
                os.chdir(directory)
            if command != "show" and quick(command, as_json=as_json):
                pass
            elif command == "status":
                if not status(as_json=as_json):
                    os.chdir(start)  # click runs the whole command line again, -C included
                    gc.enable()
                    return None
            elif command == "ready":
                ready(as_json=as_json)
            elif not as_json and node_id is not None and _show().quick_show(node_id):
                pass
            else:
                assert node_id is not None
                _show().show(node_id, as_json=as_json)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            return failure(exc)
    except KeyboardInterrupt:
        _echo("", err=True)  # closes the terminal's ^C echo, as click does
        _echo("Aborted!", err=True)
        return 1
    return 0
