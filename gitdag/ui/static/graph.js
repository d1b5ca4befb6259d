// gitdag ui: laying the graph out (dagre, vendored) and drawing it on a canvas.
//
// Small graphs are laid out whole by dagre. Big ones are laid out in clusters, one per planner
// (the nodes a plan node added): each cluster by dagre when it is small, by a linear-time layered
// placement when it is big (dagre's crossing reduction grows much faster than linearly), then the
// clusters are packed in rows. A canvas draws only what is in view, so 10k nodes pan smoothly.
"use strict";

const STATUS_COLOURS = {
  open: ["#eeeeee", "#999999"], running: ["#cce0ee", "#336699"], merging: ["#ddccff", "#663399"],
  done: ["#ccffcc", "#339933"], failed: ["#ffcccc", "#cc3333"], needs_human: ["#ffffcc", "#cccc33"],
  cancelled: ["#dddddd", "#666666"], skipped: ["#f5f5f5", "#bbbbbb"],
};
const NODE_W = 150, NODE_H = 30;
const WHOLE_LIMIT = 300;      // nodes laid out by one dagre call
const CLUSTER_DAGRE_LIMIT = 80; // nodes of a cluster laid out by dagre; bigger ones: layered()
const LAYOUTS_KEPT = 8;         // layouts kept, one per node set and edges (the slider revisits them)

function edgeList(nodes, inside) {
  const out = [];
  for (const n of nodes) {
    for (const d of n.deps) if (inside(d)) out.push([d, n.id, "deps"]);
    for (const a of n.after) if (inside(a)) out.push([a, n.id, "after"]);
  }
  return out;
}

function dagreLayout(nodes, edges, parentEdges) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "TB", nodesep: 14, ranksep: 36, marginx: 10, marginy: 10 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.id, { width: NODE_W, height: NODE_H });
  for (const [a, b] of edges) if (a !== b) g.setEdge(a, b);
  for (const [a, b] of parentEdges) if (!g.hasEdge(a, b) && a !== b) g.setEdge(a, b, { weight: 0.2, minlen: 1 });
  dagre.layout(g);
  const pos = new Map();
  for (const n of nodes) { const p = g.node(n.id); pos.set(n.id, { x: p.x, y: p.y }); }
  const graph = g.graph();
  return { pos, width: graph.width || NODE_W, height: graph.height || NODE_H };
}

// Linear-time layered placement: rank by longest path, order each rank by the mean position of
// its predecessors, wrap very wide ranks. For clusters too big for dagre to lay out quickly.
function layered(nodes, edges) {
  const ids = nodes.map((n) => n.id), index = new Map(ids.map((id, i) => [id, i]));
  const preds = ids.map(() => []), succs = ids.map(() => []), indeg = ids.map(() => 0);
  for (const [a, b] of edges) {
    const i = index.get(a), j = index.get(b);
    if (i === undefined || j === undefined || i === j) continue;
    preds[j].push(i); succs[i].push(j); indeg[j]++;
  }
  const rank = ids.map(() => 0), queue = [];
  ids.forEach((_, i) => { if (!indeg[i]) queue.push(i); });
  for (let q = 0; q < queue.length; q++) {
    const i = queue[q];
    for (const j of succs[i]) { rank[j] = Math.max(rank[j], rank[i] + 1); if (--indeg[j] === 0) queue.push(j); }
  }
  const ranks = [];
  ids.forEach((_, i) => { (ranks[rank[i]] = ranks[rank[i]] || []).push(i); });
  const order = new Float64Array(ids.length), pos = new Map();
  const perRow = Math.max(12, Math.ceil(Math.sqrt(ids.length) * 1.6));
  let y = NODE_H / 2 + 10, width = 0;
  for (const row of ranks) {
    if (!row) continue;
    row.forEach((i) => { const p = preds[i]; order[i] = p.length ? p.reduce((s, k) => s + order[k], 0) / p.length : i; });
    row.sort((a, b) => order[a] - order[b]);
    for (let start = 0; start < row.length; start += perRow) {
      const chunk = row.slice(start, start + perRow);
      chunk.forEach((i, k) => { order[i] = k; pos.set(ids[i], { x: 10 + NODE_W / 2 + k * (NODE_W + 14), y }); });
      width = Math.max(width, 20 + chunk.length * (NODE_W + 14));
      y += NODE_H + 36;
    }
  }
  return { pos, width, height: y };
}

// Returns { pos: Map id -> {x, y}, clusters: [{id, x, y, w, h}], refine } for nodes
// [{id, parent, deps, after}]. A big graph is first laid out quickly (every cluster by layered());
// `refine(done)` then lays the small clusters out by dagre a few at a time between frames, so the
// first paint does not wait for dagre, and calls done(layout) with the better layout.
function layoutGraph(nodes) {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const has = (id) => byId.has(id);
  const parentEdges = nodes.filter((n) => n.parent && has(n.parent)).map((n) => [n.parent, n.id]);
  if (nodes.length <= WHOLE_LIMIT) {
    const { pos } = dagreLayout(nodes, edgeList(nodes, has), parentEdges);
    return { pos, clusters: [], refine: null };
  }
  const groups = new Map();
  for (const n of nodes) {
    const key = n.parent && has(n.parent) ? n.parent : "";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(n);
  }
  const work = new Map(), boxes = new Map();
  for (const [key, members] of groups) {
    const set = new Set(members.map((n) => n.id));
    const edges = edgeList(members, (id) => set.has(id));
    work.set(key, { members, edges });
    boxes.set(key, layered(members, edges));
  }
  const clusterOf = (id) => { const n = byId.get(id); return n && n.parent && has(n.parent) ? n.parent : ""; };
  const laid = arrange(boxes, clusterOf);
  const small = [...work.keys()].filter((k) => work.get(k).members.length <= CLUSTER_DAGRE_LIMIT);
  laid.refine = small.length ? (done, alive) => {
    let i = 0;
    const step = () => {
      if (!alive()) return;
      const t0 = performance.now();
      while (i < small.length && performance.now() - t0 < 12) {
        const { members, edges } = work.get(small[i++]);
        boxes.set(small[i - 1], dagreLayout(members, edges, []));
      }
      if (i < small.length) setTimeout(step, 0); else done(arrange(boxes, clusterOf));
    };
    setTimeout(step, 0);
  } : null;
  return laid;
}

// Clusters as boxes, packed in rows in the planners' order (breadth first from the top level,
// so a planner's cluster comes before the clusters of the plans it added); rows about as wide as
// the whole is tall, so the graph fits a screen instead of one very long rank of siblings.
function arrange(boxes, clusterOf) {
  const children = new Map();
  for (const key of boxes.keys()) {
    if (!key) continue;
    const from = clusterOf(key);
    if (!children.has(from)) children.set(from, []);
    children.get(from).push(key);
  }
  const order = [], seen = new Set();
  const queue = boxes.has("") ? [""] : [];
  for (const key of boxes.keys()) if (!boxes.has(clusterOf(key)) || clusterOf(key) === key) queue.push(key);
  while (queue.length) {
    const key = queue.shift();
    if (seen.has(key) || !boxes.has(key)) continue;
    seen.add(key); order.push(key);
    for (const kid of children.get(key) || []) queue.push(kid);
  }
  for (const key of boxes.keys()) if (!seen.has(key)) order.push(key);
  const GAP = 40, HEAD = 18;
  let area = 0, widest = 0;
  for (const box of boxes.values()) { area += (box.width + GAP) * (box.height + HEAD + GAP); widest = Math.max(widest, box.width); }
  const rowWidth = Math.max(widest, Math.sqrt(area * 1.6) * 1.3); // about a screen's shape
  const pos = new Map(), clusters = [];
  let x = 0, y = 0, rowHeight = 0;
  for (const key of order) {
    const box = boxes.get(key), w = box.width, h = box.height + HEAD;
    if (x > 0 && x + w > rowWidth) { x = 0; y += rowHeight + GAP; rowHeight = 0; }
    clusters.push({ id: key, x, y, w, h });
    for (const [id, p] of box.pos) pos.set(id, { x: x + p.x, y: y + HEAD + p.y });
    x += w + GAP; rowHeight = Math.max(rowHeight, h);
  }
  return { pos, clusters, refine: null };
}

class GraphView {
  constructor(canvas, onSelect) {
    this.canvas = canvas; this.ctx = canvas.getContext("2d"); this.onSelect = onSelect;
    this.nodes = []; this.byId = new Map(); this.pos = new Map(); this.clusters = [];
    this.status = new Map(); this.visible = null; this.match = null; this.selected = null;
    this.scale = 1; this.tx = 0; this.ty = 0; this.frame = 0; this.drawnNodes = 0; this.shapeKey = "";
    this.layouts = new Map();
    this._bind();
  }

  // Lay out again only when the shape (ids and edges) changed; otherwise statuses are repainted.
  // Layouts are kept per shape (the last LAYOUTS_KEPT), so the history slider going back and forth
  // between commits of different node sets lays each out once.
  setGraph(nodes, statusOf) {
    const key = nodes.map((n) => n.id + ":" + (n.parent || "") + ":" + n.deps.join(",") + ":" + n.after.join(",")).join(";");
    this.nodes = nodes; this.byId = new Map(nodes.map((n) => [n.id, n]));
    if (key !== this.shapeKey) {
      const known = this.shapeKey !== "";
      const kept = this.layouts.get(key);
      if (kept) {
        this.layouts.delete(key); this.layouts.set(key, kept); // most recently used last
        this.pos = kept.pos; this.clusters = kept.clusters; this.shapeKey = key; this.layoutMs = 0;
      } else {
        const t0 = performance.now();
        const laid = layoutGraph(nodes);
        this.layoutMs = performance.now() - t0;
        this.pos = laid.pos; this.clusters = laid.clusters; this.shapeKey = key;
        const entry = { pos: laid.pos, clusters: laid.clusters };
        this.layouts.set(key, entry);
        while (this.layouts.size > LAYOUTS_KEPT) this.layouts.delete(this.layouts.keys().next().value);
        if (!known) this.fit();
        this.refined = laid.refine ? 0 : performance.now();
        if (laid.refine) {
          laid.refine((better) => {
            entry.pos = better.pos; entry.clusters = better.clusters;
            if (this.shapeKey !== key) return;
            this.pos = better.pos; this.clusters = better.clusters; this.refined = performance.now();
            if (!known && !this.touched) this.fit();
            this.redraw();
          }, () => this.layouts.get(key) === entry);
        }
      }
    }
    this.status = new Map(nodes.map((n) => [n.id, statusOf ? statusOf(n) : n.status]));
    this.redraw();
  }

  setStatuses(statusOf) { this.status = new Map(this.nodes.map((n) => [n.id, statusOf(n)])); this.redraw(); }

  fit() {
    const r = this.canvas.getBoundingClientRect();
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const p of this.pos.values()) { x0 = Math.min(x0, p.x); y0 = Math.min(y0, p.y); x1 = Math.max(x1, p.x); y1 = Math.max(y1, p.y); }
    if (!isFinite(x0)) return;
    x0 -= NODE_W; x1 += NODE_W; y0 -= NODE_H * 2; y1 += NODE_H * 2;
    this.scale = Math.min(1.5, Math.max(0.02, Math.min(r.width / (x1 - x0), r.height / (y1 - y0))));
    this.tx = r.width / 2 - ((x0 + x1) / 2) * this.scale; this.ty = r.height / 2 - ((y0 + y1) / 2) * this.scale;
  }

  centerOn(id) {
    const p = this.pos.get(id); if (!p) return;
    const r = this.canvas.getBoundingClientRect();
    this.scale = Math.max(this.scale, 0.8);
    this.tx = r.width / 2 - p.x * this.scale; this.ty = r.height / 2 - p.y * this.scale; this.redraw();
  }

  redraw() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); });
  }

  draw() {
    const c = this.canvas, ctx = this.ctx, dpr = window.devicePixelRatio || 1;
    const r = c.getBoundingClientRect();
    if (c.width !== Math.round(r.width * dpr) || c.height !== Math.round(r.height * dpr)) {
      c.width = Math.round(r.width * dpr); c.height = Math.round(r.height * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, r.width, r.height);
    ctx.setTransform(dpr * this.scale, 0, 0, dpr * this.scale, dpr * this.tx, dpr * this.ty);
    const vx0 = -this.tx / this.scale - NODE_W, vy0 = -this.ty / this.scale - NODE_H;
    const vx1 = (r.width - this.tx) / this.scale + NODE_W, vy1 = (r.height - this.ty) / this.scale + NODE_H;
    const inView = (p) => p.x >= vx0 && p.x <= vx1 && p.y >= vy0 && p.y <= vy1;
    const shown = (id) => this.status.get(id) !== "absent";
    ctx.lineWidth = 1 / Math.max(this.scale, 0.5);
    ctx.fillStyle = "#fafafd"; ctx.strokeStyle = "#d8d8e8"; ctx.font = "12px sans-serif";
    for (const k of this.clusters) {
      ctx.fillRect(k.x, k.y, k.w, k.h); ctx.strokeRect(k.x, k.y, k.w, k.h);
      if (this.scale > 0.25) { ctx.fillStyle = "#88a"; ctx.fillText(k.id ? "added by " + k.id : "top level", k.x + 4, k.y + 13); ctx.fillStyle = "#fafafd"; }
    }
    // Edges: dependencies solid, `after` dashed, planner -> child dotted grey.
    const drawEdges = (kind, style, dash) => {
      ctx.strokeStyle = style; ctx.setLineDash(dash); ctx.beginPath();
      for (const n of this.nodes) {
        if (!shown(n.id)) continue;
        const b = this.pos.get(n.id); if (!b) continue;
        const from = kind === "parent" ? (n.parent ? [n.parent] : []) : n[kind];
        for (const id of from) {
          const a = this.pos.get(id); if (!a || !shown(id)) continue;
          if (!inView(a) && !inView(b)) continue;
          ctx.moveTo(a.x, a.y + NODE_H / 2); ctx.lineTo(b.x, b.y - NODE_H / 2);
        }
      }
      ctx.stroke();
    };
    // In clusters, a planner's edges to the nodes it added are one edge to their box (the box
    // says "added by"); dashes cost a segment per dash, so far out every edge is solid.
    const near = this.scale > 0.3;
    if (!this.clusters.length) drawEdges("parent", "#c8c8d8", near ? [2, 3] : []);
    else {
      ctx.strokeStyle = "#b8b8d0"; ctx.setLineDash(near ? [2, 3] : []); ctx.beginPath();
      for (const k of this.clusters) {
        const a = this.pos.get(k.id); if (!a || !shown(k.id)) continue;
        ctx.moveTo(a.x, a.y + NODE_H / 2); ctx.lineTo(k.x + k.w / 2, k.y);
      }
      ctx.stroke();
    }
    drawEdges("deps", "#777", []);
    drawEdges("after", "#777", near ? [6, 4] : []);
    ctx.setLineDash([]);
    // Nodes in one path per status and dimming (a few fills and strokes for 10k boxes), then the
    // outlines of matches and the selection, the plan bars and the labels on top.
    let drawn = 0;
    const batches = new Map(), plans = [], marked = [], shownNodes = [];
    for (const n of this.nodes) {
      const st = this.status.get(n.id); if (st === "absent") continue;
      const p = this.pos.get(n.id); if (!p || !inView(p)) continue;
      drawn++;
      const dim = this.visible && !this.visible.has(n.id);
      const key = st + (dim ? ":dim" : "");
      if (!batches.has(key)) batches.set(key, []);
      batches.get(key).push(p);
      if (n.kind === "plan") plans.push([p, st, dim]);
      if (n.id === this.selected || (this.match && this.match.has(n.id))) marked.push([p, n.id === this.selected]);
      shownNodes.push([n, p, st]);
    }
    ctx.lineWidth = 1.2;
    for (const [key, points] of batches) {
      const [st, dim] = key.split(":");
      const [fill, stroke] = STATUS_COLOURS[st] || ["#fff", "#000"];
      ctx.globalAlpha = dim ? 0.18 : 1;
      ctx.beginPath();
      for (const p of points) ctx.rect(p.x - NODE_W / 2, p.y - NODE_H / 2, NODE_W, NODE_H);
      ctx.fillStyle = fill; ctx.fill(); ctx.strokeStyle = stroke; ctx.stroke();
    }
    for (const [p, st, dim] of plans) {
      ctx.globalAlpha = dim ? 0.18 : 1;
      ctx.fillStyle = (STATUS_COLOURS[st] || ["", "#000"])[1];
      ctx.fillRect(p.x - NODE_W / 2, p.y - NODE_H / 2, 4, NODE_H);
    }
    ctx.globalAlpha = 1;
    for (const [p, selected] of marked) {
      ctx.lineWidth = selected ? 4 : 3; ctx.strokeStyle = selected ? "#222" : "#e08000";
      ctx.strokeRect(p.x - NODE_W / 2, p.y - NODE_H / 2, NODE_W, NODE_H);
    }
    const labels = this.scale > 0.45, titles = this.scale > 0.9;
    if (labels) {
      for (const [n, p, st] of shownNodes) {
        const x = p.x - NODE_W / 2, y = p.y - NODE_H / 2;
        ctx.globalAlpha = this.visible && !this.visible.has(n.id) ? 0.18 : 1;
        ctx.fillStyle = "#222"; ctx.font = (titles ? "bold " : "") + "11px sans-serif";
        ctx.fillText(clip(n.id, 22), x + 7, y + (titles ? 12 : 19));
        if (titles) { ctx.font = "10px sans-serif"; ctx.fillStyle = "#555"; ctx.fillText(clip(n.title || st, 26), x + 7, y + 25); }
      }
    }
    ctx.globalAlpha = 1;
    this.drawnNodes = drawn;
    this.paints = (this.paints || 0) + 1;
    window.dispatchEvent(new CustomEvent("gitdag-paint", { detail: { drawn } }));
  }

  hit(px, py) {
    const x = (px - this.tx) / this.scale, y = (py - this.ty) / this.scale;
    for (const [id, p] of this.pos) {
      if (this.status.get(id) === "absent") continue;
      if (Math.abs(p.x - x) <= NODE_W / 2 && Math.abs(p.y - y) <= NODE_H / 2) return id;
    }
    return null;
  }

  _bind() {
    const c = this.canvas;
    let drag = null;
    c.addEventListener("mousedown", (e) => { this.touched = true; drag = { x: e.clientX, y: e.clientY, tx: this.tx, ty: this.ty, moved: false }; });
    window.addEventListener("mousemove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      this.tx = drag.tx + dx; this.ty = drag.ty + dy; this.redraw();
    });
    window.addEventListener("mouseup", (e) => {
      if (drag && !drag.moved && e.target === c) {
        const r = c.getBoundingClientRect();
        const id = this.hit(e.clientX - r.left, e.clientY - r.top);
        if (id) this.onSelect(id);
      }
      drag = null;
    });
    c.addEventListener("wheel", (e) => {
      e.preventDefault(); this.touched = true;
      const r = c.getBoundingClientRect(), mx = e.clientX - r.left, my = e.clientY - r.top;
      const k = Math.exp(-e.deltaY * 0.0015), s = Math.min(4, Math.max(0.02, this.scale * k));
      this.tx = mx - ((mx - this.tx) * s) / this.scale; this.ty = my - ((my - this.ty) * s) / this.scale;
      this.scale = s; this.redraw();
    }, { passive: false });
    window.addEventListener("resize", () => this.redraw());
  }
}

function clip(text, n) { return text.length > n ? text.slice(0, n - 1) + "…" : text; }

window.GitdagGraph = { GraphView, layoutGraph, STATUS_COLOURS };
