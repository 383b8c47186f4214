// The console page: a hash router over the views, the API calls, and the live event stream.
// Everything that comes from mail (subjects, addresses, replies, ids) goes into the page as text:
// textContent and DOM calls only, never as markup; the server's CSP forbids inline script besides.
import { currentLang, setLang, t, translate } from "./i18n.js";
import { LiveMap, clip, shortLabel } from "./map.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["login", "map", "messages", "message", "queues", "faults", "send"];
const state = { overview: null, events: null, map: null, ticker: [] };

function h(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, String(v));
  }
  return node;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(method, path, body) {
  const options = { method, headers: { "X-Yubin-Console": "1" }, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) {
    if (response.status === 401 && path !== "/api/login") showLogin(t("error.session"));
    const detail = data && data.detail;
    throw new ApiError(response.status, typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return data;
}

function time(at) {
  if (!at) return "";
  const d = new Date(at);
  return Number.isNaN(d.getTime()) ? String(at) : d.toLocaleTimeString(currentLang() === "ja" ? "ja-JP" : "en-GB", { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

function messageLink(id, label) {
  const a = h("a", label ?? id);
  a.href = `#/message/${encodeURIComponent(id)}`;
  return a;
}

// ---------------------------------------------------------------- login
function showLogin(message) {
  stopEvents();
  $("nav").hidden = true;
  $("logout").hidden = true;
  $("login-error").textContent = message || "";
  show("login");
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("login-error").textContent = "";
  try {
    await api("POST", "/api/login", { secret: $("secret").value });
    $("secret").value = "";
    await start();
  } catch (err) {
    $("login-error").textContent = err.status === 401 ? t("login.wrong") : err.message;
  }
});

$("logout").addEventListener("click", async () => {
  await api("POST", "/api/logout", {}).catch(() => {});
  showLogin();
});

$("lang").addEventListener("click", () => {
  setLang(currentLang() === "ja" ? "en" : "ja");
  applyLang();
  route();
});

function applyLang() {
  translate();
  const other = currentLang() === "ja" ? "en" : "ja";
  // Short codes: they render without a Japanese font; the title says it in the other language.
  $("lang").textContent = other.toUpperCase();
  $("lang").title = other === "ja" ? "日本語に切り替え" : "Switch to English";
  $("lang").lang = other;
  renderSteps();
  if (state.overview && state.map) {
    state.map.draw(state.overview.sites);
    state.map.update(state.overview.stats, state.overview.status);
  }
}

// ---------------------------------------------------------------- routing
function show(view) {
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== view;
  for (const a of $("nav").querySelectorAll("a")) {
    a.classList.toggle("active", a.getAttribute("href") === `#/${view}`);
  }
}

async function route() {
  if (!state.overview) return;
  const [, view = "map", ...rest] = (location.hash || "#/map").split("/");
  const arg = rest.length ? decodeURIComponent(rest.join("/")) : "";
  if (view === "message" && arg) { show("message"); await loadMessage(arg); return; }
  if (view === "messages") { show("messages"); $("q").value = arg; await search(arg); return; }
  if (view === "queues") { show("queues"); await loadQueues(); return; }
  if (view === "faults") { show("faults"); await loadFaults(); return; }
  if (view === "send") { show("send"); return; }
  show("map");
}
window.addEventListener("hashchange", route);

// ---------------------------------------------------------------- live map and events
function renderSteps() {
  const list = clear($("steps"));
  for (const n of [1, 2, 3]) {
    const li = h("li", t(`step.${n}`), { title: t(`step.${n}.hint`), tabindex: 0 });
    li.appendChild(h("span", t(`step.${n}.hint`), { class: "hint" }));
    list.appendChild(li);
  }
}

function stopEvents() {
  if (state.events) state.events.close();
  state.events = null;
}

function startEvents() {
  stopEvents();
  const source = new EventSource("/api/events");
  source.addEventListener("trace", (e) => onTrace(JSON.parse(e.data)));
  source.addEventListener("stats", (e) => {
    const data = JSON.parse(e.data);
    state.overview.stats = data.stats;
    state.overview.status = data.status;
    state.map.update(data.stats, data.status);
    renderStatus(data.status);
  });
  source.addEventListener("error", async () => {
    // A lost session shows as an error too: ask, and go back to the login if it is gone.
    const s = await fetch("/api/session").then((r) => r.json()).catch(() => null);
    if (s && !s.logged_in) showLogin(t("error.session"));
  });
  state.events = source;
}

function renderStatus(status) {
  const parts = Object.entries(status || {}).map(([site, s]) => `${site}: ${s === "live" ? t("map.live") : s}`);
  $("feed-status").textContent = parts.join(" · ");
}

function onTrace(event) {
  state.map.show(event);
  state.ticker.unshift(event);
  state.ticker.length = Math.min(state.ticker.length, 30);
  renderTicker();
}

function renderTicker() {
  const list = clear($("ticker"));
  for (const event of state.ticker) {
    const li = h("li", null, { "data-message-id": event.message_id || "" });
    li.appendChild(h("time", time(event.at)));
    li.appendChild(h("span", event.site, { class: "site-tag" }));
    li.appendChild(h("span", `${event.service} ${event.event}`, { class: `ev ev-${(event.hop || {}).kind || "pulse"}` }));
    const id = event.message_id || event.queue_id;
    li.appendChild(id ? messageLink(id, clip(shortLabel(event), 60)) : h("span", ""));
    list.appendChild(li);
  }
}

// ---------------------------------------------------------------- messages
$("search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  location.hash = `#/messages/${encodeURIComponent($("q").value.trim())}`;
});

async function search(q) {
  $("messages-error").textContent = "";
  const body = clear($("messages").querySelector("tbody"));
  let data;
  try {
    data = await api("GET", `/api/messages?q=${encodeURIComponent(q)}`);
  } catch (err) { $("messages-error").textContent = err.message; return; }
  $("messages-error").textContent = Object.values(data.errors || {}).join("; ");
  if (!data.messages.length) {
    const row = body.insertRow();
    const cell = row.insertCell();
    cell.colSpan = 6;
    cell.textContent = t("messages.none");
    return;
  }
  for (const m of data.messages) {
    const row = body.insertRow();
    const id = m.message_id || (m.queue_ids || [])[0];
    row.insertCell().appendChild(messageLink(id, clip(m.subject || m.message_id || id, 80)));
    row.insertCell().textContent = m.sender ?? "";
    row.insertCell().textContent = (m.recipients || []).join(", ");
    row.insertCell().textContent = (m.sites || []).join(", ");
    row.insertCell().textContent = `${time(m.last_at)} ${m.last_event || ""}`;
    row.insertCell().textContent = m.message_id || (m.queue_ids || []).join(", ");
  }
}

// ---------------------------------------------------------------- one message's journey
function detailList(detail) {
  const dl = h("dl", null, { class: "detail" });
  for (const [key, value] of Object.entries(detail || {})) {
    dl.appendChild(h("dt", key));
    dl.appendChild(h("dd", typeof value === "string" ? value : JSON.stringify(value)));
  }
  return dl;
}

async function loadMessage(id) {
  $("message-title").textContent = id;
  $("message-subject").textContent = "";
  $("message-error").textContent = "";
  const list = clear($("timeline"));
  let data;
  try {
    data = await api("GET", `/api/message?id=${encodeURIComponent(id)}`);
  } catch (err) {
    $("message-error").textContent = err.status === 404 ? t("message.none") : err.message;
    return;
  }
  $("message-error").textContent = Object.values(data.errors || {}).join("; ");
  $("message-subject").textContent = data.subject ?? "";
  for (const event of data.events) {
    const li = h("li", null, { class: `step site-${event.site === state.overview.sites[0] ? "a" : "b"}${event.dsn ? " dsn" : ""}` });
    li.dataset.site = event.site;
    li.dataset.service = event.service;
    li.dataset.event = event.event;
    const head = h("div", null, { class: "step-head" });
    head.appendChild(h("time", time(event.at)));
    if (event.since_previous_ms !== null && event.since_previous_ms !== undefined) {
      head.appendChild(h("span", `+${event.since_previous_ms} ms ${t("message.after")}`, { class: "delta" }));
    }
    head.appendChild(h("span", event.site, { class: "site-tag" }));
    head.appendChild(h("strong", `${event.service} · ${event.event}`));
    if (event.dsn) head.appendChild(h("span", t("message.dsn"), { class: "badge" }));
    head.appendChild(h("code", event.queue_id || "", { class: "qid" }));
    li.appendChild(head);
    li.appendChild(detailList(event.detail));
    list.appendChild(li);
  }
}

// ---------------------------------------------------------------- queues
async function confirmDialog(text) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

function actionButton(label, question, method, path, after) {
  const button = h("button", label, { type: "button" });
  button.addEventListener("click", async () => {
    if (!(await confirmDialog(question))) return;
    try { await api(method, path); } catch (err) { alertText(err.message); }
    after();
  });
  return button;
}

function alertText(message) {
  const target = location.hash.startsWith("#/faults") ? $("faults-error") : $("queues-error");
  target.textContent = message;
}

function arrayIn(answer, keys) {
  if (Array.isArray(answer)) return answer;
  for (const k of keys) if (answer && Array.isArray(answer[k])) return answer[k];
  return [];
}

function table(headers, rows) {
  const wrap = h("div", null, { class: "scroll" });
  const tableEl = h("table");
  const head = tableEl.createTHead().insertRow();
  for (const label of headers) head.appendChild(h("th", label));
  const body = tableEl.createTBody();
  for (const cells of rows) {
    const row = body.insertRow();
    for (const c of cells) {
      const cell = row.insertCell();
      if (c instanceof Node) cell.appendChild(c); else cell.textContent = c ?? "";
    }
  }
  wrap.appendChild(tableEl);
  return wrap;
}

async function loadQueues() {
  $("queues-error").textContent = "";
  const box = clear($("queues"));
  let data;
  try { data = await api("GET", "/api/queues"); } catch (err) { $("queues-error").textContent = err.message; return; }
  $("queues-error").textContent = Object.values(data.errors || {}).join("; ");
  const enc = encodeURIComponent;
  for (const site of data.sites) {
    box.appendChild(h("h2", `${site.site} · ${t("queues.deferred")}`));
    const deferred = arrayIn(site.deferred, ["deferred", "messages", "entries"]);
    if (!deferred.length) box.appendChild(h("p", t("queues.empty"), { class: "empty" }));
    else box.appendChild(table(
      [t("col.queue"), t("col.from"), t("col.to"), t("col.next"), t("col.error"), t("col.actions")],
      deferred.map((d) => {
        const base = `/api/queues/${enc(site.site)}/deferred/${enc(d.queue_id)}`;
        const actions = h("div", null, { class: "actions" });
        actions.appendChild(actionButton(t("queues.retry"), t("confirm.retry"), "POST", `${base}/retry`, loadQueues));
        actions.appendChild(actionButton(t("queues.bounce"), t("confirm.bounce"), "POST", `${base}/bounce`, loadQueues));
        actions.appendChild(actionButton(t("queues.delete"), t("confirm.delete"), "DELETE", base, loadQueues));
        return [messageLink(d.message_id || d.queue_id, d.queue_id), d.sender, (d.recipients || []).join(", "),
          time(d.next_attempt_at || d.due_at || d.retry_at), d.last_error ?? d.error ?? "", actions];
      })));
    box.appendChild(h("h2", `${site.site} · ${t("queues.dead")}`));
    const dead = arrayIn(site.dead, ["dead_letters"]);
    if (!dead.length) box.appendChild(h("p", t("queues.empty"), { class: "empty" }));
    else box.appendChild(table(
      [t("col.queue"), t("col.from"), t("col.to"), t("col.reason"), t("col.actions")],
      dead.map((d) => {
        const base = `/api/queues/${enc(site.site)}/dead/${enc(d.id)}`;
        const actions = h("div", null, { class: "actions" });
        actions.appendChild(actionButton(t("queues.retry"), t("confirm.retry"), "POST", `${base}/retry`, loadQueues));
        actions.appendChild(actionButton(t("queues.delete"), t("confirm.delete"), "DELETE", base, loadQueues));
        return [d.queue_id ? messageLink(d.message_id || d.queue_id, d.queue_id) : d.entry_id, d.sender, (d.recipients || []).join(", "), d.reason, actions];
      })));
  }
}

// ---------------------------------------------------------------- faults
$("fault-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("faults-error").textContent = "";
  const form = new FormData(e.target);
  const kind = form.get("kind");
  const fault = { kind, share: Number(form.get("share")), expires_in_s: Number(form.get("expires_in_s")) };
  if (kind === "smtp-reply") fault.reply = form.get("reply");
  if (kind === "delay") fault.delay_s = Number(form.get("delay_s"));
  if (kind === "dns-servfail") fault.domain = form.get("domain");
  if (kind !== "dns-servfail" && form.get("stage")) fault.stage = form.get("stage");
  try {
    await api("POST", `/api/faults/${encodeURIComponent(form.get("site"))}`, fault);
  } catch (err) { $("faults-error").textContent = err.message; return; }
  await loadFaults();
});

async function loadFaults() {
  const box = clear($("faults"));
  let data;
  try { data = await api("GET", "/api/faults"); } catch (err) { $("faults-error").textContent = err.message; return; }
  if (Object.keys(data.errors || {}).length) $("faults-error").textContent = Object.values(data.errors).join("; ");
  const rows = [];
  for (const site of data.sites) {
    for (const f of arrayIn(site.faults, ["faults"])) {
      const what = f.kind === "smtp-reply" ? f.reply : f.kind === "delay" ? `${f.delay_s} s` : f.kind === "dns-servfail" ? f.domain : "";
      const remove = actionButton(t("faults.remove"), t("confirm.fault"), "DELETE",
        `/api/faults/${encodeURIComponent(site.site)}/${encodeURIComponent(f.id)}`, loadFaults);
      rows.push([site.site, t(`kind.${f.kind}`), what ?? "", f.share ?? "", f.stage ?? "", time(f.expires_at), remove]);
    }
  }
  if (!rows.length) { box.appendChild(h("p", t("faults.none"), { class: "empty" })); return; }
  box.appendChild(table([t("col.site"), t("col.kind"), t("faults.reply"), t("faults.share"), t("faults.stage"), t("col.expires"), t("col.actions")], rows));
}

// ---------------------------------------------------------------- send
$("send-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("send-result").textContent = "";
  $("send-error").textContent = "";
  $("send-submit").disabled = true;
  try {
    const sent = await api("POST", "/api/send", {
      sender: $("send-from").value, to: $("send-to").value, subject: $("send-subject").value, body: $("send-body").value,
    });
    $("send-result").textContent = `${t("send.sent")} `;
    $("send-result").appendChild(messageLink(sent.message_id));
  } catch (err) {
    $("send-error").textContent = err.message;
  } finally {
    $("send-submit").disabled = false;
  }
});

function fillSelects() {
  const from = clear($("send-from"));
  for (const user of state.overview.users) from.appendChild(h("option", user, { value: user }));
  const other = state.overview.users.find((u) => !u.endsWith(`@${state.overview.sites[0]}`));
  if (other && !$("send-to").value) $("send-to").value = other;
  const sites = clear($("fault-site"));
  for (const site of state.overview.sites) sites.appendChild(h("option", site, { value: site }));
  if (state.overview.sites[1]) sites.value = state.overview.sites[1];
}

// ---------------------------------------------------------------- start
async function start() {
  state.overview = await api("GET", "/api/overview");
  $("nav").hidden = false;
  $("logout").hidden = false;
  state.map = new LiveMap($("map"));
  applyLang();
  fillSelects();
  state.ticker = state.overview.recent.slice().reverse();
  renderTicker();
  renderStatus(state.overview.status);
  startEvents();
  await route();
}

applyLang();
fetch("/api/session").then((r) => r.json()).then((s) => (s.logged_in ? start() : showLogin())).catch(() => showLogin());
