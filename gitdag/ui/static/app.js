// gitdag ui: the page. Live mode talks to `gitdag ui`'s JSON API and its event stream; export mode
// (`gitdag ui --export DIR`, opened from file://) reads the same data from window.GITDAG_EXPORT.
"use strict";

const EXPORT = window.GITDAG_EXPORT || null;
const LIST_LIMIT = 300;
const STATUSES = ["open", "running", "merging", "done", "failed", "needs_human", "cancelled", "skipped"];
const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v); else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
};
const short = (sha) => (sha || "").slice(0, 10);
const seconds = (s) => (s < 10 ? s.toFixed(2) : s.toFixed(0)) + " s";
const when = (ts) => new Date(ts * 1000).toISOString().replace("T", " ").slice(0, 19);

const G = {
  token: null, head: null, base: null, shown: null, log: [], at: null, status: new Map(),
  selected: null, tab: "graph", filter: new Set(STATUSES), search: "", pollRun: null,
};
window.gitdagRender = () => render();
window.gitdag = G; // for people poking at the page, and for the browser tests

// --- data sources ---------------------------------------------------------------------------

function readToken() {
  const m = /token=([^&]+)/.exec(location.hash || "");
  if (m) { sessionStorage.setItem("gitdag-token", m[1]); history.replaceState(null, "", location.pathname + location.search); }
  return sessionStorage.getItem("gitdag-token") || "";
}

async function api(path, options = {}) {
  if (EXPORT) return exportApi(path);
  const headers = Object.assign({ "X-Gitdag-Token": G.token }, options.body ? { "Content-Type": "application/json" } : {});
  const r = await fetch("api/" + path, Object.assign({}, options, { headers }));
  const body = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

// --- the export's history: the graph of any commit, files and diffs of the last commits ------

const memo = new Map();
function exportReplay(commit) {
  // The drawn graph of `commit`: every recorded change, oldest first, up to that commit.
  if (memo.has("g" + commit)) return memo.get("g" + commit);
  const nodes = new Map(), head = EXPORT.graph;
  let graph = { goal: head.goal, target: head.target, paused: head.paused }, found = false;
  for (const step of EXPORT.changes) {
    for (const [id, rec] of Object.entries(step.set)) { if (rec === null) nodes.delete(id); else nodes.set(id, rec); }
    if (step.graph) graph = step.graph;
    if (step.commit === commit) { found = true; break; }
  }
  if (!found) throw new Error("commit " + commit + " is not in this export");
  const out = Object.assign({ head: commit, nodes: [...nodes.keys()].sort().map((id) => nodes.get(id)) }, graph);
  memo.clear(); memo.set("g" + commit, out);
  return out;
}

function exportTree(commit) {
  // Node id -> version key (and graph.yaml's key) at one of the window's commits, or null.
  const w = EXPORT.window, tree = new Map(Object.entries(w.base));
  let graph = w.base_graph;
  for (const step of w.steps) {
    for (const [id, key] of Object.entries(step.set)) { if (key === null) tree.delete(id); else tree.set(id, key); }
    if (step.graph) graph = step.graph;
    if (step.commit === commit) return { tree, graph };
  }
  return null;
}

// core/diff.py's field_changes, on the fields the export recorded (JSON-ready, in file order).
const canon = (v) => JSON.stringify(v, (k, x) => (x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort()) : x));
const same = (a, b) => canon(a) === canon(b);
const isMap = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
function flatten(data, prefix, out) {
  if (isMap(data) && (Object.keys(data).length || !prefix)) {
    for (const [k, v] of Object.entries(data)) flatten(v, prefix ? prefix + "." + k : k, out);
    return out;
  }
  out[prefix] = data; return out;
}
function expandNulls(flat, other) {
  for (const key of Object.keys(flat).filter((k) => flat[k] === null || (isMap(flat[k]) && !Object.keys(flat[k]).length))) {
    const nested = Object.keys(other).filter((k) => k.startsWith(key + "."));
    if (nested.length) { delete flat[key]; for (const sub of nested) if (!(sub in flat)) flat[sub] = null; }
  }
}
function fieldChanges(old, neu) {
  const record = neu || old, out = [];
  if (!record) return out;
  for (const name of Object.keys(record)) {
    const before = old ? old[name] : null, after = neu ? neu[name] : null;
    if (old && neu && same(before, after)) continue;
    const of = old ? flatten({ [name]: before }, "", {}) : {}, nf = neu ? flatten({ [name]: after }, "", {}) : {};
    expandNulls(of, nf); expandNulls(nf, of);
    for (const key of [...Object.keys(nf), ...Object.keys(of).filter((k) => !(k in nf))]) {
      const a = key in of ? of[key] : null, b = key in nf ? nf[key] : null;
      if (!same(a, b)) out.push({ field: key, old: a, new: b });
    }
  }
  return out;
}

function exportDiff(a, b) {
  const w = EXPORT.window, ta = exportTree(a), tb = exportTree(b);
  if (!ta || !tb) throw new Error(`this export diffs the last ${w.size} commits only`);
  const V = (key) => (key ? w.versions[key].fields : null), out = { added: [], removed: [], changed: [], graph: [] };
  for (const id of [...new Set([...ta.tree.keys(), ...tb.tree.keys()])].sort()) {
    const ka = ta.tree.get(id), kb = tb.tree.get(id);
    if (ka === kb) continue;
    const o = V(ka), n = V(kb);
    const change = !o ? "added" : !n ? "removed" : "changed";
    out[change].push({ id, change, title: (n || o).title, old_status: o ? o.status : null, new_status: n ? n.status : null, fields: fieldChanges(o, n) });
  }
  if (ta.graph !== tb.graph) out.graph = fieldChanges(ta.graph ? w.graphs[ta.graph] : null, tb.graph ? w.graphs[tb.graph] : null);
  return out;
}

function exportNode(id, commit) {
  const n = EXPORT.nodes[id], transitions = EXPORT.log.filter((e) => e.nodes.includes(id));
  if (!commit) { const v = EXPORT.window.versions[n.version]; return Object.assign({ id, transitions, node: v.fields, file: v.file }, n); }
  const at = exportTree(commit), key = at && at.tree.get(id);
  if (at && !key) throw new Error(`${id} does not exist at ${short(commit)}`);
  if (!key) {
    const rec = exportReplay(commit).nodes.find((x) => x.id === id);
    if (!rec) throw new Error(`${id} does not exist at ${short(commit)}`);
    return { id, transitions, attempts: (n || {}).attempts || [], runs: [], node: rec,
      file: `(this export holds node files of the last ${EXPORT.window.size} commits only; ${short(commit)} is older)` };
  }
  const v = EXPORT.window.versions[key];
  return { id, transitions, attempts: (n || {}).attempts || [], runs: (n || {}).runs || [], node: v.fields, file: v.file };
}

function exportApi(path) {
  const [route, query] = path.split("?"), q = new URLSearchParams(query || "");
  if (route === "graph") return q.get("at") ? exportReplay(q.get("at")) : EXPORT.graph;
  if (route === "log") return EXPORT.log;
  if (route === "statuses") return { head: q.get("at"), status: Object.fromEntries(exportReplay(q.get("at")).nodes.map((n) => [n.id, n.status])) };
  if (route === "timeline") return EXPORT.timeline;
  if (route === "queue") return EXPORT.queue;
  if (route.startsWith("node/")) return exportNode(decodeURIComponent(route.slice(5)), q.get("at"));
  if (route === "diff") return exportDiff(q.get("a"), q.get("b"));
  throw new Error("not in this export: " + route);
}
window.gitdagExportApi = exportApi; // for the browser tests

function showSource(src) {
  // Which graph the page shows: the graph's remote (as `gitdag status` says it), or why not.
  const box = $("#source");
  G.source = src;
  if (!src || !src.remote) { box.hidden = true; return; }
  const said = [src.source === "remote" ? src.line : null, src.warning].filter(Boolean);
  box.hidden = false;
  box.className = src.warning ? "warn" : "";
  box.dataset.source = src.source;
  box.textContent = said.join(" · ") || "graph: " + src.remote;
}

function banner(text, error) {
  const b = $("#banner"); b.hidden = !text; b.textContent = text || ""; b.className = error ? "error" : "";
}

// --- the graph, the list, filters and search ------------------------------------------------

const view = new GitdagGraph.GraphView($("#canvas"), (id) => select(id));
window.gitdagView = view;

function visibleIds() {
  const q = G.search.toLowerCase(), vis = new Set(), match = new Set();
  for (const n of G.shown.nodes) {
    const st = G.status.get(n.id);
    const hit = q && (n.id.toLowerCase().includes(q) || (n.title || "").toLowerCase().includes(q));
    if (hit) match.add(n.id);
    if (G.filter.has(st) && (!q || hit)) vis.add(n.id);
  }
  return { vis, match };
}

function render() {
  const { vis, match } = visibleIds();
  const filtered = G.filter.size < STATUSES.length || G.search;
  view.visible = filtered ? vis : null; view.match = G.search ? match : null; view.selected = G.selected;
  view.setStatuses((n) => G.status.get(n.id));
  const counts = {};
  for (const st of G.status.values()) counts[st] = (counts[st] || 0) + 1;
  $("#counts").textContent = STATUSES.filter((s) => counts[s]).map((s) => `${s} ${counts[s]}`).join(" · ");
  // The list holds at most LIST_LIMIT entries: a list of 10k is read by nobody, and laying it out
  // costs the browser far more than drawing 10k boxes on the canvas.
  const list = $("#nodes"), items = [];
  let more = 0;
  for (const n of G.shown.nodes) {
    const st = G.status.get(n.id);
    if (!vis.has(n.id)) continue;
    if (items.length >= LIST_LIMIT && n.id !== G.selected) { more++; continue; }
    const li = el("li", { dataset: { id: n.id, status: st }, title: n.title }, el("span", { class: "st s-" + st }, st), n.id);
    if (n.id === G.selected) li.className = "selected";
    items.push(li);
  }
  if (more) items.push(el("li", { class: "more" }, `… and ${more} more: search or filter to narrow`));
  list.replaceChildren(...items);
}

function applyGraph(graph) {
  // The live head's graph, shown unless the slider is on an older commit.
  G.base = graph;
  if (graph.source) showSource(graph.source);
  if (G.at) return;
  G.shown = graph;
  G.status = new Map(graph.nodes.map((n) => [n.id, n.status]));
  view.setGraph(graph.nodes, (n) => n.status);
  $("#goal").textContent = graph.goal || "(no goal)";
  updateHeader(graph.paused);
  render();
}

function updateHeader(paused) {
  $("#headinfo").textContent = "dagain/state " + short(G.head) + (paused ? "  PAUSED" : "");
  $("#pause").hidden = !!paused || !!EXPORT; $("#resume").hidden = !paused || !!EXPORT;
}

const atGraphs = new Map(), AT_GRAPHS_KEPT = 4;
G.atGraphs = atGraphs; // the benchmark clears it to time a fetch from a warm server

async function showAt(commit) {
  // Time travel: the graph OF `commit` (its nodes, edges and statuses), laid out for its own node
  // set and edges (the view keeps a layout per shape, so going back and forth lays out once).
  G.at = commit;
  document.body.classList.toggle("travelling", !!commit);
  let graph = G.base;
  if (commit) {
    graph = atGraphs.get(commit);
    if (!graph) {
      try { graph = await api("graph?at=" + commit); } catch (err) { banner(String(err.message), true); return; }
      if (G.at !== commit) return;
      // A commit's graph never changes: keep the last few, so going back and forth fetches once.
      atGraphs.set(commit, graph);
      while (atGraphs.size > AT_GRAPHS_KEPT) atGraphs.delete(atGraphs.keys().next().value);
    }
  }
  G.shown = graph;
  G.status = new Map(graph.nodes.map((n) => [n.id, n.status]));
  view.setGraph(graph.nodes, (n) => n.status);
  $("#goal").textContent = graph.goal || "(no goal)";
  updateHeader(graph.paused);
  render();
  updateSliderLabel();
  if (G.selected) openPanel(G.selected);
  if (G.tab === "history") renderHistory();
  window.dispatchEvent(new CustomEvent("gitdag-at", { detail: { commit } }));
}

// --- history slider -------------------------------------------------------------------------

function setLog(entries) {
  G.log = entries;
  const s = $("#slider"), following = !G.at;
  s.max = String(Math.max(0, entries.length - 1));
  if (following) s.value = s.max;
  updateSliderLabel();
}

function commitAtSlider() {
  const i = Number($("#slider").value), n = G.log.length;
  return i >= n - 1 ? null : G.log[n - 1 - i].commit;
}

function updateSliderLabel() {
  const commit = G.at, e = commit ? G.log.find((x) => x.commit === commit) : G.log[0];
  $("#at").textContent = e ? `${commit ? "at " : "live: "}${short(e.commit)} ${when(e.ts)} ${e.title}` : "";
}

let slideTimer = 0;
$("#slider").addEventListener("input", () => { clearTimeout(slideTimer); slideTimer = setTimeout(() => showAt(commitAtSlider()), 40); });
$("#live-btn").addEventListener("click", () => { $("#slider").value = $("#slider").max; showAt(null); });

// --- node panel -----------------------------------------------------------------------------

async function select(id) { G.selected = id; view.selected = id; view.redraw(); render(); await openPanel(id); }

async function openPanel(id) {
  const panel = $("#panel");
  let d;
  try { d = await api("node/" + encodeURIComponent(id) + (G.at ? "?at=" + G.at : "")); } catch (err) {
    panel.hidden = false; panel.replaceChildren(el("h2", {}, id), el("p", {}, String(err.message))); return;
  }
  if (G.selected !== id) return;
  const node = d.node || {}, st = node.status;
  const kids = [el("button", { class: "close", onclick: () => { G.selected = null; panel.hidden = true; render(); } }, "×"),
    el("h2", {}, id), el("div", {}, el("span", { class: "st s-" + st, id: "panel-status" }, st), " ", node.kind || "", " · ", node.title || "")];
  if (!EXPORT && !G.at) kids.push(steerButtons(id, node));
  kids.push(el("h3", {}, "file as stored" + (G.at ? " at " + short(G.at) : "")), el("pre", { id: "panel-file" }, d.file || ""));
  kids.push(el("h3", {}, "attempts"));
  const at = el("table", { id: "panel-attempts" }, el("tr", {}, el("th", {}, "#"), el("th", {}, "phase"), el("th", {}, "started"), el("th", {}, "duration"), el("th", {}, "outcome")));
  for (const b of d.attempts || []) at.append(el("tr", {}, el("td", {}, b.attempt), el("td", {}, b.phase), el("td", {}, when(b.start)), el("td", {}, b.end ? seconds(b.end - b.start) : "running"), el("td", {}, b.outcome || "")));
  kids.push(at, el("h3", {}, "transitions"));
  const tt = el("table", { id: "panel-transitions" });
  for (const e of d.transitions || []) {
    const trailers = Object.entries(e.trailers || {}).map(([k, v]) => `${k}: ${v.join(", ")}`).join("\n");
    tt.append(el("tr", {}, el("td", {}, when(e.ts)), el("td", {}, el("div", {}, e.title), el("div", { class: "trailers" }, trailers), e.summary ? el("div", {}, e.summary) : null)));
  }
  kids.push(tt, el("h3", {}, "runner output"));
  const runs = el("div", { id: "panel-runs", class: "log" }), tails = [];
  for (const r of d.runs || []) {
    for (const name of ["stdout", "stderr", "log"]) {
      const pre = el("pre", { dataset: { attempt: r.attempt, file: name } }, r.texts ? (r.texts[name] || "") : "");
      runs.append(el("div", {}, `attempt ${r.attempt} · ${name}${r.finished ? "" : " (live)"}`), pre);
      if (!EXPORT) tails.push(() => tail(id, r.attempt, name, pre, 0));
    }
  }
  if (!(d.runs || []).length) runs.append("no run directory here (runs of other machines stay there)");
  kids.push(runs);
  panel.replaceChildren(...kids);
  panel.hidden = false;
  for (const start of tails) start();
}

async function tail(id, attempt, name, pre, offset) {
  // Live runner output: read from the last offset, again every 0.5 s until the attempt finished.
  if (G.selected !== id || !pre.isConnected) return;
  let got;
  try { got = await api(`node/${encodeURIComponent(id)}/run/${attempt}/${name}?offset=${offset}`); } catch { return; }
  if (got.text) pre.append(got.text);
  if (!got.finished || got.offset < got.size) setTimeout(() => tail(id, attempt, name, pre, got.offset), 500);
}

function steerButtons(id, node) {
  const box = el("div", { class: "steer", id: "panel-steer" });
  const act = (label, path, body) => el("button", { dataset: { action: label.toLowerCase() }, onclick: () => steer(path, body && body()) }, label);
  if (!["done", "failed", "cancelled"].includes(node.status)) box.append(act("Cancel", `node/${encodeURIComponent(id)}/cancel`));
  if (["failed", "cancelled"].includes(node.status)) box.append(act("Retry", `node/${encodeURIComponent(id)}/retry`));
  if (node.status === "done") {
    // `gitdag retry --force`: reopens finished work (a new attempt), so the page asks first.
    box.append(el("button", { dataset: { action: "retry-force" }, title: "gitdag retry --force: run this done node again",
      onclick: () => { if (confirm(`Run ${id} again? It is done; retry --force reopens it for a new attempt.`)) steer(`node/${encodeURIComponent(id)}/retry?force=1`); } }, "Retry (force)"));
  }
  if (node.status === "needs_human" && node.checkpoint) {
    const input = el("input", { id: "answer-text", placeholder: "your answer" });
    box.append(el("div", {}, "question: " + node.checkpoint.question));
    (node.checkpoint.options || []).forEach((o, i) => box.append(el("button", { onclick: () => steer(`node/${encodeURIComponent(id)}/answer`, { option: i + 1 }) }, o)));
    box.append(input, act("Answer", `node/${encodeURIComponent(id)}/answer`, () => ({ text: input.value })));
  }
  return box;
}

async function steer(path, body) {
  try {
    const got = await api(path, { method: "POST", body: JSON.stringify(body || {}) });
    banner(`${got.did}${got.remote ? " on " + got.remote : ""} (${short(got.head)})`);
  } catch (err) { banner("refused: " + err.message, true); }
}

$("#nodes").addEventListener("click", (e) => { const li = e.target.closest("li"); if (li && li.dataset.id) select(li.dataset.id); });
$("#pause").addEventListener("click", () => steer("pause"));
$("#resume").addEventListener("click", () => steer("resume"));
$("#request-go").addEventListener("click", async () => {
  try {
    const got = await api("propose", { method: "POST", body: JSON.stringify({ text: $("#request-text").value }) });
    $("#request-out").textContent = `proposed ${got.node} on ${got.branch}\nreview: ${got.review}\napply:  ${got.apply}`;
  } catch (err) { $("#request-out").textContent = "refused: " + err.message; }
});

// --- timeline, merge queue, history ---------------------------------------------------------

async function renderTimeline() {
  const bars = await api("timeline"), box = $("#timeline");
  if (!bars.length) { box.replaceChildren("no attempts yet"); return; }
  const now = Date.now() / 1000, t0 = Math.min(...bars.map((b) => b.start));
  const t1 = Math.max(...bars.map((b) => b.end || now), t0 + 1);
  const width = Math.max(300, box.clientWidth - 170), px = (t) => 150 + ((t - t0) / (t1 - t0)) * width;
  const rows = new Map();
  for (const b of bars) { if (!rows.has(b.node)) rows.set(b.node, []); rows.get(b.node).push(b); }
  const axis = el("div", { id: "tl-axis" }, `${when(t0)} … ${when(t1)} (${(t1 - t0).toFixed(0)} s)`);
  const out = [axis];
  for (const [node, list] of rows) {
    const row = el("div", { class: "tl-row", dataset: { node } }, el("span", { class: "tl-label", onclick: () => select(node) }, node));
    for (const b of list) {
      const end = b.end || now, failed = /fail|escalate|cancel|-> open/.test(b.outcome || "");
      row.append(el("div", {
        class: `tl-bar ${b.phase}${b.end ? "" : " open-bar"}${failed ? " failed" : ""}`,
        style: `left:${px(b.start)}px;width:${Math.max(2, px(end) - px(b.start))}px`,
        title: `${node} attempt ${b.attempt} ${b.phase}: ${seconds(end - b.start)} ${b.outcome || "(running)"} ${b.worker || ""}`,
        dataset: { node, attempt: b.attempt, phase: b.phase, start: b.start, end: b.end || "" },
      }));
    }
    out.push(row);
  }
  box.replaceChildren(...out);
}

async function renderQueue() {
  const q = await api("queue"), box = $("#queue");
  const list = (items, f) => items.length ? el("ol", {}, ...items.map(f)) : el("p", {}, "none");
  box.replaceChildren(
    el("h3", {}, `waiting to merge into ${q.target} (queue order)`),
    list(q.waiting, (w) => el("li", { dataset: { id: w.id } }, `${w.id} — ${w.title} (since ${w.since}${w.branch ? ", " + w.branch : ""})`)),
    el("h3", {}, "last merges"),
    list(q.merged, (e) => el("li", {}, `${when(e.ts)} ${e.title} — ${e.summary}`)),
    el("h3", {}, "last conflicts and failed checks"),
    list(q.conflicts, (e) => el("li", {}, `${when(e.ts)} ${e.title} — ${e.summary}`)));
}

function renderHistory() {
  // The export diffs (and shows node files of) the commits it holds every version for: the last
  // EXPORT.window.size; the live page diffs any two.
  const offered = EXPORT ? G.log.slice(0, EXPORT.window.size) : G.log;
  const opts = offered.map((e) => el("option", { value: e.commit }, `${short(e.commit)} ${e.title}`));
  if (EXPORT) $("#diff-note").textContent = offered.length < G.log.length
    ? `this export holds node files and diffs of the last ${offered.length} of ${G.log.length} commits; older commits show the graph and statuses only` : "";
  const a = $("#diff-a"), b = $("#diff-b"), keepA = a.value, keepB = b.value;
  a.replaceChildren(...opts); b.replaceChildren(...opts.map((o) => o.cloneNode(true)));
  a.value = keepA || (G.log[1] || G.log[0] || {}).commit || ""; b.value = keepB || (G.log[0] || {}).commit || "";
  $("#history").replaceChildren(...G.log.slice(0, 2000).map((e) => el("li", {
    class: e.commit === G.at ? "at" : "", title: e.summary, dataset: { commit: e.commit },
    onclick: () => { const i = G.log.indexOf(e); $("#slider").value = String(G.log.length - 1 - i); showAt(i === 0 ? null : e.commit); },
  }, `${short(e.commit)} ${when(e.ts)} ${e.title} [${e.actor}]`)));
}

$("#diff-go").addEventListener("click", async () => {
  const box = $("#diff");
  try {
    const d = await api(`diff?a=${$("#diff-a").value}&b=${$("#diff-b").value}`);
    const t = el("table", {}), changes = [...d.added, ...d.removed, ...d.changed];
    for (const c of changes) t.append(el("tr", { dataset: { id: c.id } }, el("td", {}, c.change), el("td", {}, c.id),
      el("td", {}, `${c.old_status || "—"} → ${c.new_status || "—"}`),
      el("td", {}, c.fields.filter((f) => f.field !== "status").map((f) => `${f.field}: ${JSON.stringify(f.old)} → ${JSON.stringify(f.new)}`).join("; "))));
    for (const f of d.graph || []) t.append(el("tr", {}, el("td", {}, "graph"), el("td", {}, f.field), el("td", {}, `${JSON.stringify(f.old)} → ${JSON.stringify(f.new)}`)));
    box.replaceChildren(changes.length || (d.graph || []).length ? t : "no difference");
  } catch (err) { box.textContent = err.message; }
});

function showTab(tab) {
  G.tab = tab;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === tab);
  for (const v of document.querySelectorAll(".view")) v.classList.toggle("active", v.id === "view-" + tab);
  if (tab === "graph") view.redraw();
  if (tab === "timeline") renderTimeline().catch((e) => banner(e.message, true));
  if (tab === "queue") renderQueue().catch((e) => banner(e.message, true));
  if (tab === "history") renderHistory();
}
for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));

$("#search").addEventListener("input", (e) => {
  G.search = e.target.value.trim(); render();
  const first = view.match && [...view.match][0]; if (first) view.centerOn(first);
});
$("#filters").replaceChildren(...STATUSES.map((s) => {
  const box = el("input", { type: "checkbox", checked: "", dataset: { status: s } });
  box.addEventListener("change", () => { if (box.checked) G.filter.add(s); else G.filter.delete(s); render(); });
  return el("label", {}, box, el("span", { class: "st s-" + s }, s));
}));
$("#legend").replaceChildren(...STATUSES.map((s) => el("span", {}, el("i", { class: "s-" + s }), s)));

// --- live updates ---------------------------------------------------------------------------

async function refreshLive(event) {
  // A move that only changes statuses (most transitions) is applied from the event itself; one
  // that adds, removes or rewires nodes fetches the graph again and lays it out.
  const follows = event.complete && G.head === event.previous && G.log.length && G.log[0].commit === event.previous;
  G.head = event.head;
  if (follows && !event.shape) {
    for (const n of G.base.nodes) if (n.id in event.status) n.status = event.status[n.id];
    G.base.head = event.head;
    if (event.paused !== null && event.paused !== undefined) G.base.paused = event.paused;
    setLog([...event.entries, ...G.log]);
    if (!G.at) { G.status = new Map(G.base.nodes.map((n) => [n.id, n.status])); render(); }
    if (!G.at) updateHeader(G.base.paused);
  } else {
    const graph = await api("graph");
    setLog(follows ? [...event.entries, ...G.log] : await api("log"));
    applyGraph(graph);
  }
  if (G.selected && !G.at) openPanel(G.selected);
  if (G.tab === "timeline") renderTimeline();
  if (G.tab === "queue") renderQueue();
  if (G.tab === "history") renderHistory();
  window.dispatchEvent(new CustomEvent("gitdag-head", { detail: { head: event.head } }));
}

async function stream() {
  // Server-sent events read through fetch, so the token travels in a header as on every request.
  const live = $("#live");
  for (;;) {
    try {
      const r = await fetch("api/events", { headers: { "X-Gitdag-Token": G.token } });
      if (!r.ok) throw new Error("events: " + r.status);
      live.textContent = "live"; live.className = "badge on";
      const reader = r.body.getReader(), dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const chunk = buf.slice(0, cut); buf = buf.slice(cut + 2);
          const type = (/^event: (.*)$/m.exec(chunk) || [])[1], data = (/^data: (.*)$/m.exec(chunk) || [])[1];
          if (type === "head") await refreshLive(JSON.parse(data));
          if (type === "source") showSource(JSON.parse(data));
          if (type === "hello") { const h = JSON.parse(data).head; if (h && h !== G.head) await refreshLive({ head: h }); }
        }
      }
    } catch (err) { live.textContent = "offline"; live.className = "badge off"; }
    await new Promise((res) => setTimeout(res, 1000));
  }
}

// --- start ----------------------------------------------------------------------------------

async function start() {
  if (EXPORT) document.body.classList.add("export");
  else G.token = readToken();
  try {
    const graph = await api("graph");
    G.head = graph.head;
    applyGraph(graph);
    performance.mark("gitdag-first-paint-requested");
    requestAnimationFrame(() => { performance.mark("gitdag-first-paint"); G.firstPaint = performance.now(); });
    setLog(await api("log"));
    if (EXPORT) { $("#live").textContent = "export of " + short(graph.head); $("#live-btn").hidden = true; }
    else stream();
  } catch (err) { banner(String(err.message), true); }
}
start();
