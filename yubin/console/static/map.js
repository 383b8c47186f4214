// The live map: both sites as the README's figure, drawn with DOM calls (never from markup strings),
// each node with its rate and depth (from the services' metrics, see rates.py), and a dot for every trace event moving along its hop.
import { t } from "./i18n.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 92, H = 58;
// Centres for the left site; the right site is its mirror image.
const LEFT = {
  client: [60, 230], submission: [175, 110], relay: [335, 110],
  mx: [420, 352], delivery: [305, 352], mailbox: [190, 352], pop3: [75, 352],
};
const DNS_AT = [500, 38];
const ROLES = Object.keys(LEFT);

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (parent) parent.appendChild(node);
  return node;
}

export class LiveMap {
  constructor(svg) {
    this.svg = svg;
    this.pos = {};
    this.nodes = {};
    this.frames = {};
    this.sites = [];
  }

  draw(sites) {
    this.sites = sites.slice(0, 2);
    while (this.svg.lastChild) this.svg.removeChild(this.svg.lastChild);
    const title = el("title", {}, this.svg);
    title.textContent = t("map.title");
    const defs = el("defs", {}, this.svg);
    const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
    el("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }, marker);
    this.sites.forEach((site, i) => {
      const mirror = (x) => (i === 0 ? x : 1000 - x);
      for (const role of ROLES) this.pos[`${site}/${role}`] = [mirror(LEFT[role][0]), LEFT[role][1]];
      const frame = el("g", { class: "site" }, this.svg);
      el("rect", { x: i === 0 ? 6 : 530, y: 68, width: 464, height: 350, rx: 14, class: "site-frame" }, frame);
      // Each site's name in its outer corner, clear of its relay.
      const label = el("text", { x: i === 0 ? 20 : 980, y: 92, class: "site-label", "text-anchor": i === 0 ? "start" : "end" }, frame);
      label.textContent = site;
      const state = el("text", { x: i === 0 ? 456 : 544, y: 92, class: "site-state", "text-anchor": i === 0 ? "end" : "start" }, frame);
      this.frames[site] = state;
    });
    this.pos.dns = DNS_AT;
    const edges = el("g", { class: "edges" }, this.svg);
    this.sites.forEach((site, i) => {
      const peer = this.sites[1 - i];
      const path = [["client", "submission"], ["submission", "relay"], ["mx", "delivery"], ["delivery", "mailbox"], ["mailbox", "pop3"], ["pop3", "client"]];
      for (const [a, b] of path) this.edge(edges, `${site}/${a}`, `${site}/${b}`);
      this.edge(edges, `${site}/relay`, "dns", "dns-edge");
      if (peer) this.edge(edges, `${site}/relay`, `${peer}/mx`, "smtp-edge");
    });
    this.moving = el("g", { class: "moving" }, this.svg);
    for (const key of Object.keys(this.pos)) this.node(key);
    if (this.sites.length === 2) {
      const [a, b] = this.sites;
      this.step(1, this.mid(`${a}/client`, `${a}/submission`, -18, -10));
      this.step(2, this.mid(`${a}/relay`, "dns", -10, -14));
      this.step(3, this.mid(`${b}/pop3`, `${b}/client`, 16, 4));
    }
  }

  mid(a, b, dx, dy) {
    const [x1, y1] = this.pos[a], [x2, y2] = this.pos[b];
    return [(x1 + x2) / 2 + dx, (y1 + y2) / 2 + dy];
  }

  step(n, [x, y]) {
    const g = el("g", { class: "step-marker", tabindex: 0 }, this.svg);
    el("circle", { cx: x, cy: y, r: 13 }, g);
    const label = el("text", { x, y: y + 5, "text-anchor": "middle" }, g);
    label.textContent = String(n);
    const hint = el("title", {}, g);
    hint.textContent = `${t(`step.${n}`)} — ${t(`step.${n}.hint`)}`;
  }

  edge(parent, a, b, cls = "") {
    const [x1, y1] = this.pos[a], [x2, y2] = this.pos[b];
    const [sx, sy] = this.border(x1, y1, x2, y2), [ex, ey] = this.border(x2, y2, x1, y1);
    el("line", { x1: sx, y1: sy, x2: ex, y2: ey, class: `edge ${cls}`, "marker-end": "url(#arrow)" }, parent);
  }

  // Where the line from (x1,y1) towards (x2,y2) leaves the box around (x1,y1).
  border(x1, y1, x2, y2) {
    const dx = x2 - x1, dy = y2 - y1;
    const scale = Math.min(dx ? (W / 2 + 4) / Math.abs(dx) : Infinity, dy ? (H / 2 + 4) / Math.abs(dy) : Infinity);
    return [x1 + dx * scale, y1 + dy * scale];
  }

  node(key) {
    const [x, y] = this.pos[key];
    const role = key === "dns" ? "dns" : key.split("/")[1];
    const g = el("g", { class: `node node-${role}`, "data-node": key, tabindex: 0 }, this.svg);
    el("rect", { x: x - W / 2, y: y - H / 2, width: W, height: H, rx: 9 }, g);
    const name = el("text", { x, y: y - 9, "text-anchor": "middle", class: "node-name" }, g);
    name.textContent = t(`node.${role}`);
    const stats = el("text", { x, y: y + 8, "text-anchor": "middle", class: "node-stats" }, g);
    const last = el("text", { x, y: y + 22, "text-anchor": "middle", class: "node-last" }, g);
    const hint = el("title", {}, g);
    hint.textContent = t(`hint.${role}`);
    this.nodes[key] = { g, stats, last, hint, role };
  }

  // Rates (per minute, over the last minute) and depths come from the services' /metrics; null: nothing
  // measures it. Site keys carry the dead letters and how many /metrics answered.
  update(stats, status) {
    stats = stats || {};
    for (const [key, value] of Object.entries(stats)) {
      const n = this.nodes[key];
      if (!n) continue;
      const parts = [];
      if (value.rate !== null && value.rate !== undefined) parts.push(`${value.rate}${t("map.rate")}`);
      if (value.depth !== null && value.depth !== undefined) parts.push(`${value.depth} ${t("map.depth")}`);
      n.stats.textContent = parts.join(" · ");
      fit(n.stats, W - 6);
      n.g.classList.toggle("busy", value.depth > 0);
      const lines = [t(`hint.${n.role}`)];
      if (value.count !== null && value.count !== undefined) lines.push(`${value.count} ${t("map.counted")}`);
      if (value.retry) lines.push(`${value.retry} ${t("map.retry")}`);
      if (value.oldest_s) lines.push(`${t("map.oldest")} ${Math.round(value.oldest_s)} s`);
      lines.push(value.depth_from === "trace" ? t("map.from.trace") : t("map.from.metrics"));
      n.hint.textContent = lines.join("\n");
    }
    for (const [site, state] of Object.entries(status || {})) {
      if (!this.frames[site]) continue;
      const live = state === "live";
      const parts = [live ? t("map.live") : t("map.unreachable")];
      const figures = stats[site] || {};
      if (figures.dead_letters) parts.push(`${figures.dead_letters} ${t("map.dead")}`);
      const targets = figures.targets || {};
      if (targets.down) parts.push(`${t("map.metrics")} ${targets.up}/${targets.up + targets.down}`);
      this.frames[site].textContent = parts.join(" · ");
      this.frames[site].classList.toggle("down", !live || Boolean(targets.down));
    }
  }

  // One trace event: a dot along its hop (a ring at its node when it stays there), and the node's last message.
  show(event) {
    const hop = event.hop || {};
    const from = this.pos[hop.from], to = this.pos[hop.to];
    if (!from || !to) return;
    const label = shortLabel(event);
    const target = this.nodes[hop.to];
    if (target) {
      target.last.textContent = clip(label, 16);
    }
    const trouble = hop.kind === "trouble";
    if (hop.from === hop.to) {
      const ring = el("circle", { cx: from[0], cy: from[1], r: 10, class: `ring${trouble ? " trouble" : ""}` }, this.moving);
      const title = el("title", {}, ring);
      title.textContent = `${event.event} ${label}`;
      animate(1200, (p) => { ring.setAttribute("r", String(10 + p * 40)); ring.setAttribute("opacity", String(1 - p)); }, () => ring.remove());
      return;
    }
    const dot = el("circle", { cx: from[0], cy: from[1], r: 7, class: `dot${trouble ? " trouble" : ""}`, "data-message-id": event.message_id || "" }, this.moving);
    const title = el("title", {}, dot);
    title.textContent = `${event.event} ${label}`;
    animate(1500, (p) => {
      dot.setAttribute("cx", String(from[0] + (to[0] - from[0]) * p));
      dot.setAttribute("cy", String(from[1] + (to[1] - from[1]) * p));
    }, () => dot.remove());
  }
}

export function shortLabel(event) {
  const fromTrace = event.detail && typeof event.detail.subject === "string" ? event.detail.subject : "";
  const subject = typeof event.subject === "string" ? event.subject : fromTrace;
  return subject || event.message_id || event.queue_id || "";
}

// Squeeze a line of figures into its node rather than let it spill over the box's border.
function fit(text, width) {
  text.removeAttribute("textLength");
  text.removeAttribute("lengthAdjust");
  if (typeof text.getComputedTextLength === "function" && text.getComputedTextLength() > width) {
    text.setAttribute("textLength", String(width));
    text.setAttribute("lengthAdjust", "spacingAndGlyphs");
  }
}

export function clip(text, n) {
  const s = String(text);
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

function animate(ms, frame, done) {
  const start = performance.now();
  const tick = (now) => {
    const p = Math.min(1, (now - start) / ms);
    frame(p);
    if (p < 1) requestAnimationFrame(tick);
    else done();
  };
  requestAnimationFrame(tick);
}
