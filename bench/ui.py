"""`gitdag ui` in a real browser: first paint, a transition reaching the page, time travel.

What is timed (median of --repeat, wall clock, Chromium headless through Playwright; the server is
the real `gitdag ui` CLI process):
  first paint: from navigation start to the first frame after the graph is drawn (the page's
    `gitdag-first-paint` mark): page and scripts, the graph's JSON, the layout, the canvas.
    Two 2,000-node graphs: one as planners make them (a root plan, sub-plans of ~40 nodes each,
    dependencies mostly inside a sub-plan), and bench/_util.py's dense random DAG (up to three
    deps on any of the 50 nodes before; one planner, so one big cluster).
  a transition reaching the page: from the moment a claim is committed (by this process, as
    another shell would) until the page has repainted that node as running.
  the graph at an older commit: a 10k-node graph with 1,000 transitions of history; from moving
    the slider 1,000 commits back until the page has repainted every status at that commit.
    Warm: the server has read that commit once before. Then again after --added nodes are added
    (the real `gitdag add`), on a fresh page: the commit 1,000 back has another node set than the
    head, so the page lays it out (cold) and then reuses that layout (warm: its layout is kept).
Floors measured in the same run: first paint of a one-node graph (the page, its scripts and one
request: what every graph pays); for the transition, one fetch of the same graph by the page
(the reload any update costs); for time travel, the same repaint at the head commit.
Targets (issue 15): first paint of 2,000 nodes <= 1.5 s; a transition <= 1 s; the graph at an
older commit of a 10k-node graph 1,000 commits back <= 1 s warm.

Usage: python bench/ui.py [--repeat 5] [--big 10000] [--history 1000] [--added 20] [--travel-only]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _util as u
import review

from gitdag.core import lifecycle
from gitdag.core.model import Kind, Node, Status
from gitdag.core.transitions import Transition
from gitdag.store.state import Committed, StateStore

ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
ROOT = Path(__file__).resolve().parent.parent


def planned_nodes(n: int, seed: int = 0, cluster: int = 40) -> list[Node]:
    """`n` nodes as planners make them: a root plan, sub-plans each adding ~`cluster` nodes."""
    rng = random.Random(seed)
    nodes: list[Node] = []
    plans: list[str] = []
    members: list[str] = []
    for i in range(n):
        nid = u.node_id(i)
        created = u.EPOCH + dt.timedelta(seconds=i)
        if i == 0 or i % cluster == 1:
            kind, parent = Kind.PLAN, (u.node_id(0) if i else None)
            deps = [plans[-1]] if len(plans) > 1 and rng.random() < 0.5 else []
            plans.append(nid)
            members = []
        else:
            kind, parent = (Kind.VERIFY if i % cluster == 0 else Kind.TASK), plans[-1]
            picks = rng.randint(0, 2)
            deps = sorted({rng.choice(members[-10:]) for _ in range(picks)}) if members else []
            members.append(nid)
        status = Status.DONE if i < 0.6 * n else (Status.RUNNING if i % 97 == 3 else Status.OPEN)
        nodes.append(Node(id=nid, title=f"Step {i}: change module {i % 97}", kind=kind,
                          status=status, deps=tuple(deps), parent=parent,
                          attempts=0 if status is Status.OPEN else 1,
                          created_at=created, updated_at=created))  # fmt: skip
    return nodes


@contextmanager
def served(root: Path) -> Iterator[str]:
    """Run the real `gitdag ui` in `root`; yield the page URL with its token."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "gitdag", "ui", "--port", "0"], cwd=root,
                            env=env, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"(http://\S+)", line)
    if found is None:
        proc.kill()
        raise SystemExit(f"gitdag ui printed {line!r}")
    try:
        yield found.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def first_paint(browser: Any, url: str, repeat: int) -> tuple[list[float], list[float]]:
    """Seconds from navigation start to the first drawn frame of the graph, `repeat` fresh pages;
    and to the frame with the refined layout (big graphs are refined by dagre after first paint)."""
    times: list[float] = []
    refined: list[float] = []
    for _ in range(repeat):
        page = browser.new_page(viewport={"width": 1400, "height": 850})
        page.goto(url)
        page.wait_for_function("window.gitdag && window.gitdag.firstPaint", timeout=60000)
        times.append(page.evaluate("window.gitdag.firstPaint") / 1000)
        page.wait_for_function("window.gitdagView.refined", timeout=120000)
        refined.append(page.evaluate("window.gitdagView.refined") / 1000)
        page.close()
    return times, refined


def commit_claim(store: StateStore) -> str:
    """Claim one open node (as a supervisor in another process would); return its id."""

    def compute(snap: Any, now: dt.datetime) -> Transition:
        nid = next(i for i, s in sorted(snap.nodes.items()) if s.status is Status.OPEN)
        claim = lifecycle.claim(store.node(snap, nid), worker="supervisor@bench:1", now=now,
                                lease_s=600)  # fmt: skip
        assert isinstance(claim, Transition)
        return claim

    done = store.transact(compute, actor="supervisor@bench:1")
    assert isinstance(done, Committed)
    return done.transition.subject


def transition_latency(
    browser: Any, root: Path, url: str, repeat: int
) -> tuple[list[float], float]:
    """Seconds from a claim's commit to the page showing the node running; and the fetch floor."""
    page = browser.new_page(viewport={"width": 1400, "height": 850})
    page.goto(url)
    page.wait_for_function("window.gitdag && window.gitdag.firstPaint", timeout=60000)
    page.wait_for_selector("#live.on")
    times: list[float] = []
    with StateStore.open(root) as store:
        for _ in range(repeat):
            nid = commit_claim(store)
            t0 = time.perf_counter()
            page.wait_for_function(
                f"window.gitdag.status.get('{nid}') === 'running'", timeout=10000
            )
            times.append(time.perf_counter() - t0)
            time.sleep(0.3)
    fetch = """async () => { const t = performance.now();
        const r = await fetch('api/graph', {headers: {'X-Gitdag-Token': window.gitdag.token}});
        await r.json(); return performance.now() - t; }"""
    fetches = [page.evaluate(fetch) / 1000 for _ in range(repeat)]
    page.close()
    return times, u.med(fetches)


def travel(page: Any, commit: str | None, fetch: bool = False) -> float:
    """Seconds from moving the slider to `commit` (None: the head) to the repainted graph.

    fetch: forget the graphs the page keeps, so it fetches the commit's graph again.
    """
    if fetch:
        page.evaluate("window.gitdag.atGraphs.clear()")
    return (
        float(
            page.evaluate(
                """(commit) => new Promise((done) => {
        const G = window.gitdag, s = document.querySelector('#slider');
        const i = commit ? G.log.findIndex(e => e.commit === commit) : 0;
        const t0 = performance.now();
        window.addEventListener('gitdag-at', () => requestAnimationFrame(() =>
            done((performance.now() - t0) / 1000)), {once: true});
        s.value = String(G.log.length - 1 - i);
        s.dispatchEvent(new Event('input'));
    })""",
                commit,
            )
        )
        - 0.04
    )  # fmt: skip  (less the slider's 40 ms debounce)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--big", type=int, default=10000)
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--added", type=int, default=20)
    parser.add_argument("--travel-only", action="store_true", help="only the 10k time travel")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs the distribution's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="gitdag-bench-ui-"))
    u.seal_env(tmp / "home")
    print(f"machine: {u.machine()}")
    try:
        tiny = u.build_state_repo(tmp / "tiny", planned_nodes(1))
        planned = u.build_state_repo(tmp / "planned", planned_nodes(2000))
        dense = u.build_state_repo(tmp / "dense", u.make_nodes(2000))
        big = u.build_state_repo(tmp / "big", planned_nodes(args.big))
        with StateStore.open(big.path) as store:
            review.make_history(store, args.history)
        with sync_playwright() as play:
            browser = play.chromium.launch(executable_path=chromium, args=ARGS)
            if not args.travel_only:
                small_graphs(browser, args, tiny, planned, dense)
            with served(big.path) as url:
                paint, cold, warm, head, fetched = travel_figures(
                    browser, url, args.history, args.repeat
                )
            print(f"first paint, {args.big:,} nodes (planned): {u.ms(paint)}")
            print(f"graph {args.history:,} commits back ({args.big:,} nodes): cold {u.ms(cold)}, "
                  f"warm {u.ms(u.med(warm))}, warm server but fetched again "
                  f"{u.ms(u.med(fetched))}  (target <= 1000 ms warm; floor: one commit back, "
                  f"fetched {u.ms(u.med(head))}, "
                  f"{u.med(fetched) / u.med(head):4.1f}x)")  # fmt: skip
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            for i in range(args.added):
                subprocess.run([sys.executable, "-m", "gitdag", "add", f"bench-new-{i}", "--title",
                                f"added later {i}"], cwd=big.path, env=env, check=True,
                               capture_output=True)  # fmt: skip
            with served(big.path) as url:
                _, cold, warm, head, fetched = travel_figures(
                    browser, url, args.history + args.added, args.repeat
                )
            print(f"the same {args.history + args.added:,} commits back, {args.added} nodes added "
                  f"since (another node set: laid out): cold {u.ms(cold)}, warm "
                  f"{u.ms(u.med(warm))}, warm server but fetched again {u.ms(u.med(fetched))}; "
                  f"one commit back {u.ms(u.med(head))}")  # fmt: skip
            browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def small_graphs(browser: Any, args: Any, tiny: Any, planned: Any, dense: Any) -> None:
    """First paint of 2,000-node graphs and a transition reaching the page."""
    with served(tiny.path) as url:
        floor = u.med(first_paint(browser, url, args.repeat)[0])
    print(f"floor: first paint of a 1-node graph {u.ms(floor)}")
    for label, built in (("planned", planned), ("dense random", dense)):
        with served(built.path) as url:
            paints, refined = first_paint(browser, url, args.repeat)
        paint = u.med(paints)
        print(f"first paint, 2,000 nodes ({label:12}): {u.ms(paint)}  (target <= 1500 ms; "
              f"{paint / floor:4.1f}x the floor); layout refined by dagre at "
              f"{u.ms(u.med(refined))}")  # fmt: skip
    with served(planned.path) as url:
        lat, fetch = transition_latency(browser, planned.path, url, args.repeat)
    print(f"a transition reaching the page (2,000 nodes): {u.ms(u.med(lat))}  (max "
          f"{u.ms(max(lat))}; target <= 1000 ms; floor: one graph fetch {u.ms(fetch)}, "
          f"{u.med(lat) / fetch:4.1f}x)")  # fmt: skip


def travel_figures(
    browser: Any, url: str, back_by: int, repeat: int
) -> tuple[float, float, list[float], list[float], list[float]]:
    """First paint; then seconds to the graph `back_by` commits back: cold, warm, one back, and
    warm but fetched again (the server has read it, the page forgot its copy)."""
    paint = u.med(first_paint(browser, url, 1)[0])
    page = browser.new_page(viewport={"width": 1400, "height": 850})
    page.goto(url)
    page.wait_for_function("window.gitdag && window.gitdag.firstPaint && "
                           "window.gitdag.log.length", timeout=120000)  # fmt: skip
    # Warm: the layout is refined (no dagre work left between frames) before timing.
    page.wait_for_function("window.gitdagView.refined", timeout=300000)
    log = page.evaluate("window.gitdag.log.map(e => e.commit)")
    back = log[min(back_by, len(log) - 1)]
    cold = travel(page, back)
    # A commit with another node set than the head's was laid out at once and is being refined
    # between frames: warm figures are taken once that is done, as for the head.
    page.wait_for_function("window.gitdagView.refined", timeout=300000)
    warm, head, fetched = [], [], []
    for _ in range(repeat):
        head.append(travel(page, log[1]))
        warm.append(travel(page, back))
        fetched.append(travel(page, back, fetch=True))
    page.close()
    return paint, cold, warm, head, fetched


if __name__ == "__main__":
    main()
