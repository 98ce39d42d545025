// The Trailkeeper console: the "Teams & Logs" page.
//
// Every filter lives in the page's URL (links can be shared, the back button works); the
// page turns that state into the same JSON API requests any client makes, authenticated by
// the session cookie. Nothing here builds HTML from event data: text goes in as text.

const PAGE_SIZE = 50;
const DAY = 24 * 3600 * 1000;
const RANGES = ["today", "yesterday", "7d", "30d", "month", "6mo", "all", "custom"];
const DEFAULT_RANGE = "7d"; // includes today, unlike a console we know
const HIDE_READS = "-operation:audit_log.search -operation:audit_log.export -operation:audit_log.stream";

const $ = (selector, root = document) => root.querySelector(selector);
const testid = (id) => $(`[data-testid="${id}"]`);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// ---- State <-> URL -----------------------------------------------------------------

function readState(search = location.search) {
  const p = new URLSearchParams(search);
  const range = p.get("range");
  return {
    apps: p.getAll("app"),
    range: RANGES.includes(range) ? range : DEFAULT_RANGE,
    from: p.get("from") || "",
    to: p.get("to") || "",
    operations: p.getAll("operation"),
    actor: p.get("actor") || "",
    status: ["success", "failure"].includes(p.get("status")) ? p.get("status") : "",
    ip: p.get("ip") || "",
    q: p.get("q") || "",
    target: p.get("target") || "",
    request: p.get("request") || "",
    order: p.get("order") === "asc" ? "asc" : "desc",
    cursor: p.get("cursor") || "",
    page: Math.max(1, parseInt(p.get("page") || "1", 10) || 1),
    live: p.get("live") === "1",
    reads: p.get("reads") === "1",
  };
}

function stateToSearch(s) {
  const p = new URLSearchParams();
  s.apps.forEach((a) => p.append("app", a));
  if (s.range !== DEFAULT_RANGE) p.set("range", s.range);
  if (s.range === "custom") {
    if (s.from) p.set("from", s.from);
    if (s.to) p.set("to", s.to);
  }
  s.operations.forEach((o) => p.append("operation", o));
  for (const name of ["actor", "status", "ip", "q", "target", "request"]) {
    if (s[name]) p.set(name, s[name]);
  }
  if (s.order !== "desc") p.set("order", s.order);
  if (s.cursor) {
    p.set("cursor", s.cursor);
    p.set("page", String(s.page));
  }
  if (s.live) p.set("live", "1");
  if (s.reads) p.set("reads", "1");
  const text = p.toString();
  return text ? `?${text}` : "";
}

let state = readState();

function navigate(changes, { resetPage = true } = {}) {
  const next = { ...state, ...changes };
  if (resetPage) {
    next.cursor = "";
    next.page = 1;
  }
  history.pushState(null, "", location.pathname + stateToSearch(next));
  state = next;
  render();
}

window.addEventListener("popstate", () => {
  state = readState();
  render();
});

// ---- Dates -------------------------------------------------------------------------

function startOfDay(date) {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate());
}

function addDays(date, days) {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate() + days);
}

function parseDay(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  return m ? new Date(+m[1], +m[2] - 1, +m[3]) : null;
}

function dayString(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

// [since, until) in the browser's own time zone; until is exclusive, as in the API.
function rangeBounds(s, now = new Date()) {
  const today = startOfDay(now);
  const tomorrow = addDays(today, 1);
  switch (s.range) {
    case "today": return [today, tomorrow];
    case "yesterday": return [addDays(today, -1), today];
    case "7d": return [addDays(today, -6), tomorrow];
    case "30d": return [addDays(today, -29), tomorrow];
    case "month": return [new Date(today.getFullYear(), today.getMonth(), 1), tomorrow];
    case "6mo": return [new Date(today.getFullYear(), today.getMonth() - 6, today.getDate()), tomorrow];
    case "custom": {
      const from = parseDay(s.from);
      const to = parseDay(s.to);
      return [from, to ? addDays(to, 1) : null];
    }
    default: return [null, null];
  }
}

// ---- API -----------------------------------------------------------------------------

function filterParams(s) {
  const p = new URLSearchParams();
  s.apps.forEach((a) => p.append("app", a));
  const [since, until] = rangeBounds(s);
  if (since) p.set("since", since.toISOString());
  if (until) p.set("until", until.toISOString());
  s.operations.forEach((o) => p.append("operation", o));
  if (s.actor) p.append("actor", s.actor);
  if (s.status) p.set("success", s.status === "success" ? "true" : "false");
  if (s.ip) p.append("source_ip", s.ip);
  // The log's own reads (every page of this console is one) are hidden unless asked for.
  const q = s.reads ? s.q : `${s.q} ${HIDE_READS}`.trim();
  if (q) p.set("q", q);
  if (s.target) p.append("target", s.target);
  if (s.request) p.append("request_id", s.request);
  return p;
}

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || `the server answered ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(path, params) {
  const url = params && [...params].length ? `${path}?${params}` : path;
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (response.status === 401) {
    location.assign(`/console/login?notice=expired&next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new ApiError(401, { detail: "Your session has ended; sign in again." });
  }
  let body = {};
  try { body = await response.json(); } catch { /* an empty or non-JSON answer */ }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// ---- Formatting ----------------------------------------------------------------------

const timeFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
});

function when(iso) {
  const date = new Date(iso);
  return el("time", { datetime: iso, title: `${iso.replace("T", " ").replace("Z", "")} UTC` }, timeFormat.format(date));
}

function who(actor) {
  return [actor.name || actor.id, el("span", { class: "type", text: actor.name ? `${actor.id} · ${actor.type}` : actor.type })];
}

function statusCell(event) {
  if (event.success) return el("span", { class: "status-ok", text: "Success" });
  const error = event.error || {};
  return el("span", { class: "status-bad" }, "Failed",
    el("span", { class: "why", text: [error.code, error.message].filter(Boolean).join(": ") }));
}

// ---- Filters: apps and operations ------------------------------------------------------

let catalogue = null; // name -> operation
let knownApps = null;

async function loadApps() {
  const menu = $(".menu", testid("filter-apps"));
  try {
    const { apps } = await api("/v1/apps");
    knownApps = apps;
  } catch (error) {
    menu.replaceChildren(el("p", { class: "menu-empty", text: `Could not load apps: ${error.message}` }));
    return;
  }
  const names = new Set(knownApps.map((a) => a.app_id));
  state.apps.forEach((a) => names.add(a));
  const boxes = [...names].sort().map((id) => {
    const info = knownApps.find((a) => a.app_id === id);
    return el("label", {},
      el("input", { type: "checkbox", name: "app", value: id, "data-testid": "app-option" }),
      id, el("span", { class: "count", text: info ? info.events.toLocaleString() : "" }));
  });
  menu.replaceChildren(
    el("label", {}, el("input", { type: "checkbox", name: "all-apps", "data-testid": "app-all" }), el("b", { text: "All apps" })),
    ...(boxes.length ? boxes : [el("p", { class: "menu-empty", text: "No app has events yet." })]),
  );
  menu.addEventListener("change", (event) => {
    const box = event.target;
    if (box.name === "all-apps" && box.checked) menu.querySelectorAll('input[name="app"]').forEach((b) => { b.checked = false; });
    if (box.name === "app") $('input[name="all-apps"]', menu).checked = !menu.querySelector('input[name="app"]:checked');
    updateSummaries();
  });
  syncForm();
}

async function loadOperations() {
  const menu = $(".menu", testid("filter-operations"));
  let operations;
  try {
    ({ operations } = await api("/v1/operations"));
  } catch (error) {
    menu.replaceChildren(el("p", { class: "menu-empty", text: `Could not load operations: ${error.message}` }));
    return;
  }
  catalogue = new Map(operations.map((op) => [op.name, op]));
  const groups = new Map();
  for (const op of operations) {
    if (!groups.has(op.resource)) groups.set(op.resource, []);
    groups.get(op.resource).push(op);
  }
  const sets = [...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([resource, ops]) =>
    el("fieldset", {},
      el("legend", { text: resource.replaceAll("_", " ") }),
      el("label", {}, el("input", { type: "checkbox", name: "operation", value: `${resource}.*`, "data-testid": "operation-option" }),
        el("i", { text: `Any ${resource.replaceAll("_", " ")} operation` })),
      ops.map((op) => el("label", { title: op.name },
        el("input", { type: "checkbox", name: "operation", value: op.name, "data-testid": "operation-option" }),
        op.description))));
  menu.replaceChildren(...sets);
  menu.addEventListener("change", updateSummaries);
  syncForm();
  renderRows(lastEvents); // descriptions may now be known
}

function checkedValues(container, name) {
  return [...container.querySelectorAll(`input[name="${name}"]:checked`)].map((b) => b.value);
}

function updateSummaries() {
  const apps = checkedValues(testid("filter-apps"), "app");
  $(".summary-value", testid("filter-apps")).textContent =
    apps.length === 0 ? "All apps" : apps.length === 1 ? apps[0] : `${apps.length} apps`;
  const ops = checkedValues(testid("filter-operations"), "operation");
  $(".summary-value", testid("filter-operations")).textContent =
    ops.length === 0 ? "All" : ops.length === 1 ? ops[0] : `${ops.length} selected`;
}

// ---- The form <-> state --------------------------------------------------------------

const form = $("#filters");

function syncForm() {
  form.elements.range.value = state.range;
  $(".custom-range").hidden = state.range !== "custom";
  const [since, until] = rangeBounds(state);
  form.elements.from.value = state.range === "custom" ? state.from : since ? dayString(since) : "";
  form.elements.to.value = state.range === "custom" ? state.to : until ? dayString(addDays(until, -1)) : "";
  form.elements.actor.value = state.actor;
  form.elements.status.value = state.status;
  form.elements.ip.value = state.ip;
  form.elements.q.value = state.q;
  for (const box of testid("filter-apps").querySelectorAll('input[name="app"]')) box.checked = state.apps.includes(box.value);
  const all = $('input[name="all-apps"]', testid("filter-apps"));
  if (all) all.checked = state.apps.length === 0;
  for (const box of testid("filter-operations").querySelectorAll('input[name="operation"]')) box.checked = state.operations.includes(box.value);
  updateSummaries();
  const order = testid("filter-order");
  order.textContent = state.order === "desc" ? "Newest first" : "Oldest first";
  order.setAttribute("aria-pressed", String(state.order === "asc"));
  testid("live-toggle").checked = state.live;
  testid("filter-reads").checked = state.reads;
}

function formState() {
  const range = form.elements.range.value;
  return {
    apps: checkedValues(testid("filter-apps"), "app"),
    range,
    from: range === "custom" ? form.elements.from.value : "",
    to: range === "custom" ? form.elements.to.value : "",
    operations: checkedValues(testid("filter-operations"), "operation"),
    actor: form.elements.actor.value.trim(),
    status: form.elements.status.value,
    ip: form.elements.ip.value.trim(),
    q: form.elements.q.value.trim(),
  };
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  form.querySelectorAll("details[open]").forEach((d) => { d.open = false; });
  navigate(formState());
});

form.elements.range.addEventListener("change", () => {
  const custom = form.elements.range.value === "custom";
  $(".custom-range").hidden = !custom;
  if (custom) {
    if (!form.elements.from.value) form.elements.from.value = dayString(addDays(new Date(), -6));
    if (!form.elements.to.value) form.elements.to.value = dayString(new Date());
    form.elements.from.focus();
  } else {
    navigate(formState());
  }
});

for (const name of ["status"]) form.elements[name].addEventListener("change", () => navigate(formState()));

testid("clear-filters").addEventListener("click", () => navigate({
  apps: [], range: DEFAULT_RANGE, from: "", to: "", operations: [], actor: "", status: "", ip: "", q: "", target: "", request: "", reads: false,
}));

testid("filters-toggle").addEventListener("click", (event) => {
  const collapsed = form.classList.toggle("collapsed");
  event.target.setAttribute("aria-expanded", String(!collapsed));
  event.target.textContent = collapsed ? "More filters" : "Fewer filters";
});

testid("filter-order").addEventListener("click", () => navigate({ order: state.order === "desc" ? "asc" : "desc" }));
testid("live-toggle").addEventListener("change", (event) => navigate({ live: event.target.checked }, { resetPage: false }));
testid("filter-reads").addEventListener("change", (event) => navigate({ reads: event.target.checked }));
testid("pagination-first").addEventListener("click", () => navigate({}));
testid("pagination-next").addEventListener("click", () => {
  if (nextCursor) navigate({ cursor: nextCursor, page: state.page + 1 }, { resetPage: false });
});

// Close an open drop-down with Escape or a click elsewhere.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  for (const d of form.querySelectorAll("details[open]")) {
    d.open = false;
    $("summary", d).focus();
  }
});
document.addEventListener("click", (event) => {
  for (const d of form.querySelectorAll("details[open]")) if (!d.contains(event.target)) d.open = false;
});

// ---- Chips for the filters set by clicking a target or a request -----------------------

function renderChips() {
  const chips = [];
  if (state.target) chips.push(["Resource", state.target, { target: "" }, "chip-target"]);
  if (state.request) chips.push(["Request", state.request, { request: "" }, "chip-request"]);
  testid("active-filters").replaceChildren(...chips.map(([label, value, clear, id]) =>
    el("span", { class: "chip", "data-testid": id }, `${label}: `, el("code", { text: value }),
      el("button", { type: "button", class: "quiet", "aria-label": `Remove the ${label.toLowerCase()} filter`, onclick: () => navigate(clear) }, "×"))));
}

// ---- The table -----------------------------------------------------------------------

let lastEvents = [];
let nextCursor = null;
let loadToken = 0;

function message(text, { error = false } = {}) {
  const node = testid("status-message");
  node.textContent = text;
  node.classList.toggle("error", error);
  node.setAttribute("role", error ? "alert" : "status");
}

function describe(event) {
  const op = catalogue && catalogue.get(event.operation);
  return event.description || (op ? op.description : event.operation);
}

function eventRow(event, { fresh = false } = {}) {
  const detailsId = `details-${event.id}`;
  const toggle = el("button", {
    type: "button", class: "expand", "aria-expanded": "false", "aria-controls": detailsId,
    "aria-label": `Details of ${event.operation} at ${event.time}`, "data-testid": "event-expand",
  }, "▶");
  const row = el("tr", { class: fresh ? "event new" : "event", "data-testid": "event-row", "data-event-id": event.id },
    el("td", { class: "when", "data-label": "When" }, toggle, when(event.time)),
    el("td", { class: "who", "data-label": "Who" }, who(event.actor)),
    el("td", { class: "what", "data-label": "What" }, describe(event), el("span", { class: "op mono", text: event.operation })),
    el("td", { class: "where mono", "data-label": "Where", text: event.source_ip || "—" }),
    el("td", { class: "status", "data-label": "Status" }, statusCell(event)));
  const expand = () => {
    const open = toggle.getAttribute("aria-expanded") === "true";
    toggle.setAttribute("aria-expanded", String(!open));
    if (open) {
      document.getElementById(detailsId)?.remove();
    } else {
      row.after(detailsRow(event, detailsId));
    }
  };
  toggle.addEventListener("click", (e) => { e.stopPropagation(); expand(); });
  row.addEventListener("click", (e) => { if (!e.target.closest("button, a")) expand(); });
  return row;
}

function dl(pairs) {
  return el("dl", {}, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "").flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
}

function section(title, ...content) {
  return el("section", {}, el("h3", { text: title }), ...content);
}

function detailsRow(event, id) {
  const targets = (event.targets || []).map((t) => el("li", {},
    el("button", {
      type: "button", class: "link", "data-testid": "target-link", title: "Show the history of this resource",
      onclick: () => navigate({ target: `${t.type}:${t.id}`, range: "all" }),
    }, `${t.type}: ${t.id}`), t.name ? ` — ${t.name}` : ""));
  const changes = Object.entries(event.changes || {});
  const grid = el("div", { class: "details-grid", "data-testid": "event-details" },
    section("Targets", targets.length ? el("ul", { "data-testid": "event-targets" }, targets) : el("p", { text: "None" })),
    changes.length ? section("Changes", el("table", { class: "changes" },
      el("tbody", {}, changes.map(([field, change]) => el("tr", {},
        el("th", { scope: "row", text: field }),
        el("td", { class: "from mono", text: JSON.stringify(change.from) }),
        el("td", { text: "→" }),
        el("td", { class: "to mono", text: JSON.stringify(change.to) })))))) : null,
    (event.details || []).length ? section("Details", el("ul", { "data-testid": "event-detail-lines" }, event.details.map((d) => el("li", { text: d })))) : null,
    section("Request", dl([
      ["Request id", event.request_id ? el("button", {
        type: "button", class: "link mono", "data-testid": "request-link", title: "Every event of this request",
        onclick: () => navigate({ request: event.request_id, range: "all" }),
      }, event.request_id) : null],
      ["Source IP", event.source_ip],
      ["User agent", event.user_agent],
      ["App", event.app_id],
      ["Actor", `${event.actor.id} (${event.actor.type})${event.actor.email ? ` <${event.actor.email}>` : ""}`],
      ["Error", event.error ? `${event.error.code}: ${event.error.message}` : null],
    ])),
    section("Record", dl([
      ["Operation", el("code", { text: event.operation })],
      ["Event id", el("code", { text: event.id })],
      ["Seq", String(event.seq)],
      ["Time (UTC)", event.time],
      ["Received", event.received_at],
      ["Leaf hash", el("code", { text: event.leaf_hash })],
    ])),
    Object.keys(event.metadata || {}).length ? section("Metadata", el("pre", { "data-testid": "event-metadata", text: JSON.stringify(event.metadata, null, 2) })) : null);
  return el("tr", { class: "details", id }, el("td", { colspan: "5" }, grid));
}

function renderRows(events) {
  const body = $("#events tbody");
  if (!events.length) {
    const filtered = stateToSearch({ ...state, cursor: "", page: 1, live: false, order: "desc" }) !== "";
    body.replaceChildren(el("tr", { class: "empty", "data-testid": "empty-state" }, el("td", { colspan: "5" },
      el("p", { text: state.page > 1 ? "No more events." : "No events match these filters." }),
      filtered ? el("button", { type: "button", class: "quiet", onclick: () => testid("clear-filters").click() }, "Clear filters") : null)));
    return;
  }
  body.replaceChildren(...events.map((e) => eventRow(e)));
}

async function loadEvents() {
  const token = ++loadToken;
  const body = $("#events tbody");
  body.setAttribute("aria-busy", "true");
  message("Loading events…");
  const params = filterParams(state);
  params.set("limit", String(PAGE_SIZE));
  params.set("order", state.order);
  if (state.cursor) params.set("cursor", state.cursor);
  try {
    const page = await api("/v1/events", params);
    if (token !== loadToken) return;
    lastEvents = page.events;
    nextCursor = page.next_cursor;
    renderRows(lastEvents);
    const shown = lastEvents.length;
    message(shown ? `Showing ${shown} event${shown === 1 ? "" : "s"}${nextCursor ? "; more on the next page" : ""}.` : "");
  } catch (error) {
    if (token !== loadToken) return;
    lastEvents = [];
    nextCursor = null;
    body.replaceChildren(el("tr", { class: "empty", "data-testid": "error-state" }, el("td", { colspan: "5", text: "The events could not be loaded." })));
    message(error.message, { error: true });
  } finally {
    if (token === loadToken) body.removeAttribute("aria-busy");
    testid("pagination-next").disabled = !nextCursor;
    testid("pagination-first").disabled = state.page <= 1;
    testid("pagination-page").textContent = `Page ${state.page}`;
  }
}

// ---- The activity chart ------------------------------------------------------------------

async function loadChart() {
  const svg = testid("activity-chart");
  const [since, until] = rangeBounds(state);
  const spanDays = since && until ? (until - since) / DAY : Infinity;
  const bucket = spanDays <= 2 ? "hour" : "day";
  const params = filterParams(state);
  params.set("bucket", bucket);
  let buckets;
  try {
    ({ buckets } = await api("/v1/stats/activity", params));
  } catch {
    svg.replaceChildren();
    testid("chart-note").textContent = "The chart could not be loaded.";
    return;
  }
  const step = bucket === "hour" ? 3600 * 1000 : DAY;
  const counts = new Map(buckets.map((b) => [new Date(b.start).getTime(), b]));
  // Whole buckets from the range's start (or the first event) to its end (or the last).
  const first = since ? since.getTime() : buckets.length ? new Date(buckets[0].start).getTime() : Date.now();
  const last = until ? until.getTime() : buckets.length ? new Date(buckets[buckets.length - 1].start).getTime() + step : Date.now();
  const slots = [];
  const align = bucket === "hour" ? (t) => t - (t % step) : (t) => Date.UTC(new Date(t).getUTCFullYear(), new Date(t).getUTCMonth(), new Date(t).getUTCDate());
  for (let t = align(first); t < last && slots.length < 400; t += step) slots.push(t);
  const total = buckets.reduce((n, b) => n + b.events, 0);
  const failures = buckets.reduce((n, b) => n + b.failures, 0);
  const max = Math.max(1, ...buckets.map((b) => b.events));
  const width = 800 / Math.max(1, slots.length);
  svg.setAttribute("aria-label", `Activity per ${bucket}: ${total} events, ${failures} failures`);
  svg.replaceChildren(...slots.map((t, i) => {
    const b = counts.get(t) || { events: 0, failures: 0 };
    const h = (b.events / max) * 110;
    const hf = (b.failures / max) * 110;
    const label = `${bucket === "hour" ? new Date(t).toISOString().slice(0, 13).replace("T", " ") + ":00" : new Date(t).toISOString().slice(0, 10)} UTC: ${b.events} events, ${b.failures} failures`;
    const ns = "http://www.w3.org/2000/svg";
    const g = document.createElementNS(ns, "g");
    g.setAttribute("class", bucket === "day" && b.events ? "bucket clickable" : "bucket");
    const title = document.createElementNS(ns, "title");
    title.textContent = label;
    const hit = document.createElementNS(ns, "rect");
    Object.entries({ x: i * width, y: 0, width, height: 120, fill: "transparent" }).forEach(([k, v]) => hit.setAttribute(k, v));
    const all = document.createElementNS(ns, "rect");
    Object.entries({ x: i * width + width * 0.1, y: 120 - h, width: width * 0.8, height: h, class: "bar-all" }).forEach(([k, v]) => all.setAttribute(k, v));
    const bad = document.createElementNS(ns, "rect");
    Object.entries({ x: i * width + width * 0.1, y: 120 - hf, width: width * 0.8, height: hf, class: "bar-bad" }).forEach(([k, v]) => bad.setAttribute(k, v));
    g.append(title, hit, all, bad);
    if (bucket === "day" && b.events) {
      g.addEventListener("click", () => {
        const day = new Date(t).toISOString().slice(0, 10);
        navigate({ range: "custom", from: day, to: day });
      });
    }
    return g;
  }));
  testid("chart-note").textContent = `${total.toLocaleString()} events, ${failures.toLocaleString()} failures, per ${bucket}`;
  const label = (t) => (bucket === "hour" ? new Date(t).toISOString().slice(5, 16).replace("T", " ") : new Date(t).toISOString().slice(0, 10));
  testid("chart-start").textContent = slots.length ? label(slots[0]) : "";
  testid("chart-end").textContent = slots.length ? label(slots[slots.length - 1]) : "";
}

// ---- Export links ------------------------------------------------------------------------

function renderExports() {
  for (const format of ["csv", "jsonl"]) {
    const params = filterParams(state);
    params.set("format", format);
    testid(`export-${format}`).href = `/v1/events/export?${params}`;
  }
}

// ---- Live mode: server-sent events from /v1/events/stream -----------------------------

let source = null;
let liveKey = "";
let liveCount = 0;
let liveEnded = false; // the server ended live mode (the key was revoked): not reopened

function stopLive() {
  if (source) source.close();
  source = null;
  liveKey = "";
  const status = testid("live-status");
  status.textContent = "";
  status.classList.remove("on");
}

function startLive() {
  const params = filterParams(state);
  const key = params.toString();
  if (liveEnded || (source && key === liveKey)) return;
  stopLive();
  liveKey = key;
  liveCount = 0;
  const status = testid("live-status");
  status.classList.add("on");
  status.textContent = "Live: connecting…";
  source = new EventSource(`/v1/events/stream?${params}`);
  source.onopen = () => { status.textContent = liveCount ? `Live: ${liveCount} new` : "Live: waiting for new events"; };
  source.onerror = (incoming) => {
    // The server's own last message ("event: error" with data) ends live mode for good; a
    // plain error is a dropped connection, which EventSource retries by itself.
    let said = {};
    try { said = JSON.parse(incoming.data || "{}"); } catch { /* keep the generic words */ }
    const why = {
      key_revoked: "the key was revoked", key_expired: "the key expired",
      session_ended: "the session was signed out", session_expired: "the session ended",
    }[said.code];
    // Anything else (a dropped connection, a server shutting down) EventSource retries.
    if (!why) { status.textContent = "Live: reconnecting…"; return; }
    source.close();
    source = null;
    status.classList.remove("on");
    status.textContent = `Live stopped, signed out: ${why}`;
    liveEnded = true;
    message(`Signed out: ${why}. Sign in again with a valid key.`, { error: true });
  };
  source.onmessage = (incoming) => {
    const event = JSON.parse(incoming.data);
    liveCount += 1;
    status.textContent = `Live: ${liveCount} new`;
    if (state.page !== 1 || state.order !== "desc" || lastEvents.some((e) => e.id === event.id)) return;
    const body = $("#events tbody");
    $('[data-testid="empty-state"]', body)?.remove();
    lastEvents.unshift(event);
    const row = eventRow(event, { fresh: true });
    body.prepend(row);
    setTimeout(() => { // the highlight fades out (see .fading in the CSS)
      row.classList.add("fading");
      row.classList.remove("new");
      setTimeout(() => row.classList.remove("fading"), 3000);
    }, 4000);
    message(`Showing ${lastEvents.length} events; new ones appear at the top.`);
  };
}

// ---- Render --------------------------------------------------------------------------

function render() {
  syncForm();
  renderChips();
  renderExports();
  loadEvents();
  loadChart();
  if (state.live) startLive();
  else stopLive();
}

render();
loadApps();
loadOperations();
