// The fastapihooks console: plain JavaScript over the management API it is served beside
// (`<mount>/console/` talks to `<mount>/`). No build step, no dependency; the DOM is built with
// textContent only, so nothing from the API is ever parsed as HTML.
"use strict";

const API = new URL("../", location.href);
const TOKEN_KEY = "fastapihooks.console.token";
const main = document.getElementById("main");
const flash = document.getElementById("flash");

// ---- the API --------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? problem.detail : `HTTP ${status}`);
    this.status = status;
    this.code = problem && problem.code;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(new URL(path, API), {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { detail: text.slice(0, 200) };
  }
  if (!response.ok) {
    // Whoever answered 401 wants credentials (the sidecar's token, an app's API key), unless
    // the request was authenticated but carried no owner.
    if (response.status === 401 && !(json && json.code === "owner_required")) askToken();
    throw new ApiError(response.status, json);
  }
  return json;
}

function askToken() {
  const dialog = document.getElementById("token");
  if (!dialog.open) dialog.showModal();
}

document.getElementById("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token-input").value.trim());
  document.getElementById("token").close();
  route();
});

// ---- DOM helpers ----------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function badge(status) {
  return el("span", { class: `badge ${status}`, "data-status": status }, status);
}

function when(time) {
  return time ? new Date(time).toLocaleString() : "—";
}

function table(headings, rows, caption) {
  return el("div", { class: "scroll" },
    el("table", {},
      caption ? el("caption", { class: "muted" }, caption) : null,
      el("thead", {}, el("tr", {}, headings.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.length ? rows
        : el("tr", {}, el("td", { colspan: headings.length, class: "muted" }, "Nothing here yet.")))));
}

function show(...nodes) {
  main.replaceChildren(...nodes.filter((node) => node !== null && node !== undefined));
}

function say(message, error = false) {
  flash.className = error ? "error" : "";
  flash.textContent = message;
}

async function confirmAction(text, ok = "Confirm") {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = ok;
  dialog.returnValue = "";
  dialog.showModal();
  document.getElementById("confirm-ok").focus();
  await new Promise((done) => dialog.addEventListener("close", done, { once: true }));
  return dialog.returnValue === "ok";
}

async function showSecret(secret) {
  const dialog = document.getElementById("secret");
  document.getElementById("secret-value").textContent = secret;
  dialog.showModal();
  await new Promise((done) => dialog.addEventListener("close", done, { once: true }));
}

// Runs `action`, reporting its error in the flash line instead of losing it.
async function attempt(action) {
  try {
    await action();
  } catch (error) {
    say(error.message, true);
  }
}

// ---- views ----------------------------------------------------------------------------------

async function overview() {
  const stats = await api("GET", "stats");
  const counts = stats.counts;
  const rate = stats.success_rate === null ? "—" : `${(stats.success_rate * 100).toFixed(1)} %`;
  show(
    el("h2", {}, "Last 24 hours"),
    el("div", { class: "card stats" },
      ["delivered", "failed", "dead", "pending"].map((s) =>
        el("div", { class: "stat" }, el("b", { "data-count": s }, counts[s]), badge(s))),
      el("div", { class: "stat" }, el("b", {}, rate), el("span", { class: "muted" }, "success rate"))),
    el("div", { class: "card chart" },
      el("h2", { id: "chart-title" }, "Deliveries and failures per hour"),
      chart(stats.buckets),
      el("div", { class: "legend" },
        el("span", {}, el("i", { style: "background:var(--ok)" }), "delivered"),
        el("span", {}, el("i", { style: "background:var(--bad)" }), "failed or dead"),
        el("span", {}, el("i", { style: "background:var(--wait)" }), "pending"))),
    el("p", { class: "muted" }, `${stats.total} deliveries made in these 24 hours.`),
  );
}

// A stacked bar per bucket, drawn as SVG; each bar's title gives its numbers, and the whole a
// short description for a screen reader.
function chart(buckets) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const width = 600, height = 160;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-labelledby", "chart-title");
  const total = (key) => buckets.reduce((n, b) => n + b[key], 0);
  svg.setAttribute("aria-description",
    `${total("delivered")} delivered, ${total("failed")} failed or dead, ${total("pending")} pending`);
  const max = Math.max(1, ...buckets.map((b) => b.delivered + b.failed + b.pending));
  const w = width / Math.max(1, buckets.length);
  buckets.forEach((b, i) => {
    let y = height;
    for (const [value, color] of [[b.delivered, "var(--ok)"], [b.failed, "var(--bad)"], [b.pending, "var(--wait)"]]) {
      const h = (value / max) * (height - 4);
      if (h <= 0) continue;
      y -= h;
      const rect = document.createElementNS(ns, "rect");
      rect.setAttribute("x", i * w + 1);
      rect.setAttribute("y", y);
      rect.setAttribute("width", Math.max(1, w - 2));
      rect.setAttribute("height", h);
      rect.setAttribute("style", `fill:${color}`);
      const title = document.createElementNS(ns, "title");
      title.textContent = `${when(b.start)}: ${b.delivered} delivered, ${b.failed} failed, ${b.pending} pending`;
      rect.append(title);
      svg.append(rect);
    }
  });
  return svg;
}

async function subscriptions(params) {
  const page = await api("GET", `subscriptions?limit=50${params.get("after") ? `&after=${encodeURIComponent(params.get("after"))}` : ""}`);
  const form = el("form", { class: "inline card", id: "new-subscription", "aria-label": "New subscription" },
    el("label", {}, "Event filter", el("input", { name: "filter", required: true, value: "*", placeholder: "order.*" })),
    el("label", {}, "URL", el("input", { name: "url", type: "url", required: true, placeholder: "https://example.com/hooks", size: 36 })),
    el("button", { type: "submit" }, "Create subscription"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    attempt(async () => {
      const data = new FormData(form);
      const created = await api("POST", "subscriptions", { filter: data.get("filter"), url: data.get("url") });
      say(`Subscription ${created.subscription.id} created.`);
      await showSecret(created.secret);
      location.hash = `#/subscriptions/${created.subscription.id}`;
    });
  });
  const rows = page.data.map((s) => el("tr", { "data-subscription": s.id },
    el("td", { class: "id" }, el("a", { href: `#/subscriptions/${s.id}` }, s.id)),
    el("td", {}, s.filter),
    el("td", {}, s.url),
    el("td", {}, badge(s.enabled ? "enabled" : "disabled")),
    el("td", {}, s.owner || "—"),
    el("td", {}, when(s.created_at))));
  show(
    el("h2", {}, "New subscription"), form,
    el("h2", {}, "Subscriptions"),
    table(["Id", "Filter", "URL", "State", "Owner", "Created"], rows),
    page.next ? el("p", {}, el("a", { href: `#/subscriptions?after=${page.next}` }, "More →")) : null,
  );
}

async function subscription(id) {
  const s = await api("GET", `subscriptions/${id}`);
  const recent = await api("GET", `deliveries?subscription=${id}&limit=20`);
  const act = (label, handler, cls) => el("button", {
    type: "button", class: cls, "data-action": label.toLowerCase().replaceAll(" ", "-"),
    onclick: () => attempt(handler),
  }, label);
  show(
    el("h2", {}, "Subscription ", el("code", {}, s.id)),
    el("div", { class: "card" },
      el("dl", {},
        el("dt", {}, "Filter"), el("dd", {}, s.filter),
        el("dt", {}, "URL"), el("dd", {}, s.url),
        el("dt", {}, "State"), el("dd", {}, badge(s.enabled ? "enabled" : "disabled"), s.disabled_reason ? ` ${s.disabled_reason}` : ""),
        el("dt", {}, "Owner"), el("dd", {}, s.owner || "—"),
        el("dt", {}, "Secret"), el("dd", {}, s.has_secret ? "its own" : "the default",
          s.previous_secret_expires_at ? ` (previous one signs until ${when(s.previous_secret_expires_at)})` : ""),
        el("dt", {}, "Created"), el("dd", {}, when(s.created_at))),
      el("div", { class: "actions" },
        s.enabled
          ? act("Disable", async () => { await api("POST", `subscriptions/${id}/disable`); say("Disabled."); route(); }, "secondary")
          : act("Enable", async () => { await api("POST", `subscriptions/${id}/enable`); say("Enabled."); route(); }),
        act("Send test event", async () => {
          const sent = await api("POST", `subscriptions/${id}/test`);
          say(`Test event queued: delivery ${sent.delivery_id}.`);
          route();
        }),
        act("Rotate secret", async () => {
          if (!await confirmAction("Rotate the signing secret? The old one keeps signing for a day.", "Rotate")) return;
          const rotated = await api("POST", `subscriptions/${id}/rotate-secret`, {});
          await showSecret(rotated.secret);
          route();
        }, "secondary"),
        act("Delete", async () => {
          if (!await confirmAction("Delete this subscription? Its delivery history is kept.", "Delete")) return;
          await api("DELETE", `subscriptions/${id}`);
          say("Deleted.");
          location.hash = "#/subscriptions";
        }, "danger"))),
    el("h2", {}, "Recent deliveries"),
    deliveryTable(recent.data),
    el("p", {}, el("a", { href: `#/deliveries?subscription=${id}` }, "All its deliveries →")),
  );
}

function deliveryTable(deliveries) {
  return table(["Id", "Status", "Event", "Attempts", "Subscription", "Updated"], deliveries.map((d) =>
    el("tr", { "data-delivery": d.id },
      el("td", { class: "id" }, el("a", { href: `#/deliveries/${d.id}` }, d.id)),
      el("td", {}, badge(d.status)),
      el("td", {}, d.event_name),
      el("td", {}, d.attempts),
      el("td", { class: "id" }, el("a", { href: `#/subscriptions/${d.subscription_id}` }, d.subscription_id)),
      el("td", {}, when(d.updated_at)))));
}

const FILTERS = ["status", "subscription", "event"];

async function deliveries(params) {
  const query = new URLSearchParams();
  for (const key of [...FILTERS, "before"]) if (params.get(key)) query.set(key, params.get(key));
  query.set("limit", "50");
  const page = await api("GET", `deliveries?${query}`);
  const form = el("form", { class: "inline card", id: "delivery-filters", "aria-label": "Filter deliveries" },
    el("label", {}, "Status", el("select", { name: "status" },
      ["", "pending", "delivered", "failed", "dead"].map((s) =>
        el("option", { value: s, selected: params.get("status") === s }, s || "any")))),
    el("label", {}, "Subscription", el("input", { name: "subscription", value: params.get("subscription") || "", placeholder: "sub_…" })),
    el("label", {}, "Event", el("input", { name: "event", value: params.get("event") || "", placeholder: "order.*" })),
    el("button", { type: "submit" }, "Filter"),
    el("button", { type: "button", class: "secondary", id: "replay-matching", onclick: () => attempt(() => replayMatching(params)) }, "Replay matching…"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) next.set(key, value);
    location.hash = `#/deliveries?${next}`;
  });
  const more = new URLSearchParams(query);
  more.delete("limit");
  if (page.next) more.set("before", page.next);
  show(
    el("h2", {}, "Deliveries"), form,
    deliveryTable(page.data),
    page.next ? el("p", {}, el("a", { href: `#/deliveries?${more}` }, "Older →")) : null,
  );
}

async function replayMatching(params) {
  const filter = {};
  for (const key of FILTERS) if (params.get(key)) filter[key] = params.get(key);
  const dry = await api("POST", "replay", { filter, dry_run: true });
  if (dry.would_replay === 0) {
    say("No failed or dead delivery matches these filters.");
    return;
  }
  if (!await confirmAction(`Replay ${dry.would_replay} deliveries matching these filters?`, `Replay ${dry.would_replay}`)) return;
  const done = await api("POST", "replay", { filter });
  say(`${done.queued + done.resumed} deliveries queued again.`);
  route();
}

async function delivery(id) {
  const d = await api("GET", `deliveries/${id}`);
  const attempts = await api("GET", `deliveries/${id}/attempts`);
  const replay = el("button", { type: "button", id: "replay-one", onclick: () => attempt(async () => {
    const resend = d.status === "delivered";
    if (!await confirmAction(resend ? "It was delivered. Send it again?" : "Send this delivery again?", "Replay")) return;
    const result = await api("POST", `deliveries/${id}/replay`, { resend_delivered: resend });
    say(`Replay: ${result.outcome.replace("_", " ")}.`);
    route();
  }) }, "Replay");
  show(
    el("h2", {}, "Delivery ", el("code", {}, d.id)),
    el("div", { class: "card" },
      el("dl", {},
        el("dt", {}, "Status"), el("dd", { id: "delivery-status" }, badge(d.status)),
        el("dt", {}, "Event"), el("dd", {}, `${d.event_name} `, el("code", {}, d.event_id)),
        el("dt", {}, "Subscription"), el("dd", {}, el("a", { href: `#/subscriptions/${d.subscription_id}` }, d.subscription_id)),
        el("dt", {}, "Attempts"), el("dd", {}, `${d.attempts}${d.replays ? ` (replayed ${d.replays}×)` : ""}`),
        el("dt", {}, "Next attempt"), el("dd", {}, when(d.next_attempt_at)),
        el("dt", {}, "Created"), el("dd", {}, when(d.created_at))),
      el("div", { class: "actions" }, replay,
        el("button", { type: "button", class: "secondary", onclick: () => route() }, "Refresh"))),
    el("h2", {}, "Attempts"),
    table(["#", "Started", "Duration", "Answer", "Response or error"], attempts.map((a) =>
      el("tr", { "data-attempt": a.number },
        el("td", {}, a.number),
        el("td", {}, when(a.started_at)),
        el("td", {}, `${a.duration_ms} ms`),
        el("td", {}, a.status_code ? el("span", { class: `badge ${a.status_code < 300 ? "delivered" : "failed"}` }, a.status_code) : a.error_kind),
        el("td", {}, el("code", {}, a.response_excerpt || a.error || ""))))),
  );
}

// ---- routing --------------------------------------------------------------------------------

async function route() {
  const [path, query] = (location.hash.slice(1) || "/overview").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  for (const link of document.querySelectorAll("nav a")) {
    link.toggleAttribute("aria-current", link.dataset.nav === parts[0]);
    if (link.dataset.nav === parts[0]) link.setAttribute("aria-current", "page");
  }
  try {
    if (parts[0] === "subscriptions" && parts[1]) await subscription(parts[1]);
    else if (parts[0] === "subscriptions") await subscriptions(params);
    else if (parts[0] === "deliveries" && parts[1]) await delivery(parts[1]);
    else if (parts[0] === "deliveries") await deliveries(params);
    else await overview();
    document.body.dataset.view = parts.join("/") || "overview";
  } catch (error) {
    show(el("p", { class: "muted" }, "Could not load this page."));
    say(error.message, true);
  }
}

window.addEventListener("hashchange", () => { say(""); route().then(() => main.focus()); });
route();
