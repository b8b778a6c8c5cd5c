// rag-pricer page: plain JS, no build step. Everything from the server is inserted with
// textContent / SVG attributes, never innerHTML, so product titles cannot inject markup.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
let strategies = [];
let lastResult = null;
let exampleIndex = 0;
const products = new Map();  // product id -> its stored description (fetched once)

// Real products, for a first try without a description at hand.
const EXAMPLES = [
  "Delphi FG0166 Fuel Pump Module\nReplacement fuel pump module for 2003-2006 Chevrolet Silverado and GMC Sierra " +
    "pickups; OE-quality pump, sender and reservoir assembly.",
  "Fender Player Stratocaster Electric Guitar, Maple Fingerboard, Polar White\nAlder body, three Player Series " +
    "single-coil pickups, 2-point tremolo bridge, modern C-shaped neck, 22 medium-jumbo frets.",
  "BOSCH GSR12V-300B22 12V Max EC Brushless Flexiclick 5-In-1 Drill/Driver System\nIncludes two 12V Max 2.0 Ah " +
    "batteries, charger, four attachments and a carrying case; 300 in.-lbs. of torque.",
];

function headers() {
  const h = { "Content-Type": "application/json" };
  const token = $("token").value.trim();
  if (token) h["Authorization"] = "Bearer " + token;
  return h;
}

const UNREACHABLE = "Could not reach the rag-pricer server. Check that it is running (rag-pricer serve) " +
  "and that you are connected, then try again.";

// fetch JSON; throw an Error with a message for people: the server's own message for a non-2xx
// answer, a plain sentence when the server cannot be reached (fetch's "Failed to fetch" says neither).
async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: headers() });
  } catch (_) {
    throw new Error(UNREACHABLE);
  }
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON, e.g. a proxy's error page */ }
  if (!response.ok) {
    throw new Error(describeError(response, body));
  }
  return body;
}

function describeError(response, body) {
  if (body && body.error === "strategy_not_ready" && Array.isArray(body.details) && body.details.length) {
    // the message names the operator's command: a visitor gets what is missing, in words
    const d = body.details[0];
    return `${d.strategy} is not available on this server: ${unavailableWhy(d.status)}.`;
  }
  if (body && Array.isArray(body.details) && body.error === "invalid_request") {
    // "body.description: the description is empty" -> "description: the description is empty"
    return body.details.map((d) => `${d.loc[d.loc.length - 1]}: ${d.msg}`).join("; ");
  }
  if (body && body.message) return body.message;
  if (response.status >= 500) {
    return `The server could not answer (${response.status} ${response.statusText || "error"}); try again in a moment.`;
  }
  return `The server answered ${response.status} ${response.statusText || "error"}.`;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

async function checkReady() {
  const badge = $("status");
  try {
    const response = await fetch("/readyz");
    const body = await response.json();
    if (body.ready) {
      badge.textContent = `ready · ${Number(body.store_items).toLocaleString("en-US")} products`;
      badge.className = "status ready";
      return;
    }
    badge.textContent = body.status === "failed" ? "not ready: " + (body.detail || "failed") : "loading models…";
    badge.className = body.status === "failed" ? "status down" : "status";
    if (body.status !== "failed") setTimeout(checkReady, 1000);
  } catch (_) {
    badge.textContent = "server unreachable";
    badge.className = "status down";
    setTimeout(checkReady, 3000);
  }
}

// What a strategy that cannot price here lacks, in words for a visitor: the operator's command
// (`hint`) and the server's paths stay in `rag-pricer strategies` and the server's logs.
const UNAVAILABLE = {
  "needs-training": "not prepared on this server",
  "needs-llm": "no language model on this server",
  "needs-store": "no knowledge base on this server",
  "needs-extra": "not installed on this server",
  "needs-gpu": "needs a GPU this server lacks",
};

function unavailableWhy(status) {
  return UNAVAILABLE[status] || "not available on this server";
}

// "knn — $106 on dev": the measured error next to each name, so nobody picks a strategy
// believing it is the best; the recommended one (lowest dev MAE on record) is marked.
function strategyLabel(s) {
  const parts = [s.name];
  if (s.dev_mae != null) parts.push(`— ${usd.format(Math.round(s.dev_mae)).replace(/\.00$/, "")} on dev`);
  if (s.recommended) parts.push("(recommended)");
  return parts.join(" ");
}

// Strategies that cannot price on this server (not trained, no LLM, ...) are listed but disabled,
// with what they lack; a request never goes to one of them.
async function loadStrategies() {
  try {
    const data = await api("/v1/strategies");
    strategies = data.strategies;
    const ready = strategies.filter((s) => s.ready !== false);
    const unready = strategies.filter((s) => s.ready === false);
    const best = ready.find((s) => s.recommended);
    const preferred = ready.some((s) => s.name === data.default) ? data.default : (best || ready[0] || {}).name;
    const options = ready.map((s) => {
      const option = el("option", strategyLabel(s));
      option.value = s.name;
      option.selected = s.name === preferred;
      return option;
    });
    const select = $("strategy");
    select.replaceChildren(...options);
    if (unready.length) {
      const group = document.createElement("optgroup");
      group.label = "Not available on this server";
      group.append(...unready.map((s) => {
        const option = el("option", `${strategyLabel(s)} (${unavailableWhy(s.status)})`);
        option.value = s.name;
        option.disabled = true;
        option.title = unavailableWhy(s.status);
        return option;
      }));
      select.append(group);
    }
    showUnavailable(unready);
    showSummary();
    showError("");
    loadLLMs();
  } catch (error) {
    showError("Could not load the strategies: " + error.message);
  }
}

function showUnavailable(unready) {
  $("unavailable").hidden = unready.length === 0;
  $("unavailable-summary").textContent = unready.length === 1
    ? "1 strategy is not available on this server"
    : `${unready.length} strategies are not available on this server`;
  $("unavailable-list").replaceChildren(...unready.map((s) => {
    const item = el("li");
    item.dataset.strategy = s.name;
    item.append(el("strong", s.name), document.createTextNode(": " + unavailableWhy(s.status)));
    return item;
  }));
}

async function loadLLMs() {
  try {
    const data = await api("/v1/llms");
    $("llm").replaceChildren(...data.llms.map((b) => {
      const option = el("option", b.default ? `${b.name} (server default)` : b.name);
      option.value = b.name;
      option.title = b.summary;
      option.selected = b.default;
      return option;
    }));
  } catch (_) {
    $("llm").replaceChildren();  // the server's default LLM is used
  }
  showSummary();
}

function chosenStrategy() {
  return strategies.find((s) => s.name === $("strategy").value);
}

function needsLLM(strategy) {
  return Boolean(strategy && strategy.needs.includes("llm"));
}

function showSummary() {
  const chosen = chosenStrategy();
  $("strategy-summary").textContent = chosen ? chosen.summary : "";
  $("llm-field").hidden = !(needsLLM(chosen) && $("llm").options.length > 0);
}

function fillExample() {
  $("description").value = EXAMPLES[exampleIndex % EXAMPLES.length];
  exampleIndex += 1;
  $("description").focus();
}

async function submit(event) {
  event.preventDefault();
  const button = $("submit");
  const chosen = chosenStrategy();
  if (chosen && chosen.ready === false) {
    showError(`${chosen.name} is not available on this server: ${unavailableWhy(chosen.status)}.`);
    return;
  }
  const request = { description: $("description").value, strategy: $("strategy").value || null };
  const k = $("k").value.trim();
  if (k) request.k = Number(k);
  if (needsLLM(chosen) && $("llm").value) request.llm = $("llm").value;
  button.disabled = true;
  button.textContent = "Estimating…";
  showError("");
  try {
    const result = await api("/v1/estimate", { method: "POST", body: JSON.stringify(request) });
    render(result);
  } catch (error) {
    $("result").hidden = true;
    showError(error.message);
  } finally {
    button.disabled = false;
    button.textContent = "Estimate price";
  }
}

function render(result) {
  lastResult = result;
  $("price").textContent = usd.format(result.price);
  const range = $("range");
  const ranged = result.low != null && result.high != null;
  range.textContent = ranged
    ? `${Math.round(result.coverage * 100)}% range: ${usd.format(result.low)} – ${usd.format(result.high)}`
    : "no range for this strategy";
  range.className = ranged ? "range calibrated" : "range";
  range.title = ranged
    ? `On held-out products, ${Math.round(result.coverage * 100)}% of true prices fell in ranges made this way.`
    : "";
  const confidence = $("confidence");
  confidence.hidden = !result.confidence_reason;
  confidence.className = `confidence ${result.confidence || "none"}`;
  confidence.replaceChildren();
  if (result.confidence_reason) {
    const level = result.confidence ? `${result.confidence[0].toUpperCase()}${result.confidence.slice(1)} confidence` : "No confidence level";
    confidence.append(el("strong", level), document.createTextNode(` — ${result.confidence_reason}`));
  }
  $("meta").textContent = `${result.strategy} · ${result.comparables.length} comparables · ${Math.round(result.latency_ms)} ms`;
  const fallback = $("fallback");
  fallback.hidden = !result.fallback;
  fallback.textContent = result.fallback ? "Fallback: " + result.fallback_reason : "";
  const answer = $("llm-answer");
  answer.hidden = result.llm_answer == null;
  answer.textContent = result.llm_answer == null ? "" : "LLM answer: " + result.llm_answer;
  // the range line already says when there is no range: its note is not repeated
  const notes = ranged ? result.notes : result.notes.filter((n) => !n.startsWith("no price range"));
  $("notes").replaceChildren(...notes.map((n) => el("li", n)));

  const rows = result.comparables.map((c, i) => {
    const tr = document.createElement("tr");
    const title = el("td", undefined, "title");
    if (c.id) {
      const open = el("button", c.title, "link");
      open.type = "button";
      open.setAttribute("aria-expanded", "false");
      open.addEventListener("click", () => toggleProduct(tr, c, open));
      title.append(open);
    } else {
      title.textContent = c.title;
    }
    tr.append(el("td", String(i + 1), "num"), title, el("td", c.category || "–", "category"),
              el("td", usd.format(c.price), "num"));
    const sim = el("td", "", "num");
    const bar = el("span", undefined, "bar");
    bar.style.width = `${Math.max(2, Math.round(c.similarity * 60))}px`;
    sim.append(bar, document.createTextNode(c.similarity.toFixed(3)));
    tr.append(sim);
    return tr;
  });
  $("comparables").tBodies[0].replaceChildren(...rows);
  $("result").hidden = false;  // before the chart: it is drawn at the width it gets
  drawChart(result.price, result.comparables, ranged ? result : null);
}

// Opens (or closes) a row under a comparable with its stored description, read from the API once.
async function toggleProduct(tr, comparable, button) {
  const next = tr.nextElementSibling;
  if (next && next.classList.contains("product-row")) {
    next.remove();
    button.setAttribute("aria-expanded", "false");
    return;
  }
  const row = el("tr", undefined, "product-row");
  const cell = el("td", "loading the description…", "product");
  cell.colSpan = 5;
  row.append(cell);
  tr.after(row);
  button.setAttribute("aria-expanded", "true");
  try {
    if (!products.has(comparable.id)) {
      products.set(comparable.id, await api(`/v1/products/${encodeURIComponent(comparable.id)}`));
    }
    const product = products.get(comparable.id);
    const facts = [usd.format(product.price), product.category, product.split && `${product.split} split`,
                   `id ${product.id}`].filter(Boolean).join(" · ");
    cell.replaceChildren(el("div", facts, "product-facts"), el("p", product.description, "product-text"));
  } catch (error) {
    cell.replaceChildren(el("span", "Could not load the description: " + error.message, "product-error"));
  }
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// Ticks at 1, 2, 5 x 10^n inside [lo, hi], thinned to at most ``most``.
function logTicks(lo, hi, most) {
  const ticks = [];
  for (let p = Math.floor(Math.log10(lo)); p <= Math.ceil(Math.log10(hi)); p++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** p;
      if (v >= lo && v <= hi) ticks.push(v);
    }
  }
  const step = Math.ceil(ticks.length / most);
  return ticks.filter((_, i) => i % step === 0);
}

// A strip plot on a log price axis: one dot per comparable (bigger = more similar), the
// estimate as a red line, its calibrated range (when there is one) as a band. Prices are
// roughly log-normal, hence the log scale. Drawn at the width of its container, one SVG unit
// per CSS pixel, so its text keeps the size the stylesheet gives it on a phone as on a desktop
// (a scaled-down desktop drawing made it unreadable); redrawn when the window is resized.
function drawChart(estimate, comparables, range) {
  const W = Math.max(240, Math.round($("chart").clientWidth || 880)), H = 150, left = 30, right = 30, axisY = 110;
  const prices = comparables.map((c) => c.price).concat([estimate]).concat(range ? [range.low, range.high] : []);
  let lo = Math.min(...prices) / 1.25, hi = Math.max(...prices) * 1.25;
  if (hi / lo < 4) { const mid = Math.sqrt(lo * hi); lo = mid / 2; hi = mid * 2; }
  const x = (v) => left + (Math.log(v) - Math.log(lo)) / (Math.log(hi) - Math.log(lo)) * (W - left - right);

  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img",
    "aria-label": `Estimate ${usd.format(estimate)} among ${comparables.length} comparable prices` });
  if (range) {
    const band = svg("rect", { id: "range-band", class: "range-band", x: x(range.low), y: 22,
      width: Math.max(1, x(range.high) - x(range.low)), height: axisY - 22 });
    band.append(svg("title", {}, `${Math.round(range.coverage * 100)}% range ${usd.format(range.low)} – ${usd.format(range.high)}`));
    root.append(band);
  }
  root.append(svg("line", { class: "axis", x1: left, x2: W - right, y1: axisY, y2: axisY }));
  for (const t of logTicks(lo, hi, Math.max(3, Math.floor(W / 80)))) {
    const g = svg("g", { class: "tick" });
    g.append(svg("line", { class: "axis", x1: x(t), x2: x(t), y1: axisY, y2: axisY + 5 }));
    g.append(svg("text", { x: x(t), y: axisY + 18, "text-anchor": "middle" }, usd.format(t).replace(/\.00$/, "")));
    root.append(g);
  }
  root.append(svg("text", { class: "axis-label", x: W - right, y: H - 4, "text-anchor": "end" }, "price (log scale)"));

  // Dot size and opacity by similarity relative to the others: the closest product stands out.
  const sims = comparables.map((c) => c.similarity);
  const sLo = Math.min(...sims), sSpan = Math.max(...sims) - sLo || 1;
  comparables.forEach((c, i) => {
    const weight = (c.similarity - sLo) / sSpan;
    const y = axisY - 28 - (i % 3) * 16;  // a little vertical spread so equal prices stay visible
    const r = 5 + 5 * weight;
    const dot = svg("circle", { class: "comparable", cx: x(c.price), cy: y, r: r,
      "fill-opacity": (0.45 + 0.5 * weight).toFixed(2) });
    dot.append(svg("title", {}, `#${i + 1} ${c.title}\n${usd.format(c.price)} · similarity ${c.similarity.toFixed(3)}`));
    root.append(dot);
    // the row number of the table, so the dot and its product can be matched
    root.append(svg("text", { class: "dot-label", x: x(c.price), y: y - r - 3, "text-anchor": "middle" }, String(i + 1)));
  });

  const ex = x(estimate);
  root.append(svg("line", { class: "estimate-line", x1: ex, x2: ex, y1: 22, y2: axisY }));
  const anchor = ex > W - 120 ? "end" : ex < 120 ? "start" : "middle";
  root.append(svg("text", { class: "estimate-label", x: ex, y: 16, "text-anchor": anchor }, `estimate ${usd.format(estimate)}`));
  $("chart").replaceChildren(root);
}

let redraw = 0;
function redrawChart() {
  cancelAnimationFrame(redraw);
  redraw = requestAnimationFrame(() => {
    if (lastResult && !$("result").hidden) {
      const ranged = lastResult.low != null && lastResult.high != null;
      drawChart(lastResult.price, lastResult.comparables, ranged ? lastResult : null);
    }
  });
}

async function init() {
  $("form").addEventListener("submit", submit);
  $("example").addEventListener("click", fillExample);
  $("strategy").addEventListener("change", showSummary);
  $("token").addEventListener("change", loadStrategies);
  window.addEventListener("resize", redrawChart);
  checkReady();
  try {
    const health = await (await fetch("/healthz")).json();
    $("token-field").hidden = !health.auth_required;
    if (health.auth_required) {
      $("strategy-summary").textContent = "This server needs an API token: enter it to load the strategies.";
      return;
    }
  } catch (_) { /* checkReady reports it */ }
  loadStrategies();
}

init();
