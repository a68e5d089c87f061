// The wxgate console: reads /console/api/* (a session cookie), draws, polls. No
// framework and no build step; served from the binary.
"use strict";

const $ = (id) => document.getElementById(id);
let csrf = "";
let overviewTimer = null;
let trafficTimer = null;

const COLORS = {
  push_rule: "#2563eb", push_handler: "#7c3aed", push_webhook: "#0d9488", push_none: "#94a3b8",
  push_timeout: "#b45309", push_dedup: "#64748b", push_late: "#ca8a04",
  refused_400: "#f97316", refused_401: "#ef4444", refused_403: "#b91c1c", refused_413: "#a855f7",
  refused_503: "#6b7280", refused_other: "#1f2937",
  p50: "#22c55e", p90: "#eab308", p99: "#ef4444", webhook_failed: "#1f2937",
  config_ok: "#2563eb", config_error: "#ef4444", auth_ok: "#0d9488", auth_error: "#f97316",
  mp_login_ok: "#7c3aed", mp_login_error: "#b91c1c",
};

async function api(path, options) {
  const r = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
  if (r.status === 401) {
    showLogin();
    throw new Error("not logged in");
  }
  return r;
}

function showLogin() {
  $("dashboard").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  clearInterval(overviewTimer);
  clearInterval(trafficTimer);
}

function showDashboard() {
  $("login").hidden = true;
  $("dashboard").hidden = false;
  $("logout").hidden = false;
}

function ago(seconds) {
  const s = Math.abs(Math.round(seconds));
  const text = s < 120 ? s + " s" : s < 7200 ? Math.round(s / 60) + " min" : (s / 3600).toFixed(1) + " h";
  return seconds >= 0 ? "in " + text : text + " ago";
}

function clock(unix) {
  return new Date(unix * 1000).toLocaleTimeString();
}

function svg(tag, attrs) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function timeline(c, now) {
  const s = svg("svg", { viewBox: "0 0 1000 22", preserveAspectRatio: "none" });
  s.appendChild(svg("rect", { x: 0, y: 6, width: 1000, height: 10, fill: "#e5e7eb" }));
  if (c.fetched_at == null) return s;
  const span = Math.max(1, c.expires_at - c.fetched_at);
  const x = (t) => Math.min(1000, Math.max(0, ((t - c.fetched_at) / span) * 1000));
  s.appendChild(svg("rect", { x: 0, y: 6, width: x(c.refresh_at), height: 10, fill: "#93c5fd" }));
  s.appendChild(svg("rect", { x: x(c.refresh_at), y: 6, width: 1000 - x(c.refresh_at), height: 10, fill: "#fcd34d" }));
  s.appendChild(svg("rect", { x: x(c.refresh_at) - 2, y: 2, width: 4, height: 18, fill: "#1d4ed8" }));
  const n = svg("rect", { x: x(now) - 2, y: 0, width: 4, height: 22, fill: "#b91c1c", class: "now" });
  s.appendChild(n);
  return s;
}

function renderAccounts(v) {
  const box = $("accounts");
  box.textContent = "";
  for (const a of v.accounts) {
    const card = document.createElement("div");
    card.className = "account";
    card.dataset.account = a.name;
    const h = document.createElement("h3");
    h.textContent = a.name + " ";
    const small = document.createElement("small");
    small.textContent = a.appid + " · " + a.kind;
    h.appendChild(small);
    card.appendChild(h);
    for (const c of a.credentials) {
      const row = document.createElement("div");
      row.className = "cred";
      row.dataset.kind = c.name;
      if (c.expires_at != null) {
        row.dataset.fetchedAt = c.fetched_at;
        row.dataset.expiresAt = c.expires_at;
        row.dataset.refreshAt = c.refresh_at;
        row.dataset.digest = c.digest;
        if (c.expires_at <= v.now) row.classList.add("expired");
        else if (c.refresh_at <= v.now) row.classList.add("soon");
      }
      const name = document.createElement("strong");
      name.textContent = c.name;
      row.appendChild(name);
      row.appendChild(timeline(c, v.now));
      const facts = document.createElement("span");
      facts.className = "facts";
      facts.textContent = c.expires_at == null
        ? "none yet (fetched on first use)"
        : "issued " + clock(c.fetched_at) + ", refresh " + ago(c.refresh_at - v.now) +
          ", expires " + ago(c.expires_at - v.now) + " · " + c.digest + "…" +
          (c.lock_holder ? " · lock: " + c.lock_holder.slice(0, 8) : "");
      // The last fetch's result: an error stays until a fetch succeeds.
      if (c.last_error) facts.textContent += " · last fetch failed: " + c.last_error;
      else if (c.fetched_at != null) facts.textContent += " · last fetch ok";
      row.appendChild(facts);
      card.appendChild(row);
    }
    const token = a.credentials.find((c) => c.name === "access_token");
    const used = token ? token.fetches_today : 0;
    const quota = document.createElement("div");
    quota.className = "quota";
    const gauge = svg("svg", { viewBox: "0 0 100 12", preserveAspectRatio: "none" });
    gauge.appendChild(svg("rect", { x: 0, y: 0, width: 100, height: 12, fill: "#e5e7eb" }));
    const share = Math.min(100, (100 * used) / Math.max(1, v.daily_quota));
    gauge.appendChild(svg("rect", { x: 0, y: 0, width: share, height: 12, fill: share > 80 ? "#ef4444" : "#22c55e" }));
    const label = document.createElement("span");
    label.className = "fetches";
    label.textContent = "access_token fetches today: " + used + " / " + v.daily_quota;
    quota.appendChild(gauge);
    quota.appendChild(label);
    card.appendChild(quota);
    const actions = document.createElement("div");
    actions.className = "actions";
    const refresh = document.createElement("button");
    refresh.textContent = "Force refresh access_token";
    refresh.className = "refresh";
    refresh.onclick = () => change("/console/api/refresh", { account: a.name, kind: "access_token" },
      "Fetch a new access_token for " + a.name + "? Every instance moves to it; the old one keeps working for 5 minutes.");
    const clear = document.createElement("button");
    clear.textContent = "Clear quota";
    clear.onclick = () => change("/console/api/quota/clear", { account: a.name },
      "Call WeChat's clear_quota for " + a.name + "? WeChat allows 10 a month.");
    actions.appendChild(refresh);
    actions.appendChild(clear);
    card.appendChild(actions);
    box.appendChild(card);
  }
}

async function change(path, body, question) {
  if (!window.confirm(question)) return;
  const r = await api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Wxgate-Csrf": csrf },
    body: JSON.stringify(body),
  });
  const v = await r.json();
  if (!r.ok || v.ok === false) window.alert("Refused: " + (v.error || r.status));
  await loadOverview();
}

function renderStore(v) {
  const s = v.store;
  $("store").textContent = "Store: " + s.kind + " (" + s.mode + "), " +
    (s.ok ? "answering" : "NOT answering: " + s.error) +
    (s.outages ? ", " + s.outages + " outage(s) since start" : "");
  $("store").className = s.ok ? "" : "error";
  const body = $("fleet").tBodies[0];
  body.textContent = "";
  for (const h of v.fleet) {
    const tr = body.insertRow();
    const me = h.id === v.instance ? " (this one)" : "";
    for (const text of [h.id.slice(0, 8) + me, h.listen + (h.public_url ? " · " + h.public_url : ""), h.version,
      ago(h.started_at - v.now).replace(" ago", ""), ago(h.last_seen - v.now)]) {
      tr.insertCell().textContent = text;
    }
  }
}

// The open platform: each component's ticket and token, its authorizers by state.
function renderComponents(v) {
  const list = v.components || [];
  $("component-section").hidden = list.length === 0;
  const body = $("components").tBodies[0];
  body.textContent = "";
  for (const c of list) {
    const tr = body.insertRow();
    const ticket = c.ticket_age_secs == null ? "none yet" : `${c.ticket_age_secs} s old`;
    const token = c.component_access_token_expires_in == null ? "not held" : `${c.component_access_token_expires_in} s left`;
    const counts = `${c.authorizers.ok} ok, ${c.authorizers.needs_reauthorization} need re-authorization`;
    const listed = c.listed.map((a) => `${a.appid} ${a.state} [${a.func_info.join(",")}] ${a.token_expires_in == null ? "no token" : a.token_expires_in + " s"}`).join("; ") || "none";
    for (const text of [`${c.name} (${c.component_appid})`, ticket, token, counts, listed]) {
      tr.insertCell().textContent = text;
    }
    if (c.ticket_age_secs == null || c.authorizers.needs_reauthorization > 0) tr.className = "error";
  }
}

// WeChat Pay's merchants: keys with expiry, notifications by outcome, the last ones
// (ids and outcomes only).
function renderPay(v) {
  const merchants = v.pay || [];
  $("pay-section").hidden = merchants.length === 0;
  const body = $("pay").tBodies[0];
  body.textContent = "";
  for (const m of merchants) {
    const tr = body.insertRow();
    const keys = m.keys.map((k) => k.id.slice(0, 24) + (k.expires_at ? " (" + new Date(k.expires_at * 1000).toISOString().slice(0, 10) + ")" : "")).join(", ");
    const outcomes = Object.entries(m.outcomes).map(([o, n]) => `${o} ${n}`).join(", ") || "none yet";
    const last = m.recent.map((r) => `${r.id.slice(0, 20)} ${r.event_type} ${r.outcome}`).join("; ") || "none yet";
    for (const text of [`${m.name} (${m.mchid}, ${m.mode})`, keys, outcomes, last]) {
      tr.insertCell().textContent = text;
    }
    if ((m.outcomes.webhook_failed || 0) > 0) tr.className = "error";
  }
}

// WeChat refusing this server's IP (40164): the first thing to fix, above everything.
function renderIpBanner(refused) {
  const b = $("ip-banner");
  b.hidden = refused.length === 0;
  if (b.hidden) return;
  const lines = refused.map((r) =>
    `WeChat refuses this server's IP ${r.ip || "(not named)"} for ${r.account} (errcode ${r.errcode}, since ${clock(r.since)}).`);
  b.textContent = lines.join(" ") +
    " Add the address to the account's IP whitelist: 公众平台 → 设置与开发 → 基本配置 → IP白名单 (Mini Programs: 开发管理 → 开发设置 → IP白名单).";
}

// The accounts shown: a search (name or appid) and a page of the matches.
const listing = { q: "", page: 0, pages: 1 };

function renderSummary(v) {
  const t = (v.summary || {}).access_token || { ok: 0, due: 0, failing: 0 };
  $("summary").textContent = `${v.total_accounts} accounts · access_token: ${t.ok} ok, ${t.due} due, ${t.failing} failing`;
  $("summary").className = t.failing > 0 ? "error" : "";
  listing.pages = Math.max(1, v.pages || 1);
  $("pageinfo").textContent = `page ${listing.page + 1} of ${listing.pages} (${v.matched} shown of ${v.total_accounts})`;
  $("prev").disabled = listing.page === 0;
  $("next").disabled = listing.page + 1 >= listing.pages;
}

async function loadOverview() {
  const r = await api(`/console/api/overview?q=${encodeURIComponent(listing.q)}&page=${listing.page}`);
  const v = await r.json();
  csrf = v.csrf;
  showDashboard();
  $("instance").textContent = "instance " + v.instance.slice(0, 8);
  renderIpBanner(v.ip_not_whitelisted || []);
  renderSummary(v);
  renderAccounts(v);
  renderStore(v);
  renderPay(v);
  renderComponents(v);
  const p = await (await api("/console/api/problems")).json();
  const body = $("problems").tBodies[0];
  body.textContent = "";
  for (const x of p.problems) {
    const tr = body.insertRow();
    tr.insertCell().textContent = clock(x.at);
    const level = tr.insertCell();
    level.textContent = x.level;
    level.className = x.level;
    tr.insertCell().textContent = x.count > 1 ? `${x.message} (×${x.count} since ${clock(x.first_at)})` : x.message;
    tr.insertCell().textContent = x.fields.join(" ");
    tr.insertCell().textContent = x.request_id || "";
  }
}

function chart(id, minutes, lines, kind) {
  const s = $(id);
  s.textContent = "";
  const legend = $(id.replace("chart", "legend"));
  legend.textContent = "";
  const n = Math.max(1, minutes.length);
  let max = 1;
  for (const [, points] of lines) for (const p of points) if (p != null) max = Math.max(max, p);
  if (kind === "bars") {
    // Stacked bars, a minute each.
    let top = 1;
    for (let i = 0; i < n; i++) top = Math.max(top, lines.reduce((a, [, p]) => a + (p[i] || 0), 0));
    const w = 600 / 60;
    for (let i = 0; i < minutes.length; i++) {
      let y = 130;
      for (const [name, points] of lines) {
        const h = ((points[i] || 0) / top) * 120;
        if (h > 0) s.appendChild(svg("rect", { x: (60 - minutes.length + i) * w, y: y - h, width: w - 1, height: h, fill: COLORS[name] }));
        y -= h;
      }
    }
    max = top;
  } else {
    for (const [name, points] of lines) {
      const d = points.map((p, i) => (p == null ? null : [(60 - minutes.length + i) * 10 + 5, 130 - (p / max) * 120]))
        .filter(Boolean).map(([x, y], i) => (i ? "L" : "M") + x + " " + y).join(" ");
      if (d) s.appendChild(svg("path", { d, fill: "none", stroke: COLORS[name], "stroke-width": 2 }));
    }
  }
  s.appendChild(svg("line", { x1: 0, y1: 130, x2: 600, y2: 130, stroke: "#94a3b8" }));
  const t = svg("text", { x: 2, y: 10, "font-size": 10, fill: "#667" });
  t.textContent = "max " + Math.round(max);
  s.appendChild(t);
  for (const [name, points] of lines) {
    const span = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = COLORS[name];
    span.appendChild(swatch);
    const total = points.reduce((a, p) => a + (p || 0), 0);
    span.appendChild(document.createTextNode(name + (kind === "bars" ? " " + total : "")));
    legend.appendChild(span);
  }
}

async function loadTraffic() {
  const v = await (await api("/console/api/traffic")).json();
  const series = v.series;
  const pick = (names) => names.map((n) => [n, series[n]]);
  const sum = (names) => names.reduce((a, n) => a + series[n].reduce((b, p) => b + p, 0), 0);
  const pushes = ["push_rule", "push_handler", "push_webhook", "push_none", "push_timeout", "push_dedup", "push_late"];
  const refused = ["refused_400", "refused_401", "refused_403", "refused_413", "refused_503", "refused_other"];
  chart("chart-pushes", v.minutes, pick(pushes), "bars");
  chart("chart-refused", v.minutes, pick(refused), "bars");
  chart("chart-webhook", v.minutes, [["p50", v.webhook_ms.p50], ["p90", v.webhook_ms.p90], ["p99", v.webhook_ms.p99]], "lines");
  chart("chart-requests", v.minutes, pick(["config_ok", "config_error", "auth_ok", "auth_error", "mp_login_ok", "mp_login_error"]), "bars");
  $("push-total").textContent = sum(pushes);
  $("refused-total").textContent = sum(refused);
  $("webhook-failed-total").textContent = sum(["webhook_failed"]);
  $("traffic-updated").textContent = "updated " + new Date().toLocaleTimeString();
}

async function start() {
  try {
    await loadOverview();
    await loadTraffic();
  } catch (e) {
    return;
  }
  clearInterval(overviewTimer);
  clearInterval(trafficTimer);
  overviewTimer = setInterval(() => loadOverview().catch(() => {}), 5000);
  trafficTimer = setInterval(() => loadTraffic().catch(() => {}), 2000);
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("login-error").textContent = "";
  const r = await fetch("/console/login", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ key: $("key").value }),
  });
  if (r.ok) {
    $("key").value = "";
    start();
  } else {
    const v = await r.json().catch(() => ({}));
    $("login-error").textContent = v.error || "refused (" + r.status + ")";
  }
});

$("search").addEventListener("input", () => {
  listing.q = $("search").value;
  listing.page = 0;
  loadOverview().catch(() => {});
});
$("prev").addEventListener("click", () => {
  listing.page = Math.max(0, listing.page - 1);
  loadOverview().catch(() => {});
});
$("next").addEventListener("click", () => {
  listing.page = Math.min(listing.pages - 1, listing.page + 1);
  loadOverview().catch(() => {});
});

$("logout").addEventListener("click", async () => {
  await fetch("/console/logout", { method: "POST", credentials: "same-origin" });
  showLogin();
});

start();
